#!/bin/sh
# pg_regress_workload.sh - PostgreSQL 15's own regression suite as the
# workload of a dsplug slot followed by dsplug-consumer into SQLite
# (make check-pg-regress).
#
# Usage: regress/pg_regress_workload.sh
#
# The suite (src/test/regress of Debian's postgresql-15 source package,
# fetched by scripts/pgsource.sh: needs the network the first time, kept in
# DSPLUG_PGSOURCE, default .pgsource/) runs its parallel schedule in a
# database with a FOR ALL TABLES publication, against a throwaway cluster
# on port DSPLUG_TEST_PORT started from a private copy of the server with
# this checkout's plugin (as regress/run.sh does).  dsplug-consumer follows
# the slot into a SQLite file the whole time; a second dsplug slot, created
# with it, is read at the end through dsplug.peek_changes.
#
# Fails when: the server crashes (a restart, or a process killed by a
# signal), the plugin raises an ERROR (in the walsender or in
# dsplug.peek_changes), or the consumer stops before it is told to, or
# exits non-zero when it is.  Reports, without failing on them: the suite's
# own results (many of its tests fail here by design: FOR ALL TABLES makes
# UPDATE and DELETE on tables without a replica identity an error), the
# changes decoded, and how many tables the replica holds equal to the
# source (tables left different by DDL belong to the schema-changes work).
set -eu

top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
PG_CONFIG=${PG_CONFIG:-pg_config}
export PG_CONFIG
port=${DSPLUG_TEST_PORT:-54329}

src=$(scripts/pgsource.sh "${DSPLUG_PGSOURCE:-$top/.pgsource}")
suite="$src/src/test/regress"
consumer=${DSPLUG_TEST_CONSUMER:-$top/consumer/dsplug-consumer}
[ -x "$consumer" ] || { echo "pg_regress_workload.sh: build the consumer first (make)" >&2; exit 1; }

work=$(mktemp -d /tmp/dsplug-pgsuite.XXXXXX)
chmod 755 "$work"
cluster="$work/cluster"
consumer_pid=""
failed=1
cleanup() {
	[ -n "$consumer_pid" ] && kill -KILL "$consumer_pid" 2>/dev/null || true
	scripts/cluster.sh stop "$cluster" immediate >/dev/null 2>&1 || true
	if [ "$failed" -eq 0 ]; then
		rm -rf "$work"
	else
		echo "pg_regress_workload.sh: kept $work for inspection" >&2
	fi
}
trap cleanup EXIT INT TERM
fail() {
	echo "FAIL: $*" >&2
	exit 1
}

# the installed server's headers (the private copy has none)
incserver=$("$PG_CONFIG" --includedir-server)
incdir=$("$PG_CONFIG" --includedir)
cflags_sl=$("$PG_CONFIG" --cflags_sl)

echo "== a private copy of the server with this checkout's plugin in $work/pg"
privconfig=$(scripts/pgtree.sh "$work/pg")
DSPLUG_PG_BINDIR=$("$privconfig" --bindir)
export DSPLUG_PG_BINDIR
PATH="$DSPLUG_PG_BINDIR:$PATH"
export PATH
pgxs=$(dirname "$("$privconfig" --pgxs)")

# the C functions the suite loads: its regress.c, and contrib/spi's
# autoinc and refint
echo "== building the suite's C functions from $src"
mkdir -p "$work/lib"
for c in "$suite/regress.c" "$src/contrib/spi/autoinc.c" "$src/contrib/spi/refint.c"; do
	# shellcheck disable=SC2086
	cc -O1 -fPIC -shared $cflags_sl -I"$incserver" -I"$incdir/internal" \
		-o "$work/lib/$(basename "$c" .c).so" "$c" ||
		fail "could not build $c"
done

echo "== starting a throwaway cluster in $cluster (port $port)"
# No prepared transactions (the suite has expected output for that too):
# with FOR ALL TABLES, statements of prepared_xacts fail and would leave a
# prepared transaction holding a lock that a later DROP TABLE waits on
# forever.  lock_timeout turns any other such wait into an error.
scripts/cluster.sh start "$cluster" "$port" "max_connections = 60" \
	"max_prepared_transactions = 0" "logical_decoding_work_mem = 64MB" \
	"log_min_messages = error"
export PGHOST="$cluster" PGPORT="$port" PGUSER=postgres
q() { psql -X -q -At -v ON_ERROR_STOP=1 "$@"; }
started=$(q -d postgres -c "SELECT pg_postmaster_start_time()")

# the database pg_regress would make (--use-existing keeps it, and the slots
# in it, from being dropped)
q -d postgres <<'SQL'
CREATE DATABASE regression TEMPLATE template0 ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C';
ALTER DATABASE regression SET lc_messages TO 'C';
ALTER DATABASE regression SET lc_monetary TO 'C';
ALTER DATABASE regression SET lc_numeric TO 'C';
ALTER DATABASE regression SET lc_time TO 'C';
ALTER DATABASE regression SET bytea_output TO 'hex';
ALTER DATABASE regression SET timezone_abbreviations TO 'Default';
ALTER DATABASE regression SET lock_timeout TO '5min';
SQL
q -d regression >/dev/null <<'SQL'
CREATE EXTENSION dsplug;
CREATE PUBLICATION dsplug_all FOR ALL TABLES;
SELECT 'slot' FROM pg_create_logical_replication_slot('pgsuite', 'dsplug');
SELECT 'slot' FROM pg_create_logical_replication_slot('pgsuite_sql', 'dsplug');
SQL

"$consumer" --dbname "dbname=regression" --slot pgsuite --publication dsplug_all \
	--target "sqlite:$work/replica.db" --status-interval 1 2>"$work/consumer.log" &
consumer_pid=$!

echo "== PostgreSQL's regression suite ($(basename "$src"), parallel schedule)"
mkdir -p "$work/suite"
[ "$(id -u)" -eq 0 ] && chown -R postgres:postgres "$work/suite"
suite_status=0
"$pgxs/../test/regress/pg_regress" --bindir="$DSPLUG_PG_BINDIR" \
	--host="$PGHOST" --port="$PGPORT" --user=postgres --use-existing \
	--dbname=regression --inputdir="$suite" --outputdir="$work/suite" \
	--dlpath="$work/lib" --max-connections=6 \
	--schedule="$suite/parallel_schedule" >"$work/suite.out" 2>&1 || suite_status=$?
ran=$(grep -cE '\.\.\. (ok|FAILED|failed|ignored)' "$work/suite.out" || true)
bad=$(grep -cE '\.\.\. (FAILED|failed)' "$work/suite.out" || true)
echo "   suite: $ran tests run, $((ran - bad)) passed, $bad failed (exit $suite_status; $work/suite.out)"
[ "$ran" -gt 100 ] || { tail -n 20 "$work/suite.out" >&2; fail "the suite ran only $ran tests"; }

kill -0 "$consumer_pid" 2>/dev/null ||
	{ tail -n 20 "$work/consumer.log" >&2; fail "dsplug-consumer stopped during the suite"; }
end=$(q -d regression -c "SELECT pg_current_wal_lsn()")

# the consumer catches up: it confirms end (no tight timeout: it fails
# only when nothing moves for ten minutes)
last=""
still=0
while :; do
	confirmed=$(q -d regression -c "SELECT confirmed_flush_lsn FROM pg_replication_slots WHERE slot_name = 'pgsuite'")
	[ "$(q -d regression -c "SELECT '$confirmed'::pg_lsn >= '$end'::pg_lsn")" = t ] && break
	kill -0 "$consumer_pid" 2>/dev/null ||
		{ tail -n 20 "$work/consumer.log" >&2; fail "dsplug-consumer stopped before confirming $end (at $confirmed)"; }
	if [ "$confirmed" = "$last" ]; then
		still=$((still + 1))
		[ "$still" -lt 600 ] || fail "dsplug-consumer made no progress for ten minutes (at $confirmed, end $end)"
	else
		still=0
		last=$confirmed
	fi
	sleep 1
done
kill -TERM "$consumer_pid"
consumer_status=0
wait "$consumer_pid" || consumer_status=$?
consumer_pid=""
echo "   consumer: confirmed $end, exit $consumer_status on SIGTERM"
[ "$consumer_status" -eq 0 ] ||
	{ tail -n 20 "$work/consumer.log" >&2; fail "dsplug-consumer exited with $consumer_status"; }

# every change again, through the SQL interface
q -d regression -c "COPY (SELECT kind, count(*) FROM dsplug.peek_changes('pgsuite_sql', '$end', NULL,
	'publication_names', 'dsplug_all') GROUP BY kind ORDER BY kind) TO STDOUT" >"$work/kinds.txt" ||
	fail "dsplug.peek_changes failed on the suite's WAL"
echo "   changes decoded: $(awk '{ printf "%s%s %s", (NR > 1 ? ", " : ""), $1, $2 }' "$work/kinds.txt")"

[ "$(q -d postgres -c "SELECT pg_postmaster_start_time()")" = "$started" ] ||
	fail "the server restarted during the suite"
if grep -E 'terminated by signal|PANIC|dsplug: |dsplug-consumer (ERROR|FATAL)' "$cluster/server.log" \
	>"$work/errors.txt"; then
	head -n 20 "$work/errors.txt" >&2
	fail "the server log has a crash or a plugin error ($(wc -l <"$work/errors.txt") lines)"
fi

python3 regress/t/lib/compare.py --db regression --sqlite "$work/replica.db" \
	--publication dsplug_all --summary >"$work/compare.txt" 2>&1 ||
	{ cat "$work/compare.txt" >&2; fail "the comparison could not run"; }
echo "   $(tail -n 1 "$work/compare.txt")"
grep '^  different:' "$work/compare.txt" | head -n 40 | sed 's/^/   /' || true
failed=0
echo "== no crash, no plugin error, the consumer followed the whole suite"
