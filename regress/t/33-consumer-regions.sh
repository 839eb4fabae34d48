#!/bin/sh
# 33-consumer-regions.sh - dsplug.regions, the DR view on the primary, with
# the seed's two regions: rs1 streamed by a running dsplug-consumer, rs2's
# consumer stopped.  The running region shows its consumer (name, address,
# the publication it asked for, a recent confirmation) and catches up to no
# lag once the workload stops; the stopped region shows no consumer and
# falls behind by exactly the WAL written since it stopped, which its slot
# retains.
set -eu
. regress/t/lib.sh
. regress/t/lib/consumer.sh

db=dsplug_t33
recreate_db "$db"
q "$db" <<'SQL'
CREATE TABLE acct (id int PRIMARY KEY, bal bigint NOT NULL);
CREATE PUBLICATION pub1 FOR ALL TABLES;
CREATE PUBLICATION pub2 FOR ALL TABLES;
SELECT 'slot' FROM pg_create_logical_replication_slot('t33_rs1', 'dsplug');
SELECT 'slot' FROM pg_create_logical_replication_slot('t33_rs2', 'dsplug');
INSERT INTO acct SELECT g, 0 FROM generate_series(1, 100) g;
SQL

# region 2 catches up once, then stops
consume "$db" t33_rs2 pub2 "$T/region2.db"
rs2_stopped_at=$(slot_confirmed "$db" t33_rs2)

"$CONSUMER" --dbname "dbname=$db" --slot t33_rs1 --publication pub1 \
	--target "sqlite:$T/region1.db" --feedback-interval 1 --status-interval 0 \
	>/dev/null 2>"$T/consumer.log" &
consumer=$!
trap 'kill -KILL "$consumer" 2>/dev/null || true' EXIT

region() {
	q "$db" -F ' ' -c "SELECT $2 FROM dsplug.regions WHERE slot = '$1'"
}

# wait (up to 60 s) until CONDITION holds for SLOT's row
wait_region() {
	_i=0
	until [ "$(region "$1" "($2)::text")" = true ]; do
		kill -0 "$consumer" 2>/dev/null || fail "the consumer exited: $(tail -n 3 "$T/consumer.log")"
		_i=$((_i + 1))
		[ "$_i" -le 300 ] || fail "dsplug.regions: $1 never showed $2 (row: $(region "$1" '*'))"
		sleep 0.2
	done
}

wait_region t33_rs1 "active AND last_confirmation IS NOT NULL"
q "$db" -c "UPDATE acct SET bal = bal + 1" -c "UPDATE acct SET bal = bal + 1" >/dev/null

# the running region: who it is, what it reads, caught up
wait_region t33_rs1 "lag_bytes = 0"
got=$(region t33_rs1 "active, publications, consumer_address, consumer_name, lag_time, wal_status")
[ "$got" = "t {pub1} local dsplug-consumer 00:00:00 reserved" ] ||
	fail "dsplug.regions for the running region: $got"
[ "$(region t33_rs1 "now() - last_confirmation < interval '30 s'")" = t ] ||
	fail "the running region's last confirmation is old: $(region t33_rs1 last_confirmation)"

# the stopped region: no consumer, behind by what was written since it
# stopped, all of it retained
got=$(region t33_rs2 "active, publications IS NULL, consumer_address IS NULL, consumer_name IS NULL, last_confirmation IS NULL")
[ "$got" = "t t t t t" ] && fail "the stopped region shows as active"
[ "$got" = "f t t t t" ] || fail "dsplug.regions for the stopped region: $got"
expect=$(q "$db" -c "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '$rs2_stopped_at')")
got=$(region t33_rs2 "lag_bytes")
[ "$got" = "$expect" ] || fail "the stopped region's lag is $got bytes, expected $expect"
[ "$(region t33_rs2 "retained_wal_bytes >= lag_bytes AND lag_bytes > 0 AND confirmed_lsn = '$rs2_stopped_at'")" = t ] ||
	fail "the stopped region: $(region t33_rs2 '*')"
echo "# running region: $(region t33_rs1 "slot, active, consumer_name, lag_bytes, wal_status")"
echo "# stopped region: $(region t33_rs2 "slot, active, lag_bytes, retained_wal_bytes, wal_status")"

# one query: every region healthy?
[ "$(q "$db" -c "SELECT count(*) FROM dsplug.regions WHERE slot LIKE 't33%' AND active AND lag_bytes = 0")" = 1 ] ||
	fail "expected exactly one healthy region"

kill -TERM "$consumer"
wait "$consumer" || fail "the consumer exited with $? on SIGTERM"
trap - EXIT
compare "$db" "$T/region1.db" --publication pub1

# region 2 catches up: both regions equal and at no lag
consume "$db" t33_rs2 pub2 "$T/region2.db"
compare "$db" "$T/region2.db" --publication pub2
[ "$(region t33_rs2 "lag_bytes <= (SELECT lag_bytes FROM dsplug.regions WHERE slot = 't33_rs1')")" = t ] ||
	fail "region 2 did not catch up: $(region t33_rs2 '*')"
q "$db" -c "SELECT pg_drop_replication_slot('t33_rs1'), pg_drop_replication_slot('t33_rs2')" >/dev/null
drop_db "$db"
