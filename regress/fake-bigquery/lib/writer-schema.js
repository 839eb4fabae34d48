'use strict';
// The writer schema of an AppendRows call: a google.protobuf.DescriptorProto
// (as proto-loader decodes it) turned into a protobufjs Type that decodes the
// serialized rows, plus a plan matching each proto field to a table column
// (by the column_name field option, else the field name; case-insensitively,
// as BigQuery column names are) or to a CDC pseudo-column.

const protobuf = require('protobufjs');
const { COLUMN_NAME_OPTION } = require('./protos');
const { isCompatible, convertScalar, valueConverter, decodeUtf8, ValueError } = require('./values');
const { restType } = require('./schema');

const CHANGE_TYPE = '_CHANGE_TYPE';
const CHANGE_SEQUENCE_NUMBER = '_CHANGE_SEQUENCE_NUMBER';
const PSEUDO_COLUMNS = [CHANGE_TYPE, CHANGE_SEQUENCE_NUMBER];

// A writer schema the table cannot take: the request is answered with an
// in-band INVALID_ARGUMENT. extraFields is set for columns the table lacks
// (StorageError SCHEMA_MISMATCH_EXTRA_FIELDS).
class SchemaError extends Error {
  constructor(message, extraFields = null) {
    super(message);
    this.extraFields = extraFields;
  }
}

const SCALAR_TYPES = {
  TYPE_DOUBLE: 'double', TYPE_FLOAT: 'float', TYPE_INT64: 'int64', TYPE_UINT64: 'uint64',
  TYPE_INT32: 'int32', TYPE_FIXED64: 'fixed64', TYPE_FIXED32: 'fixed32', TYPE_BOOL: 'bool',
  TYPE_STRING: 'string', TYPE_BYTES: 'bytes', TYPE_UINT32: 'uint32', TYPE_SFIXED32: 'sfixed32',
  TYPE_SFIXED64: 'sfixed64', TYPE_SINT32: 'sint32', TYPE_SINT64: 'sint64',
};
const FIELD_NAME_RE = /^[A-Za-z_][A-Za-z0-9_]*$/;
const MAX_FIELD_NUMBER = 536870911;

// ---- DescriptorProto -> protobufjs ----

// proto-loader takes google/protobuf/descriptor.proto from protobufjs's
// bundled copy, whose field names are camelCase even with keepCase, so read
// either spelling.
function member(o, snake) {
  if (o[snake] !== undefined) return o[snake];
  return o[snake.replace(/_([a-z])/g, (_m, c) => c.toUpperCase())];
}

// Full names ("Top", "Top.Nested", ...) of every message and enum, for
// resolving type_name the way protoc does in a file without a package.
function collectNames(dp, prefix, names) {
  const full = prefix ? `${prefix}.${dp.name}` : dp.name;
  names.set(full, { kind: 'message', dp });
  for (const e of member(dp, 'enum_type') || []) names.set(`${full}.${e.name}`, { kind: 'enum', dp: e });
  for (const n of member(dp, 'nested_type') || []) collectNames(n, full, names);
}

function resolveTypeName(typeName, scope, names) {
  if (typeName.startsWith('.')) {
    const n = typeName.slice(1);
    return names.has(n) ? n : null;
  }
  const parts = scope.split('.');
  for (let i = parts.length; i >= 0; i -= 1) {
    const candidate = [...parts.slice(0, i), typeName].join('.');
    if (names.has(candidate)) return candidate;
  }
  return null;
}

function buildEnum(ed) {
  const values = {};
  for (const v of ed.value || []) values[v.name] = v.number;
  return new protobuf.Enum(ed.name, values);
}

function buildType(dp, full, names, info) {
  if (!dp.name || !FIELD_NAME_RE.test(dp.name)) throw new SchemaError(`Invalid proto schema: bad message name "${dp.name}"`);
  const type = new protobuf.Type(dp.name);
  const seenNames = new Set();
  const seenNumbers = new Set();
  for (const f of dp.field || []) {
    if (!f.name || !FIELD_NAME_RE.test(f.name) || seenNames.has(f.name)) {
      throw new SchemaError(`Invalid proto schema: bad or duplicate field name "${f.name}" in ${full}`);
    }
    const num = Number(f.number);
    if (!Number.isInteger(num) || num < 1 || num > MAX_FIELD_NUMBER || (num >= 19000 && num <= 19999) || seenNumbers.has(num)) {
      throw new SchemaError(`Invalid proto schema: bad or duplicate field number ${f.number} for ${full}.${f.name}`);
    }
    seenNames.add(f.name);
    seenNumbers.add(num);
    let protoType;
    let pbType;
    if (f.type === 'TYPE_MESSAGE' || f.type === 'TYPE_ENUM') {
      const typeName = member(f, 'type_name') || '';
      const target = resolveTypeName(typeName, full, names);
      const want = f.type === 'TYPE_MESSAGE' ? 'message' : 'enum';
      if (!target || names.get(target).kind !== want) {
        throw new SchemaError(`Invalid proto schema: ${full}.${f.name} refers to unknown ${want} type "${typeName}" (the descriptor must be self-contained)`);
      }
      protoType = want;
      pbType = `.${target}`;
    } else if (SCALAR_TYPES[f.type]) {
      protoType = SCALAR_TYPES[f.type];
      // Strings are decoded as bytes so invalid UTF-8 is caught, not replaced.
      pbType = protoType === 'string' ? 'bytes' : protoType;
    } else {
      throw new SchemaError(`Invalid proto schema: ${full}.${f.name} has unsupported type ${f.type}`);
    }
    const rule = { LABEL_REPEATED: 'repeated', LABEL_REQUIRED: 'required' }[f.label];
    type.add(new protobuf.Field(f.name, num, pbType, rule));
    info.set(`${full}.${f.name}`, { descriptor: f, protoType, target: pbType.startsWith('.') ? pbType.slice(1) : null });
  }
  for (const e of member(dp, 'enum_type') || []) type.add(buildEnum(e));
  for (const n of member(dp, 'nested_type') || []) type.add(buildType(n, `${full}.${n.name}`, names, info));
  return type;
}

// ---- plan: proto fields -> table columns ----

function columnNameOf(fd) {
  const opt = fd.options && member(fd.options, COLUMN_NAME_OPTION);
  return typeof opt === 'string' && opt !== '' ? opt : fd.name;
}

function planMessage(root, msgName, columns, info, path, topLevel) {
  const type = root.lookupType(msgName);
  const fields = [];
  const used = new Map();
  const extra = [];
  for (const field of type.fieldsArray) {
    const fi = info.get(`${msgName}.${field.name}`);
    const colName = columnNameOf(fi.descriptor);
    const where = `${path}.${colName}`;
    const repeated = field.repeated;
    const pseudo = topLevel ? PSEUDO_COLUMNS.find((p) => p.toLowerCase() === colName.toLowerCase()) : null;
    const col = pseudo ? null : columns.find((c) => c.name.toLowerCase() === colName.toLowerCase());
    if (!pseudo && !col) { extra.push(colName); continue; }
    const key = (pseudo || col.name).toLowerCase();
    if (used.has(key)) throw new SchemaError(`Invalid proto schema: fields ${used.get(key)} and ${field.name} both map to column ${pseudo || col.name}`);
    used.set(key, field.name);
    if (pseudo) {
      if (fi.protoType !== 'string' || repeated) {
        throw new SchemaError(`The proto field for ${pseudo} must be a non-repeated string, got ${repeated ? 'repeated ' : ''}${fi.protoType}`);
      }
      fields.push({ protoName: field.name, pseudo, protoType: 'string' });
      continue;
    }
    if (!isCompatible(col.type, fi.protoType)) {
      throw new SchemaError(`The proto field mismatched with BigQuery field at ${where}, the proto field type ${fi.protoType}, BigQuery field type ${restType(col.type)}`);
    }
    if (repeated !== (col.mode === 'REPEATED')) {
      throw new SchemaError(`The proto field mismatched with BigQuery field at ${where}: proto field is ${repeated ? '' : 'not '}repeated, BigQuery field mode is ${col.mode}`);
    }
    const entry = { protoName: field.name, column: col, protoType: fi.protoType, repeated };
    if (fi.protoType === 'enum') entry.enumType = root.lookupEnum(fi.target);
    if (col.type === 'STRUCT') entry.sub = planMessage(root, fi.target, col.fields, info, where, false);
    fields.push(entry);
  }
  if (extra.length) {
    throw new SchemaError(`Input schema has more fields than BigQuery schema, extra fields: '${extra.map((e) => `${path}.${e}`).join(',')}'`, extra);
  }
  return { fields, columns };
}

// Compiles a writer schema against a table. Throws SchemaError.
function compileWriterSchema(descriptor, table) {
  if (!descriptor || !descriptor.name) throw new SchemaError('Invalid proto schema: proto_descriptor is missing or has no name');
  const names = new Map();
  collectNames(descriptor, '', names);
  const info = new Map();
  const root = new protobuf.Root();
  try {
    root.add(buildType(descriptor, descriptor.name, names, info));
    root.resolveAll();
  } catch (e) {
    if (e instanceof SchemaError) throw e;
    throw new SchemaError(`Invalid proto schema: ${e.message}`);
  }
  const plan = planMessage(root, descriptor.name, table.schema, info, 'root', true);
  const pseudo = new Set(plan.fields.filter((f) => f.pseudo).map((f) => f.pseudo));
  if (pseudo.has(CHANGE_SEQUENCE_NUMBER) && !pseudo.has(CHANGE_TYPE)) {
    throw new SchemaError(`${CHANGE_SEQUENCE_NUMBER} requires ${CHANGE_TYPE} in the writer schema`);
  }
  if (pseudo.has(CHANGE_TYPE) && !table.primaryKey) {
    throw new SchemaError(`${CHANGE_TYPE} (UPSERT/DELETE) requires a table with a primary key; ${table.tableId} has none`);
  }
  const type = root.lookupType(descriptor.name);
  return { type, plan, fast: fastPlan(type, plan) };
}

// ---- fast row decoding ----
//
// For the common writer schema (only optional, non-repeated scalar fields:
// integers, bool, double/float, string, bytes) rows are read straight from
// the wire, without a protobufjs message, Long or Buffer per field. It gives
// exactly what the protobufjs decoder plus convertMessage give: the same
// values, presence, last-occurrence-wins for repeated occurrences, and the
// same row errors in the same order. Anything unusual (an unknown field, an
// unexpected wire type, a truncated or oversized varint, a length past the
// end) makes it give up, and the row takes the protobufjs path, which then
// decides (and words any parse error) as before.

const WIRE_TYPES = { int32: 0, uint32: 0, bool: 0, int64: 0, uint64: 0, double: 1, float: 5, string: 2, bytes: 2 };
const MAX_INDEXED_FIELD = 4096;

function fastPlan(type, plan) {
  const entries = [];
  let byNumber = [];
  for (const field of type.fieldsArray) {
    if (field.repeated || field.required || field.map || field.resolvedType) return null;
  }
  for (const entry of plan.fields) {
    const field = type.fields[entry.protoName];
    const wire = WIRE_TYPES[entry.protoType];
    if (wire === undefined || entry.repeated || entry.sub) return null;
    entries.push({
      id: field.id,
      wire,
      protoType: entry.protoType,
      pseudo: entry.pseudo || null,
      name: entry.pseudo ? null : entry.column.name,
      convert: entry.pseudo ? null : valueConverter(entry.column.type, entry.protoType, undefined),
      where: `root.${entry.column ? entry.column.name : entry.pseudo}`,
    });
  }
  if (entries.length !== type.fieldsArray.length) return null;
  const maxId = Math.max(0, ...entries.map((e) => e.id));
  if (maxId > MAX_INDEXED_FIELD) return null;
  byNumber = new Array(maxId + 1).fill(-1);
  entries.forEach((e, i) => { byNumber[e.id] = i; });
  // scratch arrays for one row (decoding is synchronous)
  return { entries, byNumber, columns: plan.columns, vals: new Array(entries.length), ends: new Array(entries.length) };
}

let pos = 0; // read position of the fast decoder

// A varint of at most 5 bytes below 2^32 (what protobufjs's uint32() reads
// the same way), else -1.
function varint32(buf) {
  let v = 0;
  for (let shift = 0; shift < 28; shift += 7) {
    if (pos >= buf.length) return -1;
    const b = buf[pos++];
    v |= (b & 0x7f) << shift;
    if (b < 0x80) return v;
  }
  if (pos >= buf.length) return -1;
  const b = buf[pos++];
  return b > 0x0f ? -1 : v + b * 268435456;
}

// A 64-bit varint: a Number when below 2^53, else a BigInt (signed: as int64),
// or undefined when malformed (more than 10 bytes, or bits past 64).
function varint64(buf, signed) {
  const start = pos;
  let v = 0;
  let mul = 1;
  for (let i = 0; i < 8; i += 1) {
    if (pos >= buf.length) return undefined;
    const b = buf[pos++];
    if (i === 7) {
      if (b < 0x10) return v + b * mul; // 8 bytes, below 2^53
      break;
    }
    v += (b & 0x7f) * mul;
    if (b < 0x80) return v;
    mul *= 128;
  }
  pos = start;
  let x = 0n;
  for (let i = 0; i < 10; i += 1) {
    if (pos >= buf.length) return undefined;
    const b = buf[pos++];
    if (i === 9 && b > 1) return undefined;
    x |= BigInt(b & 0x7f) << BigInt(7 * i);
    if (b < 0x80) return signed ? BigInt.asIntN(64, x) : x;
  }
  return undefined;
}

// Valid UTF-8 -> string, as decodeUtf8 (TextDecoder, fatal) does; the
// lenient decoder gives the same string unless it had to put in U+FFFD or
// the text starts with a BOM (TextDecoder drops it): then decodeUtf8 decides.
function utf8At(buf, start, end) {
  const s = buf.utf8Slice(start, end); // buf.toString('utf8', start, end)
  if (s.indexOf('\uFFFD') === -1 && s.charCodeAt(0) !== 0xFEFF) return s;
  return decodeUtf8(buf.subarray(start, end));
}

// Serialized row -> {row, pseudo} like decodeRow, or null to use protobufjs.
function fastDecodeRow(fp, buf) {
  const { entries, byNumber, vals, ends } = fp;
  vals.fill(undefined); // ends[i] is read only where vals[i] is set
  pos = 0;
  const len = buf.length;
  while (pos < len) {
    const tag = varint32(buf);
    if (tag < 0) return null;
    const id = tag >>> 3;
    const i = id < byNumber.length ? byNumber[id] : -1;
    if (i < 0) return null;
    const e = entries[i];
    if ((tag & 7) !== e.wire) return null;
    switch (e.protoType) {
      case 'string':
      case 'bytes': {
        const n = varint32(buf);
        if (n < 0 || pos + n > len) return null;
        vals[i] = pos;
        ends[i] = pos + n;
        pos += n;
        break;
      }
      case 'int64':
      case 'uint64': {
        const v = varint64(buf, e.protoType === 'int64');
        if (v === undefined) return null;
        vals[i] = v;
        break;
      }
      case 'double':
        if (pos + 8 > len) return null;
        vals[i] = buf.readDoubleLE(pos);
        pos += 8;
        break;
      case 'float':
        if (pos + 4 > len) return null;
        vals[i] = buf.readFloatLE(pos);
        pos += 4;
        break;
      default: { // int32, uint32, bool
        const v = varint32(buf);
        if (v < 0) return null;
        vals[i] = e.protoType === 'int32' ? v | 0 : e.protoType === 'bool' ? v !== 0 : v;
      }
    }
  }
  const row = {};
  const pseudo = {};
  for (let i = 0; i < entries.length; i += 1) {
    const e = entries[i];
    let v = vals[i];
    if (e.pseudo) {
      pseudo[e.pseudo] = v === undefined ? null : utf8ForPseudo(buf, v, ends[i]);
      continue;
    }
    if (v === undefined) continue;
    try {
      if (e.protoType === 'string') v = utf8At(buf, v, ends[i]);
      else if (e.protoType === 'bytes') v = buf.subarray(v, ends[i]);
      v = e.convert(v); // convertValue(column type, proto type, v)
      row[e.name] = typeof v === 'string' && v.length >= 13 ? flat(v) : v;
    } catch (err) {
      if (err instanceof ValueError) throw new RowError(`${e.where}: ${err.message}`);
      throw err;
    }
  }
  for (const c of fp.columns) {
    if (row[c.name] === undefined) row[c.name] = c.mode === 'REPEATED' ? [] : null;
  }
  return { row, pseudo };
}

// Stored values live long: a string built by concatenation (a tree of
// pieces in V8) is flattened in place (charCodeAt does it), which keeps one
// piece of memory per value instead of several. The value is unchanged.
function flat(s) {
  s.charCodeAt(0);
  return s;
}

// the bytes at buf[at..at+6) are the ASCII word (6 letters)
function isWord6(buf, at, word) {
  for (let k = 0; k < 6; k += 1) if (buf[at + k] !== word.charCodeAt(k)) return false;
  return true;
}

function utf8ForPseudo(buf, start, end) {
  if (end - start === 6) { // the usual _CHANGE_TYPE values, without a new string
    if (isWord6(buf, start, 'UPSERT')) return 'UPSERT';
    if (isWord6(buf, start, 'DELETE')) return 'DELETE';
  }
  try {
    return utf8At(buf, start, end);
  } catch (err) {
    if (err instanceof ValueError) throw new RowError(err.message);
    throw err;
  }
}

// ---- rows ----

class RowError extends Error {}

function has(msg, name) {
  return Object.prototype.hasOwnProperty.call(msg, name);
}

function convertField(entry, v, where) {
  try {
    if (entry.sub) return convertMessage(entry.sub, v, where, true);
    return convertScalar(entry.column.type, entry.protoType, v, entry.enumType);
  } catch (e) {
    if (e instanceof ValueError) throw new RowError(`${where}: ${e.message}`);
    throw e;
  }
}

// Decoded message -> {row, pseudo}. Every column of the message's table level
// is present in row: unset columns are null (REPEATED: []). REQUIRED columns
// are checked here for nested records, and by the caller for the top level
// (a DELETE needs only its key).
function convertMessage(plan, msg, path, checkRequired) {
  const row = {};
  const pseudo = {};
  for (const entry of plan.fields) {
    const where = `${path}.${entry.column ? entry.column.name : entry.pseudo}`;
    if (entry.pseudo) {
      pseudo[entry.pseudo] = has(msg, entry.protoName) ? convertScalar('STRING', 'string', msg[entry.protoName]) : null;
    } else if (entry.repeated) {
      row[entry.column.name] = (msg[entry.protoName] || []).map((v) => convertField(entry, v, where));
    } else if (has(msg, entry.protoName)) {
      row[entry.column.name] = convertField(entry, msg[entry.protoName], where);
    }
  }
  for (const c of plan.columns) {
    if (row[c.name] === undefined) row[c.name] = c.mode === 'REPEATED' ? [] : null;
    if (checkRequired && c.mode === 'REQUIRED' && row[c.name] === null) {
      throw new RowError(`${path}.${c.name}: required field is missing`);
    }
  }
  return checkRequired ? row : { row, pseudo };
}

// Serialized row -> {row, pseudo}; throws RowError.
function decodeRow(compiled, buf) {
  if (compiled.fast) {
    const r = fastDecodeRow(compiled.fast, buf);
    if (r !== null) return r;
  }
  let msg;
  try {
    msg = compiled.type.decode(buf);
  } catch (e) {
    throw new RowError(`Could not parse the serialized row as ${compiled.type.name}: ${e.message}`);
  }
  try {
    return convertMessage(compiled.plan, msg, 'root', false);
  } catch (e) {
    if (e instanceof ValueError) throw new RowError(e.message);
    throw e;
  }
}

module.exports = {
  compileWriterSchema,
  decodeRow,
  SchemaError,
  RowError,
  CHANGE_TYPE,
  CHANGE_SEQUENCE_NUMBER,
};
