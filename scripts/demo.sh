#!/bin/sh
# demo.sh - the two-region demo (make demo): one PostgreSQL primary, the
# seed's setup (pub1/pub2, rs1/rs2 on dsplug), one dsplug-consumer per
# region into a local SQLite database standing in for that region's
# BigQuery dataset, a realistic workload, then proof that both replicas
# equal the source, table by table.
#
# Usage: scripts/demo.sh [SECONDS]     (workload duration, default 20)
#
# Everything lives in /tmp/dsplug-demo (the cluster, region1.db, region2.db,
# logs) and is started afresh on every run; the cluster is stopped at the end.
set -eu

top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
PG_CONFIG=${PG_CONFIG:-pg_config}
bindir=$("$PG_CONFIG" --bindir)
export PATH="$bindir:$PATH"
seconds=${1:-20}
consumer=consumer/dsplug-consumer

# The cluster and the replicas: a directory the postgres user can reach.
demo=/tmp/dsplug-demo
port=54331
rm -rf "$demo"
mkdir -p "$demo"
chmod 755 "$demo"
cluster="$demo/cluster"
pids=""

stop_all() {
	for p in $pids; do kill -TERM "$p" 2>/dev/null || true; done
	for p in $pids; do wait "$p" 2>/dev/null || true; done
	scripts/cluster.sh stop "$cluster" fast >/dev/null 2>&1 || true
}
trap stop_all EXIT
trap 'exit 130' INT TERM

step() { printf '\n\033[1m[%s] %s\033[0m\n' "$1" "$2"; }
q() { psql -X -q -At -v ON_ERROR_STOP=1 -d demo "$@"; }

step 1/6 "starting a throwaway PostgreSQL 15 primary ($cluster)"
scripts/cluster.sh start "$cluster" "$port"
export PGHOST="$cluster" PGPORT="$port" PGUSER=postgres
psql -X -q -d postgres -c "CREATE DATABASE demo"
q -c "SELECT version()"

step 2/6 "the application's schema, with data already in it"
q <<'SQL'
CREATE SCHEMA data_schema;
CREATE TABLE data_schema.customers (
	id bigint PRIMARY KEY,
	name text NOT NULL,
	email text,
	country char(2),
	vip boolean NOT NULL DEFAULT false,
	created timestamptz NOT NULL
);
CREATE TABLE data_schema.orders (
	id bigserial PRIMARY KEY,
	customer_id bigint NOT NULL REFERENCES data_schema.customers,
	amount numeric(12,2) NOT NULL,
	status text NOT NULL,
	items jsonb NOT NULL,
	placed_at timestamptz NOT NULL,
	delivery date,
	note text
);
CREATE TABLE data_schema.events (
	id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
	customer_id bigint,
	kind text NOT NULL,
	payload jsonb,
	tags text[],
	at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO data_schema.customers
SELECT g, 'customer ' || g, 'c' || g || '@example.com',
	   (ARRAY['FR','DE','US','JP','BR'])[1 + g % 5], g % 17 = 0,
	   '2026-01-01'::timestamptz + g * interval '37 minutes'
FROM generate_series(1, 20000) g;
INSERT INTO data_schema.orders (customer_id, amount, status, items, placed_at, delivery)
SELECT 1 + g % 20000, (g % 50000) / 100.0, (ARRAY['new','paid','shipped'])[1 + g % 3],
	   jsonb_build_object('sku', 'SKU-' || g % 977, 'qty', 1 + g % 4),
	   '2026-06-01'::timestamptz + g * interval '13 seconds', '2026-07-01'::date + g % 90
FROM generate_series(1, 50000) g;
SQL
q -c "SELECT 'customers: ' || count(*) FROM data_schema.customers" \
	-c "SELECT 'orders: ' || count(*) FROM data_schema.orders"

step 3/6 "the seed's setup, with dsplug as the plugin"
q <<'SQL'
CREATE PUBLICATION pub1 FOR ALL TABLES WITH (publish = 'insert,update,delete');
CREATE PUBLICATION pub2 FOR ALL TABLES WITH (publish = 'insert,update,delete');
SELECT 'rs1: ' || lsn FROM pg_create_logical_replication_slot('rs1', 'dsplug');
SELECT 'rs2: ' || lsn FROM pg_create_logical_replication_slot('rs2', 'dsplug');
SQL

step 4/6 "one dsplug-consumer per region (each first copies the rows already there)"
for r in 1 2; do
	"$consumer" --dbname "host=$cluster port=$port user=postgres dbname=demo" \
		--slot "rs$r" --publication "pub$r" --target "sqlite:$demo/region$r.db" \
		--backfill --record "$demo/region$r.frames" --status-interval 5 \
		2>"$demo/region$r.log" &
	pids="$pids $!"
	echo "region$r: slot rs$r, publication pub$r -> $demo/region$r.db (log $demo/region$r.log)"
done

step 5/6 "workload: ${seconds}s of OLTP transactions from 4 clients"
cat >"$demo/workload.sql" <<'SQL'
\set cid random(1, 20000)
\set oid random(1, 50000)
\set gone random(1, 50000)
BEGIN;
INSERT INTO data_schema.orders (customer_id, amount, status, items, placed_at, note)
	VALUES (:cid, round((random() * 500)::numeric, 2), 'new',
			jsonb_build_object('sku', 'SKU-' || (:cid % 977), 'qty', 1 + :cid % 4), now(),
			CASE WHEN :cid % 7 = 0 THEN 'leave at the door' END);
UPDATE data_schema.orders SET status = 'shipped', delivery = current_date + 3 WHERE id = :oid;
UPDATE data_schema.customers SET vip = NOT vip WHERE id = :cid;
INSERT INTO data_schema.events (customer_id, kind, payload, tags)
	VALUES (:cid, 'order', jsonb_build_object('order', :oid), ARRAY['web', 'cart']);
DELETE FROM data_schema.orders WHERE id = :gone AND status = 'new';
COMMIT;
SQL
pgbench -n -c 4 -j 2 -T "$seconds" -f "$demo/workload.sql" demo >"$demo/pgbench.log" 2>&1 &
bench=$!
while kill -0 "$bench" 2>/dev/null; do
	sleep 2
	q -c "SELECT format('  %s transactions so far | lag region1 %s, region2 %s',
				(SELECT xact_commit FROM pg_stat_database WHERE datname = 'demo'),
				pg_size_pretty(max(pg_current_wal_lsn() - confirmed_flush_lsn) FILTER (WHERE slot_name = 'rs1')),
				pg_size_pretty(max(pg_current_wal_lsn() - confirmed_flush_lsn) FILTER (WHERE slot_name = 'rs2')))
		  FROM pg_replication_slots" || true
done
wait "$bench" || { cat "$demo/pgbench.log"; exit 1; }
grep -E "^(number of transactions actually processed|tps)" "$demo/pgbench.log" | sed 's/^/  /'

step 6/6 "both regions catch up; each replica is compared with the source"
target=$(q -c "SELECT pg_current_wal_lsn()")
waited=0
while [ "$(q -c "SELECT count(*) FROM pg_replication_slots WHERE slot_name IN ('rs1','rs2') AND confirmed_flush_lsn >= '$target'")" != 2 ]; do
	sleep 1
	waited=$((waited + 1))
	if [ "$waited" -ge 300 ]; then
		tail -n 5 "$demo"/region*.log
		echo "demo: the regions did not catch up with $target in 5 minutes" >&2
		exit 1
	fi
done
echo "  both slots confirmed up to $target"
for p in $pids; do kill -TERM "$p"; done
for p in $pids; do wait "$p" || { echo "demo: a consumer failed:" >&2; tail -n 5 "$demo"/region*.log >&2; exit 1; }; done
pids=""

ok=1
for r in 1 2; do
	if python3 regress/t/lib/compare.py --db demo --sqlite "$demo/region$r.db" --publication "pub$r"; then
		echo "  region$r equals the source, row by row"
	else
		ok=0
	fi
done

echo
printf '%-24s %10s %10s %10s\n' table source region1 region2
for t in customers orders events; do
	printf '%-24s %10s %10s %10s\n' "data_schema.$t" \
		"$(q -c "SELECT count(*) FROM data_schema.$t")" \
		"$(sqlite3 "$demo/region1.db" "SELECT count(*) FROM data_schema_$t")" \
		"$(sqlite3 "$demo/region2.db" "SELECT count(*) FROM data_schema_$t")"
done
echo
for r in 1 2; do
	echo "region$r: $(du -k "$demo/region$r.frames" | cut -f1) kB of dsplug frames received; last status: $(grep 'applied' "$demo/region$r.log" | tail -n 1 | sed 's/^dsplug-consumer: //')"
done

[ "$ok" -eq 1 ] || { echo "demo: a replica differs from the source" >&2; exit 1; }
printf '\n\033[1mdemo passed:\033[0m both regions hold exactly what the primary holds.\n'
echo "Look inside: sqlite3 $demo/region1.db '.tables'"
