'use strict';
// Table schemas: validation of REST schema.fields, the type names BigQuery
// accepts and returns, the schema-change rules of tables.patch, and the
// Storage API TableSchema form sent back in AppendRowsResponse.updated_schema.
//
// Internally a field is {name, type, mode, fields?, description?} with the
// GoogleSQL type name (INT64, FLOAT64, BOOL, STRUCT, ...) and mode always set.

const { ApiError } = require('./errors');

// REST type name (standard or legacy) -> internal name.
const TYPE_ALIASES = {
  STRING: 'STRING', BYTES: 'BYTES',
  INTEGER: 'INT64', INT64: 'INT64',
  FLOAT: 'FLOAT64', FLOAT64: 'FLOAT64',
  BOOLEAN: 'BOOL', BOOL: 'BOOL',
  TIMESTAMP: 'TIMESTAMP', DATE: 'DATE', TIME: 'TIME', DATETIME: 'DATETIME',
  NUMERIC: 'NUMERIC', BIGNUMERIC: 'BIGNUMERIC',
  GEOGRAPHY: 'GEOGRAPHY', JSON: 'JSON', INTERVAL: 'INTERVAL',
  RECORD: 'STRUCT', STRUCT: 'STRUCT',
};

// Internal name -> the name tables.get returns (BigQuery answers with the
// legacy names whichever spelling was used to create the column).
const REST_NAMES = {
  INT64: 'INTEGER', FLOAT64: 'FLOAT', BOOL: 'BOOLEAN', STRUCT: 'RECORD',
};

// Internal name -> google.cloud.bigquery.storage.v1.TableFieldSchema.Type.
const STORAGE_TYPES = {
  STRING: 'STRING', INT64: 'INT64', FLOAT64: 'DOUBLE', STRUCT: 'STRUCT',
  BYTES: 'BYTES', BOOL: 'BOOL', TIMESTAMP: 'TIMESTAMP', DATE: 'DATE',
  TIME: 'TIME', DATETIME: 'DATETIME', GEOGRAPHY: 'GEOGRAPHY',
  NUMERIC: 'NUMERIC', BIGNUMERIC: 'BIGNUMERIC', INTERVAL: 'INTERVAL', JSON: 'JSON',
};

const MODES = ['NULLABLE', 'REQUIRED', 'REPEATED'];
const MAX_NESTING = 15;
const MAX_PRIMARY_KEY_COLUMNS = 16;
const MAX_CLUSTERING_FIELDS = 4;

// Flexible column names: letters, marks, numbers, connectors, dashes, spaces
// and & % = + : ' < > # |, at most 300 characters; some prefixes are reserved.
const COLUMN_NAME_RE = /^[\p{L}\p{M}\p{N}\p{Pc}\p{Pd}\p{Zs}&%=+:'<>#|]{1,300}$/u;
const RESERVED_PREFIXES = ['_TABLE_', '_FILE_', '_PARTITION', '_ROW_TIMESTAMP',
  '__ROOT__', '_COLIDENTIFIER', '_CHANGE_'];

function invalid(message) {
  return new ApiError(400, 'invalid', message);
}

function lower(s) {
  return s.toLowerCase();
}

function normalizeFields(fields, where, depth) {
  if (!Array.isArray(fields)) throw invalid(`${where}: fields must be an array`);
  if (depth > MAX_NESTING) throw invalid(`${where}: nesting deeper than ${MAX_NESTING} levels`);
  const seen = new Set();
  return fields.map((f) => {
    if (!f || typeof f !== 'object') throw invalid(`${where}: a field must be an object`);
    const name = f.name;
    if (typeof name !== 'string' || !COLUMN_NAME_RE.test(name)) {
      throw invalid(`Invalid field name "${name}". Fields must contain the allowed characters, and be at most 300 characters long.`);
    }
    const upper = name.toUpperCase();
    if (RESERVED_PREFIXES.some((p) => upper.startsWith(p))) {
      throw invalid(`Invalid field name "${name}": the prefix is reserved.`);
    }
    if (seen.has(lower(name))) throw invalid(`Field ${name} already exists in schema`);
    seen.add(lower(name));
    const type = TYPE_ALIASES[String(f.type || '').toUpperCase()];
    if (!type) throw invalid(`Invalid value for type: ${f.type} is not a valid value`);
    const mode = f.mode === undefined || f.mode === null ? 'NULLABLE' : String(f.mode).toUpperCase();
    if (!MODES.includes(mode)) throw invalid(`Invalid value for mode: ${f.mode} is not a valid value`);
    const out = { name, type, mode };
    if (type === 'STRUCT') {
      if (!Array.isArray(f.fields) || f.fields.length === 0) {
        throw invalid(`Field ${name} is type RECORD but has no schema`);
      }
      out.fields = normalizeFields(f.fields, `${where}.${name}`, depth + 1);
    } else if (f.fields && f.fields.length) {
      throw invalid(`Field ${name} is type ${f.type} and cannot have sub-fields`);
    }
    if (typeof f.description === 'string') out.description = f.description;
    return out;
  });
}

// Validates a REST TableSchema ({fields: [...]}) and returns internal fields.
function parseSchema(schema) {
  if (!schema || typeof schema !== 'object') throw invalid('Schema is required');
  return normalizeFields(schema.fields || [], 'schema', 1);
}

function findField(fields, name) {
  const l = lower(name);
  return fields.find((f) => lower(f.name) === l) || null;
}

// Primary key column list -> names spelled as in the schema.
function parsePrimaryKey(constraints, fields) {
  const pk = constraints && constraints.primaryKey;
  if (!pk) return null;
  const cols = pk.columns;
  if (!Array.isArray(cols) || cols.length === 0) throw invalid('primaryKey.columns must name at least one column');
  if (cols.length > MAX_PRIMARY_KEY_COLUMNS) {
    throw invalid(`A primary key can have at most ${MAX_PRIMARY_KEY_COLUMNS} columns`);
  }
  const seen = new Set();
  return cols.map((c) => {
    const f = typeof c === 'string' ? findField(fields, c) : null;
    if (!f) throw invalid(`Primary key column ${c} is not in the table schema`);
    if (seen.has(lower(f.name))) throw invalid(`Primary key column ${c} is listed twice`);
    seen.add(lower(f.name));
    if (f.mode === 'REPEATED') throw invalid(`Primary key column ${f.name} cannot be REPEATED`);
    if (['STRUCT', 'JSON', 'GEOGRAPHY'].includes(f.type)) {
      throw invalid(`Primary key column ${f.name} has unsupported type ${f.type}`);
    }
    return f.name;
  });
}

function parseClustering(clustering, fields) {
  if (!clustering) return null;
  const cols = clustering.fields;
  if (!Array.isArray(cols) || cols.length === 0 || cols.length > MAX_CLUSTERING_FIELDS) {
    throw invalid(`clustering.fields must list 1 to ${MAX_CLUSTERING_FIELDS} columns`);
  }
  return cols.map((c) => {
    const f = typeof c === 'string' ? findField(fields, c) : null;
    if (!f) throw invalid(`The field specified for clustering cannot be found in the schema. Invalid field: ${c}`);
    if (f.mode === 'REPEATED' || f.type === 'STRUCT' || f.type === 'JSON') {
      throw invalid(`Field ${f.name} of type ${f.type} (${f.mode}) cannot be used for clustering`);
    }
    return f.name;
  });
}

// maxStaleness is an INTERVAL in canonical form, e.g. "0-0 0 0:15:0".
const INTERVAL_RE = /^([+-]?\d+)-(\d+) ([+-]?\d+) ([+-]?\d+):(\d+):(\d+)(\.\d{1,6})?$/;
function parseMaxStaleness(v) {
  if (v === undefined || v === null) return null;
  if (typeof v !== 'string' || !INTERVAL_RE.test(v)) {
    throw invalid(`Invalid maxStaleness "${v}": expected an INTERVAL like "0-0 0 0:15:0"`);
  }
  return v;
}

// tables.patch schema rules: every existing field stays, in order, with its
// name and type; a REQUIRED field may be relaxed to NULLABLE; new fields go
// after the existing ones and must be NULLABLE or REPEATED; a RECORD follows
// the same rules for its sub-fields.
function checkSchemaUpdate(oldFields, newFields, where) {
  if (newFields.length < oldFields.length) {
    const missing = oldFields.slice(newFields.length).map((f) => f.name).join(', ');
    throw invalid(`Provided Schema does not match Table ${where}. Field ${missing} is missing in new schema`);
  }
  oldFields.forEach((o, i) => {
    const n = newFields[i];
    if (n.name !== o.name) {
      throw invalid(`Provided Schema does not match Table ${where}. Field ${o.name} is missing in new schema (found ${n.name} at its position)`);
    }
    if (n.type !== o.type) {
      throw invalid(`Provided Schema does not match Table ${where}. Field ${o.name} has changed type from ${restType(o.type)} to ${restType(n.type)}`);
    }
    const relaxed = o.mode === 'REQUIRED' && n.mode === 'NULLABLE';
    if (n.mode !== o.mode && !relaxed) {
      throw invalid(`Provided Schema does not match Table ${where}. Field ${o.name} has changed mode from ${o.mode} to ${n.mode}`);
    }
    if (o.type === 'STRUCT') checkSchemaUpdate(o.fields, n.fields, `${where}.${o.name}`);
  });
  for (const n of newFields.slice(oldFields.length)) {
    if (n.mode === 'REQUIRED') {
      throw invalid(`Provided Schema does not match Table ${where}. Cannot add required field ${n.name} to an existing schema`);
    }
  }
}

function restType(t) {
  return REST_NAMES[t] || t;
}

function toRestFields(fields) {
  return fields.map((f) => {
    const out = { name: f.name, type: restType(f.type), mode: f.mode };
    if (f.fields) out.fields = toRestFields(f.fields);
    if (f.description !== undefined) out.description = f.description;
    return out;
  });
}

// google.cloud.bigquery.storage.v1.TableSchema as a proto-loader object.
function toStorageSchema(fields) {
  const conv = (fs) => fs.map((f) => {
    const out = { name: f.name, type: STORAGE_TYPES[f.type], mode: f.mode };
    if (f.fields) out.fields = conv(f.fields);
    return out;
  });
  return { fields: conv(fields) };
}

module.exports = {
  parseSchema,
  parsePrimaryKey,
  parseClustering,
  parseMaxStaleness,
  checkSchemaUpdate,
  findField,
  toRestFields,
  toStorageSchema,
  restType,
  INTERVAL_RE,
};
