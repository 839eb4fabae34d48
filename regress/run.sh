#!/bin/sh
# run.sh - run every dsplug test against a throwaway PostgreSQL cluster.
#
# Usage: regress/run.sh [TEST...]
#
# Starts a cluster (scripts/cluster.sh) as the postgres user from a private
# copy of the server with this checkout's plugin (scripts/pgtree.sh), runs the
# pg_regress suite (regress/sql, regress/expected), then every scripted test
# regress/t/[0-9]*.sh, stops the cluster and exits non-zero if anything failed.
# With TEST arguments, runs only the pg_regress tests and scripts named
# (e.g. "types" or "t/20-consumer-types.sh").
#
# Scripted tests run from the repository root with these set:
#   PGHOST PGPORT PGUSER   the cluster (Unix socket, trust auth)
#   DSPLUG_PG_BINDIR       the private server's binaries (first on PATH;
#                          scripts/cluster.sh starts more clusters from it)
#   DSPLUG_TEST_DIR        the cluster's directory (scripts/cluster.sh)
#   DSPLUG_TEST_TMP        a scratch directory of their own, readable by postgres
# Lines a script prints starting with "# " (figures, notes) are shown even
# when it passes.
set -eu

top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
PG_CONFIG=${PG_CONFIG:-pg_config}
export PG_CONFIG

work=$(mktemp -d /tmp/dsplug-check.XXXXXX)
chmod 755 "$work"
cluster="$work/cluster"
port=${DSPLUG_TEST_PORT:-54329}

# On success everything goes; on failure the logs stay (server logs, each
# test's output and the files it wrote as *.log, *.out, *.err, regression
# diffs) and the rest (data directories, replicas, the server copy) goes, so
# a failed run leaves a few MB, not hundreds.
cleanup() {
	scripts/cluster.sh stop "$cluster" immediate >/dev/null 2>&1 || true
	# clusters a failed test left running in its scratch directory
	find "$work" -name postmaster.pid -path '*/data/*' 2>/dev/null |
		while read -r pidfile; do
			scripts/cluster.sh stop "$(dirname "$(dirname "$pidfile")")" immediate >/dev/null 2>&1 || true
		done
	if [ "${failed:-1}" -eq 0 ]; then
		rm -rf "$work"
	else
		rm -rf "$work/pg"
		find "$work" -depth -name data -type d -exec rm -rf {} + 2>/dev/null || true
		find "$work" -type f ! -name '*.log' ! -name '*.out' ! -name '*.err' \
			! -name '*.diffs' -delete 2>/dev/null || true
		find "$work" -mindepth 1 -type d -empty -delete 2>/dev/null || true
		echo "run.sh: kept the logs in $work ($(du -sh "$work" | cut -f1))" >&2
	fi
}
trap cleanup EXIT INT TERM

# The server runs from a private copy of the installation that holds this
# checkout's plugin (scripts/pgtree.sh): what is installed on the machine is
# neither used nor changed, and two checkouts can test at the same time.
echo "== a private copy of the server with this checkout's plugin in $work/pg"
privconfig=$(scripts/pgtree.sh "$work/pg")
DSPLUG_PG_BINDIR=$("$privconfig" --bindir)
export DSPLUG_PG_BINDIR
PATH="$DSPLUG_PG_BINDIR:$PATH"
export PATH

echo "== starting a throwaway cluster in $cluster"
scripts/cluster.sh start "$cluster" "$port" "logical_decoding_work_mem = 64MB"
export PGHOST="$cluster" PGPORT="$port" PGUSER=postgres
export DSPLUG_TEST_DIR="$cluster"

# Which tests: all, or those named on the command line.
sql_tests="--schedule=regress/schedule"
script_tests=$(ls regress/t/[0-9]*.sh 2>/dev/null || true)
if [ $# -gt 0 ]; then
	sel_sql=""
	sel_scripts=""
	for t in "$@"; do
		case "$t" in
			t/*|regress/t/*) sel_scripts="$sel_scripts regress/${t#regress/}" ;;
			*) sel_sql="$sel_sql $t" ;;
		esac
	done
	sql_tests=$sel_sql
	script_tests=$sel_scripts
fi

failed=0
failures=""

if [ -n "$(echo $sql_tests)" ]; then
	echo "== pg_regress:$(echo " $sql_tests" | tr -s ' ')"
	pgxs=$(dirname "$("$privconfig" --pgxs)")
	mkdir -p "$work/regress"
	if ! "$pgxs/../test/regress/pg_regress" \
		--bindir="$DSPLUG_PG_BINDIR" \
		--host="$PGHOST" --port="$PGPORT" --user=postgres \
		--inputdir=regress --outputdir="$work/regress" \
		--dbname=dsplug_regression --load-extension=dsplug \
		$sql_tests; then
		failed=1
		failures="$failures pg_regress"
		[ -f "$work/regress/regression.diffs" ] && cat "$work/regress/regression.diffs"
	fi
fi

for t in $script_tests; do
	name=$(basename "$t" .sh)
	scratch="$work/$name"
	mkdir -p "$scratch"
	[ "$(id -u)" -eq 0 ] && chown postgres:postgres "$scratch"
	echo "== $t"
	start=$(date +%s)
	if DSPLUG_TEST_TMP="$scratch" sh "$t" >"$work/$name.log" 2>&1; then
		echo "   ok ($(( $(date +%s) - start ))s)"
		grep '^# ' "$work/$name.log" | sed 's/^/   /' || true
	else
		echo "   FAILED ($(( $(date +%s) - start ))s); last lines of $work/$name.log:"
		tail -n 40 "$work/$name.log" | sed 's/^/   | /'
		failed=1
		failures="$failures $t"
	fi
done

if [ "$failed" -ne 0 ]; then
	echo "== FAILED:$failures"
	tail -n 20 "$cluster/server.log" | sed 's/^/   server.log | /'
	exit 1
fi
echo "== all tests passed"
