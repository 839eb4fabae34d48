'use strict';
// The state both servers share: the store, armed faults, runtime config,
// counters and the bearer tokens seen.

const { Store } = require('./store');
const { Faults } = require('./faults');

const DEFAULT_MAX_REQUEST_BYTES = 10 * 1024 * 1024; // AppendRows request limit
const ROUTING_MODES = ['off', 'lenient', 'strict'];

function newStats() {
  return {
    calls: 0, // AppendRows calls opened
    callEnds: {}, // how calls ended, by status name (DROPPED: connection destroyed, CANCELLED: by the client)
    requests: 0, // AppendRowsRequests received
    bytes: 0, // their serialized size
    rows: 0, // serialized rows received
    rowsApplied: 0, // rows of successful requests
    responses: {}, // responses by code: OK or the in-band error code
    rowErrors: 0, // row_errors entries sent
    rest: {}, // REST v2 responses by HTTP status
  };
}

class Fake {
  constructor({ stateFile = null, routing = 'lenient', rateLimit = true, acceptTokens = null, maxRequestBytes = DEFAULT_MAX_REQUEST_BYTES } = {}) {
    this.store = new Store({ stateFile, rateLimit: rateLimit ? { max: 5, windowMs: 10000 } : null });
    this.faults = new Faults();
    this.defaults = { routing, rateLimit: this.store.rateLimit, acceptTokens, maxRequestBytes };
    this.resetConfig();
    this.stats = newStats();
    this.tokens = new Map();
    this.ports = {};
  }

  resetConfig() {
    this.config = {
      routing: this.defaults.routing,
      acceptTokens: this.defaults.acceptTokens,
      maxRequestBytes: this.defaults.maxRequestBytes,
    };
    this.store.rateLimit = this.defaults.rateLimit;
  }

  // Everything back to a fresh start (the state file is rewritten empty).
  reset() {
    this.store.reset();
    this.faults.clear();
    this.resetConfig();
    this.stats = newStats();
    this.tokens.clear();
  }

  configView() {
    return { ...this.config, rateLimit: this.store.rateLimit };
  }

  // POST /_fake/config. Throws Error (a 400) on bad values.
  setConfig(c) {
    if (c.routing !== undefined) {
      if (!ROUTING_MODES.includes(c.routing)) throw new Error(`routing must be one of ${ROUTING_MODES.join(', ')}`);
      this.config.routing = c.routing;
    }
    if (c.acceptTokens !== undefined) {
      if (c.acceptTokens !== null && (!Array.isArray(c.acceptTokens) || !c.acceptTokens.every((t) => typeof t === 'string' && t))) {
        throw new Error('acceptTokens must be null or a list of non-empty strings');
      }
      this.config.acceptTokens = c.acceptTokens;
    }
    if (c.maxRequestBytes !== undefined) {
      if (!Number.isInteger(c.maxRequestBytes) || c.maxRequestBytes < 1) throw new Error('maxRequestBytes must be a positive integer');
      this.config.maxRequestBytes = c.maxRequestBytes;
    }
    if (c.rateLimit !== undefined) {
      const r = c.rateLimit;
      if (r === false || r === null) this.store.rateLimit = null;
      else if (r === true) this.store.rateLimit = { max: 5, windowMs: 10000 };
      else if (r && Number.isInteger(r.max) && r.max > 0 && Number.isInteger(r.windowMs) && r.windowMs > 0) this.store.rateLimit = { max: r.max, windowMs: r.windowMs };
      else throw new Error('rateLimit must be true, false/null, or {max, windowMs}');
    }
    return this.configView();
  }

  // Checks an Authorization header value ("Bearer <token>") and records the
  // token. Returns null when accepted, else the reason.
  authenticate(header, via) {
    const m = /^Bearer\s+(\S+)\s*$/i.exec(header || '');
    if (!m) return 'Request is missing required authentication credential. Expected OAuth 2 access token, login cookie or other valid authentication credential.';
    const token = m[1];
    const now = new Date().toISOString();
    let rec = this.tokens.get(token);
    if (!rec) {
      rec = { token, grpc: 0, rest: 0, accepted: 0, rejected: 0, first: now, last: now };
      this.tokens.set(token, rec);
    }
    rec[via] += 1;
    rec.last = now;
    const ok = !this.config.acceptTokens || this.config.acceptTokens.includes(token);
    rec[ok ? 'accepted' : 'rejected'] += 1;
    return ok ? null : 'Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential.';
  }

  tokenList() {
    return [...this.tokens.values()]; // in order of first use
  }

  count(bucket, key) {
    bucket[key] = (bucket[key] || 0) + 1;
  }
}

module.exports = { Fake, newStats, DEFAULT_MAX_REQUEST_BYTES, ROUTING_MODES };
