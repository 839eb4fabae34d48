#!/bin/sh
# 28-consumer-streaming.sh - streamed in-progress transactions through
# dsplug-consumer --streaming (logical_decoding_work_mem at its 64kB
# minimum in the walsender, so every transaction of a few thousand rows is
# streamed): subtransactions rolled back inside a streamed transaction, a
# whole streamed transaction rolled back, two streamed transactions whose
# chunks interleave with each other and with small transactions, nothing
# visible in the replica before the commit while chunks are already spooled,
# and the consumer killed (SIGKILL) in the middle of a streamed transaction
# and restarted.  The replica equals the source row by row at the end, and
# the server's statistics show the transactions were really streamed.
#
# The transactions that must stay open while the test looks at the consumer
# wait for a gate the test opens (open_gate; a row in table gate, which is
# not published), not for a fixed time: however slow the machine, they stay
# open until the test has seen what it waits for.
set -eu
. regress/t/lib.sh
. regress/t/lib/consumer.sh

db=dsplug_t28
recreate_db "$db"
spool=$T/spool
mkdir -p "$spool"
conn="dbname=$db options='-c logical_decoding_work_mem=64kB'"

q "$db" <<'SQL'
CREATE TABLE s (id int PRIMARY KEY, v text, tag text);
CREATE TABLE l (n int, what text);
CREATE PUBLICATION p28 FOR TABLE s, l;
CREATE TABLE gate (name text PRIMARY KEY);
-- wait_gate(NAME): wait until the test opens gate NAME (each statement of
-- the loop takes a new snapshot, so the row is seen once committed)
CREATE FUNCTION wait_gate(name text) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
	FOR i IN 1 .. 36000 LOOP
		IF EXISTS (SELECT 1 FROM gate g WHERE g.name = wait_gate.name) THEN
			RETURN;
		END IF;
		PERFORM pg_sleep(0.05);
	END LOOP;
	RAISE EXCEPTION 'gate % was not opened within 30 minutes', name;
END $$;
SELECT 'slot' FROM pg_create_logical_replication_slot('t28', 'dsplug');
SQL

consumer=""
bg=""
trap 'for p in $consumer $bg; do kill -KILL "$p" 2>/dev/null || true; done' EXIT

run() {
	"$CONSUMER" --dbname "$conn" --slot t28 --publication p28 --streaming \
		--spool-dir "$spool" --target "sqlite:$T/replica.db" --batch-size 16kB \
		--group-ms 200 --feedback-interval 1 --status-interval 0 --quiet \
		>/dev/null 2>>"$T/consumer.log" &
	consumer=$!
}

# spooled: the consumer holds (deleted) spool files open
spooled() {
	ls -l "/proc/$consumer/fd" 2>/dev/null | grep -c "dsplug-spool" || true
}

# wait_for SECONDS SHELL-CONDITION
wait_for() {
	_n=$(($1 * 10))
	while [ "$_n" -gt 0 ]; do
		if eval "$2"; then return 0; fi
		sleep 0.1
		_n=$((_n - 1))
	done
	return 1
}

# open_gate NAME: let the transactions waiting for NAME go on
open_gate() {
	q "$db" -c "INSERT INTO gate VALUES ('$1')" >/dev/null
}

replica_count() {
	sqlite3 -cmd ".timeout 5000" "$T/replica.db" "SELECT count(*) FROM public_s WHERE tag = '$1'" 2>/dev/null || echo 0
}

expect_exit 2 "for --spool-dir" "$CONSUMER" --dbname "$conn" --slot t28 --publication p28 \
	--streaming --spool-dir "$T/no such dir" --target "sqlite:$T/replica.db"

run

# 1. savepoints: rolled-back subtransactions (nested too) are dropped,
#    released ones kept, all inside one streamed transaction
q "$db" <<'SQL'
BEGIN;
INSERT INTO s SELECT g, md5(g::text), 'sp' FROM generate_series(1, 5000) g;
SAVEPOINT a;
INSERT INTO s SELECT g, 'rolled back', 'sp-a' FROM generate_series(5001, 9000) g;
SAVEPOINT a2;
UPDATE s SET v = 'nested, rolled back' WHERE id <= 2000;
RELEASE a2;
ROLLBACK TO a;
SAVEPOINT b;
UPDATE s SET v = 'kept ' || id WHERE id % 3 = 0;
SAVEPOINT c;
DELETE FROM s WHERE id % 5 = 0;
ROLLBACK TO c;
DELETE FROM s WHERE id % 7 = 0;
RELEASE b;
INSERT INTO l SELECT g, 'sp' FROM generate_series(1, 3000) g;
COMMIT;
SQL

# 2. a whole streamed transaction rolled back
q "$db" <<'SQL'
BEGIN;
INSERT INTO s SELECT g, 'never', 'aborted' FROM generate_series(100001, 110000) g;
INSERT INTO l SELECT g, 'never' FROM generate_series(1, 3000) g;
ROLLBACK;
SQL

# 3. two streamed transactions interleaved with each other and with small
#    ones; the first is open (chunks spooled) while the replica is checked
psql -X -q -d "$db" -v ON_ERROR_STOP=1 >/dev/null 2>"$T/bg1.err" <<'SQL' &
BEGIN;
INSERT INTO s SELECT g, 'first half', 'x1' FROM generate_series(200001, 206000) g;
SELECT wait_gate('x1 second half');
UPDATE s SET v = 'second half' WHERE tag = 'x1' AND id % 2 = 0;
INSERT INTO s SELECT g, 'late', 'x1' FROM generate_series(206001, 209000) g;
SELECT wait_gate('x1 commit');
COMMIT;
SQL
bg=$!
psql -X -q -d "$db" -v ON_ERROR_STOP=1 >/dev/null 2>"$T/bg2.err" <<'SQL' &
BEGIN;
INSERT INTO s SELECT g, 'other', 'x2' FROM generate_series(300001, 306000) g;
SELECT wait_gate('x2');
SAVEPOINT q;
INSERT INTO s SELECT g, 'gone', 'x2' FROM generate_series(306001, 308000) g;
ROLLBACK TO q;
COMMIT;
SQL
bg2=$!
bg="$bg $bg2"
for i in $(seq 1 20); do
	q "$db" -c "INSERT INTO s VALUES ($i, 'small $i', 'small') ON CONFLICT (id) DO UPDATE SET v = excluded.v, tag = 'small'" >/dev/null
	q "$db" -c "INSERT INTO l VALUES ($i, 'small')" >/dev/null
	sleep 0.05
done
# both are open until their gates open, however long this takes
wait_for 600 '[ "$(spooled)" -ge 2 ]' || fail "not two spool files while two streamed transactions are in progress"
open_x1=$(replica_count x1)
[ "$open_x1" -eq 0 ] || fail "$open_x1 rows of an uncommitted streamed transaction are visible in the replica"
wait_for 600 '[ "$(replica_count small)" -eq 20 ]' || fail "small transactions between chunks were not applied"
echo "# while x1 and x2 were in progress: $(spooled) spool file(s) open, 0 of their rows in the replica, 20 small transactions applied"
open_gate 'x1 second half'
open_gate x2
wait $bg2 || fail "the second streamed transaction failed: $(cat "$T/bg2.err")"
wait_for 600 '[ "$(replica_count x2)" -eq 6000 ]' || fail "x2 has $(replica_count x2) rows in the replica, expected 6000"
[ "$(replica_count x1)" -eq 0 ] || fail "rows of x1 are in the replica before its commit"
open_gate 'x1 commit'
wait $bg || fail "the first streamed transaction failed: $(cat "$T/bg1.err")"
wait_for 600 '[ "$(replica_count x1)" -gt 0 ]' || fail "the first streamed transaction never arrived"
bg=""
[ "$(replica_count x1)" -eq 9000 ] || fail "x1 has $(replica_count x1) rows in the replica, expected 9000"

# 4. SIGKILL in the middle of a streamed transaction, then restart
psql -X -q -d "$db" -v ON_ERROR_STOP=1 >/dev/null 2>"$T/bg3.err" <<'SQL' &
BEGIN;
INSERT INTO s SELECT g, 'before the kill', 'k' FROM generate_series(400001, 408000) g;
INSERT INTO l SELECT g, 'k' FROM generate_series(1, 2000) g;
SELECT wait_gate('k');
UPDATE s SET v = 'after the kill' WHERE tag = 'k' AND id % 3 = 0;
SAVEPOINT z;
DELETE FROM s WHERE tag = 'k' AND id % 10 = 0;
ROLLBACK TO z;
COMMIT;
SQL
bg=$!
wait_for 600 '[ "$(spooled)" -ge 1 ]' || fail "no spool file for the transaction to kill in"
kill -KILL "$consumer"
wait "$consumer" 2>/dev/null || true
left=$(ls "$spool" | wc -l)
[ "$left" -eq 0 ] || fail "$left spool files left behind after SIGKILL"
[ "$(replica_count k)" -eq 0 ] || fail "rows of the killed transaction are in the replica before its commit"
run
open_gate k
wait "$bg" || fail "the killed-in transaction failed: $(cat "$T/bg3.err")"
bg=""
wait_for 600 '[ "$(replica_count k)" -eq 8000 ]' || fail "after the restart the replica has $(replica_count k) rows of the killed-in transaction, expected 8000"

# 5. SIGTERM just after a large streamed transaction commits (while its
#    last chunks arrive or its spool is applied): a prompt, clean stop, and
#    the transaction is in the replica whole or not at all
q "$db" -c "INSERT INTO s SELECT g, md5(g::text), 'term' FROM generate_series(500001, 800000) g" >/dev/null
sleep "${DSPLUG_T28_TERM_DELAY:-0.2}"
t0=$(date +%s%N)
kill -TERM "$consumer"
wait "$consumer" || fail "the consumer did not stop cleanly: $(tail -n 3 "$T/consumer.log")"
consumer=""
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
got=$(replica_count term)
[ "$got" -eq 0 ] || [ "$got" -eq 300000 ] || fail "SIGTERM left $got rows of a 300000-row transaction in the replica"
echo "# SIGTERM during a 300000-row streamed transaction: stopped in $ms ms with $got of its rows in the replica"
[ "$ms" -lt 10000 ] || fail "the consumer took $ms ms to stop"
end=$(current_lsn "$db")
"$CONSUMER" --dbname "$conn" --slot t28 --publication p28 --streaming --spool-dir "$spool" \
	--target "sqlite:$T/replica.db" --endpos "$end" --status-interval 0 ||
	fail "the last run exited with $?"
compare "$db" "$T/replica.db" --publication p28

# the server really streamed them
streamed=$(q "$db" -c "SELECT stream_txns FROM pg_stat_replication_slots WHERE slot_name = 't28'")
echo "# server statistics: $streamed transactions streamed on slot t28"
[ "$streamed" -ge 5 ] || fail "only $streamed transactions were streamed"
[ "$(sqlite3 "$T/replica.db" "SELECT count(*) FROM public_l WHERE what = 'never'")" -eq 0 ] ||
	fail "the rolled-back streamed transaction reached the replica"
[ "$(ls "$spool" | wc -l)" -eq 0 ] || fail "spool files left behind"
grep -q "could not\|error" "$T/consumer.log" &&
	fail "the consumer reported errors: $(grep "could not\|error" "$T/consumer.log" | head -3)"

q "$db" -c "SELECT pg_drop_replication_slot('t28')" >/dev/null
drop_db "$db"
echo ok
