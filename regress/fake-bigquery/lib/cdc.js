'use strict';
// BigQuery CDC ordering. A change to a primary key is an UPSERT or a DELETE
// with an optional _CHANGE_SEQUENCE_NUMBER; README.md ("CDC rules") states the
// rules and where each comes from.

const CHANGE_TYPES = ['UPSERT', 'DELETE'];

// Up to four '/'-separated sections of 1 to 16 hex digits (0-9, A-F, a-f).
const SEQUENCE_RE = /^[0-9A-Fa-f]{1,16}(\/[0-9A-Fa-f]{1,16}){0,3}$/;

function parseSequenceNumber(s) {
  if (typeof s !== 'string' || !SEQUENCE_RE.test(s)) return null;
  return s.split('/').map((x) => BigInt(`0x${x}`));
}

// The same check, giving the comparable form the store uses: the sections,
// each as 16 lower-case hex digits (zero-padded), '/'-separated ('/' sorts
// before every digit, and sits at the same places in both). Comparing two
// such strings compares the sections numerically from the left, and when
// every shared section is equal the one with fewer sections (a prefix) is
// lower, exactly as compareSequence does on the parsed form. A number already
// in that form is its own key.
const ZEROS = '0000000000000000';
const SECTION = 16;

function isHexDigit(c) {
  return (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x46) || (c >= 0x61 && c <= 0x66);
}

function sequenceKey(s) {
  if (typeof s !== 'string' || s.length === 0 || s.length > 4 * SECTION + 3) return null;
  let start = 0;
  let sections = 0;
  let padded = true;
  let lower = true;
  for (let i = 0; i <= s.length; i += 1) {
    const c = i === s.length ? 0x2f : s.charCodeAt(i);
    if (c === 0x2f) {
      const len = i - start;
      sections += 1;
      if (len < 1 || len > SECTION || sections > 4) return null;
      if (len !== SECTION) padded = false;
      start = i + 1;
    } else if (!isHexDigit(c)) {
      return null;
    } else if (c >= 0x41 && c <= 0x46) {
      lower = false;
    }
  }
  if (padded) return lower ? s : s.toLowerCase();
  return s.split('/').map((x) => ZEROS.slice(x.length) + x).join('/').toLowerCase();
}

// Section count of a parsed sequence number or a sequenceKey.
function sections(seq) {
  return typeof seq === 'string' ? (seq.length + 1) / (SECTION + 1) : seq.length;
}

// Numeric, section by section from the left. When every shared section is
// equal, the one with fewer sections is lower (as if sections were fixed-width
// and concatenated). Takes two parsed numbers or two sequenceKeys.
function compareSequence(a, b) {
  if (typeof a === 'string') return a === b ? 0 : a < b ? -1 : 1;
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i += 1) {
    if (a[i] !== b[i]) return a[i] < b[i] ? -1 : 1;
  }
  return Math.sign(a.length - b.length);
}

// Decides whether an incoming change replaces the current state of its key.
// current/incoming: {seq: BigInt[]|null} or {seq: sequenceKey|null}. Returns {apply, warning}.
//   both numbered: the higher number wins; equal numbers: the later arrival
//     wins (Google documents no tie rule; the fake picks last-arrival);
//   otherwise (neither numbered, or only one): arrival order, and mixing
//     numbered and unnumbered changes on one key is reported as a warning,
//     since BigQuery orders such pairs unpredictably.
function decide(current, incoming) {
  if (!current) return { apply: true, warning: null };
  if (current.seq && incoming.seq) {
    let warning = null;
    if (sections(current.seq) !== sections(incoming.seq)) {
      warning = `sequence numbers with different section counts compared (${sections(current.seq)} vs ${sections(incoming.seq)})`;
    }
    return { apply: compareSequence(incoming.seq, current.seq) >= 0, warning };
  }
  if (current.seq || incoming.seq) {
    return { apply: true, warning: 'changes with and without _CHANGE_SEQUENCE_NUMBER mixed on one key (BigQuery orders these unpredictably)' };
  }
  return { apply: true, warning: null };
}

module.exports = { CHANGE_TYPES, parseSequenceNumber, sequenceKey, compareSequence, decide };
