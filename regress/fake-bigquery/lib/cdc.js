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

// Numeric, section by section from the left. When every shared section is
// equal, the one with fewer sections is lower (as if sections were fixed-width
// and concatenated).
function compareSequence(a, b) {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i += 1) {
    if (a[i] !== b[i]) return a[i] < b[i] ? -1 : 1;
  }
  return Math.sign(a.length - b.length);
}

// Decides whether an incoming change replaces the current state of its key.
// current/incoming: {seq: BigInt[]|null}. Returns {apply, warning}.
//   both numbered: the higher number wins; equal numbers: the later arrival
//     wins (Google documents no tie rule; the fake picks last-arrival);
//   otherwise (neither numbered, or only one): arrival order, and mixing
//     numbered and unnumbered changes on one key is reported as a warning,
//     since BigQuery orders such pairs unpredictably.
function decide(current, incoming) {
  if (!current) return { apply: true, warning: null };
  if (current.seq && incoming.seq) {
    let warning = null;
    if (current.seq.length !== incoming.seq.length) {
      warning = `sequence numbers with different section counts compared (${current.seq.length} vs ${incoming.seq.length})`;
    }
    return { apply: compareSequence(incoming.seq, current.seq) >= 0, warning };
  }
  if (current.seq || incoming.seq) {
    return { apply: true, warning: 'changes with and without _CHANGE_SEQUENCE_NUMBER mixed on one key (BigQuery orders these unpredictably)' };
  }
  return { apply: true, warning: null };
}

module.exports = { CHANGE_TYPES, parseSequenceNumber, compareSequence, decide };
