#!/bin/sh
# 31-consumer-positions.sh - sequence numbers (commit_lsn/position) do not
# depend on how a transaction travelled.  The same transactions are
# received three times, on three slots created at the same point: whole
# (no streaming, no two-phase), streamed (--streaming, with the walsender's
# logical_decoding_work_mem at 64kB), and streamed with two-phase
# (--streaming --two-phase: prepared transactions applied at COMMIT
# PREPARED).  Each session is recorded (--record) and replayed through the
# consumer's own apply path into a sink that prints every change's sequence
# number (regress/unit/apply_positions.c): the three listings must be
# identical, savepoints rolled back and all.
set -eu
. regress/t/lib.sh
. regress/t/lib/consumer.sh

db=dsplug_t31
recreate_db "$db"
spool=$T/spool
mkdir -p "$spool"
conn="dbname=$db options='-c logical_decoding_work_mem=64kB'"

# the position printer, built from the consumer's own objects
make -s -C consumer apply_positions >"$T/build.log" 2>&1 ||
	fail "could not build apply_positions: $(tail -n 3 "$T/build.log")"
APPLY_POSITIONS=$(pwd)/consumer/apply_positions

q "$db" <<'SQL'
CREATE TABLE a (id int PRIMARY KEY, v text);
CREATE TABLE b (id int PRIMARY KEY, n int);
CREATE PUBLICATION p31 FOR TABLE a, b;
SELECT 'slot' FROM pg_create_logical_replication_slot('t31_whole', 'dsplug');
SELECT 'slot' FROM pg_create_logical_replication_slot('t31_streamed', 'dsplug');
SELECT 'slot' FROM pg_create_logical_replication_slot('t31_prepared', 'dsplug');
SQL

# a streamed transaction with savepoints, a truncate and every kind of
# change, while a second one runs alongside and small ones commit
psql -X -q -d "$db" -v ON_ERROR_STOP=1 >/dev/null 2>"$T/bg.err" <<'SQL' &
BEGIN;
INSERT INTO a SELECT g, 'alongside' FROM generate_series(50001, 54000) g;
SELECT pg_sleep(1.5);
UPDATE a SET v = 'alongside, updated' WHERE id > 50000 AND id % 3 = 0;
COMMIT;
SQL
bg=$!
trap 'kill -KILL $bg 2>/dev/null || true' EXIT
q "$db" <<'SQL'
BEGIN;
INSERT INTO a SELECT g, md5(g::text) FROM generate_series(1, 4000) g;
SAVEPOINT s1;
INSERT INTO b SELECT g, g FROM generate_series(1, 2000) g;
UPDATE a SET v = 'rolled back' WHERE id % 2 = 0;
ROLLBACK TO s1;
INSERT INTO b SELECT g, -g FROM generate_series(1, 1500) g;
SAVEPOINT s2;
DELETE FROM a WHERE id % 10 = 0;
SAVEPOINT s3;
UPDATE b SET n = 0 WHERE id % 4 = 0;
ROLLBACK TO s3;
RELEASE s2;
UPDATE a SET id = id + 100000 WHERE id % 7 = 0;
TRUNCATE b;
INSERT INTO b SELECT g, g * 2 FROM generate_series(1, 1000) g;
COMMIT;
SQL
for i in 1 2 3 4 5; do
	q "$db" -c "INSERT INTO b VALUES (10000 + $i, $i)" >/dev/null
done
wait "$bg" || fail "the concurrent transaction failed: $(cat "$T/bg.err")"
trap - EXIT

# prepared transactions: a large one with a savepoint rolled back, and a
# small one, both committed; one rolled back
q "$db" <<'SQL'
BEGIN;
INSERT INTO a SELECT g, 'prepared' FROM generate_series(200001, 204000) g;
SAVEPOINT p;
DELETE FROM a WHERE id <= 2000;
ROLLBACK TO p;
UPDATE b SET n = n + 1 WHERE id <= 500;
PREPARE TRANSACTION 'big';
INSERT INTO b VALUES (20000, 0);
BEGIN;
INSERT INTO a VALUES (300000, 'small prepared');
PREPARE TRANSACTION 'small';
BEGIN;
INSERT INTO a VALUES (300001, 'never');
PREPARE TRANSACTION 'gone';
COMMIT PREPARED 'small';
ROLLBACK PREPARED 'gone';
COMMIT PREPARED 'big';
SQL
end=$(current_lsn "$db")

record() {
	_slot=$1
	shift
	"$CONSUMER" --dbname "$conn" --slot "$_slot" --publication p31 --spool-dir "$spool" \
		--target "sqlite:$T/$_slot.db" --record "$T/$_slot.rec" --endpos "$end" \
		--status-interval 0 --quiet "$@" 2>>"$T/consumer.log" ||
		fail "recording $_slot failed: $(tail -n 2 "$T/consumer.log")"
	"$APPLY_POSITIONS" "$T/$_slot.rec" "$spool" >"$T/$_slot.txt" ||
		fail "apply_positions failed on $_slot"
}
record t31_whole
record t31_streamed --streaming
record t31_prepared --streaming --two-phase

lines=$(wc -l <"$T/t31_whole.txt")
[ "$lines" -gt 10000 ] || fail "only $lines changes listed"
grep -q " truncate public.b" "$T/t31_whole.txt" || fail "the truncate is not listed"
grep -q "abort" "$T/t31_whole.txt" && fail "a replay rolled back a group"
for s in t31_streamed t31_prepared; do
	if ! cmp -s "$T/t31_whole.txt" "$T/$s.txt"; then
		diff "$T/t31_whole.txt" "$T/$s.txt" | head -n 10 >&2
		fail "sequence numbers received by $s differ from those received whole"
	fi
done
for s in t31_whole t31_streamed t31_prepared; do
	compare "$db" "$T/$s.db" --publication p31
done
streamed=$(q "$db" -c "SELECT string_agg(slot_name || '=' || stream_txns, ' ' ORDER BY slot_name) FROM pg_stat_replication_slots WHERE slot_name LIKE 't31%'")
echo "# $lines changes with identical sequence numbers on the three slots; streamed transactions per slot: $streamed"
[ "$(q "$db" -c "SELECT stream_txns FROM pg_stat_replication_slots WHERE slot_name = 't31_streamed'")" -ge 2 ] ||
	fail "the streamed slot streamed nothing ($streamed)"
[ "$(q "$db" -c "SELECT stream_txns FROM pg_stat_replication_slots WHERE slot_name = 't31_prepared'")" -ge 2 ] ||
	fail "the prepared slot streamed nothing ($streamed)"
[ "$(q "$db" -c "SELECT coalesce(stream_txns, 0) FROM pg_stat_replication_slots WHERE slot_name = 't31_whole'")" -eq 0 ] ||
	fail "the whole slot streamed ($streamed)"

for s in t31_whole t31_streamed t31_prepared; do
	q "$db" -c "SELECT pg_drop_replication_slot('$s')" >/dev/null
done
drop_db "$db"
echo ok
