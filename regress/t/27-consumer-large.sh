#!/bin/sh
# 27-consumer-large.sh - a one-million-row transaction through
# dsplug-consumer: it arrives in many bounded frames and is applied as one
# SQLite transaction, the consumer's memory stays bounded (peak RSS), and
# while it is being applied the slot is never confirmed past it: the
# position sent to the server only moves beyond the transaction once the
# replica holds it.
set -eu
. regress/t/lib.sh
. regress/t/lib/consumer.sh

db=dsplug_t27
rows=${DSPLUG_T27_ROWS:-1000000}
limit_kb=${DSPLUG_T27_LIMIT_KB:-65536}
recreate_db "$db"
q "$db" <<'SQL'
CREATE TABLE big (id bigint PRIMARY KEY, payload text, n numeric, at timestamptz);
CREATE TABLE small (id int PRIMARY KEY, v text);
CREATE PUBLICATION p27 FOR TABLE big, small;
SELECT 'slot' FROM pg_create_logical_replication_slot('t27', 'dsplug');
INSERT INTO small VALUES (1, 'before');
SQL
consume "$db" t27 p27 "$T/replica.db"
before=$(stored_lsn "$T/replica.db")

q "$db" -c "INSERT INTO big SELECT g, 'payload ' || md5(g::text), g / 7.0,
	'2026-11-23 10:00:00+00'::timestamptz + g * interval '1 ms' FROM generate_series(1, $rows) g" >/dev/null
after=$(current_lsn "$db")
q "$db" -c "UPDATE small SET v = 'after'" >/dev/null
end=$(current_lsn "$db")

started=$(date +%s)
"$CONSUMER" --dbname "dbname=$db" --slot t27 --publication p27 --target "sqlite:$T/replica.db" \
	--endpos "$end" --feedback-interval 1 --status-interval 2 >/dev/null 2>"$T/consumer.log" &
consumer=$!
trap 'for p in $consumer; do kill -KILL "$p" 2>/dev/null || true; done' EXIT

peak=0
samples=0
while kill -0 "$consumer" 2>/dev/null; do
	hwm=$(awk '/^VmHWM/ { print $2 }' "/proc/$consumer/status" 2>/dev/null || true)
	[ -n "$hwm" ] && [ "$hwm" -gt "$peak" ] && peak=$hwm
	# the confirmed position first, then what the replica holds: the
	# replica commits before the position is sent, never after
	confirmed=$(slot_confirmed "$db" t27)
	stored=$(stored_lsn "$T/replica.db" 2>/dev/null || echo "unreadable")
	if lsn_le "$after" "$confirmed" && [ "$stored" = "$before" ]; then
		fail "the slot is confirmed at $confirmed, past the big transaction (before $after), while the replica is still at $stored"
	fi
	samples=$((samples + 1))
	sleep 0.1
done
wait "$consumer" || fail "the consumer exited with $?: $(tail -n 3 "$T/consumer.log")"
consumer=""
secs=$(( $(date +%s) - started ))
echo "# $rows-row transaction applied in ${secs}s, consumer peak RSS ${peak} kB ($samples samples of the slot's position)"
[ "$peak" -gt 0 ] || fail "could not sample the consumer's memory"
[ "$peak" -le "$limit_kb" ] || fail "the consumer peaked at $peak kB, more than $limit_kb kB"

# every row arrived, once, with its values
got=$(sqlite3 "$T/replica.db" "SELECT count(*), sum(id), count(DISTINCT payload) FROM public_big")
want=$(q "$db" -c "SELECT count(*), sum(id), count(DISTINCT payload) FROM big" | tr '|' '|')
[ "$got" = "$want" ] || fail "replica has (count, sum, distinct) $got, source $want"
compare "$db" "$T/replica.db" --table small --table big --sample "public.big=id % 997 = 0"
lsn_le "$after" "$(stored_lsn "$T/replica.db")" || fail "the replica stops before the big transaction"

q "$db" -c "SELECT pg_drop_replication_slot('t27')" >/dev/null
drop_db "$db"
echo ok
