#!/bin/sh
# 32-consumer-zero-columns.sh - relations without columns (CREATE TABLE t (),
# every column dropped, only generated columns) in a SQLite replica: the replica table has one
# placeholder column, _dsplug_no_columns, always NULL, and one row per
# source row.  Inserts count, a REPLICA IDENTITY FULL delete removes one
# row, an update changes nothing, truncate empties; no identity (DEFAULT without a key, NOTHING) on an
# insert-only publication; a column added later; the issue's reproduction
# (rows without columns between TOASTed rows in one transaction); rows from
# before the slot through --backfill.  Both replicas (streamed, backfilled)
# must equal the source, and the comparison is shown to catch a missing
# row.
set -eu
. regress/t/lib.sh
. regress/t/lib/consumer.sh

db=dsplug_t32
recreate_db "$db"
pubs=zc_all,zc_ins

q "$db" <<'SQL'
CREATE TABLE one (t text);
CREATE TABLE zc_full ();
ALTER TABLE zc_full REPLICA IDENTITY FULL;
CREATE TABLE zc_default ();
CREATE TABLE zc_nothing ();
ALTER TABLE zc_nothing REPLICA IDENTITY NOTHING;
CREATE TABLE dropped (a int PRIMARY KEY, b text);
CREATE TABLE grows ();
-- generated columns are not sent: no column either, but it can be updated
CREATE TABLE gen_only (g int GENERATED ALWAYS AS (1) STORED);
ALTER TABLE gen_only REPLICA IDENTITY FULL;
CREATE PUBLICATION zc_all FOR TABLE one, zc_full, dropped, grows, gen_only;
CREATE PUBLICATION zc_ins FOR TABLE zc_default, zc_nothing WITH (publish = 'insert, truncate');
-- rows from before either slot: only the backfilled replica has them
INSERT INTO zc_full DEFAULT VALUES;
INSERT INTO zc_default DEFAULT VALUES;
INSERT INTO dropped VALUES (1, 'before');
SELECT 'slot' FROM pg_create_logical_replication_slot('t32_stream', 'dsplug');
SELECT 'slot' FROM pg_create_logical_replication_slot('t32_backfill', 'dsplug');
SQL

consume "$db" t32_backfill "$pubs" "$T/backfill.db" --backfill
compare "$db" "$T/backfill.db" --publication "$pubs"

q "$db" <<'SQL'
-- the reproduction
BEGIN;
INSERT INTO one VALUES (repeat('x', 3000));
INSERT INTO zc_full DEFAULT VALUES;
INSERT INTO one VALUES (repeat('y', 100000));
INSERT INTO zc_full DEFAULT VALUES;
COMMIT;
INSERT INTO zc_full SELECT FROM generate_series(1, 5);
INSERT INTO zc_default SELECT FROM generate_series(1, 3);
INSERT INTO zc_nothing SELECT FROM generate_series(1, 4);
-- FULL identity: one delete removes one of the identical rows
DELETE FROM zc_full WHERE ctid = (SELECT min(ctid) FROM zc_full);
DELETE FROM zc_full WHERE ctid = (SELECT max(ctid) FROM zc_full);
-- every column dropped: the key goes too, FULL makes deletes possible
INSERT INTO dropped VALUES (2, 'streamed'), (3, 'streamed');
ALTER TABLE dropped DROP COLUMN a, DROP COLUMN b;
ALTER TABLE dropped REPLICA IDENTITY FULL;
INSERT INTO dropped SELECT FROM generate_series(1, 3);
DELETE FROM dropped WHERE ctid = (SELECT min(ctid) FROM dropped);
-- an update of a row without sent columns changes nothing, and counts it
INSERT INTO gen_only SELECT FROM generate_series(1, 3);
UPDATE gen_only SET g = DEFAULT WHERE ctid = (SELECT min(ctid) FROM gen_only);
DELETE FROM gen_only WHERE ctid = (SELECT max(ctid) FROM gen_only);
-- truncate of tables without columns, with others
INSERT INTO grows SELECT FROM generate_series(1, 10);
TRUNCATE grows, zc_nothing;
INSERT INTO grows DEFAULT VALUES;
-- a table without columns gains one
ALTER TABLE grows ADD COLUMN c int;
INSERT INTO grows VALUES (1), (NULL);
SQL

consume "$db" t32_stream "$pubs" "$T/stream.db"
consume "$db" t32_backfill "$pubs" "$T/backfill.db" --backfill
compare "$db" "$T/backfill.db" --publication "$pubs"
# streaming alone misses the rows from before the slot (and the pre-drop
# rows of dropped, whose key column is gone: one row per source row still)
compare "$db" "$T/stream.db" --table one --table zc_nothing --table grows \
	--table gen_only

# the replica tables: a placeholder column only, one row per source row
cols=$(sqlite3 "$T/stream.db" "SELECT group_concat(name) FROM pragma_table_info('public_zc_full')")
[ "$cols" = "_dsplug_no_columns" ] || fail "public_zc_full has columns '$cols'"
n=$(sqlite3 "$T/stream.db" "SELECT count(*) || '/' || count(_dsplug_no_columns) FROM public_zc_full")
[ "$n" = "5/0" ] || fail "public_zc_full: count/non-NULL is $n, expected 5/0 (2 + 5 inserted, 2 deleted)"
n=$(sqlite3 "$T/stream.db" "SELECT count(*) FROM public_zc_default")
[ "$n" = 3 ] || fail "public_zc_default has $n rows, expected 3"
cols=$(sqlite3 "$T/stream.db" "SELECT group_concat(name) FROM pragma_table_info('public_grows')")
[ "$cols" = "_dsplug_no_columns,c" ] || fail "public_grows has columns '$cols'"

# the comparison catches a missing row in a table without columns
sqlite3 "$T/backfill.db" "DELETE FROM public_zc_full WHERE rowid = (SELECT max(rowid) FROM public_zc_full)"
if $COMPARE --db "$db" --sqlite "$T/backfill.db" --table zc_full >"$T/neg.out" 2>&1; then
	fail "the comparison did not notice a row missing from public_zc_full"
fi
grep -q "source has 6 rows, replica 5" "$T/neg.out" ||
	fail "unexpected comparison output: $(cat "$T/neg.out")"

q postgres -c "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name LIKE 't32%'" >/dev/null
drop_db "$db"
echo ok
