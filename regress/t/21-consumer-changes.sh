#!/bin/sh
# 21-consumer-changes.sh - what changes do to a dsplug-consumer replica:
# TOAST values unchanged and changed, every replica identity (primary key,
# USING INDEX with and without a different primary key, FULL with and
# without a key, NOTHING and no key on insert-only publications),
# key-changing updates and key swaps, truncate, ADD COLUMN (with a
# default, and a column dropped and added again), DROP COLUMN, a renamed
# table, a key added later, a replica identity changed, and tables added
# to the publication mid-stream (with rows from before, and empty).
#
# Two replicas follow the same workload: one with --backfill (initial copy,
# and copies when a table joins or gains columns), which must equal the
# source in every table, and one streaming only, which must equal it
# wherever the stream alone carries the rows.
set -eu
. regress/t/lib.sh
. regress/t/lib/consumer.sh

db=dsplug_t21
recreate_db "$db"
pubs=pub_all_actions,pub_inserts

q "$db" <<'SQL'
CREATE TABLE toasty (id int PRIMARY KEY, big text, other int, big2 text);
ALTER TABLE toasty ALTER big SET STORAGE EXTERNAL, ALTER big2 SET STORAGE EXTERNAL;
CREATE TABLE id_default (id int PRIMARY KEY, v text, w int);
CREATE TABLE id_index (a int NOT NULL, b int NOT NULL, v text, CONSTRAINT id_index_ab UNIQUE (a, b));
ALTER TABLE id_index REPLICA IDENTITY USING INDEX id_index_ab;
CREATE TABLE id_index_pk (id int PRIMARY KEY, code text NOT NULL, v text,
	CONSTRAINT id_index_pk_code UNIQUE (code));
ALTER TABLE id_index_pk REPLICA IDENTITY USING INDEX id_index_pk_code;
CREATE TABLE id_full (a int, b text, c float8);
ALTER TABLE id_full REPLICA IDENTITY FULL;
CREATE TABLE id_full_pk (id int PRIMARY KEY, v text, big text);
ALTER TABLE id_full_pk REPLICA IDENTITY FULL;
ALTER TABLE id_full_pk ALTER big SET STORAGE EXTERNAL;
CREATE TABLE id_nothing (a int, v text);
ALTER TABLE id_nothing REPLICA IDENTITY NOTHING;
CREATE TABLE no_key (a int NOT NULL, v text);
CREATE TABLE events (id int PRIMARY KEY, v text);
CREATE PUBLICATION pub_all_actions FOR TABLE toasty, id_default, id_index, id_index_pk,
	id_full, id_full_pk, events;
CREATE PUBLICATION pub_inserts FOR TABLE id_nothing, no_key WITH (publish = 'insert, truncate');
SELECT 'slot' FROM pg_create_logical_replication_slot('t21_stream', 'dsplug');

-- rows from before the backfilled replica starts (the stream-only one sees
-- them stream by)
INSERT INTO toasty SELECT g, repeat(md5(g::text), 1000), g, repeat(md5((g + 1)::text), 200)
	FROM generate_series(1, 20) g;
INSERT INTO id_default SELECT g, 'v' || g, g FROM generate_series(1, 100) g;
INSERT INTO id_full_pk SELECT g, 'v' || g, repeat(md5(g::text), 1000) FROM generate_series(1, 10) g;
SELECT 'slot' FROM pg_create_logical_replication_slot('t21_backfill', 'dsplug');
INSERT INTO id_index SELECT g, g % 3, 'v' || g FROM generate_series(1, 30) g;
INSERT INTO id_index_pk SELECT g, 'c' || g, 'v' || g FROM generate_series(1, 20) g;
SQL

# the backfilled replica starts from the rows there are now
consume "$db" t21_backfill "$pubs" "$T/backfill.db" --backfill
consume "$db" t21_stream "$pubs" "$T/stream.db"
compare "$db" "$T/backfill.db" --publication "$pubs"

q "$db" <<'SQL'
-- TOAST: unchanged (stays), changed, one of two, moved with the key, nulled
UPDATE toasty SET other = other + 100 WHERE id <= 10;
UPDATE toasty SET big = repeat('z', 40000) WHERE id = 3;
UPDATE toasty SET big2 = 'small now', other = -1 WHERE id = 4;
UPDATE toasty SET id = id + 100 WHERE id IN (5, 6);
UPDATE toasty SET big = NULL WHERE id = 7;
DELETE FROM toasty WHERE id = 8;
UPDATE id_full_pk SET v = 'w' WHERE id <= 5;
UPDATE id_full_pk SET id = id + 100 WHERE id = 6;
DELETE FROM id_full_pk WHERE id = 7;

-- primary key: updates, key changes, a swap, delete and re-insert
UPDATE id_default SET v = 'updated' WHERE id % 3 = 0;
UPDATE id_default SET id = id + 1000 WHERE id % 10 = 1;
BEGIN;
UPDATE id_default SET id = -id WHERE id IN (2, 4);
UPDATE id_default SET id = 4 WHERE id = -2;
UPDATE id_default SET id = 2 WHERE id = -4;
COMMIT;
DELETE FROM id_default WHERE id % 7 = 0;
BEGIN;
DELETE FROM id_default WHERE id = 5;
INSERT INTO id_default VALUES (5, 'reborn', 0);
INSERT INTO id_default VALUES (5000, 'short-lived', 0);
DELETE FROM id_default WHERE id = 5000;
COMMIT;

-- USING INDEX: the identity changes, or only the primary key does
UPDATE id_index SET v = 'u' WHERE a <= 10;
UPDATE id_index SET b = b + 10 WHERE a BETWEEN 11 AND 15;
DELETE FROM id_index WHERE a > 25;
UPDATE id_index_pk SET id = id + 100 WHERE id <= 5;
UPDATE id_index_pk SET code = 'x' || code WHERE id BETWEEN 6 AND 10;
DELETE FROM id_index_pk WHERE id BETWEEN 11 AND 13;

-- FULL without a key: duplicates, NULLs, NaN; one row at a time
INSERT INTO id_full VALUES (1, 'a', 1.5), (1, 'a', 1.5), (1, 'a', 1.5), (2, NULL, NULL),
	(NULL, NULL, NULL), (NULL, NULL, NULL), (3, 'c', 'NaN');
UPDATE id_full SET b = 'changed' WHERE ctid = (SELECT ctid FROM id_full WHERE a = 1 LIMIT 1);
DELETE FROM id_full WHERE ctid = (SELECT ctid FROM id_full WHERE a IS NULL LIMIT 1);
UPDATE id_full SET c = 2.5 WHERE a = 2;
UPDATE id_full SET a = 30 WHERE c = 'NaN';

-- insert-only publications: no identity, no key, duplicates kept
INSERT INTO id_nothing SELECT g, 'v' || g FROM generate_series(1, 5) g;
INSERT INTO id_nothing VALUES (1, 'v1');
INSERT INTO no_key SELECT g, 'v' || g FROM generate_series(1, 5) g;

-- truncate, alone and with other changes in one transaction
INSERT INTO events SELECT g, 'e' FROM generate_series(1, 50) g;
TRUNCATE events;
INSERT INTO events VALUES (1, 'after truncate');
BEGIN;
INSERT INTO events VALUES (2, 'x');
TRUNCATE events, no_key;
INSERT INTO events VALUES (3, 'y');
INSERT INTO no_key VALUES (7, 'after truncate');
COMMIT;
SQL

consume "$db" t21_backfill "$pubs" "$T/backfill.db" --backfill
consume "$db" t21_stream "$pubs" "$T/stream.db"
compare "$db" "$T/backfill.db" --publication "$pubs"
compare "$db" "$T/stream.db" --publication "$pubs"

# the moved TOAST rows kept their out-of-line values
moved=$(sqlite3 "$T/stream.db" "SELECT count(*) FROM public_toasty WHERE id IN (105, 106) AND length(big) = 32000")
[ "$moved" = 2 ] || fail "rows moved by a key change lost their unchanged TOAST values"

q "$db" <<'SQL'
-- columns: added with a default (existing rows have it on the source, not
-- in WAL), added without, dropped, added again under the same name
ALTER TABLE id_default ADD COLUMN added_default int DEFAULT 7;
ALTER TABLE id_default ADD COLUMN added_null text;
INSERT INTO id_default (id, v, w, added_null) VALUES (6000, 'with new columns', 1, 'n');
UPDATE id_default SET added_null = 'set' WHERE id = 3;
ALTER TABLE id_default DROP COLUMN w;
INSERT INTO id_default (id, v) VALUES (6001, 'after drop');
ALTER TABLE id_default ADD COLUMN w int;
UPDATE id_default SET w = 1 WHERE id = 6;

-- a renamed table, a key added to a table without one
ALTER TABLE events RENAME TO events_renamed;
INSERT INTO events_renamed VALUES (10, 'renamed');
ALTER TABLE no_key ADD PRIMARY KEY (a);
INSERT INTO no_key VALUES (100, 'with key');

-- the replica identity changes from an index to FULL
ALTER TABLE id_index REPLICA IDENTITY FULL;
UPDATE id_index SET v = 'after full' WHERE a = 1;
DELETE FROM id_index WHERE a = 3;

-- tables join the publication: one with rows from before, one empty
CREATE TABLE late_full (id int PRIMARY KEY, v text);
INSERT INTO late_full SELECT g, 'before' FROM generate_series(1, 200) g;
ALTER PUBLICATION pub_all_actions ADD TABLE late_full;
UPDATE late_full SET v = 'after' WHERE id <= 50;
DELETE FROM late_full WHERE id > 190;
CREATE TABLE late_empty (id int PRIMARY KEY, v text);
ALTER PUBLICATION pub_all_actions ADD TABLE late_empty;
INSERT INTO late_empty VALUES (1, 'x');
SQL
# and changes that come after the copies
q "$db" -c "UPDATE late_full SET v = 'later' WHERE id = 100" \
	-c "UPDATE id_default SET added_default = 8 WHERE id = 3"

consume "$db" t21_backfill "$pubs" "$T/backfill.db" --backfill
consume "$db" t21_stream "$pubs" "$T/stream.db"
compare "$db" "$T/backfill.db" --publication "$pubs"

# streaming alone: every table but the two whose rows predate the stream
# (late_full's, and the default ADD COLUMN gave id_default's existing rows)
compare "$db" "$T/stream.db" --table toasty --table id_index --table id_index_pk \
	--table id_full --table id_full_pk --table id_nothing --table no_key \
	--table events_renamed --table late_empty
# rows written after ADD COLUMN ... DEFAULT carry the default; older ones
# (never rewritten on the source) have NULL in a stream-only replica
have=$(sqlite3 "$T/stream.db" "SELECT group_concat(id) FROM (SELECT id FROM public_id_default WHERE added_default IS NOT NULL ORDER BY id)")
[ "$have" = "3,6,6000,6001" ] ||
	fail "streaming only: rows with the added column set are $have, expected 3,6,6000,6001"
n=$(sqlite3 "$T/stream.db" "SELECT count(*) FROM public_late_full")
[ "$n" -eq 51 ] || fail "streaming only: late_full has $n rows, expected the 51 updated after it joined"
stale=$(sqlite3 "$T/stream.db" "SELECT count(*) FROM public_id_default WHERE w IS NOT NULL AND id <> 6")
[ "$stale" = 0 ] || fail "a column dropped and added again kept $stale old values"
n=$(sqlite3 "$T/stream.db" "SELECT count(*) FROM sqlite_schema WHERE name = 'public_events'")
[ "$n" = 0 ] || fail "the renamed table was not renamed in the replica"

q postgres -c "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name LIKE 't21%'" >/dev/null
drop_db "$db"
echo ok
