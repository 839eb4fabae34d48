#!/bin/sh
# 23-consumer-crash.sh - dsplug-consumer killed with SIGKILL at random
# points, again and again during one workload, and restarted each time:
# the replica equals the source at the end, with nothing lost (a keyed
# table whose every row is rewritten many times) and nothing applied twice
# (an append-only table without a key, where a doubled insert is a doubled
# row).  The workload mixes one-row transactions, multi-batch transactions
# (small --batch-size) that a kill can cut in the middle, and truncates.
set -eu
. regress/t/lib.sh
. regress/t/lib/consumer.sh

db=dsplug_t23
recreate_db "$db"
kills=${DSPLUG_T23_KILLS:-12}
iterations=${DSPLUG_T23_ITERATIONS:-6000}

q "$db" <<'SQL'
CREATE TABLE acct (id int PRIMARY KEY, bal bigint NOT NULL, note text);
CREATE TABLE log (n int, what text, at timestamptz);
CREATE TABLE bulk (id bigint PRIMARY KEY, batch int, payload text);
CREATE PUBLICATION p_all FOR TABLE acct, bulk;
CREATE PUBLICATION p_log FOR TABLE log WITH (publish = 'insert');
INSERT INTO acct SELECT g, 0, NULL FROM generate_series(1, 100) g;
SELECT 'slot' FROM pg_create_logical_replication_slot('t23', 'dsplug');

CREATE PROCEDURE work(n int) LANGUAGE plpgsql AS $$
BEGIN
	FOR i IN 1 .. n LOOP
		UPDATE acct SET bal = bal + i, note = 'tx ' || i WHERE id = 1 + i % 100;
		INSERT INTO log VALUES (i, 'update', clock_timestamp());
		COMMIT;
		-- paced, so that the workload spans the kills
		PERFORM pg_sleep(0.003);
		IF i % 7 = 0 THEN
			DELETE FROM acct WHERE id = 1 + (i * 13) % 100;
			INSERT INTO acct VALUES (1 + (i * 13) % 100, i, 'reborn')
				ON CONFLICT (id) DO UPDATE SET bal = excluded.bal;
			INSERT INTO log VALUES (i, 'reborn', clock_timestamp());
			COMMIT;
		END IF;
		IF i % 150 = 0 THEN
			-- several batches at --batch-size 16kB
			INSERT INTO bulk SELECT i * 10000 + g, i, repeat(md5(g::text), 4)
				FROM generate_series(1, 2000) g;
			INSERT INTO log VALUES (i, 'bulk', clock_timestamp());
			COMMIT;
		END IF;
		IF i % 1000 = 0 THEN
			TRUNCATE bulk;
			COMMIT;
		END IF;
	END LOOP;
END
$$;
SQL

psql -X -q -d "$db" -c "CALL work($iterations)" &
load=$!

run() {
	"$CONSUMER" --dbname "dbname=$db" --slot t23 --publication p_all,p_log \
		--target "sqlite:$T/replica.db" --batch-size 16kB --group-ms 1000 --feedback-interval 1 \
		--status-interval 0 --quiet >/dev/null 2>>"$T/consumer.log" &
	consumer=$!
}

consumer=""
trap 'for p in $consumer $load; do kill -KILL "$p" 2>/dev/null || true; done' EXIT

killed=0
last=""
advanced=0
run
# at least $kills kills, all while the workload runs
while [ "$killed" -lt "$kills" ] || kill -0 "$load" 2>/dev/null; do
	kill -0 "$load" 2>/dev/null || fail "the workload ended before $kills kills: make it longer"
	# a random moment: 0.2 to 1.5 s
	sleep "$(awk -v s="$killed$$" 'BEGIN { srand(s); printf "%.2f", 0.2 + rand() * 1.3 }')"
	kill -KILL "$consumer" 2>/dev/null || fail "the consumer died by itself: $(tail -n 3 "$T/consumer.log")"
	wait "$consumer" 2>/dev/null || true
	killed=$((killed + 1))
	now=$(stored_lsn "$T/replica.db" 2>/dev/null || echo "")
	[ -n "$now" ] && [ "$now" != "$last" ] && advanced=$((advanced + 1))
	last=$now
	# down for up to 0.8 s: the restarted consumer catches up on a backlog,
	# where target transactions hold many source transactions
	sleep "$(awk -v s="x$killed$$" 'BEGIN { srand(s); printf "%.2f", rand() * 0.8 }')"
	run
done
echo "# $killed kills, the replica advanced between $advanced of them (last at $last)"
[ "$advanced" -ge $((kills / 2)) ] || fail "the consumer made progress between only $advanced of $killed kills"

wait "$load" || fail "the workload failed"
load=""
# the last one stops at the end of the workload (once it is up: a signal
# that comes before the handlers are installed kills it outright)
sleep 1
kill -TERM "$consumer"
wait "$consumer" || fail "the consumer did not stop cleanly on SIGTERM"
consumer=""
consume "$db" t23 p_all,p_log "$T/replica.db" --batch-size 16kB
compare "$db" "$T/replica.db" --publication p_all,p_log

rows=$(sqlite3 "$T/replica.db" "SELECT count(*) FROM public_log")
[ "$rows" -gt "$iterations" ] || fail "the log has only $rows rows"
grep -q "could not\|error" "$T/consumer.log" &&
	fail "the consumer reported errors: $(grep "could not\|error" "$T/consumer.log" | head -3)"

q "$db" -c "SELECT pg_drop_replication_slot('t23')" >/dev/null
drop_db "$db"
echo ok
