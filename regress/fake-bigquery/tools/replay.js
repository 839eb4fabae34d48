#!/usr/bin/env node
'use strict';
// Replays requests recorded by tools/capture.js against a fresh fake started
// as a child process and reports the fake's CPU time per row:
//   node tools/replay.js CAPTURE [--window N] [--repeat K] [--node-arg ARG]...
// Tables are created from CAPTURE.tables.json. Requests go out on one
// AppendRows call per write_stream change, up to --window (default 8) in
// flight, as the consumer pipelines them; every response must be OK. The
// fake's CPU (utime+stime from /proc) is sampled after the tables exist and
// after the last response. --repeat sends the capture K times (later passes
// are stale replays, the CDC rules ignore or reapply them).

const fs = require('fs');
const path = require('path');
const { spawn } = require('child_process');
const grpc = require('@grpc/grpc-js');
const { loadPackageDefinition, PKG } = require('../lib/protos');

const args = process.argv.slice(2);
const capture = args[0];
let windowSize = 8;
let repeat = 1;
const nodeArgs = [];
for (let i = 1; i < args.length; i += 1) {
  if (args[i] === '--window') windowSize = Number(args[++i]);
  else if (args[i] === '--repeat') repeat = Number(args[++i]);
  else if (args[i] === '--node-arg') nodeArgs.push(args[++i]);
  else throw new Error(`unknown argument ${args[i]}`);
}

const pkgDef = loadPackageDefinition();
const reqDeserialize = pkgDef[`${PKG}.BigQueryWrite`].AppendRows.requestDeserialize;
const respDeserialize = pkgDef[`${PKG}.BigQueryWrite`].AppendRows.responseDeserialize;

function readCapture(file) {
  const buf = fs.readFileSync(file);
  const out = [];
  for (let o = 0; o < buf.length;) {
    const n = buf.readUInt32BE(o);
    out.push(buf.subarray(o + 4, o + 4 + n));
    o += 4 + n;
  }
  return out;
}

function cpuTicks(pid) {
  const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return Number(f[11]) + Number(f[12]); // utime + stime (fields 14, 15)
}

async function rest(base, method, p, body) {
  const r = await fetch(`${base}${p}`, {
    method, headers: { authorization: 'Bearer replay', 'content-type': 'application/json' }, body: body && JSON.stringify(body),
  });
  const j = await r.json();
  if (!r.ok && r.status !== 409) throw new Error(`${method} ${p}: ${r.status} ${JSON.stringify(j)}`);
  return j;
}

async function main() {
  const reqs = readCapture(capture);
  const tables = JSON.parse(fs.readFileSync(`${capture}.tables.json`, 'utf8'));
  const child = spawn(process.execPath, [...nodeArgs, path.join(__dirname, '..', 'server.js'),
    '--grpc-port', '0', '--http-port', '0', '--no-rate-limit'], { stdio: ['ignore', 'pipe', 'inherit'] });
  const ready = await new Promise((resolve) => {
    let acc = '';
    child.stdout.on('data', (d) => {
      if (process.env.REPLAY_VERBOSE) process.stderr.write(d);
      acc += d; const m = /ready grpc=(\d+) http=(\d+)/.exec(acc); if (m) resolve(m);
    });
  });
  const grpcPort = ready[1];
  const base = `http://127.0.0.1:${ready[2]}/bigquery/v2`;
  for (const { location, resource } of tables) {
    const { projectId, datasetId } = resource.tableReference;
    await rest(base, 'POST', `/projects/${projectId}/datasets`, { datasetReference: { datasetId }, location });
    await rest(base, 'POST', `/projects/${projectId}/datasets/${datasetId}/tables`, {
      tableReference: resource.tableReference, schema: resource.schema, tableConstraints: resource.tableConstraints,
      clustering: resource.clustering, maxStaleness: resource.maxStaleness,
    });
  }

  // split into calls at each write_stream change
  const calls = [];
  let stream = null;
  let rows = 0;
  for (const buf of reqs) {
    const r = reqDeserialize(buf);
    const n = r.proto_rows && r.proto_rows.rows ? r.proto_rows.rows.serialized_rows.length : 0;
    rows += n;
    if (r.write_stream && r.write_stream !== stream) {
      stream = r.write_stream;
      calls.push({ stream, reqs: [] });
    }
    calls[calls.length - 1].reqs.push(buf);
  }
  const client = new grpc.Client(`127.0.0.1:${grpcPort}`, grpc.credentials.createInsecure(),
    { 'grpc.max_send_message_length': 64 << 20, 'grpc.max_receive_message_length': 64 << 20 });
  const method = `/${PKG}.BigQueryWrite/AppendRows`;
  const cpu0 = cpuTicks(child.pid);
  const t0 = process.hrtime.bigint();
  let errors = 0;
  for (let pass = 0; pass < repeat; pass += 1) {
    for (const c of calls) {
      const md = new grpc.Metadata();
      md.set('authorization', 'Bearer replay');
      md.set('x-goog-request-params', `write_stream=${encodeURIComponent(c.stream)}`);
      await new Promise((resolve, reject) => {
        const call = client.makeBidiStreamRequest(method, (b) => b, (b) => b, md);
        let sent = 0;
        let answered = 0;
        const pump = () => {
          while (sent < c.reqs.length && sent - answered < windowSize) call.write(c.reqs[sent++]);
          if (sent === c.reqs.length) call.end();
        };
        call.on('data', (b) => {
          const resp = respDeserialize(b);
          if (resp.error) { errors += 1; if (errors < 5) console.error(JSON.stringify(resp.error).slice(0, 300)); }
          answered += 1;
          if (sent < c.reqs.length) pump();
        });
        call.on('error', reject);
        call.on('status', (s) => { if (s.code === 0) resolve(); });
        pump();
      });
    }
  }
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  const cpu = (cpuTicks(child.pid) - cpu0) / 100; // USER_HZ
  const threads = {};
  for (const tid of fs.readdirSync(`/proc/${child.pid}/task`)) {
    const st = fs.readFileSync(`/proc/${child.pid}/task/${tid}/stat`, 'utf8');

    const f = st.split(') ')[1].split(' ');
    const k = Number(tid) === child.pid ? 'main' : 'other';
    threads[k] = (threads[k] || 0) + (Number(f[11]) + Number(f[12])) / 100;
  }
  const total = rows * repeat;
  console.log(JSON.stringify({ requests: reqs.length * repeat, rows: total, errors, wallSeconds: +secs.toFixed(3),
    fakeCpuSeconds: cpu, fakeCpuUsPerRow: +((cpu / total) * 1e6).toFixed(2), rowsPerSecond: Math.round(total / secs), threadCpuSecondsSinceStart: threads }));
  client.close();
  child.kill('SIGTERM');
}

main().catch((e) => { console.error(e); process.exit(1); });
