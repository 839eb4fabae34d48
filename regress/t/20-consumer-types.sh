#!/bin/sh
# 20-consumer-types.sh - every supported type, NULLs and extremes, through
# dsplug-consumer into SQLite: streamed (inserts, then updates of every
# column), and backfilled; each replica equals the source row by row, the
# streamed and the backfilled replica hold identical values (storage class
# included), and spot checks pin the documented representations.
set -eu
. regress/t/lib.sh
. regress/t/lib/consumer.sh

db=dsplug_t20
recreate_db "$db"

q "$db" <<'SQL'
CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
CREATE DOMAIN posint AS integer CHECK (VALUE > 0);
CREATE TYPE pair AS (a int, b text);
CREATE TABLE types (
	id int PRIMARY KEY,
	i2 smallint, i4 integer, i8 bigint,
	f4 real, f8 double precision,
	b boolean, ba bytea,
	n numeric, n2 numeric(10,2),
	d date, t time, ts timestamp, tstz timestamptz,
	u uuid, j json, jb jsonb, iv interval,
	tx text, vc varchar(10), ch char(5), nm name,
	m mood, dom posint, pr pair, mon money, ip inet, tr tstzrange,
	ttz timetz, bits bit varying(8), pt point,
	a_int int[], a_i8 bigint[], a_text text[], a_num numeric[], a_f4 real[],
	a_f8 float8[], a_bool bool[], a_ts timestamp[], a_tstz timestamptz[],
	a_date date[], a_time time[], a_uuid uuid[], a_jb jsonb[], a_ba bytea[],
	a_vc varchar[], a_iv interval[], a_mood mood[], a_2d int[], a_lb int[]
);
CREATE PUBLICATION types_pub FOR TABLE types;
SELECT 'slot' FROM pg_create_logical_replication_slot('t20_stream', 'dsplug');
SQL

# Row 1: all NULL.  Row 2: ordinary values.  Rows 3-4: extremes.
q "$db" <<'SQL'
INSERT INTO types (id) VALUES (1);
INSERT INTO types VALUES (2,
	12, 1234, 1234567890123, 1.5, 0.1, true, '\x0102ff',
	3.14159265358979323846, 1.50,
	'2026-11-23', '10:00:00.5', '2026-11-23 10:00:00.123456', '2026-11-23 10:00:00.123456+02',
	'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '{"b": [1, 2], "a": null}', '{"b": [1, 2], "a": null}',
	'1 year 2 mons 3 days 04:05:06.789',
	'héllo wörld ✓', 'short', 'ab', 'a_name',
	'happy', 42, '(1,"x y")', 12.34, '192.168.1.1', '[2026-01-01 00:00+00,2026-02-01 00:00+00)',
	'10:00:00+05:30', B'1011', '(1.5,-2)',
	'{1,2,NULL}', '{9223372036854775807}', '{a,"b c",NULL,""}', '{1.50,NaN,-0.001}', '{1.5,-Infinity}',
	'{0.1,NaN,1e300}', '{t,f,NULL}', '{"2026-11-23 10:00:00"}', '{"2026-11-23 10:00:00.5+00",NULL}',
	'{2026-11-23,infinity}', '{10:00:00,24:00:00}', '{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11}',
	ARRAY['{"k": 1}', '[]']::jsonb[], ARRAY['\x00ff']::bytea[],
	ARRAY['x', 'y\z'], '{"1 day","-1 mons"}', '{sad,happy}', '{{1,2},{3,4}}', '[0:1]={5,6}');
INSERT INTO types VALUES (3,
	-32768, -2147483648, -9223372036854775808, 'NaN', '-Infinity', false, '\x',
	'NaN', -99999999.99,
	'4713-01-01 BC', '00:00:00', '4713-01-01 00:00:00 BC', '294276-12-31 23:59:59.999999+00',
	'00000000-0000-0000-0000-000000000000', '[]', '{}',
	'-178000000 years -7 days -00:00:00.000001',
	'', '', '', '',
	'sad', 1, '(,)', -92233720368547758.08, '::1', 'empty',
	'00:00:00-15:59', B'', '(0,0)',
	'{}', '{}', '{}', '{}', '{}', '{}', '{}', '{}', '{}', '{}', '{}', '{}', '{}', '{}', '{}',
	'{}', '{}', '{}', '{}');
INSERT INTO types VALUES (4,
	32767, 2147483647, 9223372036854775807, 'Infinity', 1e-300, true, '\x00',
	'Infinity', 0,
	'infinity', '24:00:00', '-infinity', 'infinity',
	'ffffffff-ffff-ffff-ffff-ffffffffffff', '"str\u00e9"', '"tab\t nl\n"',
	'0',
	E'ctl \x01\x1f tab\t nl\n quote" backslash\\ del\x7f', 'ten chars!', 'abcde', repeat('n', 63),
	'ok', 2147483647, '(-1,"")', 0, '2001:db8::/32', '(,)',
	'24:00:00+15:59', B'11111111', '(-1e300,1e-300)',
	'{-1}', '{-9223372036854775808}', ARRAY[E'\\', '"', E'\x01'], '{-Infinity,Infinity,0.0000000001}',
	'{3.4e38,-1.17549435e-38}',
	'{-0,5e-324}', '{NULL}', '{"4713-01-01 00:00:00 BC"}', '{infinity,-infinity}',
	'{"0001-01-01 BC"}', '{00:00:00.000001}', '{NULL}', ARRAY[NULL, '1.5e3']::jsonb[],
	ARRAY[NULL, '\x']::bytea[],
	'{""}', '{00:00:00}', '{}', '{{NULL}}', '[2:2]={7}');
SQL

# every column rewritten, by an update of row 2 with row 4's values and back
q "$db" <<'SQL'
INSERT INTO types SELECT 5, i2, i4, i8, f4, f8, b, ba, n, n2, d, t, ts, tstz, u, j, jb, iv,
	tx, vc, ch, nm, m, dom, pr, mon, ip, tr, ttz, bits, pt, a_int, a_i8, a_text, a_num, a_f4,
	a_f8, a_bool, a_ts, a_tstz, a_date, a_time, a_uuid, a_jb, a_ba, a_vc, a_iv, a_mood, a_2d, a_lb
	FROM types WHERE id = 2;
UPDATE types t SET (i2, i4, i8, f4, f8, b, ba, n, n2, d, t, ts, tstz, u, j, jb, iv,
	tx, vc, ch, nm, m, dom, pr, mon, ip, tr, ttz, bits, pt, a_int, a_i8, a_text, a_num, a_f4,
	a_f8, a_bool, a_ts, a_tstz, a_date, a_time, a_uuid, a_jb, a_ba, a_vc, a_iv, a_mood, a_2d, a_lb)
	= (SELECT i2, i4, i8, f4, f8, b, ba, n, n2, d, t, ts, tstz, u, j, jb, iv,
	tx, vc, ch, nm, m, dom, pr, mon, ip, tr, ttz, bits, pt, a_int, a_i8, a_text, a_num, a_f4,
	a_f8, a_bool, a_ts, a_tstz, a_date, a_time, a_uuid, a_jb, a_ba, a_vc, a_iv, a_mood, a_2d, a_lb
	FROM types WHERE id = 3) WHERE id = 5;
UPDATE types SET f8 = f8 * 2, n = n + 1, a_int = a_int || 3 WHERE id = 2;
SQL

# streamed
consume "$db" t20_stream types_pub "$T/stream.db"
compare "$db" "$T/stream.db" --publication types_pub

# backfilled: a fresh target from the existing slot (temporary slot's snapshot)
consume "$db" t20_stream types_pub "$T/backfill.db" --backfill
compare "$db" "$T/backfill.db" --publication types_pub
n=$(sqlite3 "$T/backfill.db" "SELECT count(*) FROM public_types")
[ "$n" -eq 5 ] || fail "backfill copied $n rows, expected 5"

# identical cells, storage classes included, whichever way they came
diffs=$(sqlite3 "$T/stream.db" "ATTACH '$T/backfill.db' AS bf;
	SELECT count(*) FROM (SELECT * FROM main.public_types EXCEPT SELECT * FROM bf.public_types);
	SELECT count(*) FROM (SELECT * FROM bf.public_types EXCEPT SELECT * FROM main.public_types);" | tr '\n' ' ')
[ "$diffs" = "0 0 " ] || fail "streamed and backfilled replicas differ: $diffs"
types_differ=$(sqlite3 "$T/stream.db" "ATTACH '$T/backfill.db' AS bf;
	SELECT count(*) FROM main.public_types s JOIN bf.public_types b USING (id)
	WHERE typeof(s.f8) <> typeof(b.f8) OR typeof(s.ba) <> typeof(b.ba) OR typeof(s.b) <> typeof(b.b)")
[ "$types_differ" = 0 ] || fail "storage classes differ between streamed and backfilled rows"

# the documented representations
check() {
	got=$(sqlite3 "$T/stream.db" "SELECT $1 FROM public_types WHERE id = $2")
	[ "$got" = "$3" ] || fail "id $2, $1: expected '$3', got '$got'"
}
check "typeof(i8) || ' ' || i8" 2 "integer 1234567890123"
check "typeof(f8) || ' ' || f8" 2 "real 0.2"
check "typeof(f4) || ' ' || f4" 3 "text NaN"
check "typeof(b) || ' ' || b" 2 "integer 1"
check "typeof(ba) || ' ' || hex(ba)" 2 "blob 0102FF"
check "typeof(ba) || ' ' || length(ba)" 3 "blob 0"
check "typeof(n2) || ' ' || n2" 2 "text 1.50"
check "n" 3 "NaN"
check "tstz" 2 "2026-11-23T08:00:00.123456Z"
check "ts" 2 "2026-11-23T10:00:00.123456"
check "d" 2 "2026-11-23"
check "d" 3 "-4712-01-01"
check "d" 4 "infinity"
check "tstz" 3 "294276-12-31T23:59:59.999999Z"
check "t" 4 "24:00:00"
check "jb" 2 '{"a": null, "b": [1, 2]}'
check "j" 2 '{"b": [1, 2], "a": null}'
check "iv" 2 "1 year 2 mons 3 days 04:05:06.789"
check "ch" 2 "ab   "
check "m" 2 "happy"
check "a_int" 2 "[1, 2, null, 3]"
check "a_text" 2 '["a", "b c", null, ""]'
check "a_num" 2 '[1.50, "NaN", -0.001]'
check "a_tstz" 2 '["2026-11-23T10:00:00.500000Z", null]'
check "a_2d" 2 "{{1,2},{3,4}}"
check "a_lb" 2 "[0:1]={5,6}"
check "a_int" 3 "[]"
check "tr" 2 '["2026-01-01 00:00:00+00","2026-02-01 00:00:00+00")'

q postgres -c "SELECT pg_drop_replication_slot('t20_stream')" >/dev/null
drop_db "$db"
echo ok
