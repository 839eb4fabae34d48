'use strict';
// google.cloud.bigquery.storage.v1.BigQueryWrite/AppendRows on the _default
// stream. The other BigQueryWrite methods answer UNIMPLEMENTED.
//
// Errors come in two kinds, as from BigQuery: a problem with the call itself
// (auth, routing header, stream name, missing first-request fields, request
// too large) ends the call with a gRPC status; a problem with one request's
// schema or rows is answered in-band (AppendRowsResponse.error, row_errors)
// and the call goes on.

const grpc = require('@grpc/grpc-js');
const { loadPackageDefinition, storageErrorAny, PKG } = require('./protos');
const { compileWriterSchema, decodeRow, SchemaError, RowError } = require('./writer-schema');
const { toStorageSchema } = require('./schema');
const { CallError, InBandError, grpcCode, grpcCodeName } = require('./errors');

const STREAM_RE = /^projects\/([^/]+)\/datasets\/([^/]+)\/tables\/([^/]+)\/streams\/([^/]+)$/;
const REQUEST_SIZE = Symbol('requestSize');
const MAX_MESSAGE = 64 * 1024 * 1024; // above the AppendRows limit, so the fake sees oversize requests
const COMPILE_CACHE_MAX = 64; // compiled writer schemas kept per table

const sleep = (ms) => new Promise((r) => { setTimeout(r, ms); });

// The HTTP/2 session under a grpc-js server call (grpc-js keeps it private:
// walk the call's internal references to the Http2Stream).
function findSession(call) {
  const seen = new Set();
  let frontier = [call];
  for (let depth = 0; depth < 6 && frontier.length; depth += 1) {
    const next = [];
    for (const o of frontier) {
      if (!o || typeof o !== 'object' || seen.has(o)) continue;
      seen.add(o);
      if (o.session && typeof o.session.destroy === 'function') return o.session;
      for (const k of ['call', 'nextCall', 'stream', 'http2Stream']) if (o[k]) next.push(o[k]);
    }
    frontier = next;
  }
  return null;
}

function routingError(fake, metadata, stream) {
  const mode = fake.config.routing;
  if (mode === 'off') return null;
  const header = metadata.get('x-goog-request-params')[0];
  const want = `write_stream=${encodeURIComponent(stream)}`;
  if (header === undefined) return `Missing routing header x-goog-request-params (expected "${want}")`;
  const pair = String(header).split('&').find((p) => p.startsWith('write_stream='));
  if (!pair) return `Routing header x-goog-request-params "${header}" has no write_stream (expected "${want}")`;
  const raw = pair.slice('write_stream='.length);
  if (mode === 'strict') return raw === encodeURIComponent(stream) ? null : `Routing header x-goog-request-params "${header}" does not equal "${want}"`;
  let decoded;
  try {
    decoded = decodeURIComponent(raw.replace(/\+/g, ' '));
  } catch (_e) {
    return `Routing header x-goog-request-params "${header}" is not URL-encoded`;
  }
  return decoded === stream ? null : `Routing header write_stream "${decoded}" does not match the request's write_stream "${stream}"`;
}

class AppendRowsCall {
  constructor(fake, call, compileCache) {
    this.fake = fake;
    this.call = call;
    this.compileCache = compileCache;
    this.requests = 0;
    this.stream = null; // write_stream in force
    this.tableRef = null; // {projectId, datasetId, tableId} of the stream
    this.table = null;
    this.descriptor = null; // writer schema in force
    this.compiled = null; // {compiled, schemaVersion} or {error}
    this.schemaVersionSeen = null;
    this.faultsHit = new Set();
    this.ended = false;
    this.queue = Promise.resolve();
  }

  start() {
    const { fake, call } = this;
    fake.stats.calls += 1;
    call.on('cancelled', () => {
      if (!this.ended) fake.count(fake.stats.callEnds, 'CANCELLED');
      this.ended = true;
    });
    call.on('error', () => { this.ended = true; });
    const authError = fake.authenticate(call.metadata.get('authorization')[0], 'grpc');
    if (authError) {
      this.endWithStatus(grpc.status.UNAUTHENTICATED, authError);
      return;
    }
    call.on('data', (req) => {
      this.queue = this.queue.then(() => this.handle(req)).catch((e) => this.fail(e));
    });
    call.on('end', () => {
      this.queue.then(() => {
        if (this.ended) return;
        this.ended = true;
        fake.count(fake.stats.callEnds, 'OK');
        call.end();
      });
    });
  }

  fail(e) {
    if (e instanceof CallError) this.endWithStatus(e.code, e.message);
    else this.endWithStatus(grpc.status.INTERNAL, `fake-bigquery internal error: ${e.stack || e}`);
  }

  endWithStatus(code, message) {
    if (this.ended) return;
    this.ended = true;
    this.fake.count(this.fake.stats.callEnds, grpcCodeName(code));
    const err = new Error(message);
    err.code = code;
    err.details = message;
    this.call.emit('error', err);
  }

  drop() {
    if (this.ended) return;
    const session = findSession(this.call);
    if (!session) {
      this.endWithStatus(grpc.status.INTERNAL, 'fake-bigquery: cannot find the HTTP/2 session of the call to drop');
      return;
    }
    this.ended = true;
    this.fake.count(this.fake.stats.callEnds, 'DROPPED');
    // session.socket is a proxy that refuses destroy(); the real socket sits
    // under Node's internal 'socket' symbol. Destroying it drops the TCP
    // connection without GOAWAY; session.destroy() is the fallback.
    const kSocket = Object.getOwnPropertySymbols(session).find((s) => s.description === 'socket');
    const socket = kSocket && session[kSocket];
    if (socket && typeof socket.destroy === 'function') socket.destroy();
    else session.destroy();
  }

  triggerCallFault(f) {
    if (f.type === 'drop') this.drop();
    else this.endWithStatus(grpcCode(f.code), f.message);
  }

  // Resolves write_stream to a table; may end the call.
  resolveStream(req, index) {
    const ws = req.write_stream || '';
    if (index === 0 && !ws) throw new CallError('INVALID_ARGUMENT', 'write_stream must be set in the first request of an AppendRows connection');
    if (ws && ws !== this.stream) {
      const m = STREAM_RE.exec(ws);
      if (!m) throw new CallError('INVALID_ARGUMENT', `Invalid stream name. Entity: ${ws}`);
      if (m[4] !== '_default') {
        throw new CallError('NOT_FOUND', `Requested entity was not found. The fake serves only the _default stream. Entity: ${ws}`);
      }
      if (index === 0) {
        const routing = routingError(this.fake, this.call.metadata, ws);
        if (routing) throw new CallError('INVALID_ARGUMENT', routing);
      }
      const switching = this.stream !== null;
      this.stream = ws;
      this.tableRef = { projectId: m[1], datasetId: m[2], tableId: m[3] };
      if (switching) {
        this.descriptor = null;
        this.compiled = null;
      }
    }
    const { projectId, datasetId, tableId } = this.tableRef;
    const table = this.fake.store.findTable(projectId, datasetId, tableId);
    if (!table) throw new CallError('NOT_FOUND', `Requested entity was not found. Table ${projectId}:${datasetId}.${tableId} does not exist. Entity: ${this.stream}`);
    if (table !== this.table) { // another table, or the same name recreated
      this.table = table;
      this.compiled = null;
      this.schemaVersionSeen = null;
    }
    return table;
  }

  // The writer schema compiled against the table's current schema (cached
  // per table object, so a table dropped and recreated by reset starts over).
  compile(table) {
    if (this.compiled && this.compiled.schemaVersion === table.schemaVersion) return this.compiled;
    if (!this.compileCache.has(table)) this.compileCache.set(table, new Map());
    const cache = this.compileCache.get(table);
    const key = `${table.schemaVersion}:${JSON.stringify(this.descriptor)}`;
    let entry = cache.get(key);
    if (!entry) {
      try {
        entry = { compiled: compileWriterSchema(this.descriptor, table), schemaVersion: table.schemaVersion };
      } catch (e) {
        if (!(e instanceof SchemaError)) throw e;
        entry = { error: e, schemaVersion: table.schemaVersion };
      }
      if (cache.size >= COMPILE_CACHE_MAX) cache.delete(cache.keys().next().value);
      cache.set(key, entry);
    }
    this.compiled = entry;
    return entry;
  }

  async handle(req) {
    if (this.ended) return;
    const { fake } = this;
    const index = this.requests;
    this.requests += 1;
    const size = req[REQUEST_SIZE] || 0;
    fake.stats.requests += 1;
    fake.stats.bytes += size;
    const protoRows = req.proto_rows;
    const serialized = (protoRows && protoRows.rows && protoRows.rows.serialized_rows) || [];
    fake.stats.rows += serialized.length;

    if (size > fake.config.maxRequestBytes) {
      throw new CallError('INVALID_ARGUMENT', `AppendRows request too large: ${size} limit ${fake.config.maxRequestBytes} Entity: ${req.write_stream || this.stream}`);
    }
    const table = this.resolveStream(req, index);
    const schema = protoRows && protoRows.writer_schema && protoRows.writer_schema.proto_descriptor;
    if (schema) {
      if (JSON.stringify(schema) !== JSON.stringify(this.descriptor)) this.compiled = null;
      this.descriptor = schema;
    } else if (index === 0 && req.rows !== 'arrow_rows') {
      throw new CallError('INVALID_ARGUMENT', `Invalid proto schema: proto_rows.writer_schema must be set in the first request of an AppendRows connection. Entity: ${this.stream}`);
    }

    const callFault = fake.faults.takeCallFault(this, index, table);
    if (callFault && !callFault.applied) {
      this.triggerCallFault(callFault);
      return;
    }
    const delay = fake.faults.takeDelay(table);
    if (delay) await sleep(delay);
    if (this.ended) return;

    let response;
    try {
      response = this.append(req, table, serialized);
    } catch (e) {
      if (!(e instanceof InBandError)) throw e;
      response = {
        error: { code: e.code, message: e.message, details: e.details },
        row_errors: e.rowErrors.map((r) => ({ index: String(r.index), code: 'FIELDS_ERROR', message: r.message })),
      };
      fake.stats.rowErrors += e.rowErrors.length;
    }
    if (callFault) { // applied: true — the request took effect, its answer is lost
      this.triggerCallFault(callFault);
      return;
    }
    if (this.ended) return;
    response.write_stream = this.stream;
    fake.count(fake.stats.responses, response.error ? grpcCodeName(response.error.code) : 'OK');
    this.call.write(response);
  }

  // One request -> a success response; throws InBandError.
  append(req, table, serialized) {
    const { fake } = this;
    const entity = this.stream;
    if (req.offset !== undefined && req.offset !== null) {
      throw new InBandError('INVALID_ARGUMENT', `offset must not be set when appending to the _default stream. Entity: ${entity}`);
    }
    if (req.rows === 'arrow_rows') {
      throw new InBandError('INVALID_ARGUMENT', `arrow_rows is not supported by the fake (CDC needs proto_rows). Entity: ${entity}`);
    }
    if (!this.descriptor) {
      throw new InBandError('INVALID_ARGUMENT', `proto_rows.writer_schema must be set after the destination changes. Entity: ${entity}`);
    }
    const compiled = this.compile(table);
    if (this.schemaVersionSeen === null) this.schemaVersionSeen = table.schemaVersion;
    if (compiled.error) {
      const e = compiled.error;
      const details = e.extraFields ? [storageErrorAny('SCHEMA_MISMATCH_EXTRA_FIELDS', entity, e.message)] : [];
      throw new InBandError('INVALID_ARGUMENT', `${e.message} Entity: ${entity}`, { details });
    }
    const injected = fake.faults.takeInband(table);
    if (injected) throw new InBandError(injected.code, `${injected.message} Entity: ${entity}`);
    if (serialized.length === 0) {
      throw new InBandError('INVALID_ARGUMENT', `proto_rows.rows.serialized_rows must not be empty. Entity: ${entity}`);
    }

    const changes = [];
    const rowErrors = [];
    serialized.forEach((buf, index) => {
      try {
        changes.push(table.prepareChange(decodeRow(compiled.compiled, buf)));
      } catch (e) {
        if (!(e instanceof RowError)) throw e;
        rowErrors.push({ index, message: e.message });
      }
    });
    const rowFault = rowErrors.length ? null : fake.faults.takeRowError(table, changes.map((c) => c.row));
    if (rowFault) {
      for (const index of rowFault.indexes) rowErrors.push({ index, message: rowFault.fault.message });
    }
    if (rowErrors.length) {
      throw new InBandError('INVALID_ARGUMENT',
        `Errors found while processing rows. Please refer to the row_errors field for details. The list may not be complete because of the size limitations. Entity: ${entity}`,
        { rowErrors });
    }

    table.apply(changes);
    fake.store.save();
    fake.stats.rowsApplied += changes.length;
    const response = { append_result: {} }; // no offset on the _default stream
    if (table.schemaVersion !== this.schemaVersionSeen) {
      response.updated_schema = toStorageSchema(table.schema);
      this.schemaVersionSeen = table.schemaVersion;
    }
    return response;
  }
}

function createGrpcServer(fake) {
  const pkgDef = loadPackageDefinition();
  const service = pkgDef[`${PKG}.BigQueryWrite`];
  const appendRows = service.AppendRows;
  const definition = {
    ...service,
    AppendRows: {
      ...appendRows,
      requestDeserialize(buf) {
        const req = appendRows.requestDeserialize(buf);
        Object.defineProperty(req, REQUEST_SIZE, { value: buf.length });
        return req;
      },
    },
  };
  const server = new grpc.Server({
    'grpc.max_receive_message_length': MAX_MESSAGE,
    'grpc.max_send_message_length': MAX_MESSAGE,
  });
  const compileCache = new WeakMap(); // table -> Map(schema version + descriptor -> compiled)
  server.addService(definition, {
    AppendRows(call) {
      new AppendRowsCall(fake, call, compileCache).start();
    },
  });
  return server;
}

function bindGrpc(server, host, port) {
  return new Promise((resolve, reject) => {
    server.bindAsync(`${host}:${port}`, grpc.ServerCredentials.createInsecure(), (err, bound) => {
      if (err) reject(err); else resolve(bound);
    });
  });
}

module.exports = { createGrpcServer, bindGrpc, findSession, routingError };
