'use strict';
// Unit tests of the canonical value conversions and sequence-number ordering.

const test = require('node:test');
const assert = require('node:assert/strict');
const v = require('../lib/values');
const cdc = require('../lib/cdc');

const bad = (fn) => assert.throws(fn, v.ValueError);
const buf = (s) => Buffer.from(s, 'utf8');

test('TIMESTAMP: microseconds since the epoch, 0001-01-01 to 9999-12-31', () => {
  assert.equal(v.formatTimestamp(0), '1970-01-01T00:00:00.000000Z');
  assert.equal(v.formatTimestamp(-1), '1969-12-31T23:59:59.999999Z');
  assert.equal(v.formatTimestamp(-86400000000n), '1969-12-31T00:00:00.000000Z');
  assert.equal(v.formatTimestamp(-62135596800000000n), '0001-01-01T00:00:00.000000Z');
  assert.equal(v.formatTimestamp(253402300799999999n), '9999-12-31T23:59:59.999999Z');
  assert.equal(v.formatTimestamp(1709251199123456n), '2024-02-29T23:59:59.123456Z');
  bad(() => v.formatTimestamp(-62135596800000001n));
  bad(() => v.formatTimestamp(253402300800000000n));
});

test('DATE: days since the epoch and literals', () => {
  assert.equal(v.formatDate(0), '1970-01-01');
  assert.equal(v.formatDate(-719162), '0001-01-01');
  assert.equal(v.formatDate(2932896), '9999-12-31');
  assert.equal(v.formatDate(19782), '2024-02-29');
  bad(() => v.formatDate(2932897));
  bad(() => v.formatDate(-719163));
  assert.equal(v.convertScalar('DATE', 'string', buf('0099-1-5')), '0099-01-05');
  bad(() => v.convertScalar('DATE', 'string', buf('1900-02-29')));
  bad(() => v.convertScalar('DATE', 'string', buf('2024-13-01')));
  bad(() => v.convertScalar('DATE', 'string', buf('20240101')));
  assert.equal(v.daysFromCivil(2000, 3, 1), 11017);
});

test('DATETIME and TIME literals', () => {
  const dt = (s) => v.convertScalar('DATETIME', 'string', buf(s));
  const t = (s) => v.convertScalar('TIME', 'string', buf(s));
  assert.equal(dt('2024-01-02'), '2024-01-02T00:00:00.000000');
  assert.equal(dt('2024-01-02T3:04:05'), '2024-01-02T03:04:05.000000');
  assert.equal(dt('2024-01-02 03:04:05.1'), '2024-01-02T03:04:05.100000');
  bad(() => dt('2024-01-02 03:04:05.1234567'));
  bad(() => dt('2024-01-02 03:60:00'));
  bad(() => dt('2024-01-02Z'));
  assert.equal(t('0:0:0'), '00:00:00.000000');
  assert.equal(t('23:59:59.5'), '23:59:59.500000');
  bad(() => t('24:00:00'));
  bad(() => t('12:00'));
});

test('NUMERIC and BIGNUMERIC: canonical decimals, exact limits, BigDecimalByteStringEncoder bytes', () => {
  const n = (s) => v.convertScalar('NUMERIC', 'string', buf(s));
  const bn = (s) => v.convertScalar('BIGNUMERIC', 'string', buf(s));
  assert.equal(n('0'), '0');
  assert.equal(n('-0.000'), '0');
  assert.equal(n('+1.500'), '1.5');
  assert.equal(n('.5'), '0.5');
  assert.equal(n('5.'), '5');
  assert.equal(n('1.5e3'), '1500');
  assert.equal(n('15E-9'), '0.000000015');
  assert.equal(n('99999999999999999999999999999.999999999'), '99999999999999999999999999999.999999999');
  assert.equal(n('-99999999999999999999999999999.999999999'), '-99999999999999999999999999999.999999999');
  assert.equal(n('1.0000000000'), '1'); // trailing zeros beyond the scale are fine
  bad(() => n('100000000000000000000000000000'));
  bad(() => n('0.0000000001'));
  bad(() => n('1e'));
  bad(() => n('Infinity'));
  bad(() => n(''));
  assert.equal(bn('578960446186580977117854925043439539266.34992332820282019728792003956564819967'),
    '578960446186580977117854925043439539266.34992332820282019728792003956564819967');
  assert.equal(bn('-578960446186580977117854925043439539266.34992332820282019728792003956564819968'),
    '-578960446186580977117854925043439539266.34992332820282019728792003956564819968');
  bad(() => bn('578960446186580977117854925043439539266.34992332820282019728792003956564819968'));
  bad(() => bn('1e-39'));
  assert.equal(v.convertScalar('NUMERIC', 'double', 1e21), '1000000000000000000000');
  assert.equal(v.convertScalar('NUMERIC', 'uint64', '18446744073709551615'), '18446744073709551615');
  bad(() => v.convertScalar('NUMERIC', 'double', NaN));
  // bytes: value * 10^scale, little-endian two's complement.
  assert.equal(v.convertScalar('NUMERIC', 'bytes', Buffer.from([0x00, 0xca, 0x9a, 0x3b])), '1'); // 1e9
  assert.equal(v.convertScalar('NUMERIC', 'bytes', Buffer.from([0x00, 0x36, 0x65, 0xc4])), '-1');
  assert.equal(v.convertScalar('NUMERIC', 'bytes', Buffer.from([0x01])), '0.000000001');
  bad(() => v.convertScalar('NUMERIC', 'bytes', Buffer.alloc(0)));
  bad(() => v.convertScalar('NUMERIC', 'bytes', Buffer.alloc(17, 0x7f)));
});

test('JSON: validated, insignificant whitespace removed, strings and numbers kept', () => {
  const j = (s) => v.convertScalar('JSON', 'string', buf(s));
  assert.equal(j(' { "a b" : [ 1 , 2.50e0 , "x \\" y" ] , "n":null } '), '{"a b":[1,2.50e0,"x \\" y"],"n":null}');
  assert.equal(j('"\\\\"'), '"\\\\"');
  assert.equal(j('12345678901234567890'), '12345678901234567890');
  bad(() => j('{a:1}'));
  bad(() => j(''));
});

test('INTERVAL, BOOL, BYTES, STRING, FLOAT64', () => {
  assert.equal(v.convertScalar('INTERVAL', 'string', buf('0-0 0 0:15:0')), '0-0 0 0:15:0');
  assert.equal(v.convertScalar('INTERVAL', 'string', buf('-10-11 -5 25:59:59.000001')), '-10-11 -5 25:59:59.000001');
  // a section's sign survives a leading zero (fidelity fix: was dropped)
  assert.equal(v.convertScalar('INTERVAL', 'string', buf('-0-5 0 -0:0:1.5')), '-0-5 0 -0:0:1.5');
  assert.equal(v.convertScalar('INTERVAL', 'string', buf('-0-0 -0 -0:0:0')), '0-0 0 0:0:0');
  bad(() => v.convertScalar('INTERVAL', 'string', buf('1-12 0 0:0:0')));
  bad(() => v.convertScalar('INTERVAL', 'string', buf('P1D')));
  assert.equal(v.convertScalar('BOOL', 'uint64', '0'), false);
  assert.equal(v.convertScalar('BOOL', 'int32', -1), true);
  assert.equal(v.convertScalar('BYTES', 'bytes', Buffer.from([1, 2])), 'AQI=');
  assert.equal(v.convertScalar('STRING', 'string', buf('日本')), '日本');
  bad(() => v.convertScalar('STRING', 'string', Buffer.from([0xff])));
  assert.equal(v.convertScalar('FLOAT64', 'double', -Infinity), '-Infinity');
  assert.equal(v.convertScalar('FLOAT64', 'float', 0.25), 0.25);
});

test('compatibility table follows Google’s list', () => {
  assert.ok(v.isCompatible('INT64', 'int32'));
  assert.ok(v.isCompatible('INT64', 'enum'));
  assert.ok(!v.isCompatible('INT64', 'uint64'));
  assert.ok(!v.isCompatible('INT64', 'string'));
  assert.ok(v.isCompatible('TIMESTAMP', 'int64'));
  assert.ok(!v.isCompatible('TIMESTAMP', 'string'));
  assert.ok(v.isCompatible('DATE', 'int32'));
  assert.ok(v.isCompatible('JSON', 'string'));
  assert.ok(!v.isCompatible('JSON', 'bytes'));
  assert.ok(v.isCompatible('BYTES', 'string'));
  assert.ok(!v.isCompatible('STRING', 'bytes'));
});

test('sequence numbers: format and section-by-section numeric order', () => {
  const p = cdc.parseSequenceNumber;
  assert.deepEqual(p('a/B/0/FFFFFFFFFFFFFFFF'), [10n, 11n, 0n, 0xffffffffffffffffn]);
  for (const s of ['', 'g', '1/2/3/4/5', '/1', '1/', '1 ', ' 1', '0x1', '11111111111111111', '-1', '1.0']) {
    assert.equal(p(s), null, JSON.stringify(s));
  }
  const cmp = (a, b) => cdc.compareSequence(p(a), p(b));
  assert.equal(cmp('A', '9'), 1);
  assert.equal(cmp('10', 'F'), 1);
  assert.equal(cmp('0010', '10'), 0);
  assert.equal(cmp('1/9', '1/10'), -1);
  assert.equal(cmp('2/0', '1/FFFFFFFFFFFFFFFF'), 1);
  assert.equal(cmp('1', '1/0'), -1);
  assert.equal(cmp('1/0/0/1', '1/0/0/0'), 1);
  assert.deepEqual(cdc.decide({ seq: p('5') }, { seq: p('5') }), { apply: true, warning: null });
  assert.equal(cdc.decide({ seq: p('6') }, { seq: p('5') }).apply, false);
  assert.equal(cdc.decide({ seq: null }, { seq: null }).apply, true);
  assert.match(cdc.decide({ seq: p('6') }, { seq: null }).warning, /mixed/);
});
