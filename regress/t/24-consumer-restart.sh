#!/bin/sh
# 24-consumer-restart.sh - the server restarts under a running
# dsplug-consumer, once with a fast and once with an immediate shutdown,
# while a workload writes: the consumer reconnects with backoff and the
# replica equals the source.  Then, on an idle database (WAL written only
# to a table outside the publication), keepalives still move the slot's
# confirmed position past that WAL; SIGTERM stops the consumer with exit 0
# and the slot is confirmed up to what the replica holds.
set -eu
. regress/t/lib.sh
. regress/t/lib/consumer.sh

db=dsplug_t24
recreate_db "$db"
q "$db" <<'SQL'
CREATE TABLE acct (id int PRIMARY KEY, bal bigint NOT NULL);
CREATE TABLE log (n int, at timestamptz);
CREATE TABLE unpublished (n int);
CREATE PUBLICATION p FOR TABLE acct, log;
INSERT INTO acct SELECT g, 0 FROM generate_series(1, 50) g;
SELECT 'slot' FROM pg_create_logical_replication_slot('t24', 'dsplug');
CREATE PROCEDURE work(n int) LANGUAGE plpgsql AS $$
BEGIN
	FOR i IN 1 .. n LOOP
		UPDATE acct SET bal = bal + 1 WHERE id = 1 + i % 50;
		INSERT INTO log VALUES (i, clock_timestamp());
		COMMIT;
		PERFORM pg_sleep(0.002);
	END LOOP;
END
$$;
SQL

# the workload survives the restarts: chunks, each retried until it runs
touch "$T/load.run"
(
	while [ -f "$T/load.run" ]; do
		psql -X -q -d "$db" -c "CALL work(100)" >/dev/null 2>&1 || sleep 0.2
	done
) &
load=$!
"$CONSUMER" --dbname "dbname=$db" --slot t24 --publication p --target "sqlite:$T/replica.db" \
	--feedback-interval 1 --group-ms 200 --status-interval 1 >/dev/null 2>"$T/consumer.log" &
consumer=$!
trap 'rm -f "$T/load.run"; for p in $consumer; do kill -KILL "$p" 2>/dev/null || true; done' EXIT

alive() {
	kill -0 "$consumer" 2>/dev/null ||
		fail "the consumer exited: $(tail -n 3 "$T/consumer.log")"
}

for mode in fast immediate; do
	sleep 3
	alive
	before=$(stored_lsn "$T/replica.db")
	scripts/cluster.sh restart "$DSPLUG_TEST_DIR" "$mode"
	sleep 4
	alive
	after=$(stored_lsn "$T/replica.db")
	[ "$after" != "$before" ] || fail "no progress after the $mode restart (still at $after)"
	echo "# $mode restart: replica went from $before to $after"
done
rm -f "$T/load.run"
wait "$load"

reconnects=$(grep -c "reconnecting in" "$T/consumer.log" || true)
[ "$reconnects" -ge 2 ] || fail "expected reconnections after two restarts, saw $reconnects"
echo "# $reconnects reconnection attempts: $(grep "reconnecting in" "$T/consumer.log" | head -n 1)"

# caught up: the slot is confirmed up to the end of the workload
end=$(current_lsn "$db")
i=0
until lsn_le "$end" "$(slot_confirmed "$db" t24)"; do
	i=$((i + 1))
	[ "$i" -lt 150 ] || fail "the slot was not confirmed up to $end within 30 s"
	sleep 0.2
done
alive
compare "$db" "$T/replica.db" --publication p

# idle: WAL only outside the publication still lets the slot advance
stored=$(stored_lsn "$T/replica.db")
q "$db" -c "INSERT INTO unpublished SELECT generate_series(1, 10000)" >/dev/null
idle_end=$(current_lsn "$db")
i=0
until lsn_le "$idle_end" "$(slot_confirmed "$db" t24)"; do
	i=$((i + 1))
	[ "$i" -lt 150 ] || fail "keepalives did not advance the slot past $idle_end within 30 s (at $(slot_confirmed "$db" t24))"
	sleep 0.2
done
[ "$(stored_lsn "$T/replica.db")" = "$stored" ] ||
	fail "the replica's position moved without published changes"
echo "# idle: slot confirmed past $idle_end while the replica stays at $stored"

# SIGTERM: exit 0, everything the replica holds confirmed
q "$db" -c "CALL work(200)" >/dev/null
kill -TERM "$consumer"
wait "$consumer" || fail "the consumer exited with $? on SIGTERM"
consumer=""
stored=$(stored_lsn "$T/replica.db")
lsn_le "$stored" "$(slot_confirmed "$db" t24)" ||
	fail "after SIGTERM the slot is confirmed at $(slot_confirmed "$db" t24), the replica holds $stored"
consume "$db" t24 p "$T/replica.db"
compare "$db" "$T/replica.db" --publication p
grep -q "applied .* changes/s" "$T/consumer.log" || fail "no status line in the consumer's log"
echo "# status line: $(grep "applied .* changes/s" "$T/consumer.log" | tail -n 1)"

q "$db" -c "SELECT pg_drop_replication_slot('t24')" >/dev/null
drop_db "$db"
echo ok
