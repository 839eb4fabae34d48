#!/bin/sh
# 29-consumer-twophase.sh - prepared transactions through dsplug-consumer
# --two-phase: a prepared transaction's rows reach the replica only at
# COMMIT PREPARED, never at PREPARE; ROLLBACK PREPARED leaves no trace; the
# slot is not confirmed past a pending PREPARE; the consumer killed
# (SIGKILL) between PREPARE and COMMIT PREPARED, after the replica already
# holds later transactions, still applies the prepared transaction after a
# restart; a streamed transaction that is prepared (--streaming, with a
# savepoint rolled back) is applied at COMMIT PREPARED; a slot marked
# two_phase is accepted without --two-phase too; a replica already past a
# PREPARE that the slot was never confirmed to (made with --record and
# --replay) is not confirmed there by a session that has not received the
# PREPARE again.  The replica equals the source row by row at the end.
set -eu
. regress/t/lib.sh
. regress/t/lib/consumer.sh

db=dsplug_t29
recreate_db "$db"
spool=$T/spool
mkdir -p "$spool"
conn="dbname=$db options='-c logical_decoding_work_mem=64kB'"

q "$db" <<'SQL'
CREATE TABLE t (id int PRIMARY KEY, v text, tag text);
CREATE TABLE l (n int, what text);
CREATE PUBLICATION p29 FOR TABLE t, l;
SELECT 'slot' FROM pg_create_logical_replication_slot('t29', 'dsplug');
INSERT INTO t VALUES (0, 'before', 'base');
SQL

consumer=""
trap 'for p in $consumer; do kill -KILL "$p" 2>/dev/null || true; done' EXIT

# upto [OPTION...]: run the consumer up to the current WAL position
upto() {
	_end=$(current_lsn "$db")
	"$CONSUMER" --dbname "$conn" --slot t29 --publication p29 --spool-dir "$spool" \
		--target "sqlite:$T/replica.db" --endpos "$_end" --status-interval 0 --quiet "$@" \
		2>>"$T/consumer.log" || fail "dsplug-consumer exited with $? (up to $_end): $(tail -n 2 "$T/consumer.log")"
}

count() {
	sqlite3 -cmd ".timeout 5000" "$T/replica.db" "SELECT count(*) FROM public_t WHERE tag = '$1'" 2>/dev/null || echo 0
}

wait_for() {
	_n=$(($1 * 10))
	while [ "$_n" -gt 0 ]; do
		if eval "$2"; then return 0; fi
		sleep 0.1
		_n=$((_n - 1))
	done
	return 1
}

upto --two-phase
[ "$(q "$db" -c "SELECT two_phase FROM pg_replication_slots WHERE slot_name = 't29'")" = t ] ||
	fail "--two-phase did not enable two-phase decoding on the slot"

# 1. PREPARE: nothing visible, the slot held at the PREPARE; then COMMIT
#    PREPARED makes it visible
q "$db" <<'SQL'
BEGIN;
INSERT INTO t SELECT g, 'prepared ' || g, 'p1' FROM generate_series(1, 500) g;
UPDATE t SET v = 'touched by p1' WHERE id = 0;
PREPARE TRANSACTION 'p1';
SQL
prepare_lsn=$(q "$db" -c "SELECT pg_current_wal_lsn()")
q "$db" -c "INSERT INTO l VALUES (1, 'after p1')" >/dev/null
upto --two-phase
[ "$(count p1)" -eq 0 ] || fail "rows of a prepared, uncommitted transaction are in the replica"
[ "$(sqlite3 "$T/replica.db" "SELECT v FROM public_t WHERE id = 0")" = before ] ||
	fail "an update of a prepared transaction is visible before COMMIT PREPARED"
[ "$(sqlite3 "$T/replica.db" "SELECT count(*) FROM public_l WHERE what = 'after p1'")" -eq 1 ] ||
	fail "the transaction after the PREPARE was not applied"
confirmed=$(slot_confirmed "$db" t29)
lsn_le "$confirmed" "$prepare_lsn" ||
	fail "the slot is confirmed at $confirmed, past the pending PREPARE (before $prepare_lsn)"
echo "# p1 prepared: replica without it, slot confirmed at $confirmed (PREPARE ends before $prepare_lsn), replica at $(stored_lsn "$T/replica.db")"
q "$db" -c "COMMIT PREPARED 'p1'" >/dev/null
upto --two-phase
[ "$(count p1)" -eq 500 ] || fail "COMMIT PREPARED: $(count p1) rows in the replica, expected 500"
lsn_le "$prepare_lsn" "$(slot_confirmed "$db" t29)" || fail "the slot stays held after COMMIT PREPARED"

# 2. ROLLBACK PREPARED
q "$db" <<'SQL'
BEGIN;
INSERT INTO t SELECT g, 'rolled back', 'p2' FROM generate_series(1001, 1300) g;
DELETE FROM t WHERE id <= 100;
PREPARE TRANSACTION 'p2';
SQL
upto --two-phase
q "$db" -c "ROLLBACK PREPARED 'p2'" >/dev/null
upto --two-phase
[ "$(count p2)" -eq 0 ] || fail "a rolled-back prepared transaction reached the replica"
[ "$(count p1)" -eq 500 ] || fail "the deletes of a rolled-back prepared transaction reached the replica"

# 3. SIGKILL between PREPARE and COMMIT PREPARED, with later transactions
#    already in the replica (its position is past the PREPARE)
"$CONSUMER" --dbname "$conn" --slot t29 --publication p29 --two-phase --spool-dir "$spool" \
	--target "sqlite:$T/replica.db" --group-ms 100 --feedback-interval 1 --status-interval 0 --quiet \
	2>>"$T/consumer.log" &
consumer=$!
q "$db" <<'SQL'
BEGIN;
INSERT INTO t SELECT g, 'survives a kill', 'p3' FROM generate_series(2001, 2400) g;
PREPARE TRANSACTION 'p3';
SQL
p3_lsn=$(q "$db" -c "SELECT pg_current_wal_lsn()")
for i in 1 2 3 4 5; do q "$db" -c "INSERT INTO l VALUES ($i, 'after p3')" >/dev/null; done
wait_for 30 '[ "$(sqlite3 -cmd ".timeout 5000" "$T/replica.db" "SELECT count(*) FROM public_l WHERE what = '"'after p3'"'" 2>/dev/null || echo 0)" -eq 5 ]' ||
	fail "the transactions after p3 were not applied"
sleep 1.5
lsn_le "$p3_lsn" "$(stored_lsn "$T/replica.db")" || fail "the replica is not past the PREPARE"
confirmed=$(slot_confirmed "$db" t29)
lsn_le "$confirmed" "$p3_lsn" || fail "the slot was confirmed at $confirmed, past the pending PREPARE of p3"
kill -KILL "$consumer"
wait "$consumer" 2>/dev/null || true
consumer=""
[ "$(ls "$spool" | wc -l)" -eq 0 ] || fail "spool files left behind after SIGKILL"
[ "$(count p3)" -eq 0 ] || fail "p3 is visible before COMMIT PREPARED"
q "$db" -c "COMMIT PREPARED 'p3'" >/dev/null
echo "# p3 prepared, replica at $(stored_lsn "$T/replica.db") past it, slot held at $confirmed; consumer killed, then COMMIT PREPARED"
# without --two-phase: the slot has two_phase, and is handled all the same
upto
[ "$(count p3)" -eq 400 ] || fail "after the kill and restart, p3 has $(count p3) rows in the replica, expected 400"
[ "$(sqlite3 "$T/replica.db" "SELECT count(*) FROM public_l WHERE what = 'after p3'")" -eq 5 ] ||
	fail "transactions after p3 were applied twice or lost"

# 4. a streamed transaction, prepared (stream_prepare), with a savepoint
#    rolled back, committed; and one prepared, streamed, rolled back
q "$db" <<'SQL'
BEGIN;
INSERT INTO t SELECT g, 'streamed and prepared', 'p4' FROM generate_series(10001, 16000) g;
SAVEPOINT s;
INSERT INTO t SELECT g, 'gone', 'p4-gone' FROM generate_series(16001, 18000) g;
ROLLBACK TO s;
INSERT INTO l SELECT g, 'p4' FROM generate_series(1, 2000) g;
PREPARE TRANSACTION 'p4';
BEGIN;
INSERT INTO t SELECT g, 'streamed, prepared, rolled back', 'p5' FROM generate_series(20001, 26000) g;
PREPARE TRANSACTION 'p5';
SQL
upto --two-phase --streaming
[ "$(count p4)" -eq 0 ] || fail "a streamed prepared transaction is visible before COMMIT PREPARED"
q "$db" -c "COMMIT PREPARED 'p4'" -c "ROLLBACK PREPARED 'p5'" >/dev/null
upto --two-phase --streaming
[ "$(count p4)" -eq 6000 ] || fail "p4 has $(count p4) rows in the replica, expected 6000"
[ "$(count p4-gone)" -eq 0 ] || fail "a rolled-back savepoint of p4 reached the replica"
[ "$(count p5)" -eq 0 ] || fail "the rolled-back p5 reached the replica"
streamed=$(q "$db" -c "SELECT stream_txns FROM pg_stat_replication_slots WHERE slot_name = 't29'")
[ "$streamed" -ge 2 ] || fail "p4 and p5 were not streamed ($streamed streamed transactions)"

# 5. the replica past a PREPARE the slot was never confirmed to (as after a
#    crash between the target's commit of later transactions and the next
#    status update), made deterministic with a recording replayed into the
#    replica: a session that stops before it has received the PREPARE again
#    must not confirm the replica's position, or the PREPARE is lost
q "$db" -c "SELECT 'copy' FROM pg_copy_logical_replication_slot('t29', 't29rec')" >/dev/null
q "$db" -c "INSERT INTO l VALUES (1, 'before p6')" >/dev/null
before_p6=$(current_lsn "$db")
q "$db" <<'SQL'
BEGIN;
INSERT INTO t SELECT g, 'held across a replay', 'p6' FROM generate_series(30001, 30300) g;
PREPARE TRANSACTION 'p6';
SQL
p6_lsn=$(current_lsn "$db")
q "$db" -c "INSERT INTO l VALUES (2, 'after p6')" >/dev/null
end=$(current_lsn "$db")
"$CONSUMER" --dbname "$conn" --slot t29rec --publication p29 --two-phase --spool-dir "$spool" \
	--target "sqlite:$T/scratch.db" --record "$T/p6.rec" --endpos "$end" --status-interval 0 --quiet \
	2>>"$T/consumer.log" || fail "recording failed"
"$CONSUMER" --replay "$T/p6.rec" --target "sqlite:$T/replica.db" --spool-dir "$spool" --quiet \
	2>>"$T/consumer.log" || fail "replay failed"
lsn_le "$p6_lsn" "$(stored_lsn "$T/replica.db")" || fail "the replayed replica is not past p6's PREPARE"
lsn_le "$(slot_confirmed "$db" t29)" "$p6_lsn" || fail "the slot is already past p6's PREPARE"
"$CONSUMER" --dbname "$conn" --slot t29 --publication p29 --two-phase --spool-dir "$spool" \
	--target "sqlite:$T/replica.db" --endpos "$before_p6" --status-interval 0 --quiet \
	2>>"$T/consumer.log" || fail "the short session failed"
confirmed=$(slot_confirmed "$db" t29)
lsn_le "$confirmed" "$p6_lsn" ||
	fail "a session that stopped before p6's PREPARE confirmed $confirmed, the replica's position past it"
echo "# replica at $(stored_lsn "$T/replica.db") past p6's PREPARE; a session stopped at $before_p6 confirmed only $confirmed"
[ "$(count p6)" -eq 0 ] || fail "p6 is visible before COMMIT PREPARED"
q "$db" -c "COMMIT PREPARED 'p6'" >/dev/null
upto
[ "$(count p6)" -eq 300 ] || fail "p6 has $(count p6) rows in the replica, expected 300"
[ "$(sqlite3 "$T/replica.db" "SELECT count(*) FROM public_l WHERE what IN ('before p6', 'after p6')")" -eq 2 ] ||
	fail "transactions around p6 were applied twice or lost"
q "$db" -c "SELECT pg_drop_replication_slot('t29rec')" >/dev/null

compare "$db" "$T/replica.db" --publication p29
[ "$(q "$db" -c "SELECT count(*) FROM pg_prepared_xacts")" -eq 0 ] || fail "prepared transactions left over"
[ "$(ls "$spool" | wc -l)" -eq 0 ] || fail "spool files left behind"
grep -q "could not\|error" "$T/consumer.log" &&
	fail "the consumer reported errors: $(grep "could not\|error" "$T/consumer.log" | head -3)"

q "$db" -c "SELECT pg_drop_replication_slot('t29')" >/dev/null
drop_db "$db"
echo ok
