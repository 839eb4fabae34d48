#!/bin/sh
# 44-bigquery-schema.sh - table shapes and refusals of the BigQuery target
# on the fake BigQuery:
#   - ADD COLUMN mid-stream (with a default that fills existing rows without
#     WAL): the table gains the column (PATCH), the rows are copied again,
#     the dataset equals the source;
#   - a table without a primary key is a change log, said once in the log;
#   - mode=append: every table a change log (change type, sequence number,
#     commit timestamp, is_deleted), which replays to the source;
#   - unchanged TOASTed values without REPLICA IDENTITY FULL are read again
#     from the source (updates changing them later, rows deleted or moved
#     later, a lost connection, a SIGKILL and restart): the table equals
#     the source; without a source (--replay) the consumer stops (exit 3)
#     with the table and the fix, instead of writing NULL;
#   - a value out of BigQuery's range is refused by BigQuery: exit 3 naming
#     table, key and reason;
#   - refused at start with exit 3: a dataset in another location, a dataset
#     that follows another slot, bad URIs, plaintext to a remote host.
set -eu
. regress/t/lib.sh
. regress/t/lib/consumer.sh
. regress/t/lib/bigquery.sh

db=dsplug_t44
recreate_db "$db"
trap 'stop_fake' EXIT
start_fake

q "$db" <<'SQL'
CREATE TABLE items (id int PRIMARY KEY, name text);
CREATE TABLE nokey (a int, b text);
ALTER TABLE nokey REPLICA IDENTITY FULL;
CREATE PUBLICATION p FOR TABLE items, nokey;
INSERT INTO items SELECT g, 'item ' || g FROM generate_series(1, 100) g;
INSERT INTO nokey VALUES (1, 'one'), (2, 'two'), (2, 'two');
SQL

# merge: backfill, then ADD COLUMN with a default mid-stream
bq_consume "$db" s_merge p "bigquery://proj/m?location=EU" --create-slot
grep -q 'table "public"."nokey" is written append-only as a change log to m.nokey: it has no primary key' \
	"$T/consumer.log" || fail "no log line for the table without a key: $(cat "$T/consumer.log")"
# the consumer keeps running while the source changes shape under it
# shellcheck disable=SC2046
"$CONSUMER" --dbname "dbname=$db" --slot s_merge --publication p --create-slot \
	--target "bigquery://proj/m?location=EU" $(bq_options) --status-interval 0 \
	--group-ms 100 2>>"$T/consumer.log" &
running=$!
trap 'kill -KILL $running 2>/dev/null || true; stop_fake' EXIT
q "$db" -c "INSERT INTO items VALUES (101, 'new')"
sleep 1
q "$db" <<'SQL'
ALTER TABLE items ADD COLUMN price numeric(10,2) DEFAULT 9.99, ADD COLUMN tags text[];
INSERT INTO items VALUES (102, 'newer', 1.25, '{a,b}');
UPDATE items SET price = 5 WHERE id = 1;
DELETE FROM items WHERE id = 2;
DELETE FROM nokey WHERE a = 2;
INSERT INTO nokey VALUES (3, 'three');
SQL
end=$(current_lsn "$db")
for i in $(seq 1 150); do
	lsn_le "$end" "$(slot_confirmed "$db" s_merge)" && break
	kill -0 "$running" || fail "the consumer died: $(tail -n 3 "$T/consumer.log")"
	sleep 0.2
done
kill -TERM "$running"
wait "$running" || fail "the consumer did not stop cleanly: $(tail -n 3 "$T/consumer.log")"
trap 'stop_fake' EXIT
grep -q "added 2 column(s) to table m.items" "$T/consumer.log" || fail "no ADD COLUMN: $(tail -n 5 "$T/consumer.log")"
bq_compare "$db" m --publication p
t=$(fake_get /_fake/tables/proj/m/items | json_get "[f['name'] for f in d['table']['schema']['fields']]")
[ "$t" = "['id', 'name', 'price', 'tags']" ] || fail "items columns: $t"
t=$(fake_get /_fake/tables/proj/m/nokey | json_get "(d['primaryKey'], [f['name'] for f in d['table']['schema']['fields']][:4])")
[ "$t" = "(None, ['_dsplug_change_type', '_dsplug_sequence_number', '_dsplug_commit_timestamp', '_dsplug_is_deleted'])" ] ||
	fail "nokey shape: $t"
n=$(grep -c "append-only as a change log to m.nokey" "$T/consumer.log")
[ "$n" -eq 2 ] || fail "the change-log line should come once per run, got $n in 2 runs"

# append mode: the same source as change logs, from its own slot
bq_consume "$db" s_append p "bigquery://proj/a?location=EU&mode=append" --create-slot
q "$db" -c "UPDATE items SET name = 'renamed' WHERE id <= 10" -c "DELETE FROM items WHERE id > 90" \
	-c "UPDATE items SET id = 1000 WHERE id = 50"
bq_consume "$db" s_append p "bigquery://proj/a?location=EU&mode=append" --create-slot
bq_compare "$db" a --publication p
lines=$(fake_get /_fake/tables/proj/a/items/rows | json_get \
	"sorted(set((r['_dsplug_change_type'], r['_dsplug_is_deleted']) for r in d['rows']))")
[ "$lines" = "[('DELETE', True), ('INSERT', False), ('UPDATE', False)]" ] || fail "append lines: $lines"
ts=$(fake_get /_fake/tables/proj/a/items/rows | json_get \
	"all(r['_dsplug_commit_timestamp'] for r in d['rows'] if r['_dsplug_change_type'] != 'INSERT')")
[ "$ts" = True ] || fail "change-log lines without a commit timestamp"
bq_consume "$db" s_merge p "bigquery://proj/m?location=EU" --create-slot
bq_compare "$db" m --publication p

# TRUNCATE: a change log gets a TRUNCATE line (and replays empty); a merge
# table cannot be emptied by key, so the consumer says so, once
q "$db" -c "TRUNCATE nokey" -c "INSERT INTO nokey VALUES (9, 'after')" -c "TRUNCATE items" \
	-c "TRUNCATE items"
bq_consume "$db" s_merge p "bigquery://proj/m?location=EU" --create-slot
bq_compare "$db" m --table public.nokey
n=$(grep -c 'TRUNCATE of "public"."items" not applied to BigQuery table m.items' "$T/consumer.log")
[ "$n" -eq 1 ] || fail "the truncate warning came $n times, expected once"
n=$(fake_get /_fake/tables/proj/m/items | json_get "d['numRows']")
[ "$n" -eq 89 ] || fail "m.items holds $n rows after an unapplied truncate, expected 89"

# unchanged TOASTed values without REPLICA IDENTITY FULL: read again from
# the source by key while the consumer runs (SIGKILLed once, restarted);
# updates that change them later, rows updated then deleted, key changes
q "$db" <<'SQL'
CREATE TABLE docs (id int PRIMARY KEY, title text, body text, meta jsonb);
ALTER TABLE docs ALTER body SET STORAGE EXTERNAL, ALTER meta SET STORAGE EXTERNAL;
CREATE PUBLICATION p_docs FOR TABLE docs;
SELECT 'slot' FROM pg_create_logical_replication_slot('s_docs', 'dsplug');
INSERT INTO docs SELECT g, 'doc ' || g,
	(SELECT string_agg(md5((g * 1000 + i)::text), '') FROM generate_series(1, 400) i),
	(SELECT jsonb_agg(jsonb_build_object('k', i, 'v', md5((g * 7 + i)::text))) FROM generate_series(1, 100) i)
	FROM generate_series(1, 40) g;
SQL
start_docs() {
	# shellcheck disable=SC2046
	"$CONSUMER" --dbname "dbname=$db" --slot s_docs --publication p_docs \
		--target "bigquery://proj/d?location=EU" $(bq_options) --status-interval 0 \
		--group-ms 100 --verbose 2>>"$T/consumer.log" &
	running=$!
}
wait_docs() {
	end=$(current_lsn "$db")
	for i in $(seq 1 150); do
		lsn_le "$end" "$(slot_confirmed "$db" s_docs)" && return 0
		kill -0 "$running" || fail "the consumer died: $(tail -n 3 "$T/consumer.log")"
		sleep 0.2
	done
	fail "the consumer did not confirm $end: $(tail -n 3 "$T/consumer.log")"
}
: >"$T/consumer.log"
start_docs
trap 'kill -KILL $running 2>/dev/null || true; stop_fake' EXIT
q "$db" -c "UPDATE docs SET title = 'renamed ' || id WHERE id <= 20" \
	-c "UPDATE docs SET body = 'short now' WHERE id = 1" \
	-c "UPDATE docs SET title = 'after short' WHERE id = 1" \
	-c "UPDATE docs SET meta = '{\"new\": true}', title = 'meta changed' WHERE id = 2"
wait_docs
# the connection reading them is lost: the transaction comes again
n=$(q "$db" -c "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
	WHERE application_name = 'dsplug-consumer' AND backend_type = 'client backend'
	AND datname = current_database()")
[ "$n" -eq 1 ] || fail "expected one connection reading TOAST values, found $n"
q "$db" -c "UPDATE docs SET title = 'after a lost connection' WHERE id = 11"
wait_docs
grep -q 'could not read a row of table "public"."docs": .*reconnecting' "$T/consumer.log" ||
	fail "no retry after the lost connection: $(tail -n 3 "$T/consumer.log")"
# more while it runs, then killed mid-stream: what it did not confirm comes again
q "$db" -c "UPDATE docs SET title = title || ' +' WHERE id BETWEEN 21 AND 40" \
	-c "UPDATE docs SET title = 'then deleted' WHERE id = 3" -c "DELETE FROM docs WHERE id = 3"
kill -KILL "$running"
wait "$running" 2>/dev/null || true
# while it is down: values changed, rows deleted and moved after the updates
# that left them unchanged; the restart reads the source as it is now
q "$db" <<'SQL'
UPDATE docs SET title = 'before a new body' WHERE id = 5;
UPDATE docs SET body = repeat('new body ', 3000) WHERE id = 5;
UPDATE docs SET title = 'after a new body' WHERE id = 5;
UPDATE docs SET title = 'updated, deleted' WHERE id = 6;
DELETE FROM docs WHERE id = 6;
UPDATE docs SET id = 1007 WHERE id = 7;
UPDATE docs SET title = 'moved, then updated' WHERE id = 1007;
UPDATE docs SET id = 1008, title = 'moved, then deleted' WHERE id = 8;
DELETE FROM docs WHERE id = 1008;
UPDATE docs SET id = 1009 WHERE id = 9;
UPDATE docs SET id = 2009 WHERE id = 1009;
UPDATE docs SET title = 'moved twice' WHERE id = 2009;
SQL
start_docs
wait_docs
kill -TERM "$running"
wait "$running" || fail "the consumer did not stop cleanly: $(tail -n 3 "$T/consumer.log")"
trap 'stop_fake' EXIT
bq_compare "$db" d --table public.docs
n=$(fake_get /_fake/tables/proj/d/docs/rows | json_get "len([r for r in d['rows'] if r['body'] is None or r['meta'] is None])")
[ "$n" -eq 0 ] || fail "$n rows with a NULL body or meta"
grep -q "unchanged TOAST values from the source" "$T/consumer.log" ||
	fail "no count of rows read again: $(tail -n 5 "$T/consumer.log")"
grep -q 'row of "public"."docs" updated at .* no longer exists at the source' "$T/consumer.log" ||
	fail "no --verbose line for a row gone from the source: $(tail -n 5 "$T/consumer.log")"
grep "unchanged TOAST values from the source" "$T/consumer.log" | sed 's/^/# /'

# without a source (--replay) they cannot be read: the consumer stops
# (exit 3) with the table and the fix, instead of writing NULL
q "$db" -c "SELECT 'slot' FROM pg_create_logical_replication_slot('s_rec', 'dsplug')" \
	-c "UPDATE docs SET title = 'recorded' WHERE id = 10"
bq_consume "$db" s_rec p_docs "bigquery://proj/r?location=EU" --record "$T/docs.rec"
# shellcheck disable=SC2046
expect_exit 3 'column "body" is an unchanged TOASTed value that the change does not carry; run ALTER TABLE public.docs REPLICA IDENTITY FULL' \
	"$CONSUMER" --replay "$T/docs.rec" --target "bigquery://proj/rr?location=EU" $(bq_options) --status-interval 0
body=$(fake_get /_fake/tables/proj/rr/docs/rows | json_get "[r['title'] for r in d['rows'] if r['body'] is None]")
[ "$body" = "[]" ] || fail "rows with a NULL body after the refused update: $body"

# a value BigQuery cannot hold: refused by BigQuery, named
q "$db" <<'SQL'
CREATE TABLE far (id int PRIMARY KEY, d date);
CREATE PUBLICATION p_far FOR TABLE far;
SELECT 'slot' FROM pg_create_logical_replication_slot('s_far', 'dsplug');
INSERT INTO far VALUES (7, '10000-01-01');
SQL
end=$(current_lsn "$db")
# shellcheck disable=SC2046
expect_exit 3 'could not write to table "f.far": BigQuery refused the row with key (id)=(7): .*DATE' \
	"$CONSUMER" --dbname "dbname=$db" --slot s_far --publication p_far \
	--target "bigquery://proj/f?location=EU" $(bq_options) --endpos "$end" --status-interval 0

# refusals at start
# shellcheck disable=SC2046
expect_exit 3 'could not use dataset "m": it is in location EU, not US' \
	"$CONSUMER" --dbname "dbname=$db" --slot s_merge --publication p \
	--target "bigquery://proj/m?location=US" $(bq_options) --endpos "$end"
# shellcheck disable=SC2046
expect_exit 3 'dataset "m" follows replication slot "s_merge", not "s_append"' \
	"$CONSUMER" --dbname "dbname=$db" --slot s_append --publication p \
	--target "bigquery://proj/m?location=EU" $(bq_options) --endpos "$end"
for bad in "bigquery://proj" "bigquery://proj/ds" "bigquery://proj/d-s?location=EU" \
	"bigquery://proj/ds?location=EU&mode=upsert" "bigquery://proj/ds?location=EU&max_staleness=soon" \
	"bigquery://proj/ds?location=EU&colour=red"; do
	# shellcheck disable=SC2046
	expect_exit 3 "could not open target \"$bad\"" \
		"$CONSUMER" --dbname "dbname=$db" --slot s_merge --publication p --target "$bad" $(bq_options)
done
expect_exit 2 "needs a loopback --bigquery-endpoint" \
	"$CONSUMER" --dbname "dbname=$db" --slot s_merge --publication p \
	--target "bigquery://proj/m?location=EU" --bigquery-endpoint bigquery.example.com:443 --bigquery-plaintext
n=$(fake_get /_fake/tables/proj/m/_dsplug_state >/dev/null && fake_get /_fake/datasets | json_get "len(d['datasets'])")
[ "$n" = 6 ] || fail "a refused start created a dataset: $n datasets"

for s in s_merge s_append s_docs s_rec s_far; do
	q "$db" -c "SELECT pg_drop_replication_slot('$s')" >/dev/null
done
drop_db "$db"
echo ok
