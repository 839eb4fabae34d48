#!/usr/bin/env node
'use strict';
// fake-bigquery: a BigQuery stand-in for dsplug's tests. One process serves
// the Storage Write API (gRPC AppendRows, CDC), a REST v2 subset for datasets
// and tables, and the /_fake control API. See README.md.
//
//   node server.js --grpc-port N --http-port M [--state FILE] [--strict-routing]
//                  [--routing off|lenient|strict] [--no-rate-limit]
//                  [--token TOKEN]... [--max-request-bytes N] [--host ADDR]
//
// Port 0 picks a free port. When both servers listen it prints one line:
//   fake-bigquery ready grpc=N http=M

const { Fake } = require('./lib/fake');
const { createGrpcServer, bindGrpc } = require('./lib/grpc-server');
const { createHttpServer } = require('./lib/http-server');

const USAGE = 'usage: node server.js --grpc-port N --http-port M [--state FILE] [--strict-routing] '
  + '[--routing off|lenient|strict] [--no-rate-limit] [--token TOKEN]... [--max-request-bytes N] [--host ADDR]';

// Starts both servers; resolves to {fake, grpcPort, httpPort, close()}.
async function startFake({
  host = '127.0.0.1', grpcPort = 0, httpPort = 0, stateFile = null, routing = 'lenient',
  rateLimit = true, acceptTokens = null, maxRequestBytes,
} = {}) {
  const fake = new Fake({ stateFile, routing, rateLimit, acceptTokens, maxRequestBytes });
  const grpcServer = createGrpcServer(fake);
  const boundGrpc = await bindGrpc(grpcServer, host, grpcPort);
  const httpServer = createHttpServer(fake);
  await new Promise((resolve, reject) => {
    httpServer.once('error', reject);
    httpServer.listen(httpPort, host, resolve);
  });
  const boundHttp = httpServer.address().port;
  fake.ports = { grpcPort: boundGrpc, httpPort: boundHttp };
  return {
    fake,
    grpcPort: boundGrpc,
    httpPort: boundHttp,
    close: () => new Promise((resolve) => {
      grpcServer.forceShutdown();
      httpServer.closeAllConnections();
      httpServer.close(() => resolve());
    }),
  };
}

function parseArgs(argv) {
  const o = { acceptTokens: null };
  const need = (i) => {
    if (i + 1 >= argv.length) throw new Error(`${argv[i]} needs a value`);
    return argv[i + 1];
  };
  const port = (v, name) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 0 || n > 65535) throw new Error(`${name}: bad port ${v}`);
    return n;
  };
  for (let i = 0; i < argv.length; i += 1) {
    const a = argv[i];
    switch (a) {
      case '--grpc-port': o.grpcPort = port(need(i), a); i += 1; break;
      case '--http-port': o.httpPort = port(need(i), a); i += 1; break;
      case '--state': o.stateFile = need(i); i += 1; break;
      case '--host': o.host = need(i); i += 1; break;
      case '--strict-routing': o.routing = 'strict'; break;
      case '--routing': o.routing = need(i); i += 1; break;
      case '--no-rate-limit': o.rateLimit = false; break;
      case '--token': o.acceptTokens = [...(o.acceptTokens || []), need(i)]; i += 1; break;
      case '--max-request-bytes': o.maxRequestBytes = Number(need(i)); i += 1; break;
      case '-h': case '--help': console.log(USAGE); process.exit(0); break;
      default: throw new Error(`unknown argument ${a}`);
    }
  }
  if (o.grpcPort === undefined || o.httpPort === undefined) throw new Error('--grpc-port and --http-port are required (0 picks a free port)');
  if (o.routing && !['off', 'lenient', 'strict'].includes(o.routing)) throw new Error(`bad --routing ${o.routing}`);
  return o;
}

if (require.main === module) {
  let opts;
  try {
    opts = parseArgs(process.argv.slice(2));
  } catch (e) {
    console.error(`fake-bigquery: ${e.message}\n${USAGE}`);
    process.exit(2);
  }
  startFake(opts).then((s) => {
    console.log(`fake-bigquery ready grpc=${s.grpcPort} http=${s.httpPort}`);
    const stop = () => s.close().then(() => process.exit(0));
    process.on('SIGTERM', stop);
    process.on('SIGINT', stop);
  }).catch((e) => {
    console.error(`fake-bigquery: ${e.stack || e}`);
    process.exit(1);
  });
}

module.exports = { startFake, parseArgs };
