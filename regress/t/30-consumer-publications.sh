#!/bin/sh
# 30-consumer-publications.sh - what a publication says, through
# dsplug-consumer, checked against PostgreSQL's own subscriber (pgoutput)
# fed from the same point of the same publications, and against the
# source:
#
#   - a row filter: UPDATEs moving rows into the filter (sent as INSERT)
#     and out of it (sent as DELETE), deletes, NULLs;
#   - a column list: the replica has only the listed columns;
#   - a partitioned table published via its root, with a row moving between
#     partitions, ATTACH PARTITION and DETACH PARTITION in the middle of
#     the stream;
#   - the same partitioned table published as its leaf partitions
#     (--backfill copies a partition attached mid-stream when it first
#     appears).
#
# The dsplug replica of the root/filter/column-list publications must equal
# the pgoutput subscriber's tables row by row.
set -eu
. regress/t/lib.sh
. regress/t/lib/consumer.sh

db=dsplug_t30
sub=dsplug_t30_sub
recreate_db "$db"
recreate_db "$sub"

q "$db" <<'SQL'
CREATE TABLE rf (id int PRIMARY KEY, k int, v text);
ALTER TABLE rf REPLICA IDENTITY FULL;	-- the filter's column must be in it
CREATE TABLE cl (id int PRIMARY KEY, a text, b int, secret text);
CREATE TABLE pt (id int, region text, v text, PRIMARY KEY (id, region))
	PARTITION BY LIST (region);
CREATE TABLE pt_eu PARTITION OF pt FOR VALUES IN ('eu');
CREATE TABLE pt_us PARTITION OF pt FOR VALUES IN ('us');
CREATE TABLE pt_asia (id int, region text, v text, PRIMARY KEY (id, region));
CREATE PUBLICATION p_rf FOR TABLE rf WHERE (k > 10);
CREATE PUBLICATION p_cl FOR TABLE cl (id, a, b);
CREATE PUBLICATION p_root FOR TABLE pt WITH (publish_via_partition_root = true);
CREATE PUBLICATION p_leaf FOR TABLE pt;
SELECT 'slot' FROM pg_create_logical_replication_slot('d30_root', 'dsplug');
SELECT 'slot' FROM pg_create_logical_replication_slot('d30_leaf', 'dsplug');
SELECT 'slot' FROM pg_create_logical_replication_slot('pg30', 'pgoutput');
INSERT INTO pt_asia SELECT g, 'asia', 'before attach' FROM generate_series(1, 30) g;
SQL

# PostgreSQL's subscriber, on the pgoutput slot created at the same point
q "$sub" <<SQL
CREATE TABLE rf (id int PRIMARY KEY, k int, v text);
CREATE TABLE cl (id int PRIMARY KEY, a text, b int);
CREATE TABLE pt (id int, region text, v text, PRIMARY KEY (id, region));
CREATE SUBSCRIPTION s30 CONNECTION 'host=$PGHOST port=$PGPORT user=$PGUSER dbname=$db'
	PUBLICATION p_rf, p_cl, p_root
	WITH (create_slot = false, slot_name = 'pg30', copy_data = false);
SQL

# the leaf replica starts before the workload (its backfill copies empty
# partitions), so that the partition attached later is copied mid-stream
consume "$db" d30_leaf p_leaf "$T/leaf.db" --backfill

q "$db" <<'SQL'
INSERT INTO rf SELECT g, g % 20, 'v' || g FROM generate_series(1, 300) g;
INSERT INTO rf VALUES (1000, NULL, 'null k: never');
UPDATE rf SET k = k + 15 WHERE id % 4 = 0;		-- some move in: INSERT
UPDATE rf SET k = 0 WHERE id % 5 = 0;			-- some move out: DELETE
UPDATE rf SET v = 'touched ' || id WHERE id % 3 = 0;
UPDATE rf SET k = NULL WHERE id % 7 = 0;		-- NULL is false: out
UPDATE rf SET k = 50 WHERE id = 1000;			-- in
DELETE FROM rf WHERE id % 11 = 0;

INSERT INTO cl SELECT g, 'a' || g, g, 'secret ' || g FROM generate_series(1, 200) g;
UPDATE cl SET secret = 'changed' WHERE id % 2 = 0;
UPDATE cl SET a = 'new a', secret = 'x' WHERE id % 3 = 0;
DELETE FROM cl WHERE id % 13 = 0;

INSERT INTO pt SELECT g, CASE WHEN g % 2 = 0 THEN 'eu' ELSE 'us' END, 'v' || g
	FROM generate_series(1, 400) g;
UPDATE pt SET region = 'us', v = 'moved' WHERE region = 'eu' AND id % 6 = 0;
DELETE FROM pt WHERE id % 17 = 0;
ALTER TABLE pt ATTACH PARTITION pt_asia FOR VALUES IN ('asia');
INSERT INTO pt SELECT g, 'asia', 'after attach' FROM generate_series(31, 60) g;
-- (rows from before ATTACH are on neither replica; an UPDATE of one
-- would be an upsert in dsplug's SQLite sink and skipped by PostgreSQL's)
UPDATE pt SET v = 'asia updated' WHERE region = 'asia' AND id > 30 AND id % 4 = 0;
ALTER TABLE pt DETACH PARTITION pt_eu;
INSERT INTO pt_eu SELECT g, 'eu', 'after detach' FROM generate_series(1001, 1050) g;
UPDATE pt_eu SET v = 'detached update' WHERE id >= 1001;
INSERT INTO pt SELECT g, 'us', 'last' FROM generate_series(2001, 2050) g;
SQL
end=$(current_lsn "$db")

consume "$db" d30_root p_rf,p_cl,p_root "$T/root.db"
consume "$db" d30_leaf p_leaf "$T/leaf.db" --backfill

# wait for PostgreSQL's subscriber to hold everything up to $end
n=600
until [ "$(q "$db" -c "SELECT coalesce(confirmed_flush_lsn >= '$end', false) FROM pg_replication_slots WHERE slot_name = 'pg30'")" = t ]; do
	n=$((n - 1))
	[ "$n" -gt 0 ] || fail "PostgreSQL's subscriber did not catch up to $end"
	sleep 0.1
done

# dsplug replica = pgoutput subscriber, row by row
compare "$sub" "$T/root.db" --table public.rf --table public.cl --table public.pt
# and = what the publications hold
compare "$db" "$T/root.db" --table public.rf --where "public.rf=k > 10"
cols=$(sqlite3 "$T/root.db" "SELECT group_concat(name, ',') FROM pragma_table_info('public_cl')")
[ "$cols" = "id,a,b" ] || fail "the column list replica has columns $cols, expected id,a,b"
nrf=$(sqlite3 "$T/root.db" "SELECT count(*) FROM public_rf")
[ "$nrf" -gt 50 ] || fail "the row filter replica has only $nrf rows"
asia=$(sqlite3 "$T/root.db" "SELECT count(*) FROM public_pt WHERE region = 'asia'")
[ "$asia" -eq 30 ] || fail "via root: $asia rows of the attached partition, expected its 30 rows inserted after ATTACH"
[ "$(sqlite3 "$T/root.db" "SELECT count(*) FROM public_pt WHERE id > 1000 AND region = 'eu'")" -eq 0 ] ||
	fail "via root: changes of a detached partition were applied"
[ "$(sqlite3 "$T/root.db" "SELECT count(*) FROM sqlite_master WHERE name LIKE 'public_pt_%'")" -eq 0 ] ||
	fail "via root: a partition has a table of its own in the replica"
echo "# via root: rf $nrf rows, pt $(sqlite3 "$T/root.db" "SELECT count(*) FROM public_pt") rows ($asia attached mid-stream), cl columns $cols"

# leaf partitions: each its own table; the attached one copied when it
# first appeared, the detached one frozen at DETACH
compare "$db" "$T/leaf.db" --table public.pt_us --table public.pt_asia
compare "$db" "$T/leaf.db" --table public.pt_eu --where "public.pt_eu=id < 1000"
[ "$(sqlite3 "$T/leaf.db" "SELECT count(*) FROM sqlite_master WHERE name = 'public_pt'")" -eq 0 ] ||
	fail "leaf partitions: the root has a table in the replica"

q "$sub" -c "ALTER SUBSCRIPTION s30 DISABLE" -c "ALTER SUBSCRIPTION s30 SET (slot_name = NONE)" \
	-c "DROP SUBSCRIPTION s30" >/dev/null
for s in d30_root d30_leaf pg30; do
	q "$db" -c "SELECT pg_drop_replication_slot('$s')" >/dev/null
done
drop_db "$sub"
drop_db "$db"
echo ok
