#!/usr/bin/env node
'use strict';
// Runs the fake (same arguments as server.js) and records every serialized
// AppendRowsRequest it receives, for tools/replay.js:
//   node tools/capture.js OUT --grpc-port 0 --http-port 0 --no-rate-limit
// OUT gets the requests (4-byte big-endian length + bytes each); OUT.tables.json
// gets the REST resources of the tables written to, at SIGTERM/SIGINT.

const fs = require('fs');
const grpc = require('@grpc/grpc-js');

const out = process.argv[2];
if (!out) { console.error('usage: capture.js OUT server.js-arguments...'); process.exit(2); }
const fd = fs.openSync(out, 'w');
const addService = grpc.Server.prototype.addService;
grpc.Server.prototype.addService = function wrapped(def, impl) {
  const ar = def.AppendRows;
  if (ar) {
    const inner = ar.requestDeserialize;
    def = { ...def, AppendRows: { ...ar, requestDeserialize(buf) {
      const len = Buffer.alloc(4);
      len.writeUInt32BE(buf.length);
      fs.writeSync(fd, len);
      fs.writeSync(fd, buf);
      return inner(buf);
    } } };
  }
  return addService.call(this, def, impl);
};

const { startFake, parseArgs } = require('../server');

startFake(parseArgs(process.argv.slice(3))).then((s) => {
  console.log(`fake-bigquery ready grpc=${s.grpcPort} http=${s.httpPort}`);
  const stop = () => {
    fs.closeSync(fd);
    const tables = [];
    for (const ds of s.fake.store.datasets.values()) {
      for (const t of ds.tables.values()) tables.push({ location: ds.location, resource: t.toResource(ds.location) });
    }
    fs.writeFileSync(`${out}.tables.json`, JSON.stringify(tables, null, 1));
    s.close().then(() => process.exit(0));
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
});
