#!/bin/sh
# 34-consumer-metrics.sh - dsplug-consumer --metrics-address: the metrics
# are valid Prometheus text (promtool check metrics), count exactly what was
# applied (inserts, updates, deletes, truncates, transactions), report the
# position confirmed to the server, and a real Prometheus server scrapes
# them.  Bad addresses and a port in use are refused with exit 2; other
# paths and methods get 404 and 405.
set -eu
. regress/t/lib.sh
. regress/t/lib/consumer.sh

command -v promtool >/dev/null || fail "promtool is not installed (scripts/deps.sh test installs prometheus)"
command -v prometheus >/dev/null || fail "prometheus is not installed (scripts/deps.sh test installs it)"
command -v curl >/dev/null || fail "curl is not installed"

db=dsplug_t34
recreate_db "$db"
q "$db" <<'SQL'
CREATE TABLE acct (id int PRIMARY KEY, bal bigint NOT NULL);
CREATE TABLE log (n int);
CREATE PUBLICATION p FOR ALL TABLES;
SELECT 'slot' FROM pg_create_logical_replication_slot('t34', 'dsplug');
SQL

free_port() {
	python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# refused addresses: exit 2, one line saying why
expect_exit 2 "not HOST:PORT" "$CONSUMER" --dbname "dbname=$db" --slot t34 --publication p \
	--target "sqlite:$T/bad.db" --metrics-address nonsense
expect_exit 2 "not HOST:PORT" "$CONSUMER" --dbname "dbname=$db" --slot t34 --publication p \
	--target "sqlite:$T/bad.db" --metrics-address 127.0.0.1:70000
expect_exit 2 "metrics-address" "$CONSUMER" --replay "$T/none" --target "sqlite:$T/bad.db" \
	--metrics-address 127.0.0.1:1
python3 -c 'import socket, time, sys
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(); print(s.getsockname()[1], flush=True); time.sleep(60)' >"$T/busy.port" &
busy=$!
trap 'kill $busy 2>/dev/null || true' EXIT
i=0
until [ -s "$T/busy.port" ]; do i=$((i + 1)); [ $i -lt 100 ] || fail "no busy port"; sleep 0.1; done
expect_exit 2 "could not serve metrics" "$CONSUMER" --dbname "dbname=$db" --slot t34 --publication p \
	--target "sqlite:$T/bad.db" --metrics-address "127.0.0.1:$(cat "$T/busy.port")"
kill $busy 2>/dev/null || true

port=$(free_port)
"$CONSUMER" --dbname "dbname=$db" --slot t34 --publication p --target "sqlite:$T/replica.db" \
	--metrics-address "127.0.0.1:$port" --feedback-interval 1 --status-interval 0 \
	>/dev/null 2>"$T/consumer.log" &
consumer=$!
prom=
trap 'kill -KILL $consumer $prom 2>/dev/null || true' EXIT

scrape() {
	curl -sf "http://127.0.0.1:$port/metrics" >"$T/metrics.txt"
}
metric() {
	awk -v m="$1" '$1 == m { print $2 }' "$T/metrics.txt"
}
i=0
until scrape 2>/dev/null; do
	kill -0 "$consumer" 2>/dev/null || fail "the consumer exited: $(cat "$T/consumer.log")"
	i=$((i + 1)); [ $i -lt 300 ] || fail "no metrics on port $port"
	sleep 0.2
done

q "$db" <<'SQL'
INSERT INTO acct SELECT g, 0 FROM generate_series(1, 300) g;
UPDATE acct SET bal = bal + 1 WHERE id <= 120;
DELETE FROM acct WHERE id > 250;
INSERT INTO log VALUES (1);
TRUNCATE log;
BEGIN; INSERT INTO log VALUES (2); INSERT INTO log VALUES (3); COMMIT;
SQL
end=$(current_lsn "$db")
labels="slot=\"t34\",target=\"sqlite:$T/replica.db\""

# wait until the slot is confirmed past the workload and the metrics say so
i=0
until lsn_le "$end" "$(slot_confirmed "$db" t34)" && scrape &&
	[ "$(metric "dsplug_consumer_transactions_applied_total{$labels}")" = 6 ]; do
	kill -0 "$consumer" 2>/dev/null || fail "the consumer exited: $(cat "$T/consumer.log")"
	i=$((i + 1)); [ $i -lt 300 ] || fail "the metrics never showed the workload: $(grep -v '^#' "$T/metrics.txt")"
	sleep 0.2
done

promtool check metrics <"$T/metrics.txt" >"$T/promtool.out" 2>&1 ||
	fail "promtool check metrics: $(cat "$T/promtool.out")"

expect_metric() {
	got=$(metric "$1")
	[ "$got" = "$2" ] || fail "$1 is '$got', expected $2"
}
expect_metric "dsplug_consumer_changes_applied_total{$labels,kind=\"insert\"}" 303
expect_metric "dsplug_consumer_changes_applied_total{$labels,kind=\"update\"}" 120
expect_metric "dsplug_consumer_changes_applied_total{$labels,kind=\"delete\"}" 50
expect_metric "dsplug_consumer_changes_applied_total{$labels,kind=\"truncate\"}" 1
expect_metric "dsplug_consumer_up{$labels}" 1
expect_metric "dsplug_consumer_retries_total{$labels,class=\"connection\"}" 0
# positions are numbers of bytes: the confirmed one is the slot's, at
# least the end of the workload
confirmed=$(metric "dsplug_consumer_confirmed_lsn{$labels}")
[ "$(q "$db" -c "SELECT '$end'::pg_lsn - '0/0' <= $confirmed AND $confirmed <= pg_current_wal_lsn() - '0/0'")" = t ] ||
	fail "dsplug_consumer_confirmed_lsn $confirmed is not between $end and the server's position"
[ "$(metric "dsplug_consumer_frames_received_total{$labels}" | cut -d. -f1)" -ge 6 ] ||
	fail "frames_received_total: $(metric "dsplug_consumer_frames_received_total{$labels}")"
[ "$(metric "dsplug_consumer_decoded_bytes_total{$labels}" | cut -d. -f1)" -gt 0 ] ||
	fail "decoded_bytes_total is 0"
# a synchronous target has no requests in flight to show
grep -q target_requests_in_flight "$T/metrics.txt" && fail "the SQLite target shows requests in flight"
echo "# $(grep -c '^dsplug_' "$T/metrics.txt") samples, promtool: ok"

# not /metrics: 404; not GET: 405
[ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/")" = 404 ] || fail "/ is not 404"
[ "$(curl -s -o /dev/null -w '%{http_code}' -X POST "http://127.0.0.1:$port/metrics")" = 405 ] ||
	fail "POST /metrics is not 405"

# a real Prometheus scrapes the consumer
pport=$(free_port)
cat >"$T/prometheus.yml" <<EOF2
global:
  scrape_interval: 1s
scrape_configs:
  - job_name: dsplug
    static_configs:
      - targets: ['127.0.0.1:$port']
EOF2
mkdir -p "$T/prom-data"
prometheus --config.file="$T/prometheus.yml" --storage.tsdb.path="$T/prom-data" \
	--web.listen-address="127.0.0.1:$pport" >"$T/prometheus.log" 2>&1 &
prom=$!
query() {
	curl -sf --get "http://127.0.0.1:$pport/api/v1/query" --data-urlencode "query=$1" |
		python3 -c 'import json, sys; r = json.load(sys.stdin)["data"]["result"]; print(r[0]["value"][1] if r else "")'
}
i=0
until [ "$(query 'dsplug_consumer_changes_applied_total{job="dsplug",slot="t34",kind="insert"}' 2>/dev/null)" = 303 ]; do
	kill -0 "$prom" 2>/dev/null || fail "prometheus exited: $(tail -n 5 "$T/prometheus.log")"
	i=$((i + 1)); [ $i -lt 300 ] || fail "prometheus never scraped the consumer: $(tail -n 5 "$T/prometheus.log")"
	sleep 0.2
done
[ "$(query 'up{job="dsplug"}')" = 1 ] || fail "prometheus: the consumer's target is not up"
echo "# prometheus scraped: inserts $(query 'dsplug_consumer_changes_applied_total{job="dsplug",kind="insert"}'), lag $(query 'dsplug_consumer_lag_bytes{job="dsplug"}') bytes"
kill "$prom"
wait "$prom" 2>/dev/null || true

kill -TERM "$consumer"
wait "$consumer" || fail "the consumer exited with $? on SIGTERM"
trap - EXIT
compare "$db" "$T/replica.db" --publication p
q "$db" -c "SELECT pg_drop_replication_slot('t34')" >/dev/null
drop_db "$db"
