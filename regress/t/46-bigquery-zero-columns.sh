#!/bin/sh
# 46-bigquery-zero-columns.sh - relations without columns (CREATE TABLE t (),
# every column dropped, only generated columns) on the fake BigQuery: such
# a relation has no primary key, so its table is a change log, whose
# metadata columns (_dsplug_change_type, ...) are its only columns; each
# source row is an INSERT line, a REPLICA IDENTITY FULL delete a DELETE
# line, an update an UPDATE line, a truncate a TRUNCATE line.  Merge mode
# and mode=append, the issue's reproduction (rows without columns between
# TOASTed rows), rows from before the slot (--create-slot copies them):
# every dataset replays to the source, and the comparison is shown to catch
# a missing line.
set -eu
. regress/t/lib.sh
. regress/t/lib/consumer.sh
. regress/t/lib/bigquery.sh

db=dsplug_t46
recreate_db "$db"
trap 'stop_fake' EXIT
start_fake

q "$db" <<'SQL'
CREATE TABLE one (id int PRIMARY KEY, t text);
CREATE TABLE zc_full ();
ALTER TABLE zc_full REPLICA IDENTITY FULL;
CREATE TABLE zc_default ();
CREATE TABLE zc_nothing ();
ALTER TABLE zc_nothing REPLICA IDENTITY NOTHING;
CREATE TABLE dropped (a int, b text);
ALTER TABLE dropped REPLICA IDENTITY FULL;
CREATE TABLE gen_only (g int GENERATED ALWAYS AS (1) STORED);
ALTER TABLE gen_only REPLICA IDENTITY FULL;
CREATE PUBLICATION zc_all FOR TABLE one, zc_full, dropped, gen_only;
CREATE PUBLICATION zc_ins FOR TABLE zc_default, zc_nothing WITH (publish = 'insert, truncate');
-- rows the initial copy brings
INSERT INTO zc_full SELECT FROM generate_series(1, 2);
INSERT INTO zc_default DEFAULT VALUES;
SQL
pubs=zc_all,zc_ins

bq_consume "$db" s_merge "$pubs" "bigquery://proj/m?location=EU" --create-slot
bq_consume "$db" s_append "$pubs" "bigquery://proj/a?location=EU&mode=append" --create-slot
bq_compare "$db" m --publication "$pubs"

q "$db" <<'SQL'
-- the reproduction
BEGIN;
INSERT INTO one VALUES (1, repeat('x', 3000));
INSERT INTO zc_full DEFAULT VALUES;
INSERT INTO one VALUES (2, repeat('y', 100000));
INSERT INTO zc_full DEFAULT VALUES;
COMMIT;
INSERT INTO zc_full SELECT FROM generate_series(1, 5);
DELETE FROM zc_full WHERE ctid = (SELECT min(ctid) FROM zc_full);
INSERT INTO zc_default SELECT FROM generate_series(1, 3);
INSERT INTO zc_nothing SELECT FROM generate_series(1, 4);
INSERT INTO dropped VALUES (1, 'one'), (2, 'two');
ALTER TABLE dropped DROP COLUMN a, DROP COLUMN b;
INSERT INTO dropped SELECT FROM generate_series(1, 3);
DELETE FROM dropped WHERE ctid = (SELECT max(ctid) FROM dropped);
INSERT INTO gen_only SELECT FROM generate_series(1, 3);
UPDATE gen_only SET g = DEFAULT WHERE ctid = (SELECT min(ctid) FROM gen_only);
DELETE FROM gen_only WHERE ctid = (SELECT max(ctid) FROM gen_only);
TRUNCATE zc_nothing;
INSERT INTO zc_nothing DEFAULT VALUES;
SQL

bq_consume "$db" s_merge "$pubs" "bigquery://proj/m?location=EU" --create-slot
bq_consume "$db" s_append "$pubs" "bigquery://proj/a?location=EU&mode=append" --create-slot
# gen_only is checked by its lines below: an UPDATE line of a change log
# without a key does not say which row it replaced, so it cannot be
# replayed (for any table without a key, columns or not)
tables="--table public.one --table public.zc_full --table public.zc_default --table public.zc_nothing --table public.dropped"
# shellcheck disable=SC2086
bq_compare "$db" m $tables
# shellcheck disable=SC2086
bq_compare "$db" a $tables

# the table of a relation without columns: the change-log columns only
t=$(fake_get /_fake/tables/proj/m/zc_full | json_get "[f['name'] for f in d['table']['schema']['fields']]")
[ "$t" = "['_dsplug_change_type', '_dsplug_sequence_number', '_dsplug_commit_timestamp', '_dsplug_is_deleted']" ] ||
	fail "zc_full columns: $t"
lines=$(fake_get /_fake/tables/proj/m/zc_full/rows | json_get \
	"sorted(r['_dsplug_change_type'] for r in d['rows'])")
[ "$lines" = "['DELETE', 'INSERT', 'INSERT', 'INSERT', 'INSERT', 'INSERT', 'INSERT', 'INSERT', 'INSERT', 'INSERT']" ] ||
	fail "zc_full lines: $lines"
lines=$(fake_get /_fake/tables/proj/m/gen_only/rows | json_get \
	"sorted(r['_dsplug_change_type'] for r in d['rows'])")
[ "$lines" = "['DELETE', 'INSERT', 'INSERT', 'INSERT', 'UPDATE']" ] || fail "gen_only lines: $lines"
grep -q 'table "public"."zc_full" is written append-only as a change log to m.zc_full: it has no primary key' \
	"$T/consumer.log" || fail "no log line for zc_full: $(cat "$T/consumer.log")"

# the comparison catches a line too many in such a table
q "$db" -c "DELETE FROM zc_full WHERE ctid = (SELECT min(ctid) FROM zc_full)"
if $COMPARE_BQ --db "$db" --fake "$FAKE" --project proj --dataset m --table public.zc_full \
	>"$T/neg.out" 2>&1; then
	fail "the comparison did not notice a row BigQuery still has"
fi
grep -q "7 source rows, 8 BigQuery rows" "$T/neg.out" ||
	fail "unexpected comparison output: $(cat "$T/neg.out")"

q postgres -c "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name IN ('s_merge', 's_append')" >/dev/null
drop_db "$db"
echo ok
