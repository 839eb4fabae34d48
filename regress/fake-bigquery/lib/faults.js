'use strict';
// Fault injection for AppendRows, armed through POST /_fake/faults.
//
// Call faults end an AppendRows call when it reaches its (after+1)-th request:
//   unavailable         status UNAVAILABLE
//   status              any status `code`
//   drop                the HTTP/2 connection is destroyed, no status at all
//   (with applied: true the request is applied first and its answer is lost)
// `times` counts calls (default 1); a call is hit by a given fault once.
//
// Request faults hit the next `times` requests (default 1) after `skip`:
//   internal, aborted   in-band error INTERNAL / ABORTED, nothing applied
//   resource_exhausted  in-band RESOURCE_EXHAUSTED throughput-quota error
//                       (as: "status" ends the call with it instead)
//   inband              in-band error with any `code`
//   row_error           in-band INVALID_ARGUMENT with row_errors for the rows
//                       whose canonical values equal every `where` entry
//                       (`times` counts requests that had such a row)
//   delay               the response waits `delayMs`
// Every fault may carry `table` ("t", "d.t", "p.d.t" or the full resource
// name) to hit only appends to that table, and `message`.

const { grpcCode, grpcCodeName } = require('./errors');

const QUOTA_MESSAGE = "Exceeds 'AppendRows throughput' quota, user_id: fake-bigquery (status: INSUFFICIENT_TOKENS), you can issue a raise request at the Cloud console. Please retry with exponential backoff.";

const TYPES = {
  unavailable: { scope: 'call', code: 'UNAVAILABLE', message: 'The service is currently unavailable (injected fault).' },
  status: { scope: 'call' },
  drop: { scope: 'call' },
  internal: { scope: 'request', code: 'INTERNAL', message: 'Internal error encountered (injected fault).' },
  aborted: { scope: 'request', code: 'ABORTED', message: 'Request aborted (injected fault).' },
  resource_exhausted: { scope: 'request', code: 'RESOURCE_EXHAUSTED', message: QUOTA_MESSAGE },
  inband: { scope: 'request' },
  row_error: { scope: 'request', code: 'INVALID_ARGUMENT' },
  delay: { scope: 'request' },
};

function tableMatches(filter, table) {
  if (!filter) return true;
  if (!table) return false;
  return [table.tableId, `${table.datasetId}.${table.tableId}`,
    `${table.projectId}.${table.datasetId}.${table.tableId}`, table.name].includes(filter);
}

function nonNegInt(v, name, dflt) {
  if (v === undefined) return dflt;
  if (!Number.isInteger(v) || v < 0) throw new Error(`${name} must be a non-negative integer`);
  return v;
}

class Faults {
  constructor() {
    this.faults = [];
    this.nextId = 1;
  }

  clear() {
    this.faults = [];
  }

  // Validates and arms a fault; throws Error with a message for a 400.
  add(spec) {
    const t = TYPES[spec && spec.type];
    if (!t) throw new Error(`unknown fault type ${spec && spec.type}; one of ${Object.keys(TYPES).join(', ')}`);
    const f = {
      id: this.nextId,
      type: spec.type,
      scope: spec.type === 'resource_exhausted' && spec.as === 'status' ? 'call' : t.scope,
      table: spec.table || null,
      times: nonNegInt(spec.times, 'times', 1),
      after: nonNegInt(spec.after, 'after', 0),
      skip: nonNegInt(spec.skip, 'skip', 0),
      applied: Boolean(spec.applied),
      message: spec.message || t.message || null,
      delayMs: nonNegInt(spec.delayMs, 'delayMs', 0),
      where: spec.where || null,
      triggered: 0,
      skipped: 0,
    };
    if (['status', 'inband'].includes(spec.type) && spec.code === undefined) throw new Error(`${spec.type} faults need a code`);
    f.code = spec.type === 'drop' || spec.type === 'delay' ? null : grpcCodeName(grpcCode(spec.code || t.code));
    if (!f.message && f.code) f.message = `Injected ${f.code}`;
    if (spec.type === 'row_error' && (!f.where || typeof f.where !== 'object' || !Object.keys(f.where).length)) {
      throw new Error('row_error faults need a non-empty where object');
    }
    if (spec.type === 'delay' && !f.delayMs) throw new Error('delay faults need delayMs > 0');
    this.nextId += 1;
    this.faults.push(f);
    return f;
  }

  list() {
    return this.faults.map((f) => ({ ...f, remaining: f.times - f.triggered }));
  }

  armed(scope, type, table) {
    return this.faults.filter((f) => f.scope === scope && f.triggered < f.times && tableMatches(f.table, table)
      && (!type || f.type === type));
  }

  // The call fault hitting a call at its requestIndex-th (0-based) request.
  takeCallFault(callState, requestIndex, table) {
    for (const f of this.armed('call', null, table)) {
      if (requestIndex >= f.after && !callState.faultsHit.has(f.id)) {
        callState.faultsHit.add(f.id);
        f.triggered += 1;
        return f;
      }
    }
    return null;
  }

  takeRequestFault(type, table) {
    for (const f of this.armed('request', type, table)) {
      if (f.skipped < f.skip) { f.skipped += 1; continue; }
      f.triggered += 1;
      return f;
    }
    return null;
  }

  takeDelay(table) {
    const f = this.takeRequestFault('delay', table);
    return f ? f.delayMs : 0;
  }

  takeInband(table) {
    for (const type of ['internal', 'aborted', 'resource_exhausted', 'inband']) {
      const f = this.takeRequestFault(type, table);
      if (f) return f;
    }
    return null;
  }

  // rows: canonical rows of the request. Returns {fault, indexes} or null.
  takeRowError(table, rows) {
    for (const f of this.armed('request', 'row_error', table)) {
      const indexes = [];
      rows.forEach((row, i) => {
        const hit = Object.entries(f.where).every(([col, want]) => {
          const v = row[col];
          return want === null ? v === null : v !== null && v !== undefined && String(v) === String(want);
        });
        if (hit) indexes.push(i);
      });
      if (indexes.length) {
        f.triggered += 1;
        return { fault: f, indexes };
      }
    }
    return null;
  }
}

module.exports = { Faults, QUOTA_MESSAGE };
