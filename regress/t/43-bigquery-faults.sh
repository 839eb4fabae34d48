#!/bin/sh
# 43-bigquery-faults.sh - the BigQuery target through crashes and every
# fault the fake BigQuery injects, during one workload: the consumer killed
# with SIGKILL again and again (and restarted), then, with one consumer
# running, UNAVAILABLE mid-stream (after a request was applied but not
# answered), a dropped connection, the call ending INTERNAL and
# RESOURCE_EXHAUSTED, in-band INTERNAL and RESOURCE_EXHAUSTED (quota) and a
# slow answer.  The dataset equals the source at the end (a keyed table
# rewritten many times, bulk inserts cut by kills, a table without a key
# kept as a change log), every fault was hit and retried, the fake saw no
# CDC warnings.  Last, an in-band row error stops the consumer with exit 3
# and a message naming the table, the row's key and BigQuery's reason,
# without confirming the transaction; once the fault is gone, a restart
# converges.  A BigQuery that stops answering makes a clean stop give up
# after 60 s (exit 3) without confirming what was not acknowledged.
set -eu
. regress/t/lib.sh
. regress/t/lib/consumer.sh
. regress/t/lib/bigquery.sh

db=dsplug_t43
recreate_db "$db"
kills=${DSPLUG_T43_KILLS:-8}
iterations=${DSPLUG_T43_ITERATIONS:-5000}
uri="bigquery://proj/ds?location=EU"
consumer="" load=""
trap 'for p in $consumer $load; do kill -KILL "$p" 2>/dev/null || true; done; stop_fake' EXIT
start_fake

q "$db" <<'SQL'
CREATE TABLE acct (id int PRIMARY KEY, bal bigint NOT NULL, note text);
CREATE TABLE events (n int, what text);
CREATE TABLE bulk (id bigint PRIMARY KEY, batch int, payload text);
CREATE PUBLICATION p FOR TABLE acct, events, bulk;
INSERT INTO acct SELECT g, 0, NULL FROM generate_series(1, 100) g;
SELECT 'slot' FROM pg_create_logical_replication_slot('t43', 'dsplug');

CREATE PROCEDURE work(n int) LANGUAGE plpgsql AS $$
BEGIN
	FOR i IN 1 .. n LOOP
		UPDATE acct SET bal = bal + i, note = 'tx ' || i WHERE id = 1 + i % 100;
		INSERT INTO events VALUES (i, 'update');
		COMMIT;
		PERFORM pg_sleep(0.003);
		IF i % 7 = 0 THEN
			DELETE FROM acct WHERE id = 1 + (i * 13) % 100;
			INSERT INTO acct VALUES (1 + (i * 13) % 100, i, 'reborn')
				ON CONFLICT (id) DO UPDATE SET bal = excluded.bal;
			COMMIT;
		END IF;
		IF i % 150 = 0 THEN
			INSERT INTO bulk SELECT i * 10000 + g, i, repeat(md5(g::text), 4)
				FROM generate_series(1, 2000) g;
			DELETE FROM bulk WHERE id % 5 = 0 AND batch = i;
			COMMIT;
		END IF;
	END LOOP;
END
$$;
SQL

psql -X -q -d "$db" -c "CALL work($iterations)" &
load=$!

run() {
	# shellcheck disable=SC2046
	"$CONSUMER" --dbname "dbname=$db" --slot t43 --publication p --target "$uri" $(bq_options) \
		--batch-size 16kB --group-ms 300 --feedback-interval 1 --status-interval 0 \
		2>>"$T/consumer.log" &
	consumer=$!
}

# 1. SIGKILL at random moments, restarts after random pauses
killed=0
run
while [ "$killed" -lt "$kills" ]; do
	kill -0 "$load" 2>/dev/null || fail "the workload ended before $kills kills: make it longer"
	sleep "$(awk -v s="$killed$$" 'BEGIN { srand(s); printf "%.2f", 0.3 + rand() * 1.2 }')"
	kill -KILL "$consumer" 2>/dev/null || fail "the consumer died by itself: $(tail -n 3 "$T/consumer.log")"
	wait "$consumer" 2>/dev/null || true
	killed=$((killed + 1))
	sleep "$(awk -v s="x$killed$$" 'BEGIN { srand(s); printf "%.2f", rand() * 0.6 }')"
	run
done
echo "# $killed kills, slot at $(slot_confirmed "$db" t43)"

# 2. each fault, armed while the consumer runs; wait until it was hit.  A
# fault is hit only by traffic: once the workload has ended (on a slow or
# busy machine, retries and backoff can outlast it), each wait writes a few
# more transactions of the same kind itself.
fault() {
	fake_post /_fake/faults "$1"
	for _i in $(seq 1 150); do
		left=$(fake_get /_fake/faults | json_get "sum(1 for f in d['faults'] if f['remaining'] > 0)")
		[ "$left" = 0 ] && break
		kill -0 "$consumer" 2>/dev/null || fail "the consumer died on fault $1: $(tail -n 3 "$T/consumer.log")"
		kill -0 "$load" 2>/dev/null || q "$db" -c "CALL work(3)" >/dev/null
		sleep 0.2
	done
	[ "$left" = 0 ] || fail "fault $1 was never hit"
	sleep 0.5
}
fault '{"type": "unavailable", "after": 1, "applied": true}'
fault '{"type": "drop", "after": 1}'
fault '{"type": "status", "code": 13}'
fault '{"type": "resource_exhausted", "as": "status"}'
fault '{"type": "internal", "times": 2}'
fault '{"type": "resource_exhausted"}'
fault '{"type": "delay", "delayMs": 1500}'
fault '{"type": "unavailable", "table": "bulk"}'

wait "$load" || fail "the workload failed"
load=""
sleep 1
kill -TERM "$consumer"
wait "$consumer" || fail "the consumer did not stop cleanly on SIGTERM: $(tail -n 3 "$T/consumer.log")"
consumer=""
bq_consume "$db" t43 p "$uri"
bq_compare "$db" ds --publication p

stats=$(fake_get /_fake/stats)
for want in "responses INTERNAL" "responses RESOURCE_EXHAUSTED" "callEnds UNAVAILABLE" \
	"callEnds DROPPED" "callEnds INTERNAL" "callEnds RESOURCE_EXHAUSTED"; do
	set -- $want
	n=$(echo "$stats" | json_get "d['$1'].get('$2', 0)")
	[ "$n" -gt 0 ] || fail "the fake counted no $2 in $1: $stats"
done
echo "# fake: $(echo "$stats" | json_get "(d['responses'], d['callEnds'], d['requests'], d['rows'])")"
grep -q "retrying in" "$T/consumer.log" || fail "no retry was logged"
grep -q "sending again" "$T/consumer.log" || fail "no in-band resend was logged"
grep "could not" "$T/consumer.log" && fail "the consumer reported errors"
log_lines=$(fake_get /_fake/tables/proj/ds/events | json_get "d['numRows']")
[ "$log_lines" -ge "$iterations" ] || fail "the events change log has $log_lines lines"

# 3. a BigQuery that does not answer: a clean stop gives up after 60 s with
# exit 3, having confirmed nothing it did not acknowledge
fake_post /_fake/faults '{"type": "delay", "delayMs": 90000}'
run
sleep 2
q "$db" -c "UPDATE acct SET note = 'unanswered' WHERE id = 7"
end=$(current_lsn "$db")
sleep 2
kill -TERM "$consumer"
set +e
wait "$consumer"
rc=$?
set -e
consumer=""
[ "$rc" -eq 3 ] || fail "a stop without answers exited $rc, expected 3"
grep -q "could not stop cleanly: BigQuery has not acknowledged every change after 60 s" "$T/consumer.log" ||
	fail "no message for the unanswered stop: $(tail -n 2 "$T/consumer.log")"
lsn_le "$end" "$(slot_confirmed "$db" t43)" && fail "an unacknowledged change was confirmed"
curl -sf -X DELETE "$FAKE/_fake/faults" >/dev/null
bq_consume "$db" t43 p "$uri"
bq_compare "$db" ds --publication p
sed -i '/could not stop cleanly/d' "$T/consumer.log"

# 4. an in-band row error: exit 3 naming table, key, reason; nothing confirmed
before=$(slot_confirmed "$db" t43)
fake_post /_fake/faults '{"type": "row_error", "table": "acct", "where": {"id": "42"}, "message": "value too exotic", "times": 100}'
q "$db" -c "UPDATE acct SET note = 'bad' WHERE id = 42"
end=$(current_lsn "$db")
# shellcheck disable=SC2046
expect_exit 3 'could not write to table "ds.acct": BigQuery refused the row with key (id)=(42): value too exotic' \
	"$CONSUMER" --dbname "dbname=$db" --slot t43 --publication p --target "$uri" $(bq_options) \
	--endpos "$end" --status-interval 0
after=$(slot_confirmed "$db" t43)
lsn_le "$end" "$after" && fail "the slot was confirmed past the refused transaction: $after (end $end, before $before)"
[ "$(fake_get /_fake/tables/proj/ds/acct/rows | json_get "[r['note'] for r in d['rows'] if r['id'] == '42'][0]")" != bad ] ||
	fail "the refused row is in the table"
curl -sf -X DELETE "$FAKE/_fake/faults" >/dev/null
bq_consume "$db" t43 p "$uri"
bq_compare "$db" ds --publication p

q "$db" -c "SELECT pg_drop_replication_slot('t43')" >/dev/null
drop_db "$db"
echo ok
