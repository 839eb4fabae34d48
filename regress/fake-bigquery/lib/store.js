'use strict';
// In-memory BigQuery state: datasets, tables, rows and CDC key state, with
// optional persistence to a JSON file so a test can restart the fake.

const fs = require('fs');
const schemaLib = require('./schema');
const cdc = require('./cdc');
const { parseDecimal } = require('./values');
const { ApiError, notFound, duplicate } = require('./errors');
const { RowError, CHANGE_TYPE, CHANGE_SEQUENCE_NUMBER } = require('./writer-schema');

const MAX_WARNINGS = 200;
const DATASET_ID_RE = /^[A-Za-z0-9_]{1,1024}$/;
const TABLE_ID_RE = /^[\p{L}\p{M}\p{N}\p{Pc}\p{Pd}\p{Zs}]{1,1024}$/u;

// ---- canonical value ordering (for listing keyed rows by key) ----

function compareValues(type, a, b) {
  if (a === b) return 0;
  if (a === null) return -1;
  if (b === null) return 1;
  switch (type) {
    case 'INT64': {
      const x = BigInt(a); const y = BigInt(b);
      return x < y ? -1 : x > y ? 1 : 0;
    }
    case 'NUMERIC':
    case 'BIGNUMERIC': {
      const x = parseDecimal(a); const y = parseDecimal(b);
      const s = Math.max(x.scale, y.scale);
      const xs = x.unscaled * 10n ** BigInt(s - x.scale);
      const ys = y.unscaled * 10n ** BigInt(s - y.scale);
      return xs < ys ? -1 : xs > ys ? 1 : 0;
    }
    case 'FLOAT64': {
      const x = Number(a); const y = Number(b);
      if (Number.isNaN(x)) return Number.isNaN(y) ? 0 : -1;
      if (Number.isNaN(y)) return 1;
      return x < y ? -1 : x > y ? 1 : 0;
    }
    case 'BOOL':
      return a === b ? 0 : a ? 1 : -1;
    default:
      return a < b ? -1 : a > b ? 1 : 0;
  }
}

// A stored row with columns added since it was written filled in (NULL, or
// [] for REPEATED), at every RECORD level, in schema order.
function project(fields, row) {
  const out = {};
  for (const f of fields) {
    let v = row ? row[f.name] : undefined;
    if (v === undefined) v = f.mode === 'REPEATED' ? [] : null;
    if (f.type === 'STRUCT' && v !== null) {
      v = f.mode === 'REPEATED' ? v.map((x) => project(f.fields, x)) : project(f.fields, v);
    }
    out[f.name] = v;
  }
  return out;
}

class Table {
  constructor(meta) {
    Object.assign(this, meta);
    this.rows = [];
    this.keys = new Map();
    this.arrival = 0;
    this.warnings = [];
    this.warningCount = 0;
    this.counters = { appendedRows: 0, upserts: 0, deletes: 0, staleIgnored: 0, appendRequests: 0 };
    this.updateTimes = [];
  }

  get name() {
    return `projects/${this.projectId}/datasets/${this.datasetId}/tables/${this.tableId}`;
  }

  warn(message) {
    this.warningCount += 1;
    if (this.warnings.length < MAX_WARNINGS) this.warnings.push(message);
  }

  // The key of a row in this.keys: for a one-column key whose value is a
  // string (every key type but BOOL and FLOAT64, whose values are not
  // strings except FLOAT64's "NaN"/"Infinity"/"-Infinity", which cannot look
  // like JSON arrays) the value itself, else the JSON text of the key values.
  keyOf(row) {
    if (this.primaryKey.length === 1) {
      const v = row[this.primaryKey[0]];
      if (typeof v === 'string') return v;
    }
    return JSON.stringify(this.primaryKey.map((c) => row[c]));
  }

  // The key as warnings show it: the JSON text of the key values.
  keyText(row) {
    return JSON.stringify(this.primaryKey.map((c) => row[c]));
  }

  // Validates a decoded row ({row, pseudo}) for this table and returns the
  // change to apply; throws RowError.
  prepareChange({ row, pseudo }) {
    const changeType = pseudo[CHANGE_TYPE];
    const seqText = pseudo[CHANGE_SEQUENCE_NUMBER];
    let seq = null;
    // undefined: the writer schema has no such column; null: the row leaves it unset.
    if (changeType !== undefined && !cdc.CHANGE_TYPES.includes(changeType)) {
      throw new RowError(`${CHANGE_TYPE} must be UPSERT or DELETE, got ${changeType === null ? 'NULL' : `"${changeType}"`}`);
    }
    if (seqText !== undefined && seqText !== null) {
      seq = cdc.sequenceKey(seqText);
      if (!seq) {
        throw new RowError(`Invalid ${CHANGE_SEQUENCE_NUMBER} "${seqText}": expected up to 4 '/'-separated sections of 1 to 16 hexadecimal digits`);
      }
    }
    if (this.primaryKey) {
      for (const c of this.primaryKey) {
        if (row[c] === null) throw new RowError(`root.${c}: primary key column is NULL`);
      }
    }
    if (changeType !== 'DELETE') {
      for (const f of this.schema) {
        if (f.mode === 'REQUIRED' && row[f.name] === null) throw new RowError(`root.${f.name}: required field is missing`);
      }
    }
    return { row, changeType: changeType || null, seqText: seq ? seqText : null, seq };
  }

  // Applies validated changes in order (the caller has checked the whole
  // request, so a request is applied entirely or not at all).
  apply(changes) {
    this.counters.appendRequests += 1;
    let plainOnKeyed = 0;
    for (const ch of changes) {
      this.arrival += 1;
      if (!this.primaryKey) {
        this.rows.push(ch.row);
        this.counters.appendedRows += 1;
        continue;
      }
      if (!ch.changeType) plainOnKeyed += 1;
      const type = ch.changeType || 'UPSERT';
      const key = this.keyOf(ch.row);
      const cur = this.keys.get(key);
      // entries keep the sequence number's text; its comparable form is
      // computed again when needed (it was valid when stored)
      const { apply, warning } = cdc.decide(cur && { seq: cur.seqText === null ? null : cdc.sequenceKey(cur.seqText) }, ch);
      if (warning) this.warn(`key ${this.keyText(ch.row)}: ${warning}`);
      if (!apply) {
        this.counters.staleIgnored += 1;
        continue;
      }
      this.keys.set(key, {
        deleted: type === 'DELETE',
        row: type === 'DELETE' ? Object.fromEntries(this.primaryKey.map((c) => [c, ch.row[c]])) : ch.row,
        seqText: ch.seqText,
        arrival: this.arrival,
      });
      this.counters[type === 'DELETE' ? 'deletes' : 'upserts'] += 1;
    }
    if (plainOnKeyed) {
      this.warn(`${plainOnKeyed} row(s) without ${CHANGE_TYPE} appended to a primary-key table were applied as UPSERT without sequence number`);
    }
    this.lastModifiedTime = Date.now();
  }

  currentRows() {
    if (!this.primaryKey) return this.rows.map((r) => project(this.schema, r));
    const cols = this.primaryKey.map((c) => schemaLib.findField(this.schema, c));
    const live = [...this.keys.values()].filter((e) => !e.deleted).map((e) => e.row);
    live.sort((a, b) => {
      for (const c of cols) {
        const d = compareValues(c.type, a[c.name], b[c.name]);
        if (d) return d;
      }
      return 0;
    });
    return live.map((r) => project(this.schema, r));
  }

  tombstones() {
    return [...this.keys.values()].filter((e) => e.deleted)
      .map((e) => ({ key: e.row, sequenceNumber: e.seqText, arrival: e.arrival }));
  }

  numRows() {
    if (!this.primaryKey) return this.rows.length;
    let n = 0;
    for (const e of this.keys.values()) if (!e.deleted) n += 1;
    return n;
  }

  // tables.get resource.
  toResource(location) {
    const res = {
      kind: 'bigquery#table',
      id: `${this.projectId}:${this.datasetId}.${this.tableId}`,
      tableReference: { projectId: this.projectId, datasetId: this.datasetId, tableId: this.tableId },
      type: 'TABLE',
      location,
      schema: { fields: schemaLib.toRestFields(this.schema) },
      creationTime: String(this.creationTime),
      lastModifiedTime: String(this.lastModifiedTime),
      numRows: String(this.numRows()),
      etag: Buffer.from(`${this.tableId}:${this.lastModifiedTime}:${this.schemaVersion}`).toString('base64'),
    };
    if (this.description !== undefined) res.description = this.description;
    if (this.primaryKey) res.tableConstraints = { primaryKey: { columns: this.primaryKey } };
    if (this.clustering) res.clustering = { fields: this.clustering };
    if (this.maxStaleness) res.maxStaleness = this.maxStaleness;
    return res;
  }

  toJSON() {
    const meta = {};
    for (const k of ['projectId', 'datasetId', 'tableId', 'schema', 'primaryKey', 'clustering',
      'maxStaleness', 'description', 'creationTime', 'lastModifiedTime', 'schemaVersion', 'arrival',
      'warnings', 'warningCount', 'counters']) meta[k] = this[k];
    meta.rows = this.rows;
    meta.keys = [...this.keys.values()].map((e) => ({ deleted: e.deleted, row: e.row, seqText: e.seqText, arrival: e.arrival }));
    return meta;
  }

  static fromJSON(j) {
    const t = new Table({});
    Object.assign(t, j);
    t.updateTimes = [];
    t.keys = new Map();
    for (const e of j.keys || []) {
      t.keys.set(t.keyOf(e.row), { deleted: e.deleted, row: e.row, seqText: e.seqText, arrival: e.arrival });
    }
    return t;
  }
}

class Store {
  constructor({ stateFile = null, rateLimit = { max: 5, windowMs: 10000 } } = {}) {
    this.stateFile = stateFile;
    this.rateLimit = rateLimit;
    this.datasets = new Map();
    if (stateFile && fs.existsSync(stateFile)) this.load();
  }

  reset() {
    this.datasets.clear();
    this.save();
  }

  // ---- datasets ----

  dataset(projectId, datasetId) {
    const ds = this.datasets.get(`${projectId}:${datasetId}`);
    if (!ds) throw notFound(`Dataset ${projectId}:${datasetId}`);
    return ds;
  }

  createDataset(projectId, body) {
    const ref = body.datasetReference || {};
    const datasetId = ref.datasetId;
    if (typeof datasetId !== 'string' || !DATASET_ID_RE.test(datasetId)) {
      throw new ApiError(400, 'invalid', `Invalid dataset ID "${datasetId}". Dataset IDs must be alphanumeric (plus underscores) and must be at most 1024 characters long.`);
    }
    if (ref.projectId && ref.projectId !== projectId) {
      throw new ApiError(400, 'invalid', `datasetReference.projectId ${ref.projectId} does not match the project ${projectId} of the request`);
    }
    const key = `${projectId}:${datasetId}`;
    if (this.datasets.has(key)) throw duplicate(`Dataset ${key}`);
    const now = Date.now();
    const ds = {
      projectId, datasetId, location: body.location || 'US', creationTime: now, lastModifiedTime: now, tables: new Map(),
    };
    this.datasets.set(key, ds);
    this.save();
    return ds;
  }

  static datasetResource(ds) {
    return {
      kind: 'bigquery#dataset',
      id: `${ds.projectId}:${ds.datasetId}`,
      datasetReference: { projectId: ds.projectId, datasetId: ds.datasetId },
      location: ds.location,
      creationTime: String(ds.creationTime),
      lastModifiedTime: String(ds.lastModifiedTime),
      etag: Buffer.from(`${ds.datasetId}:${ds.lastModifiedTime}`).toString('base64'),
    };
  }

  // ---- tables ----

  table(projectId, datasetId, tableId) {
    const t = this.dataset(projectId, datasetId).tables.get(tableId);
    if (!t) throw notFound(`Table ${projectId}:${datasetId}.${tableId}`);
    return t;
  }

  findTable(projectId, datasetId, tableId) {
    const ds = this.datasets.get(`${projectId}:${datasetId}`);
    return (ds && ds.tables.get(tableId)) || null;
  }

  createTable(projectId, datasetId, body) {
    const ds = this.dataset(projectId, datasetId);
    const ref = body.tableReference || {};
    const tableId = ref.tableId;
    if (typeof tableId !== 'string' || !TABLE_ID_RE.test(tableId)) {
      throw new ApiError(400, 'invalid', `Invalid table ID "${tableId}".`);
    }
    if ((ref.projectId && ref.projectId !== projectId) || (ref.datasetId && ref.datasetId !== datasetId)) {
      throw new ApiError(400, 'invalid', 'tableReference does not match the dataset of the request');
    }
    if (ds.tables.has(tableId)) throw duplicate(`Table ${projectId}:${datasetId}.${tableId}`);
    const schema = schemaLib.parseSchema(body.schema || { fields: [] });
    const now = Date.now();
    const t = new Table({
      projectId,
      datasetId,
      tableId,
      schema,
      primaryKey: schemaLib.parsePrimaryKey(body.tableConstraints, schema),
      clustering: schemaLib.parseClustering(body.clustering, schema),
      maxStaleness: schemaLib.parseMaxStaleness(body.maxStaleness),
      description: typeof body.description === 'string' ? body.description : undefined,
      creationTime: now,
      lastModifiedTime: now,
      schemaVersion: 1,
    });
    ds.tables.set(tableId, t);
    this.save();
    return t;
  }

  // tables.patch: schema (append-only), description, maxStaleness, clustering.
  patchTable(projectId, datasetId, tableId, body) {
    const t = this.table(projectId, datasetId, tableId);
    this.checkRateLimit(t);
    const where = `${projectId}:${datasetId}.${tableId}`;
    let schema = t.schema;
    if (body.schema !== undefined) {
      schema = schemaLib.parseSchema(body.schema);
      schemaLib.checkSchemaUpdate(t.schema, schema, where);
    }
    if (body.tableConstraints !== undefined) {
      const pk = schemaLib.parsePrimaryKey(body.tableConstraints, schema);
      if (JSON.stringify(pk) !== JSON.stringify(t.primaryKey)) {
        throw new ApiError(400, 'invalid', `Changing the primary key of ${where} is not supported by the fake`);
      }
    }
    const clustering = body.clustering !== undefined ? schemaLib.parseClustering(body.clustering, schema) : t.clustering;
    const maxStaleness = body.maxStaleness !== undefined ? schemaLib.parseMaxStaleness(body.maxStaleness) : t.maxStaleness;
    if (JSON.stringify(schema) !== JSON.stringify(t.schema)) {
      t.schema = schema;
      t.schemaVersion += 1;
    }
    t.clustering = clustering;
    t.maxStaleness = maxStaleness;
    if (typeof body.description === 'string') t.description = body.description;
    t.lastModifiedTime = Date.now();
    t.updateTimes.push(Date.now());
    this.save();
    return t;
  }

  // About 5 table metadata updates per 10 s per table.
  checkRateLimit(t) {
    if (!this.rateLimit) return;
    const now = Date.now();
    t.updateTimes = t.updateTimes.filter((x) => now - x < this.rateLimit.windowMs);
    if (t.updateTimes.length >= this.rateLimit.max) {
      throw new ApiError(403, 'rateLimitExceeded',
        'Exceeded rate limits: too many table update operations for this table. For more information, see https://cloud.google.com/bigquery/docs/troubleshoot-quotas',
        { domain: 'usageLimits', status: 'PERMISSION_DENIED' });
    }
  }

  // ---- listing ----

  listTables() {
    const out = [];
    for (const ds of this.datasets.values()) {
      for (const t of ds.tables.values()) {
        out.push({
          projectId: t.projectId, datasetId: t.datasetId, tableId: t.tableId,
          primaryKey: t.primaryKey, numRows: t.numRows(), schemaVersion: t.schemaVersion,
        });
      }
    }
    return out;
  }

  // ---- persistence ----

  save() {
    if (!this.stateFile) return;
    const j = {
      version: 1,
      datasets: [...this.datasets.values()].map((ds) => ({
        ...ds, tables: [...ds.tables.values()].map((t) => t.toJSON()),
      })),
    };
    const tmp = `${this.stateFile}.tmp`;
    fs.writeFileSync(tmp, JSON.stringify(j));
    fs.renameSync(tmp, this.stateFile);
  }

  load() {
    const j = JSON.parse(fs.readFileSync(this.stateFile, 'utf8'));
    if (j.version !== 1) throw new Error(`${this.stateFile}: unknown state version ${j.version}`);
    for (const d of j.datasets) {
      const tables = new Map(d.tables.map((t) => [t.tableId, Table.fromJSON(t)]));
      this.datasets.set(`${d.projectId}:${d.datasetId}`, { ...d, tables });
    }
  }
}

module.exports = { Store, Table, compareValues, project };
