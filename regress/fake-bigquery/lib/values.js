'use strict';
// Converting decoded protobuf values into BigQuery values in the fake's
// canonical JSON form (see README.md, "Canonical row format"), following
// Google's "Supported protocol buffer data types" table for the Storage Write
// API. Anything outside that table, out of range or malformed is a ValueError,
// which the caller reports as a row error.

const { INTERVAL_RE } = require('./schema');

class ValueError extends Error {}

// Protobuf types each BigQuery type accepts (Google's table; the fake does not
// take the google.protobuf wrapper and Timestamp/Duration well-known types,
// which a self-contained writer descriptor cannot reference anyway).
const COMPATIBLE = {
  BOOL: ['bool', 'int32', 'int64', 'uint32', 'uint64'],
  BYTES: ['bytes', 'string'],
  DATE: ['int32', 'int64', 'string'],
  DATETIME: ['string', 'int64'],
  TIME: ['string', 'int64'],
  FLOAT64: ['double', 'float'],
  GEOGRAPHY: ['string'],
  INT64: ['int32', 'int64', 'uint32', 'enum'],
  JSON: ['string'],
  NUMERIC: ['int32', 'int64', 'uint32', 'uint64', 'double', 'float', 'string', 'bytes'],
  BIGNUMERIC: ['int32', 'int64', 'uint32', 'uint64', 'double', 'float', 'string', 'bytes'],
  STRING: ['string', 'enum'],
  TIMESTAMP: ['int64', 'int32', 'uint32'],
  INTERVAL: ['string'],
  STRUCT: ['message'],
};

function isCompatible(bqType, protoType) {
  return (COMPATIBLE[bqType] || []).includes(protoType);
}

const utf8 = new TextDecoder('utf-8', { fatal: true });
function decodeUtf8(buf) {
  try {
    return utf8.decode(buf);
  } catch (_e) {
    throw new ValueError('invalid UTF-8 in string field');
  }
}

function toBigInt(v) {
  if (typeof v === 'bigint') return v;
  if (typeof v === 'number') return BigInt(v);
  if (typeof v.low === 'number' && typeof v.high === 'number') { // Long, without its slow toString
    const b = (BigInt(v.high >>> 0) << 32n) | BigInt(v.low >>> 0);
    return v.unsigned ? b : BigInt.asIntN(64, b);
  }
  return BigInt(v.toString()); // Long or decimal string
}

const pad = (n, w) => String(n).padStart(w, '0');

// ---- calendar (proleptic Gregorian, H. Hinnant's days_from_civil) ----

function daysFromCivil(y, m, d) {
  y -= m <= 2 ? 1 : 0;
  const era = Math.floor(y / 400);
  const yoe = y - era * 400;
  const doy = Math.floor((153 * (m + (m > 2 ? -3 : 9)) + 2) / 5) + d - 1;
  const doe = yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy;
  return era * 146097 + doe - 719468;
}

function civilFromDays(z) {
  z += 719468;
  const era = Math.floor(z / 146097);
  const doe = z - era * 146097;
  const yoe = Math.floor((doe - Math.floor(doe / 1460) + Math.floor(doe / 36524) - Math.floor(doe / 146096)) / 365);
  const doy = doe - (365 * yoe + Math.floor(yoe / 4) - Math.floor(yoe / 100));
  const mp = Math.floor((5 * doy + 2) / 153);
  const d = doy - Math.floor((153 * mp + 2) / 5) + 1;
  const m = mp + (mp < 10 ? 3 : -9);
  return [era * 400 + yoe + (m <= 2 ? 1 : 0), m, d];
}

const MIN_DATE_DAYS = -719162; // 0001-01-01
const MAX_DATE_DAYS = 2932896; // 9999-12-31

function checkCivilDate(y, m, d) {
  if (y < 1 || y > 9999 || m < 1 || m > 12 || d < 1) return false;
  const [y2, m2, d2] = civilFromDays(daysFromCivil(y, m, d));
  return y2 === y && m2 === m && d2 === d;
}

function formatDate(days) {
  if (!Number.isSafeInteger(days) || days < MIN_DATE_DAYS || days > MAX_DATE_DAYS) {
    throw new ValueError(`DATE ${days} days is outside 0001-01-01..9999-12-31 (${MIN_DATE_DAYS}..${MAX_DATE_DAYS})`);
  }
  const [y, m, d] = civilFromDays(days);
  return `${pad(y, 4)}-${pad(m, 2)}-${pad(d, 2)}`;
}

function parseDateParts(s, what) {
  const y = Number(s[0]); const m = Number(s[1]); const d = Number(s[2]);
  if (!checkCivilDate(y, m, d)) throw new ValueError(`invalid ${what}: no such date`);
  return `${pad(y, 4)}-${pad(m, 2)}-${pad(d, 2)}`;
}

function formatTimeParts(h, mi, s, micros, what) {
  if (h > 23 || mi > 59 || s > 59 || micros > 999999) throw new ValueError(`invalid ${what}: time of day out of range`);
  return `${pad(h, 2)}:${pad(mi, 2)}:${pad(s, 2)}.${pad(micros, 6)}`;
}

const fracMicros = (f) => (f ? Number(f.padEnd(6, '0')) : 0);

const DATE_RE = /^(\d{4})-(\d{1,2})-(\d{1,2})$/;
const TIME_RE = /^(\d{1,2}):(\d{1,2}):(\d{1,2})(?:\.(\d{1,6}))?$/;
const DATETIME_RE = /^(\d{4})-(\d{1,2})-(\d{1,2})(?:[Tt ](\d{1,2}):(\d{1,2}):(\d{1,2})(?:\.(\d{1,6}))?)?$/;

function parseDateLiteral(str) {
  const m = DATE_RE.exec(str);
  if (!m) throw new ValueError(`invalid DATE literal "${str}"`);
  return parseDateParts(m.slice(1, 4), `DATE "${str}"`);
}

function parseTimeLiteral(str) {
  const m = TIME_RE.exec(str);
  if (!m) throw new ValueError(`invalid TIME literal "${str}"`);
  return formatTimeParts(+m[1], +m[2], +m[3], fracMicros(m[4]), `TIME "${str}"`);
}

function parseDatetimeLiteral(str) {
  const m = DATETIME_RE.exec(str);
  if (!m) throw new ValueError(`invalid DATETIME literal "${str}"`);
  const date = parseDateParts(m.slice(1, 4), `DATETIME "${str}"`);
  const time = m[4] === undefined ? '00:00:00.000000'
    : formatTimeParts(+m[4], +m[5], +m[6], fracMicros(m[7]), `DATETIME "${str}"`);
  return `${date}T${time}`;
}

// CivilTimeEncoder packed int64 forms (TIME: hour<<32|minute<<26|second<<20|
// micros; DATETIME adds day<<37, month<<42, year<<46).
function decodePackedTime(v, what) {
  const b = toBigInt(v);
  if (b < 0n || b >> 37n !== 0n) throw new ValueError(`invalid packed ${what} ${b}`);
  const bits = (shift, width) => Number((b >> BigInt(shift)) & ((1n << BigInt(width)) - 1n));
  return [bits(32, 5), bits(26, 6), bits(20, 6), bits(0, 20)];
}

function decodePackedDatetime(v) {
  const b = toBigInt(v);
  if (b < 0n || b >> 60n !== 0n) throw new ValueError(`invalid packed DATETIME ${b}`);
  const y = Number(b >> 46n); const mo = Number((b >> 42n) & 15n); const d = Number((b >> 37n) & 31n);
  if (!checkCivilDate(y, mo, d)) throw new ValueError(`invalid packed DATETIME ${b}: no such date`);
  const [h, mi, s, us] = decodePackedTime(b & ((1n << 37n) - 1n), 'DATETIME');
  return `${pad(y, 4)}-${pad(mo, 2)}-${pad(d, 2)}T${formatTimeParts(h, mi, s, us, 'DATETIME')}`;
}

const MIN_TIMESTAMP_MICROS = -62135596800000000n; // 0001-01-01 00:00:00 UTC
const MAX_TIMESTAMP_MICROS = 253402300799999999n; // 9999-12-31 23:59:59.999999 UTC

// The same for microseconds given as a safe integer (every safe integer is in
// range), in exact Number arithmetic.
function formatTimestampSafe(us) {
  let frac = us % 1000000;
  let secs = (us - frac) / 1000000;
  if (frac < 0) { frac += 1000000; secs -= 1; }
  let sod = secs % 86400;
  let days = (secs - sod) / 86400;
  if (sod < 0) { sod += 86400; days -= 1; }
  // civilFromDays(days) without its array; years 1685..2255: always 4 digits
  const z = days + 719468;
  const era = Math.floor(z / 146097);
  const doe = z - era * 146097;
  const yoe = Math.floor((doe - Math.floor(doe / 1460) + Math.floor(doe / 36524) - Math.floor(doe / 146096)) / 365);
  const doy = doe - (365 * yoe + Math.floor(yoe / 4) - Math.floor(yoe / 100));
  const mp = Math.floor((5 * doy + 2) / 153);
  const m = mp + (mp < 10 ? 3 : -9);
  const b = TIMESTAMP_TEXT;
  putDigits(b, 0, era * 400 + yoe + (m <= 2 ? 1 : 0), 4);
  putDigits(b, 5, m, 2);
  putDigits(b, 8, doy - Math.floor((153 * mp + 2) / 5) + 1, 2);
  putDigits(b, 11, Math.floor(sod / 3600), 2);
  putDigits(b, 14, Math.floor(sod / 60) % 60, 2);
  putDigits(b, 17, sod % 60, 2);
  putDigits(b, 20, frac, 6);
  return b.latin1Slice(0, 27); // one flat string
}

const TIMESTAMP_TEXT = Buffer.from('0000-00-00T00:00:00.000000Z', 'latin1');

// n (a non-negative integer below 10^width) as width decimal digits at b[at].
function putDigits(b, at, n, width) {
  for (let i = at + width - 1; i >= at; i -= 1) {
    const q = Math.floor(n / 10);
    b[i] = 0x30 + n - q * 10;
    n = q;
  }
}

function formatTimestamp(v) {
  if (typeof v === 'number' && Number.isSafeInteger(v)) return formatTimestampSafe(v);
  const us = toBigInt(v);
  if (us < MIN_TIMESTAMP_MICROS || us > MAX_TIMESTAMP_MICROS) {
    throw new ValueError(`TIMESTAMP ${us} µs is outside 0001-01-01..9999-12-31`);
  }
  let secs = us / 1000000n;
  let frac = us % 1000000n;
  if (frac < 0n) { frac += 1000000n; secs -= 1n; }
  const days = Number(secs / 86400n) - (secs % 86400n < 0n ? 1 : 0);
  const sod = Number(((secs % 86400n) + 86400n) % 86400n);
  const [y, m, d] = civilFromDays(days);
  const time = formatTimeParts(Math.floor(sod / 3600), Math.floor(sod / 60) % 60, sod % 60, Number(frac), 'TIMESTAMP');
  return `${pad(y, 4)}-${pad(m, 2)}-${pad(d, 2)}T${time}Z`;
}

// ---- NUMERIC / BIGNUMERIC ----

const DECIMAL_RE = /^([+-])?(\d*)(?:\.(\d*))?(?:[eE]([+-]?\d+))?$/;
const NUMERIC_LIMITS = {
  NUMERIC: { scale: 9, max: 10n ** 38n - 1n, min: -(10n ** 38n - 1n) },
  BIGNUMERIC: { scale: 38, max: (1n << 255n) - 1n, min: -(1n << 255n) },
};

// {unscaled, scale} from a decimal literal; exponent notation allowed.
function parseDecimal(str) {
  const m = DECIMAL_RE.exec(str);
  if (!m || (!m[2] && !m[3])) throw new ValueError(`invalid decimal literal "${str}"`);
  const frac = m[3] || '';
  let unscaled = BigInt((m[2] || '0') + frac);
  let scale = frac.length - (m[4] ? Number(m[4]) : 0);
  if (m[4] && Math.abs(Number(m[4])) > 1000) throw new ValueError(`decimal exponent out of range in "${str}"`);
  if (scale < 0) { unscaled *= 10n ** BigInt(-scale); scale = 0; }
  if (m[1] === '-') unscaled = -unscaled;
  return { unscaled, scale };
}

function formatDecimal(unscaled, scale) {
  while (scale > 0 && unscaled % 10n === 0n) { unscaled /= 10n; scale -= 1; }
  const neg = unscaled < 0n;
  let digits = (neg ? -unscaled : unscaled).toString();
  if (scale > 0) {
    digits = digits.padStart(scale + 1, '0');
    digits = `${digits.slice(0, -scale)}.${digits.slice(-scale)}`;
  }
  return neg && digits !== '0' ? `-${digits}` : digits;
}

function checkDecimal(bqType, { unscaled, scale }) {
  const lim = NUMERIC_LIMITS[bqType];
  while (scale > lim.scale && unscaled % 10n === 0n) { unscaled /= 10n; scale -= 1; }
  if (scale > lim.scale) {
    throw new ValueError(`${bqType} value has more than ${lim.scale} digits after the decimal point`);
  }
  const atScale = unscaled * 10n ** BigInt(lim.scale - scale);
  if (atScale > lim.max || atScale < lim.min) throw new ValueError(`${bqType} value out of range`);
  return formatDecimal(unscaled, scale);
}

// checkDecimal(bqType, parseDecimal(str)) for the plain form "[-]D[.F]"
// with at most 15 integer and 9 fraction digits (always in range for both
// types): leading integer zeros and trailing fraction zeros dropped, "-0" is
// "0". null for any other form, which takes the general path.
function plainDecimal(str) {
  const n = str.length;
  if (n === 0 || n > 26) return null;
  const neg = str.charCodeAt(0) === 0x2d;
  let i = neg ? 1 : 0;
  const intStart = i;
  while (i < n && isDigit(str.charCodeAt(i))) i += 1;
  const intEnd = i;
  if (intEnd === intStart) return null;
  let first = intStart; // leading zeros dropped, one digit kept
  while (first < intEnd - 1 && str.charCodeAt(first) === 0x30) first += 1;
  if (intEnd - first > 15) return null;
  let end = intEnd; // of the text kept
  if (i < n) {
    if (str.charCodeAt(i) !== 0x2e) return null;
    const fracStart = i + 1;
    i = fracStart;
    while (i < n && isDigit(str.charCodeAt(i))) i += 1;
    if (i !== n || i === fracStart || i - fracStart > 9) return null;
    end = n;
    while (end > fracStart && str.charCodeAt(end - 1) === 0x30) end -= 1;
    if (end === fracStart) end = intEnd; // no fraction digits left: no '.'
  }
  const digits = str.slice(first, end);
  return neg && digits !== '0' ? `-${digits}` : digits;
}

// BigDecimalByteStringEncoder: the value scaled by 10^scale as a little-endian
// two's-complement integer.
function decodeDecimalBytes(bqType, buf) {
  if (buf.length === 0) throw new ValueError(`empty ${bqType} byte string`);
  let n = 0n;
  for (let i = buf.length - 1; i >= 0; i -= 1) n = (n << 8n) | BigInt(buf[i]);
  if (buf[buf.length - 1] & 0x80) n -= 1n << BigInt(8 * buf.length);
  return checkDecimal(bqType, { unscaled: n, scale: NUMERIC_LIMITS[bqType].scale });
}

// ---- JSON / INTERVAL ----

// JSON text (exactly what JSON.parse accepts: ECMA-404) without insignificant
// whitespace, checked and copied in one pass without building the value; null
// when the text is not JSON (or nests deeper than MAX_JSON_DEPTH), for
// canonicalJson to decide with JSON.parse.
const MAX_JSON_DEPTH = 1000;
const isDigit = (c) => c >= 0x30 && c <= 0x39;
const isHex = (c) => isDigit(c) || (c >= 0x41 && c <= 0x46) || (c >= 0x61 && c <= 0x66);
const isJsonSpace = (c) => c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d;

function scanJsonString(t, i) { // t[i] is '"'; the index after the closing '"', or -1
  for (i += 1; i < t.length;) {
    const c = t.charCodeAt(i);
    if (c === 0x22) return i + 1;
    if (c < 0x20) return -1;
    if (c === 0x5c) {
      const e = t.charCodeAt(i + 1);
      if (e === 0x75) {
        if (!(isHex(t.charCodeAt(i + 2)) && isHex(t.charCodeAt(i + 3)) && isHex(t.charCodeAt(i + 4)) && isHex(t.charCodeAt(i + 5)))) return -1;
        i += 6;
      } else if (e === 0x22 || e === 0x5c || e === 0x2f || e === 0x62 || e === 0x66 || e === 0x6e || e === 0x72 || e === 0x74) {
        i += 2;
      } else {
        return -1;
      }
    } else {
      i += 1;
    }
  }
  return -1;
}

function scanJsonNumber(t, i) { // -?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?; the index after it, or -1
  if (t.charCodeAt(i) === 0x2d) i += 1;
  const c = t.charCodeAt(i);
  if (c === 0x30) i += 1;
  else if (c >= 0x31 && c <= 0x39) while (isDigit(t.charCodeAt(i))) i += 1;
  else return -1;
  if (t.charCodeAt(i) === 0x2e) {
    i += 1;
    if (!isDigit(t.charCodeAt(i))) return -1;
    while (isDigit(t.charCodeAt(i))) i += 1;
  }
  const e = t.charCodeAt(i);
  if (e === 0x65 || e === 0x45) {
    i += 1;
    const sign = t.charCodeAt(i);
    if (sign === 0x2b || sign === 0x2d) i += 1;
    if (!isDigit(t.charCodeAt(i))) return -1;
    while (isDigit(t.charCodeAt(i))) i += 1;
  }
  return i;
}

// states: a value is expected (VALUE), or a value or ']' (FIRST_ITEM), a ','
// or a closing bracket or the end (AFTER), a key or '}' (FIRST_KEY), a key
// (KEY), a ':' (COLON)
const VALUE = 0; const FIRST_ITEM = 1; const AFTER = 2; const FIRST_KEY = 3; const KEY = 4; const COLON = 5;

const jsonStack = new Uint8Array(MAX_JSON_DEPTH); // open brackets (minifyJson is synchronous)

function minifyJson(t) {
  const n = t.length;
  let depth = 0; // jsonStack[0..depth-1]
  const parts = [];
  let start = 0; // start of the text not copied yet
  let state = VALUE;
  let i = 0;
  for (;;) {
    if (i < n && isJsonSpace(t.charCodeAt(i))) {
      if (i > start) parts.push(t.slice(start, i));
      do i += 1; while (i < n && isJsonSpace(t.charCodeAt(i)));
      start = i;
    }
    if (i >= n) break;
    const c = t.charCodeAt(i);
    if (state === VALUE || state === FIRST_ITEM) {
      if (state === FIRST_ITEM && c === 0x5d) {
        depth -= 1; i += 1; state = AFTER;
      } else if (c === 0x7b || c === 0x5b) {
        if (depth >= MAX_JSON_DEPTH) return null;
        jsonStack[depth] = c; depth += 1; i += 1; state = c === 0x7b ? FIRST_KEY : FIRST_ITEM;
      } else if (c === 0x22) {
        i = scanJsonString(t, i); if (i < 0) return null; state = AFTER;
      } else if (c === 0x2d || isDigit(c)) {
        i = scanJsonNumber(t, i); if (i < 0) return null; state = AFTER;
      } else if (t.startsWith('true', i) || t.startsWith('null', i)) {
        i += 4; state = AFTER;
      } else if (t.startsWith('false', i)) {
        i += 5; state = AFTER;
      } else {
        return null;
      }
    } else if (state === AFTER) {
      if (depth === 0) return null; // text after the value
      const top = jsonStack[depth - 1];
      if (c === 0x2c) {
        i += 1; state = top === 0x7b ? KEY : VALUE;
      } else if (c === (top === 0x7b ? 0x7d : 0x5d)) {
        depth -= 1; i += 1; state = AFTER;
      } else {
        return null;
      }
    } else if (state === FIRST_KEY || state === KEY) {
      if (state === FIRST_KEY && c === 0x7d) {
        depth -= 1; i += 1; state = AFTER;
      } else if (c === 0x22) {
        i = scanJsonString(t, i); if (i < 0) return null; state = COLON;
      } else {
        return null;
      }
    } else { // COLON
      if (c !== 0x3a) return null;
      i += 1; state = VALUE;
    }
  }
  if (state !== AFTER || depth !== 0) return null;
  if (start === 0) return t;
  parts.push(t.slice(start));
  return parts.join('');
}

// Validates JSON text and returns it without insignificant whitespace (numbers
// keep their original spelling, keys their order).
function canonicalJson(text) {
  const minified = minifyJson(text);
  if (minified !== null) return minified;
  try {
    JSON.parse(text);
  } catch (e) {
    throw new ValueError(`invalid JSON: ${e.message}`);
  }
  // Copies the text in runs, leaving out whitespace outside strings.
  let out = '';
  let start = 0;
  let inString = false;
  for (let i = 0; i < text.length; i += 1) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i += 1; else if (c === 0x22) inString = false; // backslash escapes the next char
    } else if (c === 0x22) {
      inString = true;
    } else if (c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d) {
      if (i > start) out += text.slice(start, i);
      start = i + 1;
    }
  }
  return start === 0 ? text : out + text.slice(start);
}

function canonicalInterval(str) {
  const m = INTERVAL_RE.exec(str);
  if (!m) throw new ValueError(`invalid INTERVAL literal "${str}" (expected "Y-M D H:M:S[.F]")`);
  const num = (s) => String(Number(s));
  if (Number(m[2]) > 11 || Number(m[5]) > 59 || Number(m[6]) > 59) {
    throw new ValueError(`invalid INTERVAL literal "${str}": month, minute or second out of range`);
  }
  const frac = (m[7] || '').slice(1).replace(/0+$/, '');
  // A sign belongs to its whole section (Y-M, H:M:S), so "-0-5" is minus
  // five months and "-0:0:1.5" minus 1.5 seconds: keep it when the leading
  // number is 0 but the section is not.
  const abs = (s) => String(Number(s.replace(/^[+-]/, '')));
  const ymSign = m[1].startsWith('-') && (Number(abs(m[1])) !== 0 || Number(m[2]) !== 0) ? '-' : '';
  const hmsSign = m[4].startsWith('-') &&
    (Number(abs(m[4])) !== 0 || Number(m[5]) !== 0 || Number(m[6]) !== 0 || frac) ? '-' : '';
  return `${ymSign}${abs(m[1])}-${num(m[2])} ${num(m[3])} ${hmsSign}${abs(m[4])}:${num(m[5])}:${num(m[6])}${frac ? `.${frac}` : ''}`;
}

// ---- dispatch ----

function floatValue(v) {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Infinity) return 'Infinity';
  if (v === -Infinity) return '-Infinity';
  return v;
}

// Converts one decoded scalar. protoType is the writer's field type; string
// fields arrive as Buffers (decoded here so bad UTF-8 is caught); enumType is
// the protobufjs Enum of an enum field.
function convertScalar(bqType, protoType, v, enumType) {
  return convertValue(bqType, protoType, protoType === 'string' ? decodeUtf8(v) : v, enumType);
}

const INT_TYPES = new Set(['int32', 'int64', 'uint32', 'uint64']);

// convertScalar for a value whose string fields are already decoded (a
// string, valid UTF-8); integers may also come as safe-integer Numbers or
// BigInts.
function convertValue(bqType, protoType, v, enumType) {
  const str = v; // the decoded string of a string field
  const isInt = INT_TYPES.has(protoType);
  switch (bqType) {
    case 'STRING':
      if (protoType === 'enum') {
        const name = enumType.valuesById[v];
        if (name === undefined) throw new ValueError(`enum value ${v} is not defined in ${enumType.name}`);
        return name;
      }
      return str;
    case 'BYTES':
      return (protoType === 'string' ? Buffer.from(str, 'utf8') : Buffer.from(v)).toString('base64');
    case 'INT64':
      return int64Text(v);
    case 'BOOL':
      return protoType === 'bool' ? v : toBigInt(v) !== 0n;
    case 'FLOAT64':
      return floatValue(v);
    case 'DATE':
      if (protoType === 'string') return parseDateLiteral(str);
      return formatDate(Number(toBigInt(v)));
    case 'TIMESTAMP':
      return formatTimestamp(v);
    case 'DATETIME':
      return protoType === 'string' ? parseDatetimeLiteral(str) : decodePackedDatetime(v);
    case 'TIME': {
      if (protoType === 'string') return parseTimeLiteral(str);
      const [h, mi, s, us] = decodePackedTime(v, 'TIME');
      return formatTimeParts(h, mi, s, us, 'TIME');
    }
    case 'NUMERIC':
    case 'BIGNUMERIC':
      if (protoType === 'bytes') return decodeDecimalBytes(bqType, v);
      if (protoType === 'string') return plainOrDecimal(bqType)(str);
      if (isInt) return checkDecimal(bqType, { unscaled: toBigInt(v), scale: 0 });
      if (!Number.isFinite(v)) throw new ValueError(`${bqType} cannot hold ${v}`);
      return checkDecimal(bqType, parseDecimal(String(v)));
    case 'JSON':
      return canonicalJson(str);
    case 'GEOGRAPHY':
      return str;
    case 'INTERVAL':
      return canonicalInterval(str);
    default:
      throw new ValueError(`unsupported BigQuery type ${bqType}`);
  }
}

const int64Text = (v) => (typeof v === 'number' && Number.isSafeInteger(v) ? String(v) : toBigInt(v).toString());
const identity = (v) => v;
const plainOrDecimal = (bqType) => (v) => {
  const t = v.trim();
  return plainDecimal(t) ?? checkDecimal(bqType, parseDecimal(t));
};

// convertValue(bqType, protoType, v, enumType) as a function of v, with the
// branch chosen once (the same code for the frequent pairs).
function valueConverter(bqType, protoType, enumType) {
  switch (`${bqType}:${protoType}`) {
    case 'STRING:string':
    case 'GEOGRAPHY:string':
    case 'BOOL:bool':
      return identity;
    case 'INT64:int64':
    case 'INT64:int32':
    case 'INT64:uint32':
      return int64Text;
    case 'TIMESTAMP:int64':
    case 'TIMESTAMP:int32':
    case 'TIMESTAMP:uint32':
      return formatTimestamp;
    case 'JSON:string':
      return canonicalJson;
    case 'NUMERIC:string':
    case 'BIGNUMERIC:string':
      return plainOrDecimal(bqType);
    default:
      return (v) => convertValue(bqType, protoType, v, enumType);
  }
}

module.exports = {
  ValueError,
  COMPATIBLE,
  isCompatible,
  convertScalar,
  convertValue,
  valueConverter,
  decodeUtf8,
  formatTimestamp,
  formatDate,
  parseDecimal,
  formatDecimal,
  canonicalJson,
  canonicalInterval,
  daysFromCivil,
};
