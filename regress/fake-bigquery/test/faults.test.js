'use strict';
// Every fault type of POST /_fake/faults, and the counters.

const test = require('node:test');
const assert = require('node:assert/strict');
const grpc = require('@grpc/grpc-js');
const h = require('./helpers');
const { QUOTA_MESSAGE } = require('../lib/faults');

const DS = 'fl';
const FIELDS = [{ name: 'id', type: 'INT64', mode: 'REQUIRED' }, { name: 'v', type: 'STRING' }];
const d = h.descriptor('kv', [{ name: 'id', type: 'int64' }, { name: 'v', type: 'string' }]);
let srv;
let n = 0;

test.before(async () => {
  srv = await h.withFake();
  await h.createDataset(srv, DS);
});
test.after(() => srv.close());
test.beforeEach(async () => {
  await h.ctl(srv, 'DELETE', '/faults');
});

async function freshTable() {
  n += 1;
  const name = `t${n}`;
  await h.createTable(srv, DS, name, FIELDS);
  return name;
}

// requests[i] carries the row {id: i}.
function requests(table, count) {
  return Array.from({ length: count }, (_, i) => h.appendRequest(h.streamName(DS, table), i === 0 ? d.dp : null, [d.encode({ id: i })]));
}
const ids = async (table) => (await h.rows(srv, DS, table)).map((r) => Number(r.id));
const codes = (r) => r.responses.map((x) => (x.error ? x.error.code : 0));

test('unavailable: the call ends with UNAVAILABLE after K answers; the next call is unaffected', async () => {
  const t = await freshTable();
  const f = await h.arm(srv, { type: 'unavailable', after: 2 });
  let r = await h.appendAll(srv, requests(t, 4));
  assert.equal(r.status, grpc.status.UNAVAILABLE);
  assert.equal(r.responses.length, 2);
  assert.deepEqual(await ids(t), [0, 1]);
  r = await h.appendAll(srv, requests(t, 2));
  assert.equal(r.status, grpc.status.OK);
  const listed = (await h.ctl(srv, 'GET', '/faults')).body.faults.find((x) => x.id === f.id);
  assert.equal(listed.remaining, 0);
});

test('unavailable with applied: the request takes effect but its answer is lost', async () => {
  const t = await freshTable();
  await h.arm(srv, { type: 'unavailable', after: 1, applied: true, times: 2 });
  for (let i = 0; i < 2; i += 1) {
    const r = await h.appendAll(srv, requests(t, 3));
    assert.equal(r.status, grpc.status.UNAVAILABLE);
    assert.equal(r.responses.length, 1);
  }
  assert.deepEqual(await ids(t), [0, 1, 0, 1]);
});

test('status: any code ends the call', async () => {
  const t = await freshTable();
  await h.arm(srv, { type: 'status', code: 'PERMISSION_DENIED', message: 'no access' });
  const r = await h.appendAll(srv, requests(t, 1));
  assert.equal(r.status, grpc.status.PERMISSION_DENIED);
  assert.equal(r.details, 'no access');
});

test('drop: the connection is destroyed without a status; a new connection works', async () => {
  const t = await freshTable();
  await h.arm(srv, { type: 'drop', after: 1 });
  const r = await h.appendAll(srv, requests(t, 3));
  assert.equal(r.status, grpc.status.UNAVAILABLE); // how grpc-js reports a lost connection
  assert.equal(r.responses.length, 1);
  assert.doesNotMatch(r.details, /injected/i);
  const stats = (await h.ctl(srv, 'GET', '/stats')).body;
  assert.equal(stats.callEnds.DROPPED, 1);
  assert.equal((await h.appendAll(srv, requests(t, 2))).status, grpc.status.OK);
  assert.deepEqual(await ids(t), [0, 0, 1]);
});

test('internal, aborted, inband: in-band errors, nothing applied, the call goes on', async () => {
  const t = await freshTable();
  await h.arm(srv, [{ type: 'internal' }, { type: 'aborted', skip: 1 }, { type: 'inband', code: 'DEADLINE_EXCEEDED', skip: 2 }]);
  const r = await h.appendAll(srv, requests(t, 5));
  assert.equal(r.status, grpc.status.OK);
  // A fault's skip counts the requests that reach it: request 0 takes
  // INTERNAL; request 1 is skipped by both others; request 2 takes ABORTED;
  // request 3 is the generic fault's second skip; request 4 takes it.
  assert.deepEqual(codes(r), [grpc.status.INTERNAL, 0, grpc.status.ABORTED, 0, grpc.status.DEADLINE_EXCEEDED]);
  assert.deepEqual(await ids(t), [1, 3]);
  const faults = (await h.ctl(srv, 'GET', '/faults')).body.faults;
  assert.ok(faults.every((x) => x.remaining === 0));
});

test('resource_exhausted: throughput-quota error in-band, or as the call status', async () => {
  const t = await freshTable();
  await h.arm(srv, { type: 'resource_exhausted' });
  let r = await h.appendAll(srv, requests(t, 2));
  assert.deepEqual(codes(r), [grpc.status.RESOURCE_EXHAUSTED, 0]);
  assert.ok(r.responses[0].error.message.startsWith(QUOTA_MESSAGE));
  await h.arm(srv, { type: 'resource_exhausted', as: 'status', after: 1 });
  r = await h.appendAll(srv, requests(t, 2));
  assert.equal(r.status, grpc.status.RESOURCE_EXHAUSTED);
  assert.match(r.details, /AppendRows throughput/);
  assert.deepEqual(await ids(t), [1, 0]);
});

test('row_error: INVALID_ARGUMENT with row_errors for the rows matching the predicate', async () => {
  const t = await freshTable();
  await h.arm(srv, { type: 'row_error', where: { id: 2, v: null }, message: 'poison row' });
  const stream = h.streamName(DS, t);
  const r = await h.appendAll(srv, [
    h.appendRequest(stream, d.dp, [d.encode({ id: 1 }), d.encode({ id: 2 }), d.encode({ id: 3 }), d.encode({ id: 2 })]),
    h.appendRequest(stream, null, [d.encode({ id: 2 })]), // the fault was used up
  ]);
  const [bad, good] = r.responses;
  assert.equal(bad.error.code, grpc.status.INVALID_ARGUMENT);
  assert.deepEqual(bad.row_errors.map((e) => [e.index, e.code, e.message]), [['1', 'FIELDS_ERROR', 'poison row'], ['3', 'FIELDS_ERROR', 'poison row']]);
  assert.ok(!good.error);
  assert.deepEqual(await ids(t), [2]);
});

test('delay: the answer waits, and answers stay in order', async () => {
  const t = await freshTable();
  await h.arm(srv, { type: 'delay', delayMs: 300 });
  const client = h.rawClient(srv);
  const c = h.openAppend(client, { stream: h.streamName(DS, t) });
  const start = Date.now();
  const [r0, r1] = requests(t, 2);
  c.call.write(r0);
  c.call.write(r1);
  await c.waitFor(1);
  assert.ok(Date.now() - start >= 290, `first answer after ${Date.now() - start} ms`);
  await c.waitFor(2);
  c.call.end();
  assert.equal((await c.done).status, grpc.status.OK);
  client.close();
});

test('table filter: a fault hits only appends to its table', async () => {
  const t1 = await freshTable();
  const t2 = await freshTable();
  await h.arm(srv, { type: 'internal', table: `${DS}.${t2}`, times: 5 });
  assert.deepEqual(codes(await h.appendAll(srv, requests(t1, 1))), [0]);
  assert.deepEqual(codes(await h.appendAll(srv, requests(t2, 1))), [grpc.status.INTERNAL]);
});

test("Google's managedwriter with write retries resends after UNAVAILABLE and INTERNAL", async () => {
  const t = await freshTable();
  const client = h.writerClient(srv);
  client.enableWriteRetries(true);
  try {
    const w = await h.jsonWriter(srv, client, DS, t);
    await h.arm(srv, [{ type: 'unavailable' }, { type: 'internal' }]);
    const r = await w.appendRows([{ id: 7 }]).getResult();
    assert.ok(!r.error, JSON.stringify(r.error));
    w.close();
  } finally {
    client.close();
  }
  assert.deepEqual(await ids(t), [7]);
});

test('bad fault specs are refused', async () => {
  for (const spec of [{ type: 'nope' }, { type: 'status' }, { type: 'row_error' }, { type: 'delay' }, { type: 'internal', times: -1 }, { type: 'inband', code: 'BOGUS' }]) {
    const r = await h.ctl(srv, 'POST', '/faults', spec);
    assert.equal(r.status, 400, JSON.stringify(spec));
  }
});

test('counters: requests, rows, bytes, responses by code, call ends', async () => {
  await h.ctl(srv, 'DELETE', '/stats');
  const t = await freshTable();
  await h.arm(srv, { type: 'aborted', skip: 1 });
  const reqs = requests(t, 3);
  const bytes = reqs.reduce((a, x) => a + require('../lib/protos').root()
    .lookupType('google.cloud.bigquery.storage.v1.AppendRowsRequest').encode(x).finish().length, 0);
  await h.appendAll(srv, reqs);
  const s = (await h.ctl(srv, 'GET', '/stats')).body;
  assert.equal(s.calls, 1);
  assert.equal(s.requests, 3);
  assert.equal(s.rows, 3);
  assert.equal(s.rowsApplied, 2);
  assert.equal(s.bytes, bytes);
  assert.deepEqual(s.responses, { OK: 2, ABORTED: 1 });
  assert.deepEqual(s.callEnds, { OK: 1 });
});
