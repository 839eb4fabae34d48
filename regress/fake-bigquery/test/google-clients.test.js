'use strict';
// Google's own Node clients against the fake: @google-cloud/bigquery (REST)
// creates datasets and tables, @google-cloud/bigquery-storage's managedwriter
// JSONWriter writes rows, plain and CDC, over the _default stream.

const test = require('node:test');
const assert = require('node:assert/strict');
const h = require('./helpers');

let srv;
let bq;
let client;
test.before(async () => {
  srv = await h.withFake();
  bq = h.restClient(srv);
  client = h.writerClient(srv);
});
test.after(async () => {
  client.close();
  await srv.close();
});

const ALL_TYPES = [
  { name: 's', type: 'STRING' },
  { name: 'i', type: 'INT64' },
  { name: 'f', type: 'FLOAT64' },
  { name: 'b', type: 'BOOL' },
  { name: 'by', type: 'BYTES' },
  { name: 'ts', type: 'TIMESTAMP' },
  { name: 'd', type: 'DATE' },
  { name: 'dt', type: 'DATETIME' },
  { name: 't', type: 'TIME' },
  { name: 'n', type: 'NUMERIC' },
  { name: 'bn', type: 'BIGNUMERIC' },
  { name: 'j', type: 'JSON' },
  { name: 'g', type: 'GEOGRAPHY' },
  { name: 'arr', type: 'INT64', mode: 'REPEATED' },
  { name: 'rec', type: 'RECORD', fields: [{ name: 'x', type: 'STRING' }, { name: 'y', type: 'INT64', mode: 'REPEATED' }] },
];

test('REST client creates and reads datasets and tables', async () => {
  const [ds] = await bq.createDataset('gc', { location: 'europe-west3' });
  assert.equal(ds.metadata.location, 'europe-west3');
  const [meta] = await bq.dataset('gc').getMetadata();
  assert.equal(meta.location, 'europe-west3');
  await assert.rejects(bq.createDataset('gc', { location: 'US' }), (e) => e.code === 409);
  const [exists] = await bq.dataset('nope').exists();
  assert.equal(exists, false);

  const [table] = await ds.createTable('keyed', {
    schema: { fields: [{ name: 'id', type: 'INT64', mode: 'REQUIRED' }, { name: 'v', type: 'STRING' }] },
    tableConstraints: { primaryKey: { columns: ['id'] } },
    clustering: { fields: ['id'] },
    maxStaleness: '0-0 0 0:15:0',
  });
  const [tmeta] = await table.getMetadata();
  assert.deepEqual(tmeta.schema.fields, [
    { name: 'id', type: 'INTEGER', mode: 'REQUIRED' },
    { name: 'v', type: 'STRING', mode: 'NULLABLE' },
  ]);
  assert.deepEqual(tmeta.tableConstraints, { primaryKey: { columns: ['id'] } });
  assert.deepEqual(tmeta.clustering, { fields: ['id'] });
  assert.equal(tmeta.maxStaleness, '0-0 0 0:15:0');
  assert.equal(tmeta.location, 'europe-west3');
  await assert.rejects(ds.createTable('keyed', { schema: { fields: [{ name: 'id', type: 'INT64' }] } }), (e) => e.code === 409);
  await assert.rejects(bq.dataset('gc').table('missing').getMetadata(), (e) => e.code === 404);
});

test('JSONWriter appends every column type to a table without a key', async () => {
  await bq.dataset('gc').createTable('plain', { schema: { fields: ALL_TYPES } });
  const w = await h.jsonWriter(srv, client, 'gc', 'plain');
  const r1 = await w.appendRows([{
    s: 'héllo',
    i: '9007199254740993', // int64 beyond 2^53 (the client takes no BigInt)
    f: 1.5,
    b: true,
    by: Buffer.from([0, 1, 255]),
    ts: new Date('2024-02-29T23:59:58.123Z'),
    d: new Date('2024-02-29T00:00:00Z'),
    dt: '2024-02-29 10:11:12.5',
    t: '23:59:59.999999',
    n: '-12345678901234567890.123456789',
    bn: '1e-38',
    j: '{ "a" : [1, 2.50, "x y"] }',
    g: 'POINT(1 2)',
    arr: [3, 1, 2],
    rec: { x: 'in', y: [7] },
  }]).getResult();
  assert.ok(!r1.error, JSON.stringify(r1.error));
  const r2 = await w.appendRows([{ s: 'second' }, { i: -1 }]).getResult();
  assert.ok(!r2.error, JSON.stringify(r2.error));
  w.close();
  assert.deepEqual(await h.rows(srv, 'gc', 'plain'), [
    {
      s: 'héllo', i: '9007199254740993', f: 1.5, b: true, by: 'AAH/', ts: '2024-02-29T23:59:58.123000Z',
      d: '2024-02-29', dt: '2024-02-29T10:11:12.500000', t: '23:59:59.999999',
      n: '-12345678901234567890.123456789', bn: '0.00000000000000000000000000000000000001',
      j: '{"a":[1,2.50,"x y"]}', g: 'POINT(1 2)', arr: ['3', '1', '2'], rec: { x: 'in', y: ['7'] },
    },
    {
      s: 'second', i: null, f: null, b: null, by: null, ts: null, d: null, dt: null, t: null, n: null, bn: null, j: null, g: null, arr: [], rec: null,
    },
    {
      s: null, i: '-1', f: null, b: null, by: null, ts: null, d: null, dt: null, t: null, n: null, bn: null, j: null, g: null, arr: [], rec: null,
    },
  ]);
});

test('JSONWriter CDC: highest sequence number wins whatever the arrival order; deletes stay deleted', async () => {
  await bq.dataset('gc').createTable('cdc', {
    schema: { fields: [{ name: 'id', type: 'INT64', mode: 'REQUIRED' }, { name: 'v', type: 'STRING' }] },
    tableConstraints: { primaryKey: { columns: ['id'] } },
  });
  const w = await h.jsonWriter(srv, client, 'gc', 'cdc', { cdc: true });
  const U = (id, v, seq) => ({ id, v, _CHANGE_TYPE: 'UPSERT', _CHANGE_SEQUENCE_NUMBER: seq });
  const D = (id, seq) => ({ id, _CHANGE_TYPE: 'DELETE', _CHANGE_SEQUENCE_NUMBER: seq });
  const batches = [
    [U(1, 'one@2', '2'), U(2, 'two@5', '5'), U(3, 'three@0/1', '0/1'), U(6, 'six@1/9', '1/9')],
    [U(1, 'one@1', '1'), D(2, '6'), U(4, 'four@A', 'A')],
    [U(2, 'two@4', '4'), U(1, 'one@10', '10'), U(4, 'four@9', '9')],
    [D(3, '1/1'), U(3, 'three@1/0', '1/0'), U(5, 'five@FFFFFFFFFFFFFFFF/1', 'FFFFFFFFFFFFFFFF/1'), U(5, 'five@10000/0', '10000/0'),
      U(6, 'six@1/10', '1/10')],
  ];
  // Pipelined: all requests go out before the first answer is read.
  const results = await Promise.all(batches.map((b) => w.appendRows(b).getResult()));
  for (const r of results) assert.ok(!r.error, JSON.stringify(r.error));
  const expected = [
    { id: '1', v: 'one@10' }, // '10' hex is 16 > 2 > 1
    { id: '4', v: 'four@A' }, // 'A' (10) beats '9'
    { id: '5', v: 'five@FFFFFFFFFFFFFFFF/1' },
    { id: '6', v: 'six@1/10' }, // sections compare as numbers: 0x10 > 0x9
  ];
  assert.deepEqual(await h.rows(srv, 'gc', 'cdc'), expected);
  // Replaying every change, in reverse order, changes nothing.
  for (const b of [...batches].reverse()) {
    const r = await w.appendRows(b).getResult();
    assert.ok(!r.error, JSON.stringify(r.error));
  }
  w.close();
  assert.deepEqual(await h.rows(srv, 'gc', 'cdc'), expected);
  const detail = await h.ctl(srv, 'GET', `/tables/${h.PROJECT}/gc/cdc`);
  assert.deepEqual(detail.body.tombstones.map((t) => [t.key.id, t.sequenceNumber]), [['2', '6'], ['3', '1/1']]);
  assert.deepEqual(detail.body.warnings, []);
});

test('schema evolution: PATCH adds a column, the writer gets updated_schema and writes it', async () => {
  const table = bq.dataset('gc').table('evolve');
  await bq.dataset('gc').createTable('evolve', { schema: { fields: [{ name: 'a', type: 'STRING' }] } });
  const w = await h.jsonWriter(srv, client, 'gc', 'evolve');
  assert.ok(!(await w.appendRows([{ a: 'before' }]).getResult()).error);

  const [meta] = await table.getMetadata();
  await table.setMetadata({ schema: { fields: [...meta.schema.fields, { name: 'b', type: 'INT64' }] } });
  const r = await w.appendRows([{ a: 'old-shape' }]).getResult();
  assert.ok(!r.error, JSON.stringify(r.error));
  assert.deepEqual(r.updatedSchema.fields.map((f) => [f.name, f.type]), [['a', 'STRING'], ['b', 'INT64']]);
  // JSONWriter switched to a descriptor made from updated_schema.
  assert.ok(!(await w.appendRows([{ a: 'new-shape', b: 42 }]).getResult()).error);
  w.close();
  assert.deepEqual(await h.rows(srv, 'gc', 'evolve'), [
    { a: 'before', b: null }, { a: 'old-shape', b: null }, { a: 'new-shape', b: '42' },
  ]);
  // Changing a type is refused.
  await assert.rejects(table.setMetadata({ schema: { fields: [{ name: 'a', type: 'INT64' }, { name: 'b', type: 'INT64' }] } }),
    (e) => e.code === 400);
});

test("Google's managedwriter sends the routing header unencoded: accepted by default, refused by strict routing", async () => {
  await bq.dataset('gc').createTable('routing', { schema: { fields: [{ name: 'a', type: 'STRING' }] } });
  const w = await h.jsonWriter(srv, client, 'gc', 'routing');
  assert.ok(!(await w.appendRows([{ a: 'x' }]).getResult()).error);
  w.close();
  await h.ctl(srv, 'POST', '/config', { routing: 'strict' });
  try {
    const w2 = await h.jsonWriter(srv, client, 'gc', 'routing');
    await assert.rejects(w2.appendRows([{ a: 'y' }]).getResult(), (e) => e.code === 3 && /x-goog-request-params/.test(e.message));
    w2.close();
  } finally {
    await h.ctl(srv, 'POST', '/config', { routing: 'lenient' });
  }
  assert.deepEqual(await h.rows(srv, 'gc', 'routing'), [{ a: 'x' }]);
});

test('bearer tokens from both clients are recorded', async () => {
  const { body } = await h.ctl(srv, 'GET', '/tokens');
  const t = body.tokens.find((x) => x.token === h.TOKEN);
  assert.ok(t.rest > 0 && t.grpc > 0, JSON.stringify(t));
});
