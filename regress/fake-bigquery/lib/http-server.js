'use strict';
// HTTP: the BigQuery REST v2 subset under /bigquery/v2/projects/{p}/... and
// the test control API under /_fake/... (README.md lists both), and the
// OAuth token sources of lib/oauth.js.

const http = require('http');
const { Store } = require('./store');
const { ApiError } = require('./errors');
const { newStats } = require('./fake');
const { handleOAuth, oauthOf } = require('./oauth');

const MAX_BODY = 20 * 1024 * 1024;

class ControlError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    let size = 0;
    req.on('data', (c) => {
      size += c.length;
      if (size > MAX_BODY) {
        reject(new ApiError(413, 'invalid', `Request body larger than ${MAX_BODY} bytes`));
        req.destroy();
      } else chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function parseJson(text, makeError) {
  if (text.trim() === '') return {};
  try {
    const v = JSON.parse(text);
    if (!v || typeof v !== 'object' || Array.isArray(v)) throw new Error('the body must be a JSON object');
    return v;
  } catch (e) {
    throw makeError(e.message);
  }
}

function send(res, status, body) {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': 'application/json; charset=UTF-8', 'Content-Length': Buffer.byteLength(text) });
  res.end(text);
}

// ---- REST v2 ----

async function handleRest(fake, req, project, rest) {
  const authError = fake.authenticate(req.headers.authorization, 'rest');
  if (authError) {
    throw new ApiError(401, req.headers.authorization ? 'authError' : 'required', authError,
      { location: 'Authorization', locationType: 'header', status: 'UNAUTHENTICATED' });
  }
  const parts = rest.split('/').filter(Boolean).map(decodeURIComponent);
  const { store } = fake;
  const body = ['POST', 'PATCH'].includes(req.method)
    ? parseJson(await readBody(req), (m) => new ApiError(400, 'parseError', `Invalid JSON payload received. ${m}`))
    : null;
  const route = `${req.method} ${parts.map((p, i) => (i % 2 ? '*' : p)).join('/')}`;
  switch (route) {
    case 'POST datasets':
      return [200, Store.datasetResource(store.createDataset(project, body))];
    case 'GET datasets/*':
      return [200, Store.datasetResource(store.dataset(project, parts[1]))];
    case 'POST datasets/*/tables': {
      const ds = store.dataset(project, parts[1]);
      return [200, store.createTable(project, parts[1], body).toResource(ds.location)];
    }
    case 'GET datasets/*/tables/*':
      return [200, store.table(project, parts[1], parts[3]).toResource(store.dataset(project, parts[1]).location)];
    case 'PATCH datasets/*/tables/*':
      return [200, store.patchTable(project, parts[1], parts[3], body).toResource(store.dataset(project, parts[1]).location)];
    default:
      throw new ApiError(404, 'notFound', `Not found: the fake does not serve ${req.method} /bigquery/v2/projects/${project}${rest}`);
  }
}

// ---- control API ----

function tableDetail(fake, p, d, t) {
  const table = fake.store.findTable(p, d, t);
  if (!table) throw new ControlError(404, `no table ${p}.${d}.${t}`);
  return table;
}

async function handleControl(fake, req, path) {
  const parts = path.split('/').filter(Boolean).map(decodeURIComponent);
  const body = ['POST'].includes(req.method)
    ? JSON.parse((await readBody(req)) || '{}')
    : null;
  const route = `${req.method} ${parts[0] || ''}`;
  switch (route) {
    case 'GET health':
      return [200, { ok: true, ...fake.ports }];
    case 'GET datasets':
      return [200, {
        datasets: [...fake.store.datasets.values()].map((ds) => ({
          projectId: ds.projectId, datasetId: ds.datasetId, location: ds.location, tables: [...ds.tables.keys()],
        })),
      }];
    case 'GET tables': {
      if (parts.length === 1) return [200, { tables: fake.store.listTables() }];
      if (parts.length !== 4 && !(parts.length === 5 && parts[4] === 'rows')) break;
      const table = tableDetail(fake, parts[1], parts[2], parts[3]);
      if (parts[4] === 'rows') return [200, { rows: table.currentRows() }];
      const ds = fake.store.dataset(table.projectId, table.datasetId);
      return [200, {
        table: table.toResource(ds.location),
        primaryKey: table.primaryKey,
        schemaVersion: table.schemaVersion,
        numRows: table.numRows(),
        rows: table.currentRows(),
        tombstones: table.tombstones(),
        counters: table.counters,
        warnings: table.warnings,
        warningCount: table.warningCount,
      }];
    }
    case 'POST reset':
      fake.reset();
      oauthOf(fake).reset();
      return [200, { ok: true }];
    case 'GET faults':
      return [200, { faults: fake.faults.list() }];
    case 'POST faults': {
      const specs = Array.isArray(body) ? body : [body];
      try {
        return [200, { faults: specs.map((s) => fake.faults.add(s)) }];
      } catch (e) {
        throw new ControlError(400, e.message);
      }
    }
    case 'DELETE faults':
      fake.faults.clear();
      return [200, { ok: true }];
    case 'GET stats':
      return [200, fake.stats];
    case 'DELETE stats':
      fake.stats = newStats();
      return [200, { ok: true }];
    case 'GET tokens':
      return [200, { tokens: fake.tokenList() }];
    case 'DELETE tokens':
      fake.tokens.clear();
      return [200, { ok: true }];
    case 'GET config':
      return [200, fake.configView()];
    case 'POST config':
      try {
        return [200, fake.setConfig(body)];
      } catch (e) {
        throw new ControlError(400, e.message);
      }
    default:
      break;
  }
  throw new ControlError(404, `no control endpoint ${req.method} /_fake/${parts.join('/')}`);
}

function createHttpServer(fake) {
  return http.createServer(async (req, res) => {
    const url = new URL(req.url, 'http://fake');
    const restMatch = /^\/bigquery\/v2\/projects\/([^/]+)(\/.*)?$/.exec(url.pathname);
    try {
      // the OAuth token endpoint, the metadata server and /_fake/oauth
      if (await handleOAuth(fake, req, res, url)) return;
      if (url.pathname.startsWith('/_fake/') || url.pathname === '/_fake') {
        const [status, out] = await handleControl(fake, req, url.pathname.slice('/_fake'.length));
        send(res, status, out);
      } else {
        if (!restMatch) throw new ApiError(404, 'notFound', `Not found: ${url.pathname}`);
        const [status, out] = await handleRest(fake, req, decodeURIComponent(restMatch[1]), restMatch[2] || '');
        fake.count(fake.stats.rest, String(status));
        send(res, status, out);
      }
    } catch (e) {
      if (e instanceof ApiError) {
        fake.count(fake.stats.rest, String(e.httpCode));
        send(res, e.httpCode, e.toJSON());
      } else if (e instanceof ControlError) {
        send(res, e.status, { error: e.message });
      } else if (e instanceof URIError) {
        send(res, 400, new ApiError(400, 'invalid', `Malformed URL: ${e.message}`).toJSON());
      } else if (e instanceof SyntaxError) {
        send(res, 400, { error: `invalid JSON: ${e.message}` });
      } else {
        send(res, 500, new ApiError(500, 'internalError', `fake-bigquery internal error: ${e.stack || e}`).toJSON());
      }
    }
  });
}

module.exports = { createHttpServer };
