'use strict';
// Shared test helpers: a fake per test file, Google's own clients pointed at
// it, and a raw AppendRows caller for what those clients never send.

// Google's auth library would otherwise probe the GCE metadata server (a
// link-local address) for a project id or universe domain: keep it local.
process.env.METADATA_SERVER_DETECTION = 'none';

const grpc = require('@grpc/grpc-js');
const protobuf = require('protobufjs');
const { BigQuery } = require('@google-cloud/bigquery');
const { managedwriter, adapt } = require('@google-cloud/bigquery-storage');
const { startFake } = require('../server');
const { loadPackageDefinition } = require('../lib/protos');

const PROJECT = 'test-project';
const TOKEN = 'test-token-1';

async function withFake(opts = {}) {
  return startFake({ rateLimit: false, ...opts });
}

async function http(srv, method, path, body, { token = TOKEN, headers = {} } = {}) {
  const h = { ...headers };
  if (token) h.authorization = `Bearer ${token}`;
  if (body !== undefined) h['content-type'] = 'application/json';
  const res = await fetch(`http://127.0.0.1:${srv.httpPort}${path}`, {
    method, headers: h, body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : null };
}

const ctl = (srv, method, path, body) => http(srv, method, `/_fake${path}`, body, { token: null });
const rest = (srv, method, path, body, opts) => http(srv, method, `/bigquery/v2/projects/${PROJECT}${path}`, body, opts);

async function rows(srv, dataset, table) {
  const r = await ctl(srv, 'GET', `/tables/${PROJECT}/${dataset}/${table}/rows`);
  if (r.status !== 200) throw new Error(`rows: ${JSON.stringify(r.body)}`);
  return r.body.rows;
}

async function arm(srv, spec) {
  const r = await ctl(srv, 'POST', '/faults', spec);
  if (r.status !== 200) throw new Error(`arming fault: ${JSON.stringify(r.body)}`);
  return r.body.faults[0];
}

// Google's REST client (@google-cloud/bigquery) with a fixed bearer token.
class StaticTokenClient {
  constructor(token) { this.token = token; }

  async getRequestHeaders() { return new Headers({ authorization: `Bearer ${this.token}` }); }

  async getAccessToken() { return { token: this.token }; }

  async getProjectId() { return PROJECT; }
}

function restClient(srv, token = TOKEN) {
  return new BigQuery({
    projectId: PROJECT,
    apiEndpoint: `http://127.0.0.1:${srv.httpPort}`,
    authClient: new StaticTokenClient(token),
    autoRetry: false,
  });
}

// Google's managedwriter over a plaintext channel. With insecure channel
// credentials gax sends no call credentials, so the bearer token goes in as
// call metadata, like a static token would.
function writerClient(srv) {
  return new managedwriter.WriterClient({
    apiEndpoint: '127.0.0.1',
    port: srv.grpcPort,
    sslCreds: grpc.credentials.createInsecure(),
  });
}

function callOptions(token = TOKEN) {
  return { otherArgs: { headers: { authorization: `Bearer ${token}` } } };
}

const streamName = (dataset, table) => `projects/${PROJECT}/datasets/${dataset}/tables/${table}/streams/_default`;

// A JSONWriter on the table's _default stream, its descriptor built by
// Google's adapt from the table's schema (plus CDC pseudo-columns if asked).
async function jsonWriter(srv, client, dataset, table, { cdc = false, token = TOKEN } = {}) {
  const bq = restClient(srv, token);
  const [meta] = await bq.dataset(dataset).table(table).getMetadata();
  const storageSchema = adapt.convertBigQuerySchemaToStorageTableSchema(meta.schema);
  const opts = cdc ? [adapt.withChangeType(), adapt.withChangeSequenceNumber()] : [];
  const protoDescriptor = adapt.convertStorageSchemaToProto2Descriptor(storageSchema, 'root', ...opts);
  const connection = await client.createStreamConnection({ streamId: streamName(dataset, table) }, callOptions(token));
  // Call errors reach the pending writes; without a listener the connection
  // would also rethrow them as an uncaught 'error' event.
  const connectionErrors = [];
  connection.onConnectionError((e) => connectionErrors.push(e));
  const writer = new managedwriter.JSONWriter({ connection, protoDescriptor });
  writer.connectionErrors = connectionErrors;
  return writer;
}

// ---- raw AppendRows ----

let clientCtor = null;
function rawClient(srv) {
  if (!clientCtor) {
    const pkg = grpc.loadPackageDefinition(loadPackageDefinition());
    clientCtor = pkg.google.cloud.bigquery.storage.v1.BigQueryWrite;
  }
  return new clientCtor(`127.0.0.1:${srv.grpcPort}`, grpc.credentials.createInsecure());
}

function routingHeader(stream) {
  return `write_stream=${encodeURIComponent(stream)}`;
}

// Opens an AppendRows call with raw metadata. Returns {call, responses,
// done} where done resolves to {status, responses} when the call ends.
function openAppend(client, { stream, token = TOKEN, routing, metadata = {} } = {}) {
  const md = new grpc.Metadata();
  if (token) md.set('authorization', `Bearer ${token}`);
  const rh = routing === undefined ? (stream && routingHeader(stream)) : routing;
  if (rh) md.set('x-goog-request-params', rh);
  for (const [k, v] of Object.entries(metadata)) md.set(k, v);
  const call = client.AppendRows(md);
  const responses = [];
  const waiters = [];
  call.on('data', (r) => {
    responses.push(r);
    while (waiters.length && waiters[0].n <= responses.length) waiters.shift().resolve();
  });
  const done = new Promise((resolve) => {
    call.on('error', (e) => resolve({ status: e.code, details: e.details, responses }));
    call.on('status', (s) => { if (s.code === grpc.status.OK) resolve({ status: 0, details: s.details, responses }); });
  });
  const waitFor = (n) => (responses.length >= n ? Promise.resolve()
    : new Promise((resolve) => { waiters.push({ n, resolve }); }));
  return { call, responses, done, waitFor };
}

// Builds a writer DescriptorProto object + encoder from a compact field list:
// [{name, type: 'int64'|'string'|..., number?, repeated?, columnName?}].
function descriptor(name, fields) {
  const TYPES = {
    double: 'TYPE_DOUBLE', float: 'TYPE_FLOAT', int64: 'TYPE_INT64', uint64: 'TYPE_UINT64', int32: 'TYPE_INT32',
    bool: 'TYPE_BOOL', string: 'TYPE_STRING', bytes: 'TYPE_BYTES', uint32: 'TYPE_UINT32', sint64: 'TYPE_SINT64',
  };
  const dp = {
    name,
    field: fields.map((f, i) => {
      const fd = {
        name: f.name, number: f.number || i + 1, label: f.repeated ? 'LABEL_REPEATED' : 'LABEL_OPTIONAL', type: TYPES[f.type],
      };
      if (f.columnName) fd.options = { '.google.cloud.bigquery.storage.v1.column_name': f.columnName };
      return fd;
    }),
  };
  const type = new protobuf.Type(name);
  fields.forEach((f, i) => type.add(new protobuf.Field(f.name, f.number || i + 1, f.type, f.repeated ? 'repeated' : undefined)));
  new protobuf.Root().add(type);
  const encode = (obj) => Buffer.from(type.encode(type.fromObject(obj)).finish());
  return { dp, encode };
}

function appendRequest(stream, dp, serialized, extra = {}) {
  const req = { write_stream: stream, proto_rows: { rows: { serialized_rows: serialized } }, ...extra };
  if (dp) req.proto_rows.writer_schema = { proto_descriptor: dp };
  return req;
}

// Sends requests on one call, half-closes, and waits for the end of the call.
async function appendAll(srv, requests, opts = {}) {
  const client = rawClient(srv);
  try {
    const c = openAppend(client, { stream: requests[0] && requests[0].write_stream, ...opts });
    for (const r of requests) c.call.write(r);
    c.call.end();
    return await c.done;
  } finally {
    client.close();
  }
}

async function createDataset(srv, dataset, location = 'EU') {
  const r = await rest(srv, 'POST', '/datasets', { datasetReference: { projectId: PROJECT, datasetId: dataset }, location });
  if (r.status !== 200) throw new Error(JSON.stringify(r.body));
}

async function createTable(srv, dataset, table, fields, { primaryKey } = {}) {
  const body = { tableReference: { projectId: PROJECT, datasetId: dataset, tableId: table }, schema: { fields } };
  if (primaryKey) body.tableConstraints = { primaryKey: { columns: primaryKey } };
  const r = await rest(srv, 'POST', `/datasets/${dataset}/tables`, body);
  if (r.status !== 200) throw new Error(JSON.stringify(r.body));
  return r.body;
}

module.exports = {
  PROJECT, TOKEN, withFake, http, ctl, rest, rows, arm, restClient, writerClient, callOptions,
  streamName, jsonWriter, rawClient, openAppend, routingHeader, descriptor, appendRequest,
  appendAll, createDataset, createTable,
};
