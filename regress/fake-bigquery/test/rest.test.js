'use strict';
// REST v2 subset (errors, schema rules, PATCH, rate limit, auth), the control
// API, and the command line (ready line, --state persistence across restarts).

const test = require('node:test');
const assert = require('node:assert/strict');
const path = require('path');
const fs = require('fs');
const os = require('os');
const { spawn } = require('child_process');
const grpc = require('@grpc/grpc-js');
const h = require('./helpers');

let srv;
test.before(async () => {
  srv = await h.withFake();
  await h.createDataset(srv, 'r');
});
test.after(() => srv.close());

function assertGoogleError(r, code, reason, status) {
  assert.equal(r.status, code, JSON.stringify(r.body));
  const e = r.body.error;
  assert.equal(e.code, code);
  assert.equal(e.status, status);
  assert.equal(typeof e.message, 'string');
  assert.equal(e.errors[0].reason, reason);
  assert.equal(e.errors[0].message, e.message);
}

const tableBody = (tableId, fields, extra = {}) => ({ tableReference: { projectId: h.PROJECT, datasetId: 'r', tableId }, schema: { fields }, ...extra });

test('authorization: Bearer token required; acceptTokens; tokens recorded', async () => {
  assertGoogleError(await h.rest(srv, 'GET', '/datasets/r', undefined, { token: null }), 401, 'required', 'UNAUTHENTICATED');
  assertGoogleError(await h.rest(srv, 'GET', '/datasets/r', undefined, { headers: { authorization: 'Basic abc' }, token: null }), 401, 'authError', 'UNAUTHENTICATED');
  try {
    await h.ctl(srv, 'POST', '/config', { acceptTokens: ['new-token'] });
    assertGoogleError(await h.rest(srv, 'GET', '/datasets/r', undefined, { token: 'old-token' }), 401, 'authError', 'UNAUTHENTICATED');
    assert.equal((await h.rest(srv, 'GET', '/datasets/r', undefined, { token: 'new-token' })).status, 200);
  } finally {
    await h.ctl(srv, 'POST', '/config', { acceptTokens: null });
  }
  const tokens = (await h.ctl(srv, 'GET', '/tokens')).body.tokens.map((t) => [t.token, t.rest, t.rejected]);
  assert.deepEqual(tokens.filter(([t]) => t.endsWith('-token')), [['old-token', 1, 1], ['new-token', 1, 0]]);
});

test('datasets: create (location, default US), 409 if it exists, 404 if missing, id checked', async () => {
  let r = await h.rest(srv, 'POST', '/datasets', { datasetReference: { datasetId: 'loc' }, location: 'asia-northeast1' });
  assert.equal(r.status, 200);
  assert.equal(r.body.location, 'asia-northeast1');
  assert.equal(r.body.id, `${h.PROJECT}:loc`);
  assert.equal((await h.rest(srv, 'GET', '/datasets/loc')).body.location, 'asia-northeast1');
  assertGoogleError(await h.rest(srv, 'POST', '/datasets', { datasetReference: { datasetId: 'loc' }, location: 'US' }), 409, 'duplicate', 'ALREADY_EXISTS');
  assert.equal((await h.rest(srv, 'POST', '/datasets', { datasetReference: { datasetId: 'dflt' } })).body.location, 'US');
  assertGoogleError(await h.rest(srv, 'GET', '/datasets/none'), 404, 'notFound', 'NOT_FOUND');
  assertGoogleError(await h.rest(srv, 'POST', '/datasets', { datasetReference: { datasetId: 'bad-id' } }), 400, 'invalid', 'INVALID_ARGUMENT');
  assertGoogleError(await h.rest(srv, 'POST', '/datasets', { datasetReference: { projectId: 'other', datasetId: 'x' } }), 400, 'invalid', 'INVALID_ARGUMENT');
  const bad = await h.http(srv, 'POST', `/bigquery/v2/projects/${h.PROJECT}/datasets`, undefined, { headers: { 'content-type': 'application/json' } });
  assert.equal(bad.status, 400); // empty body: no datasetReference
});

test('tables: REPEATED and RECORD columns, legacy type names returned, validation errors', async () => {
  const fields = [
    { name: 'id', type: 'INTEGER', mode: 'REQUIRED' },
    { name: 'tags', type: 'STRING', mode: 'REPEATED' },
    { name: 'r', type: 'STRUCT', fields: [{ name: 'x', type: 'FLOAT64' }, { name: 'y', type: 'BOOL', mode: 'REPEATED' }] },
  ];
  const r = await h.rest(srv, 'POST', '/datasets/r/tables', tableBody('t1', fields, { tableConstraints: { primaryKey: { columns: ['ID'] } } }));
  assert.equal(r.status, 200, JSON.stringify(r.body));
  assert.deepEqual(r.body.schema.fields, [
    { name: 'id', type: 'INTEGER', mode: 'REQUIRED' },
    { name: 'tags', type: 'STRING', mode: 'REPEATED' },
    { name: 'r', type: 'RECORD', mode: 'NULLABLE', fields: [{ name: 'x', type: 'FLOAT', mode: 'NULLABLE' }, { name: 'y', type: 'BOOLEAN', mode: 'REPEATED' }] },
  ]);
  assert.deepEqual(r.body.tableConstraints.primaryKey.columns, ['id']); // spelled as in the schema
  assert.equal(r.body.numRows, '0');
  assertGoogleError(await h.rest(srv, 'POST', '/datasets/r/tables', tableBody('t1', fields)), 409, 'duplicate', 'ALREADY_EXISTS');
  assertGoogleError(await h.rest(srv, 'POST', '/datasets/none/tables', tableBody('t1', fields)), 404, 'notFound', 'NOT_FOUND');
  assertGoogleError(await h.rest(srv, 'GET', '/datasets/r/tables/none'), 404, 'notFound', 'NOT_FOUND');

  const many = Array.from({ length: 17 }, (_, i) => ({ name: `c${i}`, type: 'INT64' }));
  const invalid = [
    [{ name: 'a', type: 'VARCHAR' }],
    [{ name: 'a', type: 'RECORD' }],
    [{ name: 'a', type: 'STRING', fields: [{ name: 'b', type: 'STRING' }] }],
    [{ name: 'a', type: 'STRING', mode: 'OPTIONAL' }],
    [{ name: 'a', type: 'STRING' }, { name: 'A', type: 'INT64' }],
    [{ name: '_CHANGE_TYPE', type: 'STRING' }],
    [{ name: '_PARTITIONTIME', type: 'STRING' }],
    [{ name: 'a.b', type: 'STRING' }],
    [{ name: 'x'.repeat(301), type: 'STRING' }],
  ];
  for (const f of invalid) {
    assertGoogleError(await h.rest(srv, 'POST', '/datasets/r/tables', tableBody('bad', f)), 400, 'invalid', 'INVALID_ARGUMENT');
  }
  const badKeys = [
    [fields, ['nope']],
    [fields, ['tags']],
    [fields, ['r']],
    [fields, ['id', 'id']],
    [many, many.map((c) => c.name)],
  ];
  for (const [f, cols] of badKeys) {
    const body = tableBody('bad', f, { tableConstraints: { primaryKey: { columns: cols } } });
    assertGoogleError(await h.rest(srv, 'POST', '/datasets/r/tables', body), 400, 'invalid', 'INVALID_ARGUMENT');
  }
  assertGoogleError(await h.rest(srv, 'POST', '/datasets/r/tables', tableBody('bad', fields, { maxStaleness: '15 minutes' })), 400, 'invalid', 'INVALID_ARGUMENT');
  assertGoogleError(await h.rest(srv, 'POST', '/datasets/r/tables', tableBody('bad', fields, { clustering: { fields: ['tags'] } })), 400, 'invalid', 'INVALID_ARGUMENT');
  assert.equal((await h.rest(srv, 'POST', '/datasets/r/tables', tableBody('flex', [{ name: 'über col-1', type: 'STRING' }]))).status, 200);
});

test('PATCH: only appended NULLABLE/REPEATED columns (also inside records) and REQUIRED->NULLABLE', async () => {
  const base = [{ name: 'a', type: 'INT64', mode: 'REQUIRED' }, { name: 'r', type: 'RECORD', fields: [{ name: 'x', type: 'STRING' }] }];
  await h.rest(srv, 'POST', '/datasets/r/tables', tableBody('p', base));
  const patch = (fields) => h.rest(srv, 'PATCH', '/datasets/r/tables/p', { schema: { fields } });
  const rejected = [
    [base[1]], // a removed
    [base[1], base[0]], // reordered
    [{ ...base[0], type: 'STRING' }, base[1]], // type changed
    [{ ...base[0], mode: 'REPEATED' }, base[1]],
    [...base, { name: 'n', type: 'STRING', mode: 'REQUIRED' }], // new REQUIRED column
    [base[0], { ...base[1], fields: [] }],
    [base[0], { ...base[1], fields: [{ name: 'x', type: 'INT64' }] }],
  ];
  for (const f of rejected) assertGoogleError(await patch(f), 400, 'invalid', 'INVALID_ARGUMENT');
  const grown = [
    { name: 'a', type: 'INT64', mode: 'NULLABLE' },
    { name: 'r', type: 'RECORD', fields: [{ name: 'x', type: 'STRING' }, { name: 'y', type: 'DATE' }] },
    { name: 'n', type: 'STRING' },
    { name: 'm', type: 'NUMERIC', mode: 'REPEATED' },
  ];
  const r = await patch(grown);
  assert.equal(r.status, 200, JSON.stringify(r.body));
  assert.deepEqual(r.body.schema.fields.map((f) => [f.name, f.mode]), [['a', 'NULLABLE'], ['r', 'NULLABLE'], ['n', 'NULLABLE'], ['m', 'REPEATED']]);
  assert.deepEqual(r.body.schema.fields[1].fields.map((f) => f.name), ['x', 'y']);
  const r2 = await h.rest(srv, 'PATCH', '/datasets/r/tables/p', { maxStaleness: '0-0 0 0:5:0', description: 'd' });
  assert.equal(r2.body.maxStaleness, '0-0 0 0:5:0');
  assert.equal(r2.body.schema.fields.length, 4); // schema untouched
  const detail = (await h.ctl(srv, 'GET', `/tables/${h.PROJECT}/r/p`)).body;
  assert.equal(detail.schemaVersion, 2);
});

test('table metadata updates are rate-limited per table (403 rateLimitExceeded)', async () => {
  await h.rest(srv, 'POST', '/datasets/r/tables', tableBody('rl1', [{ name: 'a', type: 'STRING' }]));
  await h.rest(srv, 'POST', '/datasets/r/tables', tableBody('rl2', [{ name: 'a', type: 'STRING' }]));
  try {
    await h.ctl(srv, 'POST', '/config', { rateLimit: { max: 5, windowMs: 400 } });
    const patch = (t, i) => h.rest(srv, 'PATCH', `/datasets/r/tables/${t}`, { description: `v${i}` });
    for (let i = 0; i < 5; i += 1) assert.equal((await patch('rl1', i)).status, 200);
    const limited = await patch('rl1', 5);
    assertGoogleError(limited, 403, 'rateLimitExceeded', 'PERMISSION_DENIED');
    assert.equal(limited.body.error.errors[0].domain, 'usageLimits');
    assert.equal((await patch('rl2', 0)).status, 200); // per table
    await new Promise((r) => { setTimeout(r, 450); });
    assert.equal((await patch('rl1', 6)).status, 200); // the window moved on
    await h.ctl(srv, 'POST', '/config', { rateLimit: false });
    for (let i = 0; i < 10; i += 1) assert.equal((await patch('rl1', 10 + i)).status, 200);
  } finally {
    await h.ctl(srv, 'POST', '/config', { rateLimit: false });
  }
});

test('unknown REST routes and bad JSON', async () => {
  assertGoogleError(await h.rest(srv, 'DELETE', '/datasets/r'), 404, 'notFound', 'NOT_FOUND');
  assertGoogleError(await h.http(srv, 'GET', '/bigquery/v2/elsewhere'), 404, 'notFound', 'NOT_FOUND');
  const res = await fetch(`http://127.0.0.1:${srv.httpPort}/bigquery/v2/projects/${h.PROJECT}/datasets`, {
    method: 'POST', headers: { authorization: `Bearer ${h.TOKEN}` }, body: '{nope',
  });
  assert.equal(res.status, 400);
  assert.equal((await res.json()).error.errors[0].reason, 'parseError');
});

test('control API: listing, config validation, unknown endpoints, reset', async () => {
  const other = await h.withFake();
  try {
    await h.createDataset(other, 'c1');
    await h.createTable(other, 'c1', 'x', [{ name: 'a', type: 'STRING' }], { primaryKey: ['a'] });
    assert.deepEqual((await h.ctl(other, 'GET', '/datasets')).body.datasets, [{ projectId: h.PROJECT, datasetId: 'c1', location: 'EU', tables: ['x'] }]);
    assert.deepEqual((await h.ctl(other, 'GET', '/tables')).body.tables, [{ projectId: h.PROJECT, datasetId: 'c1', tableId: 'x', primaryKey: ['a'], numRows: 0, schemaVersion: 1 }]);
    assert.equal((await h.ctl(other, 'GET', `/tables/${h.PROJECT}/c1/nope/rows`)).status, 404);
    assert.equal((await h.ctl(other, 'GET', '/nothing')).status, 404);
    for (const c of [{ routing: 'loose' }, { acceptTokens: [''] }, { maxRequestBytes: 0 }, { rateLimit: { max: 1 } }]) {
      assert.equal((await h.ctl(other, 'POST', '/config', c)).status, 400, JSON.stringify(c));
    }
    assert.equal((await h.ctl(other, 'GET', '/health')).body.grpcPort, other.grpcPort);
    await h.ctl(other, 'POST', '/reset');
    assert.deepEqual((await h.ctl(other, 'GET', '/datasets')).body.datasets, []);
    assert.deepEqual((await h.ctl(other, 'GET', '/tokens')).body.tokens, []);
  } finally {
    await other.close();
  }
});

// ---- command line ----

function startCli(args) {
  const child = spawn(process.execPath, [path.join(__dirname, '..', 'server.js'), ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stderr.on('data', (b) => { err += b; });
  const ready = new Promise((resolve, reject) => {
    child.stdout.on('data', (b) => {
      out += b;
      const m = /^fake-bigquery ready grpc=(\d+) http=(\d+)\n/.exec(out);
      if (m) resolve({ grpcPort: Number(m[1]), httpPort: Number(m[2]) });
    });
    child.on('exit', (code) => reject(new Error(`exited ${code}: ${err}`)));
  });
  const stop = () => new Promise((resolve) => {
    child.removeAllListeners('exit');
    child.on('exit', resolve);
    child.kill('SIGTERM');
  });
  return { child, ready, stop };
}

test('command line: ready line, --state keeps tables, rows and tombstones across a restart', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fake-bq-'));
  const state = path.join(dir, 'state.json');
  const d = h.descriptor('kv', [
    { name: 'id', type: 'int64' }, { name: 'v', type: 'string' },
    { name: '_CHANGE_TYPE', type: 'string' }, { name: '_CHANGE_SEQUENCE_NUMBER', type: 'string' },
  ]);
  const stream = h.streamName('p', 't');
  const send = (s, rows) => h.appendAll(s, [h.appendRequest(stream, d.dp, rows.map((o) => d.encode(o)))]);
  try {
    const a = startCli(['--grpc-port', '0', '--http-port', '0', '--state', state, '--strict-routing']);
    const pa = await a.ready;
    await h.createDataset(pa, 'p');
    await h.createTable(pa, 'p', 't', [{ name: 'id', type: 'INT64' }, { name: 'v', type: 'STRING' }], { primaryKey: ['id'] });
    let r = await send(pa, [{ id: 1, v: 'a', _CHANGE_TYPE: 'UPSERT', _CHANGE_SEQUENCE_NUMBER: '5' },
      { id: 2, _CHANGE_TYPE: 'DELETE', _CHANGE_SEQUENCE_NUMBER: '9' }]);
    assert.ok(r.responses[0].append_result, JSON.stringify(r.responses[0]));
    // --strict-routing: the unencoded form is refused.
    r = await h.appendAll(pa, [h.appendRequest(stream, d.dp, [d.encode({ id: 3 })])], { routing: `write_stream=${stream}` });
    assert.equal(r.status, grpc.status.INVALID_ARGUMENT);
    await a.stop();

    const b = startCli(['--grpc-port', '0', '--http-port', '0', '--state', state]);
    const pb = await b.ready;
    assert.deepEqual(await h.rows(pb, 'p', 't'), [{ id: '1', v: 'a' }]);
    r = await send(pb, [{ id: 2, v: 'stale', _CHANGE_TYPE: 'UPSERT', _CHANGE_SEQUENCE_NUMBER: '8' },
      { id: 1, v: 'newer', _CHANGE_TYPE: 'UPSERT', _CHANGE_SEQUENCE_NUMBER: '6' }]);
    assert.ok(r.responses[0].append_result);
    assert.deepEqual(await h.rows(pb, 'p', 't'), [{ id: '1', v: 'newer' }]);
    await b.stop();
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('command line: bad arguments exit with status 2', async () => {
  for (const args of [[], ['--grpc-port', '0'], ['--grpc-port', 'x', '--http-port', '0'], ['--bogus']]) {
    const child = spawn(process.execPath, [path.join(__dirname, '..', 'server.js'), ...args], { stdio: 'ignore' });
    const code = await new Promise((resolve) => { child.on('exit', resolve); });
    assert.equal(code, 2, args.join(' '));
  }
});
