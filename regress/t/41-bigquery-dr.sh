#!/bin/sh
# 41-bigquery-dr.sh - the two-region scenario on the fake BigQuery: two
# publications, two slots, two consumers at once, each into a dataset of
# its own location (EU, US).  Rows that exist before the slots are copied
# (--create-slot), then a mixed workload streams: every supported type
# with NULLs, extremes and the documented lossy cases (numeric NaN, date
# and timestamp infinities, time 24:00, NULL array elements), updates of
# every column, deletes, key-changing updates, an unchanged TOASTed value
# under REPLICA IDENTITY FULL.  Both datasets equal the source row by row;
# the tables have their primary key, clustering and max_staleness; the
# datasets their locations; _dsplug_state names each slot and its
# position; the fake saw its routing header and no CDC warnings.
set -eu
. regress/t/lib.sh
. regress/t/lib/consumer.sh
. regress/t/lib/bigquery.sh

db=dsplug_t41
recreate_db "$db"
c1="" c2=""
trap 'for p in $c1 $c2; do kill -KILL "$p" 2>/dev/null || true; done; stop_fake' EXIT
start_fake --routing strict

q "$db" <<'SQL'
CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
CREATE TABLE types (
	id int PRIMARY KEY,
	i2 smallint, i4 integer, i8 bigint,
	f4 real, f8 double precision,
	b boolean, ba bytea,
	n numeric, n2 numeric(10,2), n3 numeric(40,20),
	d date, t time, ts timestamp, tstz timestamptz,
	u uuid, j json, jb jsonb, iv interval,
	tx text, vc varchar(10), ch char(5), nm name,
	m mood, ip inet, pt point,
	a_int int[], a_i8 bigint[], a_text text[], a_num numeric[], a_f4 real[],
	a_f8 float8[], a_bool bool[], a_ts timestamp[], a_tstz timestamptz[],
	a_date date[], a_time time[], a_uuid uuid[], a_jb jsonb[], a_ba bytea[],
	a_iv interval[], a_mood mood[], a_2d int[]
);
CREATE TABLE orders (id bigint PRIMARY KEY, customer int NOT NULL, amount numeric(12,2),
	status text, placed timestamptz DEFAULT now());
CREATE TABLE docs (id int PRIMARY KEY, title text, body text);
ALTER TABLE docs REPLICA IDENTITY FULL;
ALTER TABLE docs ALTER body SET STORAGE EXTERNAL;
CREATE TABLE "Odd Names" ("Key Col" int PRIMARY KEY, "ü-value" text);
CREATE PUBLICATION pub1 FOR TABLE types, orders, docs, "Odd Names";
CREATE PUBLICATION pub2 FOR TABLE types, orders, docs, "Odd Names";

-- before the slots: copied by --create-slot
INSERT INTO orders SELECT g, g % 97, g * 1.25, 'new', '2026-01-01'::timestamptz + g * interval '1 minute'
	FROM generate_series(1, 3000) g;
INSERT INTO docs VALUES (1, 'big', (SELECT string_agg(md5(g::text), '') FROM generate_series(1, 400) g));
INSERT INTO types (id) VALUES (1);
SQL

run() {
	_slot=$1 _pub=$2 _target=$3
	shift 3
	# shellcheck disable=SC2046
	"$CONSUMER" --dbname "dbname=$db" --slot "$_slot" --publication "$_pub" --create-slot \
		--target "$_target" $(bq_options) --status-interval 0 --group-ms 200 "$@" \
		2>>"$T/consumer-$_slot.log" &
}
# region 1 serves its metrics: the BigQuery target's requests in flight
mport=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
run rs1 pub1 "bigquery://proj/eu_ds?location=EU&max_staleness=15m" --metrics-address "127.0.0.1:$mport"
c1=$!
run rs2 pub2 "bigquery://proj/us_ds?location=US"
c2=$!
for i in $(seq 1 100); do
	n=$(q "$db" -c "SELECT count(*) FROM pg_replication_slots WHERE slot_name IN ('rs1', 'rs2')")
	[ "$n" = 2 ] && break
	sleep 0.1
done
[ "$n" = 2 ] || fail "the consumers did not create their slots: $(cat "$T"/consumer-*.log)"

q "$db" <<'SQL'
INSERT INTO types VALUES (2,
	12, 1234, 1234567890123, 1.5, 0.1, true, '\x0102ff',
	3.14159265358979323846, 1.50, 12345678901234567890.12345678901234567890,
	'2026-11-23', '10:00:00.5', '2026-11-23 10:00:00.123456', '2026-11-23 10:00:00.123456+02',
	'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '{"b": [1, 2], "a": null}', '{"b": [1, 2], "a": null}',
	'1 year 2 mons 3 days 04:05:06.789',
	'héllo wörld ✓', 'short', 'ab', 'a_name', 'happy', '192.168.1.1', '(1.5,-2)',
	'{1,2,NULL}', '{9223372036854775807}', '{a,"b c",NULL,""}', '{1.50,NaN,-0.001}', '{1.5,-Infinity}',
	'{0.1,NaN,1e300}', '{t,f,NULL}', '{"2026-11-23 10:00:00"}', '{"2026-11-23 10:00:00.5+00",NULL}',
	'{2026-11-23,infinity}', '{10:00:00,24:00:00}', '{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11}',
	ARRAY['{"k": 1}', '[]']::jsonb[], ARRAY['\x00ff']::bytea[],
	'{"1 day","-1 mons -00:00:01.5"}', '{sad,happy}', '{{1,2},{3,4}}');
INSERT INTO types VALUES (3,
	-32768, -2147483648, -9223372036854775808, 'NaN', '-Infinity', false, '\x',
	'NaN', -99999999.99, 'NaN',
	'0001-01-01', '00:00:00', '0001-01-01 00:00:00', '0001-01-01 00:00:00+00',
	'00000000-0000-0000-0000-000000000000', '[]', '{}',
	'-9999 years -7 days -00:00:00.000001',
	'', '', '', '', 'sad', '::1', '(0,0)',
	'{}', '{}', '{}', '{}', '{}', '{}', '{}', '{}', '{}', '{}', '{}', '{}', '{}', '{}', '{}', '{}', '{}');
INSERT INTO types VALUES (4,
	32767, 2147483647, 9223372036854775807, 'Infinity', 1e-300, true, '\x00',
	'Infinity', 0, 0.00000000000000000001,
	'infinity', '24:00:00', '-infinity', 'infinity',
	'ffffffff-ffff-ffff-ffff-ffffffffffff', '"str\u00e9"', '"tab\t nl\n"',
	'-0 years -5 mons',
	E'ctl \x01\x1f tab\t nl\n quote" backslash\\ del\x7f', 'ten chars!', 'abcde', repeat('n', 63),
	'ok', '2001:db8::/32', '(-1e300,1e-300)',
	'{-1}', '{-9223372036854775808}', ARRAY[E'\\', '"', E'\x01'], '{-Infinity,Infinity,0.0000000001}',
	'{3.4e38,-1.17549435e-38}', '{-0,5e-324}', '{NULL}', '{"9999-12-31 23:59:59.999999"}',
	'{infinity,-infinity}', '{"9999-12-31"}', '{00:00:00.000001}', '{NULL}', ARRAY[NULL, '15']::jsonb[],
	ARRAY[NULL, '\x']::bytea[], '{00:00:00}', '{}', '[2:2]={7}');
-- every column of row 5 rewritten
INSERT INTO types SELECT 5, i2, i4, i8, f4, f8, b, ba, n, n2, n3, d, t, ts, tstz, u, j, jb, iv,
	tx, vc, ch, nm, m, ip, pt, a_int, a_i8, a_text, a_num, a_f4, a_f8, a_bool, a_ts, a_tstz,
	a_date, a_time, a_uuid, a_jb, a_ba, a_iv, a_mood, a_2d FROM types WHERE id = 2;
UPDATE types t SET (i2, i4, i8, f4, f8, b, ba, n, n2, n3, d, t, ts, tstz, u, j, jb, iv,
	tx, vc, ch, nm, m, ip, pt, a_int, a_i8, a_text, a_num, a_f4, a_f8, a_bool, a_ts, a_tstz,
	a_date, a_time, a_uuid, a_jb, a_ba, a_iv, a_mood, a_2d)
	= (SELECT i2, i4, i8, f4, f8, b, ba, n, n2, n3, d, t, ts, tstz, u, j, jb, iv,
	tx, vc, ch, nm, m, ip, pt, a_int, a_i8, a_text, a_num, a_f4, a_f8, a_bool, a_ts, a_tstz,
	a_date, a_time, a_uuid, a_jb, a_ba, a_iv, a_mood, a_2d FROM types WHERE id = 3) WHERE id = 5;
UPDATE types SET f8 = f8 * 2, n = n + 1, a_int = a_int || 3 WHERE id = 2;

-- orders: a mixed OLTP workload
INSERT INTO orders SELECT g, g % 97, g * 0.5, 'new' FROM generate_series(3001, 6000) g;
UPDATE orders SET status = 'paid', amount = amount + 1 WHERE id % 3 = 0;
DELETE FROM orders WHERE id % 10 = 0;
UPDATE orders SET id = id + 100000 WHERE id BETWEEN 100 AND 150;	-- key changes
DELETE FROM orders WHERE id = 100101;
INSERT INTO orders VALUES (100101, 1, 1, 'reborn');
BEGIN;
UPDATE orders SET amount = 7 WHERE id = 5;
UPDATE orders SET amount = 8 WHERE id = 5;
DELETE FROM orders WHERE id = 6;
INSERT INTO orders VALUES (6, 6, 6, 'again');
COMMIT;

-- docs: an update that leaves the TOASTed body unchanged, and one that changes it
UPDATE docs SET title = 'renamed' WHERE id = 1;
INSERT INTO docs VALUES (2, 'two', (SELECT string_agg(md5((g * 7)::text), '') FROM generate_series(1, 400) g));
UPDATE docs SET title = 'two renamed' WHERE id = 2;
UPDATE docs SET body = 'short now' WHERE id = 2;

INSERT INTO "Odd Names" VALUES (1, 'one'), (2, 'two');
UPDATE "Odd Names" SET "ü-value" = 'zwei' WHERE "Key Col" = 2;
SQL

# the body really was stored out of line, and travelled as unchanged TOAST
toasted=$(q "$db" -c "SELECT count(*) FROM pg_toast.pg_toast_$(q "$db" -c "SELECT 'docs'::regclass::oid")")
[ "$toasted" -gt 0 ] || fail "docs.body was not TOASTed; the test does not test TOAST"

# the last transaction ends after this position
before_last=$(current_lsn "$db")
q "$db" -c "INSERT INTO orders VALUES (999999, 1, 1, 'last')"
end=$(current_lsn "$db")
for s in rs1 rs2; do
	for i in $(seq 1 300); do
		c=$(slot_confirmed "$db" "$s")
		lsn_le "$end" "$c" && break
		kill -0 "$c1" && kill -0 "$c2" || fail "a consumer died: $(tail -n 3 "$T"/consumer-*.log)"
		sleep 0.2
	done
	lsn_le "$end" "$c" || fail "slot $s stuck at $c, before $end: $(tail -n 5 "$T/consumer-$s.log")"
done

# everything confirmed was acknowledged: nothing in flight, valid metrics
labels="slot=\"rs1\",target=\"bigquery://proj/eu_ds\""
for i in $(seq 1 100); do
	curl -sf "http://127.0.0.1:$mport/metrics" >"$T/metrics.txt" || fail "no metrics from region 1"
	grep -qx "dsplug_consumer_target_requests_in_flight{$labels} 0" "$T/metrics.txt" &&
		grep -qx "dsplug_consumer_target_unacknowledged_bytes{$labels} 0" "$T/metrics.txt" && break
	sleep 0.1
done
grep -qx "dsplug_consumer_target_requests_in_flight{$labels} 0" "$T/metrics.txt" ||
	fail "region 1 still has requests in flight: $(grep target_ "$T/metrics.txt")"
grep -qx "dsplug_consumer_target_unacknowledged_bytes{$labels} 0" "$T/metrics.txt" ||
	fail "region 1 still has unacknowledged bytes: $(grep target_ "$T/metrics.txt")"
if command -v promtool >/dev/null; then
	promtool check metrics <"$T/metrics.txt" >"$T/promtool.out" 2>&1 ||
		fail "promtool check metrics: $(cat "$T/promtool.out")"
fi
kill -TERM "$c1" "$c2"
wait "$c1" || fail "consumer rs1 did not stop cleanly: $(tail -n 3 "$T/consumer-rs1.log")"
wait "$c2" || fail "consumer rs2 did not stop cleanly: $(tail -n 3 "$T/consumer-rs2.log")"
c1="" c2=""

bq_compare "$db" eu_ds --publication pub1
bq_compare "$db" us_ds --publication pub2

# datasets in their locations, tables with key, clustering, staleness
fake_get /_fake/datasets | json_get \
	"sorted((x['datasetId'], x['location']) for x in d['datasets'])" >"$T/ds.out"
grep -q "('eu_ds', 'EU'), ('us_ds', 'US')" "$T/ds.out" || fail "dataset locations: $(cat "$T/ds.out")"
t=$(fake_get /_fake/tables/proj/eu_ds/orders | json_get \
	"(d['table']['tableConstraints']['primaryKey']['columns'], d['table']['clustering']['fields'], d['table'].get('maxStaleness'))")
[ "$t" = "(['id'], ['id'], '0-0 0 0:15:0')" ] || fail "eu_ds.orders: key, clustering, staleness: $t"
t=$(fake_get /_fake/tables/proj/us_ds/orders | json_get "d['table'].get('maxStaleness')")
[ "$t" = None ] || fail "us_ds.orders has a max_staleness: $t"
t=$(fake_get /_fake/tables/proj/eu_ds/Odd_Names | json_get "[f['name'] for f in d['table']['schema']['fields']]")
[ "$t" = "['Key Col', 'ü-value']" ] || fail "column names of Odd_Names: $t"

# spot checks of the documented representations
row() {
	fake_get "/_fake/tables/proj/$1/types/rows" | json_get "[r for r in d['rows'] if r['id'] == '$2'][0]['$3']"
}
[ "$(row eu_ds 4 d)" = 9999-12-31 ] || fail "date infinity: $(row eu_ds 4 d)"
[ "$(row eu_ds 4 t)" = 23:59:59.999999 ] || fail "time 24:00: $(row eu_ds 4 t)"
[ "$(row eu_ds 3 n)" = None ] || fail "numeric NaN: $(row eu_ds 3 n)"
[ "$(row eu_ds 2 a_int)" = "['1', '2', '3']" ] || fail "NULL array element: $(row eu_ds 2 a_int)"
[ "$(row eu_ds 2 tstz)" = 2026-11-23T08:00:00.123456Z ] || fail "timestamptz: $(row eu_ds 2 tstz)"
[ "$(row eu_ds 2 iv)" = "1-2 3 4:5:6.789" ] || fail "interval: $(row eu_ds 2 iv)"
[ "$(row eu_ds 4 iv)" = "-0-5 0 0:0:0" ] || fail "negative interval: $(row eu_ds 4 iv)"
[ "$(row eu_ds 2 a_2d)" = "[]" ] || fail "2-D array: $(row eu_ds 2 a_2d)"
[ "$(row us_ds 2 m)" = happy ] || fail "enum: $(row us_ds 2 m)"
t=$(fake_get /_fake/tables/proj/eu_ds/types | json_get \
	"{f['name']: f['type'] + ('[]' if f['mode'] == 'REPEATED' else '') for f in d['table']['schema']['fields']}")
for want in "'n': 'BIGNUMERIC'" "'n2': 'NUMERIC'" "'n3': 'BIGNUMERIC'" "'ts': 'DATETIME'" \
	"'tstz': 'TIMESTAMP'" "'jb': 'JSON'" "'iv': 'INTERVAL'" "'a_int': 'INTEGER[]'" "'ba': 'BYTES'" \
	"'u': 'STRING'" "'a_mood': 'STRING'" "'f4': 'FLOAT'" "'t': 'TIME'" "'d': 'DATE'"; do
	case "$t" in *"$want"*) ;; *) fail "types mapping: expected $want in $t" ;; esac
done

# the body kept across the update that did not carry it
body=$(fake_get /_fake/tables/proj/eu_ds/docs/rows | json_get "len([r for r in d['rows'] if r['id'] == '1'][0]['body'])")
[ "$body" = 12800 ] || fail "docs.body after an unchanged-TOAST update: $body characters"

# slot and position recorded at the clean stop: past the last transaction,
# and not past what the slot has confirmed
for x in "eu_ds rs1" "us_ds rs2"; do
	set -- $x
	st=$(fake_get "/_fake/tables/proj/$1/_dsplug_state" | json_get "d['table']['description']")
	case "$st" in *"\"slot\":\"$2\""*) ;; *) fail "$1 state: $st" ;; esac
	lsn=$(echo "$st" | json_get "d['applied_lsn']")
	lsn_le "$before_last" "$lsn" || fail "$1 records $lsn, before the last transaction ($before_last)"
	lsn_le "$lsn" "$(slot_confirmed "$db" "$2")" || fail "$1 records $lsn, beyond the slot's confirmed position"
done

# the routing header was checked strictly and every request answered OK
stats=$(fake_get /_fake/stats | json_get "(d['responses'], d['rowErrors'], d['callEnds'])")
echo "# fake: $stats"
case "$stats" in *INVALID_ARGUMENT*) fail "the fake refused requests: $stats" ;; esac
grep -q "could not" "$T"/consumer-*.log && fail "errors: $(grep "could not" "$T"/consumer-*.log | head -3)"

for s in rs1 rs2; do q "$db" -c "SELECT pg_drop_replication_slot('$s')" >/dev/null; done
drop_db "$db"
echo ok
