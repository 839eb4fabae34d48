'use strict';
// AppendRows protocol rules, schema matching, type conversions and CDC
// semantics, driven with a raw gRPC client built from Google's protos.

const test = require('node:test');
const assert = require('node:assert/strict');
const grpc = require('@grpc/grpc-js');
const h = require('./helpers');
const { decodeStorageErrorAny } = require('../lib/protos');

const DS = 'ar';
let srv;
test.before(async () => {
  srv = await h.withFake();
  await h.createDataset(srv, DS);
});
test.after(() => srv.close());

const S = (t) => h.streamName(DS, t);
const KV = [{ name: 'id', type: 'INT64', mode: 'REQUIRED' }, { name: 'v', type: 'STRING' }];
const kvDesc = h.descriptor('kv', [{ name: 'id', type: 'int64' }, { name: 'v', type: 'string' }]);
const cdcDesc = h.descriptor('kvc', [
  { name: 'id', type: 'int64' }, { name: 'v', type: 'string' },
  { name: '_CHANGE_TYPE', type: 'string' }, { name: '_CHANGE_SEQUENCE_NUMBER', type: 'string' },
]);
const req = (table, desc, objs, extra) => h.appendRequest(S(table), desc && desc.dp, objs.map((o) => (desc || kvDesc).encode(o)), extra);
const ok = (r) => r.response === 'append_result';

async function table(name, fields = KV, primaryKey) {
  await h.createTable(srv, DS, name, fields, { primaryKey });
}

// ---- call protocol ----

test('first request needs write_stream and writer_schema; later ones may omit both', async () => {
  await table('proto');
  let r = await h.appendAll(srv, [{ proto_rows: { writer_schema: { proto_descriptor: kvDesc.dp }, rows: { serialized_rows: [kvDesc.encode({ id: 1 })] } } }],
    { stream: S('proto') });
  assert.equal(r.status, grpc.status.INVALID_ARGUMENT);
  assert.match(r.details, /write_stream must be set/);

  r = await h.appendAll(srv, [req('proto', null, [{ id: 1 }])]);
  assert.equal(r.status, grpc.status.INVALID_ARGUMENT);
  assert.match(r.details, /writer_schema must be set/);

  const idOnly = h.descriptor('idonly', [{ name: 'id', type: 'int64' }]);
  r = await h.appendAll(srv, [
    req('proto', kvDesc, [{ id: 1, v: 'a' }]),
    { proto_rows: { rows: { serialized_rows: [kvDesc.encode({ id: 2, v: 'b' })] } } }, // schema and stream reused
    req('proto', idOnly, [{ id: 3 }]), // a new writer schema mid-call
    { proto_rows: { rows: { serialized_rows: [idOnly.encode({ id: 4 })] } } },
  ]);
  assert.equal(r.status, grpc.status.OK);
  assert.deepEqual(r.responses.map(ok), [true, true, true, true]);
  assert.deepEqual(r.responses.map((x) => x.write_stream), Array(4).fill(S('proto')));
  assert.ok(!r.responses[0].append_result.offset); // no offsets on _default
  assert.deepEqual(await h.rows(srv, DS, 'proto'), [
    { id: '1', v: 'a' }, { id: '2', v: 'b' }, { id: '3', v: null }, { id: '4', v: null },
  ]);
});

test('x-goog-request-params routing header: required, must name the stream; strict mode wants it URL-encoded', async () => {
  await table('route');
  const one = () => [req('route', kvDesc, [{ id: 1 }])];
  let r = await h.appendAll(srv, one(), { routing: null });
  assert.equal(r.status, grpc.status.INVALID_ARGUMENT);
  assert.match(r.details, /Missing routing header/);
  r = await h.appendAll(srv, one(), { routing: h.routingHeader(S('other')) });
  assert.equal(r.status, grpc.status.INVALID_ARGUMENT);
  r = await h.appendAll(srv, one(), { routing: `write_stream=${S('route')}` }); // unencoded: lenient accepts
  assert.equal(r.status, grpc.status.OK);
  try {
    await h.ctl(srv, 'POST', '/config', { routing: 'strict' });
    r = await h.appendAll(srv, one(), { routing: `write_stream=${S('route')}` });
    assert.equal(r.status, grpc.status.INVALID_ARGUMENT);
    r = await h.appendAll(srv, one());
    assert.equal(r.status, grpc.status.OK);
    await h.ctl(srv, 'POST', '/config', { routing: 'off' });
    r = await h.appendAll(srv, one(), { routing: null });
    assert.equal(r.status, grpc.status.OK);
  } finally {
    await h.ctl(srv, 'POST', '/config', { routing: 'lenient' });
  }
});

test('authorization metadata: required; acceptTokens rejects stale tokens; tokens are recorded', async () => {
  await table('auth');
  let r = await h.appendAll(srv, [req('auth', kvDesc, [{ id: 1 }])], { token: null });
  assert.equal(r.status, grpc.status.UNAUTHENTICATED);
  try {
    await h.ctl(srv, 'POST', '/config', { acceptTokens: ['fresh-token'] });
    r = await h.appendAll(srv, [req('auth', kvDesc, [{ id: 1 }])], { token: 'stale-token' });
    assert.equal(r.status, grpc.status.UNAUTHENTICATED);
    r = await h.appendAll(srv, [req('auth', kvDesc, [{ id: 2 }])], { token: 'fresh-token' });
    assert.equal(r.status, grpc.status.OK);
  } finally {
    await h.ctl(srv, 'POST', '/config', { acceptTokens: null });
  }
  const { tokens } = (await h.ctl(srv, 'GET', '/tokens')).body;
  const by = Object.fromEntries(tokens.map((t) => [t.token, t]));
  assert.equal(by['stale-token'].rejected, 1);
  assert.equal(by['fresh-token'].accepted, 1);
  assert.equal(by['fresh-token'].grpc, 1);
  assert.deepEqual(await h.rows(srv, DS, 'auth'), [{ id: '2', v: null }]);
});

test('stream names: only _default; malformed names and missing tables end the call', async () => {
  await table('names');
  const withStream = (name) => ({ ...req('names', kvDesc, [{ id: 1 }]), write_stream: name });
  let r = await h.appendAll(srv, [withStream(`projects/${h.PROJECT}/datasets/${DS}/tables/names/streams/abc`)]);
  assert.equal(r.status, grpc.status.NOT_FOUND);
  r = await h.appendAll(srv, [withStream(`projects/${h.PROJECT}/datasets/${DS}/tables/names`)]);
  assert.equal(r.status, grpc.status.INVALID_ARGUMENT);
  r = await h.appendAll(srv, [withStream(S('absent'))]);
  assert.equal(r.status, grpc.status.NOT_FOUND);
});

test('requests over 10 MB are refused with INVALID_ARGUMENT; the limit is configurable', async () => {
  await table('size', [{ name: 'id', type: 'INT64' }, { name: 'v', type: 'STRING' }]);
  const big = 'x'.repeat(1024 * 1024);
  const rowsOf = (n) => Array.from({ length: n }, (_, i) => ({ id: i, v: big }));
  let r = await h.appendAll(srv, [req('size', kvDesc, rowsOf(9))]); // ~9 MiB
  assert.equal(r.status, grpc.status.OK);
  r = await h.appendAll(srv, [req('size', kvDesc, rowsOf(10))]); // just over 10 MiB
  assert.equal(r.status, grpc.status.INVALID_ARGUMENT);
  assert.match(r.details, /AppendRows request too large: \d+ limit 10485760/);
  try {
    await h.ctl(srv, 'POST', '/config', { maxRequestBytes: 1000 });
    r = await h.appendAll(srv, [req('size', kvDesc, [{ id: 1, v: 'x'.repeat(2000) }])]);
    assert.equal(r.status, grpc.status.INVALID_ARGUMENT);
  } finally {
    await h.ctl(srv, 'POST', '/config', { maxRequestBytes: 10 * 1024 * 1024 });
  }
  assert.equal((await h.rows(srv, DS, 'size')).length, 9);
});

test('pipelined requests are answered in order; half-close ends the call with OK', async () => {
  await table('pipe');
  const n = 60;
  const reqs = Array.from({ length: n }, (_, i) => (i === 0 ? req('pipe', kvDesc, [{ id: i }])
    : { proto_rows: { rows: { serialized_rows: [kvDesc.encode({ id: i }), kvDesc.encode({ id: i + 1000 })] } } }));
  reqs[30] = { proto_rows: { rows: { serialized_rows: [Buffer.from([0xff, 0xff])] } } }; // undecodable
  const r = await h.appendAll(srv, reqs);
  assert.equal(r.status, grpc.status.OK);
  assert.equal(r.responses.length, n);
  r.responses.forEach((x, i) => assert.equal(ok(x), i !== 30, `response ${i}`));
  assert.equal(r.responses[30].row_errors[0].index, '0');
  assert.equal((await h.rows(srv, DS, 'pipe')).length, 1 + 2 * (n - 2));
});

// ---- schema matching ----

test('unknown columns: in-band INVALID_ARGUMENT with StorageError SCHEMA_MISMATCH_EXTRA_FIELDS; the call goes on', async () => {
  await table('extra');
  const extra = h.descriptor('extra', [{ name: 'id', type: 'int64' }, { name: 'nope', type: 'string' }]);
  const r = await h.appendAll(srv, [req('extra', extra, [{ id: 1, nope: 'x' }]), req('extra', kvDesc, [{ id: 2 }])]);
  assert.equal(r.status, grpc.status.OK);
  const [bad, good] = r.responses;
  assert.equal(bad.error.code, grpc.status.INVALID_ARGUMENT);
  assert.match(bad.error.message, /extra fields: 'root.nope'/);
  const se = decodeStorageErrorAny(bad.error.details[0]);
  assert.equal(se.code, 'SCHEMA_MISMATCH_EXTRA_FIELDS');
  assert.equal(se.entity, S('extra'));
  assert.ok(ok(good));
  assert.deepEqual(await h.rows(srv, DS, 'extra'), [{ id: '2', v: null }]);
});

test('a writer schema refused for an unknown column is accepted in the same call once PATCH adds the column', async () => {
  await table('grow');
  const wide = h.descriptor('wide', [{ name: 'id', type: 'int64' }, { name: 'v', type: 'string' }, { name: 'extra', type: 'string' }]);
  const client = h.rawClient(srv);
  const c = h.openAppend(client, { stream: S('grow') });
  c.call.write(req('grow', wide, [{ id: 1, extra: 'e' }]));
  await c.waitFor(1);
  assert.equal(c.responses[0].error.code, grpc.status.INVALID_ARGUMENT);
  const r = await h.rest(srv, 'PATCH', `/datasets/${DS}/tables/grow`, { schema: { fields: [...KV, { name: 'extra', type: 'STRING' }] } });
  assert.equal(r.status, 200);
  c.call.write({ proto_rows: { rows: { serialized_rows: [wide.encode({ id: 2, extra: 'e' })] } } });
  await c.waitFor(2);
  c.call.end();
  await c.done;
  client.close();
  assert.ok(ok(c.responses[1]), JSON.stringify(c.responses[1]));
  assert.deepEqual(c.responses[1].updated_schema.fields.map((f) => f.name), ['id', 'v', 'extra']);
  assert.deepEqual(await h.rows(srv, DS, 'grow'), [{ id: '2', v: null, extra: 'e' }]);
});

test('proto types must suit the column type and mode', async () => {
  await table('types', [{ name: 'i', type: 'INT64' }, { name: 'r', type: 'STRING', mode: 'REPEATED' }]);
  const cases = [
    [{ name: 'i', type: 'string' }, /proto field type string, BigQuery field type INTEGER/],
    [{ name: 'i', type: 'sint64' }, /proto field type sint64/],
    [{ name: 'i', type: 'double' }, /proto field type double/],
    [{ name: 'i', type: 'int64', repeated: true }, /repeated/],
    [{ name: 'r', type: 'string' }, /not repeated/],
  ];
  for (const [field, re] of cases) {
    const d = h.descriptor('t', [field]);
    const r = await h.appendAll(srv, [h.appendRequest(S('types'), d.dp, [d.encode({ [field.name]: field.repeated ? [1] : 1 })])]);
    assert.equal(r.responses[0].error.code, grpc.status.INVALID_ARGUMENT, JSON.stringify(field));
    assert.match(r.responses[0].error.message, re);
  }
});

test('column_name field option and case-insensitive column names', async () => {
  await table('names2', [{ name: 'Id', type: 'INT64' }, { name: 'my-col ü', type: 'STRING' }]);
  const d = h.descriptor('n', [{ name: 'ID', type: 'int64' }, { name: 'field_x', type: 'string', columnName: 'my-col ü' }]);
  const r = await h.appendAll(srv, [h.appendRequest(S('names2'), d.dp, [d.encode({ ID: 5, field_x: 'ok' })])]);
  assert.ok(ok(r.responses[0]), JSON.stringify(r.responses[0].error));
  assert.deepEqual(await h.rows(srv, DS, 'names2'), [{ Id: '5', 'my-col ü': 'ok' }]);
});

test('nested messages, repeated records and enums in a self-contained descriptor', async () => {
  await table('nested', [
    { name: 'id', type: 'INT64' },
    { name: 'rec', type: 'RECORD', fields: [{ name: 'a', type: 'STRING' }, { name: 'inner', type: 'RECORD', fields: [{ name: 'z', type: 'BOOL', mode: 'REQUIRED' }] }] },
    { name: 'recs', type: 'RECORD', mode: 'REPEATED', fields: [{ name: 'a', type: 'STRING' }, { name: 'inner', type: 'RECORD', fields: [{ name: 'z', type: 'BOOL' }] }] },
    { name: 'color', type: 'STRING' },
    { name: 'color_n', type: 'INT64' },
  ]);
  // The DescriptorProto member names are camelCase: grpc-js/proto-loader take
  // descriptor.proto from protobufjs's bundled copy, which spells them so.
  const dp = {
    name: 'Row',
    field: [
      { name: 'id', number: 1, label: 'LABEL_OPTIONAL', type: 'TYPE_INT64' },
      { name: 'rec', number: 2, label: 'LABEL_OPTIONAL', type: 'TYPE_MESSAGE', typeName: 'Rec' },
      { name: 'recs', number: 3, label: 'LABEL_REPEATED', type: 'TYPE_MESSAGE', typeName: '.Row.Rec' },
      { name: 'color', number: 4, label: 'LABEL_OPTIONAL', type: 'TYPE_ENUM', typeName: 'Color' },
      { name: 'color_n', number: 5, label: 'LABEL_OPTIONAL', type: 'TYPE_ENUM', typeName: 'Color' },
    ],
    nestedType: [
      {
        name: 'Rec',
        field: [
          { name: 'a', number: 1, label: 'LABEL_OPTIONAL', type: 'TYPE_STRING' },
          { name: 'inner', number: 2, label: 'LABEL_OPTIONAL', type: 'TYPE_MESSAGE', typeName: 'Inner' },
        ],
        nestedType: [{ name: 'Inner', field: [{ name: 'z', number: 1, label: 'LABEL_OPTIONAL', type: 'TYPE_BOOL' }] }],
      },
    ],
    enumType: [{ name: 'Color', value: [{ name: 'RED', number: 0 }, { name: 'BLUE', number: 7 }] }],
  };
  const protobuf = require('protobufjs');
  const root = protobuf.Root.fromJSON({
    nested: {
      Row: {
        fields: {
          id: { id: 1, type: 'int64' }, rec: { id: 2, type: 'Rec' }, recs: { id: 3, type: 'Rec', rule: 'repeated' },
          color: { id: 4, type: 'Color' }, color_n: { id: 5, type: 'Color' },
        },
        nested: {
          Rec: { fields: { a: { id: 1, type: 'string' }, inner: { id: 2, type: 'Inner' } }, nested: { Inner: { fields: { z: { id: 1, type: 'bool' } } } } },
          Color: { values: { RED: 0, BLUE: 7 } },
        },
      },
    },
  });
  const T = root.lookupType('Row');
  const enc = (o) => Buffer.from(T.encode(T.fromObject(o)).finish());
  const r = await h.appendAll(srv, [h.appendRequest(S('nested'), dp, [
    enc({ id: 1, rec: { a: 'x', inner: { z: true } }, recs: [{ a: 'p' }, {}], color: 'BLUE', color_n: 'BLUE' }),
    enc({ id: 2, recs: [] }),
  ])]);
  assert.ok(ok(r.responses[0]), JSON.stringify(r.responses[0].error));
  // A present record missing its REQUIRED sub-field is a row error.
  const r2 = await h.appendAll(srv, [h.appendRequest(S('nested'), dp, [enc({ id: 3, rec: { inner: {} } })])]);
  assert.match(r2.responses[0].row_errors[0].message, /root.rec.inner.z: required field is missing/);
  assert.deepEqual(await h.rows(srv, DS, 'nested'), [
    { id: '1', rec: { a: 'x', inner: { z: true } }, recs: [{ a: 'p', inner: null }, { a: null, inner: null }], color: 'BLUE', color_n: '7' },
    { id: '2', rec: null, recs: [], color: null, color_n: null },
  ]);
  // An unresolvable type_name: the descriptor is not self-contained.
  const bad = JSON.parse(JSON.stringify(dp));
  bad.field[1].typeName = '.some.pkg.Rec';
  const r3 = await h.appendAll(srv, [h.appendRequest(S('nested'), bad, [enc({ id: 4 })])]);
  assert.match(r3.responses[0].error.message, /self-contained/);
});

test('type conversions accepted from each protobuf type, in canonical form', async () => {
  await table('conv', [
    { name: 'i32', type: 'INT64' }, { name: 'u32', type: 'INT64' },
    { name: 'ts64', type: 'TIMESTAMP' }, { name: 'ts32', type: 'TIMESTAMP' },
    { name: 'd32', type: 'DATE' }, { name: 'dstr', type: 'DATE' },
    { name: 'n64', type: 'NUMERIC' }, { name: 'ndbl', type: 'NUMERIC' }, { name: 'nbytes', type: 'NUMERIC' }, { name: 'bnbytes', type: 'BIGNUMERIC' },
    { name: 'dtpacked', type: 'DATETIME' }, { name: 'tpacked', type: 'TIME' },
    { name: 'iv', type: 'INTERVAL' }, { name: 'b64', type: 'BOOL' }, { name: 'bystr', type: 'BYTES' },
    { name: 'fl', type: 'FLOAT64' }, { name: 'nan', type: 'FLOAT64' },
  ]);
  const d = h.descriptor('conv', [
    { name: 'i32', type: 'int32' }, { name: 'u32', type: 'uint32' },
    { name: 'ts64', type: 'int64' }, { name: 'ts32', type: 'int32' },
    { name: 'd32', type: 'int32' }, { name: 'dstr', type: 'string' },
    { name: 'n64', type: 'int64' }, { name: 'ndbl', type: 'double' }, { name: 'nbytes', type: 'bytes' }, { name: 'bnbytes', type: 'bytes' },
    { name: 'dtpacked', type: 'int64' }, { name: 'tpacked', type: 'int64' },
    { name: 'iv', type: 'string' }, { name: 'b64', type: 'int64' }, { name: 'bystr', type: 'string' },
    { name: 'fl', type: 'float' }, { name: 'nan', type: 'double' },
  ]);
  const packedDatetime = (2024n << 46n) | (2n << 42n) | (29n << 37n) | (13n << 32n) | (14n << 26n) | (15n << 20n) | 16n;
  const packedTime = (23n << 32n) | (59n << 26n) | (58n << 20n) | 999999n;
  const r = await h.appendAll(srv, [h.appendRequest(S('conv'), d.dp, [d.encode({
    i32: -5,
    u32: 4000000000,
    ts64: '-1',
    ts32: 1,
    d32: -719162,
    dstr: '2024-2-9',
    n64: '-9223372036854775808',
    ndbl: 0.1,
    nbytes: Buffer.from([0x00, 0x5e, 0xd0, 0xb2, 0x00]), // 3000000000 (scale 9) little-endian -> 3
    bnbytes: Buffer.from([0xff]), // -1 at scale 38
    dtpacked: packedDatetime.toString(),
    tpacked: packedTime.toString(),
    iv: '+01-02 003 -4:05:06.500',
    b64: 2,
    bystr: 'hi',
    fl: 0.5,
    nan: NaN,
  })])]);
  assert.ok(ok(r.responses[0]), JSON.stringify(r.responses[0]));
  assert.deepEqual(await h.rows(srv, DS, 'conv'), [{
    i32: '-5', u32: '4000000000',
    ts64: '1969-12-31T23:59:59.999999Z', ts32: '1970-01-01T00:00:00.000001Z',
    d32: '0001-01-01', dstr: '2024-02-09',
    n64: '-9223372036854775808', ndbl: '0.1', nbytes: '3', bnbytes: '-0.00000000000000000000000000000000000001',
    dtpacked: '2024-02-29T13:14:15.000016', tpacked: '23:59:58.999999',
    iv: '1-2 3 -4:5:6.5', b64: true, bystr: 'aGk=', fl: 0.5, nan: 'NaN',
  }]);
});

test('bad values are row errors and the whole request is refused', async () => {
  await table('badvals', [
    { name: 'id', type: 'INT64' }, { name: 'n', type: 'NUMERIC' }, { name: 'd', type: 'DATE' },
    { name: 'j', type: 'JSON' }, { name: 's', type: 'STRING' }, { name: 'ts', type: 'TIMESTAMP' }, { name: 'dt', type: 'DATETIME' },
  ]);
  const d = h.descriptor('bv', [
    { name: 'id', type: 'int64' }, { name: 'n', type: 'string' }, { name: 'd', type: 'string' },
    { name: 'j', type: 'string' }, { name: 's', type: 'bytes', number: 5 }, { name: 'ts', type: 'int64' }, { name: 'dt', type: 'string' },
  ]);
  // s is declared TYPE_STRING to the fake but written as raw bytes here.
  d.dp.field[4].type = 'TYPE_STRING';
  const rows = [
    { id: 0 },
    { id: 1, n: '1.0000000001' }, // 10 fractional digits
    { id: 2, n: '100000000000000000000000000000' }, // 30 integer digits
    { id: 3, d: '2023-02-29' },
    { id: 4, j: '{"a":' },
    { id: 5, s: Buffer.from([0xc3, 0x28]) }, // invalid UTF-8
    { id: 6, ts: '253402300800000000' }, // 10000-01-01
    { id: 7, dt: '2024-01-01 24:00:00' },
    { id: 8, n: 'NaN' },
  ];
  const r = await h.appendAll(srv, [h.appendRequest(S('badvals'), d.dp, rows.map((o) => d.encode(o)))]);
  const resp = r.responses[0];
  assert.equal(resp.error.code, grpc.status.INVALID_ARGUMENT);
  assert.match(resp.error.message, /Errors found while processing rows/);
  assert.deepEqual(resp.row_errors.map((e) => Number(e.index)), [1, 2, 3, 4, 5, 6, 7, 8]);
  assert.ok(resp.row_errors.every((e) => e.code === 'FIELDS_ERROR'));
  assert.deepEqual(await h.rows(srv, DS, 'badvals'), []);
});

test('offset, arrow_rows and empty requests are refused in-band', async () => {
  await table('misc');
  const r = await h.appendAll(srv, [
    req('misc', kvDesc, [{ id: 1 }], { offset: { value: '0' } }),
    { proto_rows: { rows: { serialized_rows: [] } } },
    req('misc', kvDesc, [{ id: 2 }]),
  ]);
  assert.deepEqual(r.responses.map((x) => (x.error ? x.error.code : 0)), [grpc.status.INVALID_ARGUMENT, grpc.status.INVALID_ARGUMENT, 0]);
  assert.match(r.responses[0].error.message, /offset/);
  assert.deepEqual(await h.rows(srv, DS, 'misc'), [{ id: '2', v: null }]);
});

// ---- CDC ----

test('CDC pseudo-columns are validated per row', async () => {
  await table('cdcv', [...KV, { name: 'req', type: 'STRING', mode: 'REQUIRED' }], ['id']);
  const d = h.descriptor('c', [
    { name: 'id', type: 'int64' }, { name: 'v', type: 'string' }, { name: 'req', type: 'string' },
    { name: '_CHANGE_TYPE', type: 'string' }, { name: '_CHANGE_SEQUENCE_NUMBER', type: 'string' },
  ]);
  const bad = [
    { id: 1, req: 'r', _CHANGE_TYPE: 'upsert' },
    { id: 1, req: 'r', _CHANGE_TYPE: 'INSERT' },
    { id: 1, req: 'r' }, // NULL _CHANGE_TYPE
    { id: 1, req: 'r', _CHANGE_TYPE: 'UPSERT', _CHANGE_SEQUENCE_NUMBER: 'xyz' },
    { id: 1, req: 'r', _CHANGE_TYPE: 'UPSERT', _CHANGE_SEQUENCE_NUMBER: '1/2/3/4/5' },
    { id: 1, req: 'r', _CHANGE_TYPE: 'UPSERT', _CHANGE_SEQUENCE_NUMBER: '1'.repeat(17) },
    { id: 1, req: 'r', _CHANGE_TYPE: 'UPSERT', _CHANGE_SEQUENCE_NUMBER: '1//2' },
    { id: 1, req: 'r', _CHANGE_TYPE: 'UPSERT', _CHANGE_SEQUENCE_NUMBER: '' },
    { id: 1, req: 'r', _CHANGE_TYPE: 'UPSERT', _CHANGE_SEQUENCE_NUMBER: '-1' },
    { req: 'r', _CHANGE_TYPE: 'UPSERT', _CHANGE_SEQUENCE_NUMBER: '1' }, // NULL key
    { id: 1, _CHANGE_TYPE: 'UPSERT', _CHANGE_SEQUENCE_NUMBER: '1' }, // REQUIRED column missing
  ];
  for (const row of bad) {
    const r = await h.appendAll(srv, [h.appendRequest(S('cdcv'), d.dp, [d.encode(row)])]);
    assert.equal(r.responses[0].row_errors.length, 1, JSON.stringify(row));
  }
  // A DELETE needs only the key; sections may mix case and use all 16 digits.
  const r = await h.appendAll(srv, [h.appendRequest(S('cdcv'), d.dp, [
    d.encode({ id: 1, req: 'r', _CHANGE_TYPE: 'UPSERT', _CHANGE_SEQUENCE_NUMBER: 'aBcDeF0123456789/0/0/FFFFFFFFFFFFFFFF' }),
    d.encode({ id: 2, _CHANGE_TYPE: 'DELETE', _CHANGE_SEQUENCE_NUMBER: '1' }),
  ])]);
  assert.ok(ok(r.responses[0]), JSON.stringify(r.responses[0]));
  assert.deepEqual(await h.rows(srv, DS, 'cdcv'), [{ id: '1', v: null, req: 'r' }]);
});

test('UPSERT/DELETE need a primary key; plain appends to a keyed table act as UPSERT with a warning', async () => {
  await table('nokey');
  const r = await h.appendAll(srv, [req('nokey', cdcDesc, [{ id: 1, _CHANGE_TYPE: 'UPSERT' }])]);
  assert.equal(r.responses[0].error.code, grpc.status.INVALID_ARGUMENT);
  assert.match(r.responses[0].error.message, /primary key/);

  await table('keyedplain', KV, ['id']);
  const r2 = await h.appendAll(srv, [req('keyedplain', kvDesc, [{ id: 1, v: 'a' }, { id: 1, v: 'b' }])]);
  assert.ok(ok(r2.responses[0]));
  assert.deepEqual(await h.rows(srv, DS, 'keyedplain'), [{ id: '1', v: 'b' }]);
  const detail = (await h.ctl(srv, 'GET', `/tables/${h.PROJECT}/${DS}/keyedplain`)).body;
  assert.match(detail.warnings[0], /without _CHANGE_TYPE/);
});

test('CDC ordering: equal numbers and unnumbered changes go by arrival; mixing is flagged', async () => {
  await table('order', KV, ['id']);
  const U = (id, v, seq) => ({ id, v, _CHANGE_TYPE: 'UPSERT', _CHANGE_SEQUENCE_NUMBER: seq });
  const send = (rows) => h.appendAll(srv, [req('order', cdcDesc, rows)]);
  await send([U(1, 'first', '5'), U(1, 'second', '5')]); // equal: last arrival wins
  await send([U(2, 'a'), U(2, 'b')]); // unnumbered: arrival order
  await send([{ id: 2, _CHANGE_TYPE: 'DELETE' }]);
  await send([U(3, 'numbered', '9'), U(3, 'unnumbered')]); // mixed: arrival order + warning
  await send([U(4, 'two sections', '1/0'), U(4, 'one section', '1')]); // "1" < "1/0"
  assert.deepEqual(await h.rows(srv, DS, 'order'), [
    { id: '1', v: 'second' }, { id: '3', v: 'unnumbered' }, { id: '4', v: 'two sections' },
  ]);
  const detail = (await h.ctl(srv, 'GET', `/tables/${h.PROJECT}/${DS}/order`)).body;
  assert.equal(detail.warnings.length, 2);
  assert.match(detail.warnings[0], /with and without _CHANGE_SEQUENCE_NUMBER/);
  assert.match(detail.warnings[1], /different section counts/);
  assert.deepEqual(detail.tombstones, [{ key: { id: '2' }, sequenceNumber: null, arrival: 5 }]);
  assert.deepEqual(detail.counters, { appendedRows: 0, upserts: 7, deletes: 1, staleIgnored: 1, appendRequests: 5 });
});

test('composite keys with a deleted key remembered across calls', async () => {
  await table('composite', [{ name: 'a', type: 'STRING' }, { name: 'b', type: 'DATE' }, { name: 'v', type: 'INT64' }], ['b', 'a']);
  const d = h.descriptor('cmp', [
    { name: 'a', type: 'string' }, { name: 'b', type: 'int32' }, { name: 'v', type: 'int64' },
    { name: '_CHANGE_TYPE', type: 'string' }, { name: '_CHANGE_SEQUENCE_NUMBER', type: 'string' },
  ]);
  const send = (rows) => h.appendAll(srv, [h.appendRequest(S('composite'), d.dp, rows.map((o) => d.encode(o)))]);
  await send([{ a: 'x', b: 1, v: 1, _CHANGE_TYPE: 'UPSERT', _CHANGE_SEQUENCE_NUMBER: '10/1' },
    { a: 'x', b: 0, v: 2, _CHANGE_TYPE: 'UPSERT', _CHANGE_SEQUENCE_NUMBER: '10/2' }]);
  await send([{ a: 'x', b: 1, _CHANGE_TYPE: 'DELETE', _CHANGE_SEQUENCE_NUMBER: '11/0' }]);
  await send([{ a: 'x', b: 1, v: 3, _CHANGE_TYPE: 'UPSERT', _CHANGE_SEQUENCE_NUMBER: '10/FF' }]); // older: stays deleted
  assert.deepEqual(await h.rows(srv, DS, 'composite'), [{ a: 'x', b: '1970-01-01', v: '2' }]);
  await send([{ a: 'x', b: 1, v: 4, _CHANGE_TYPE: 'UPSERT', _CHANGE_SEQUENCE_NUMBER: '11/1' }]);
  assert.deepEqual(await h.rows(srv, DS, 'composite'), [{ a: 'x', b: '1970-01-01', v: '2' }, { a: 'x', b: '1970-01-02', v: '4' }]);
});
