#!/bin/sh
# instructions.sh - instructions executed by each output plugin decoding the
# same WAL, counted by valgrind's callgrind: a measure of a plugin's CPU cost
# that does not move with the machine's load, for comparing changes to the
# plugin on a busy machine (wall and CPU times in make bench do move).
#
# Usage: bench/instructions.sh prepare DIR [WORKLOAD=ROWS...]
#        bench/instructions.sh measure DIR [CONFIG...]
#
# prepare: a private copy of the server (scripts/pgtree.sh) and a cluster in
#   DIR on port $DSPLUG_BENCH_PORT (default 54471); for each workload of
#   bench/workloads (default single=2000 wide=100 filtered=10000), one slot
#   per plugin created before it runs, so each slot holds exactly that
#   workload.  The cluster is stopped at the end.
# measure: installs the plugin and bench_floor as built now into the copy,
#   then for each workload and configuration runs one
#   pg_logical_slot_peek_binary_changes in a single-user backend under
#   callgrind, counting only the instructions inside that call (decoding
#   and the plugin; not start-up), and prints them with the ratios to
#   pgoutput and to the floor.  Peeking does not consume, so measure can be
#   run again after every change to the plugin.
#
# Configurations: dsplug-zstd1 (the default), dsplug-none, pgoutput
# (proto_version 1, text), floor (bench/floor: decoding plus deforming every
# tuple, the cost any plugin pays).  "above floor / pgoutput's" is
# (plugin - floor) / (pgoutput - floor): the plugin's own cost against
# pgoutput's.
set -eu

top=$(cd "$(dirname "$0")/.." && pwd)
cmd=${1:-}
dir=${2:-}
[ -n "$cmd" ] && [ -n "$dir" ] || { sed -n '6,7p' "$0" >&2; exit 2; }
shift 2
PG_CONFIG=${PG_CONFIG:-pg_config}
port=${DSPLUG_BENCH_PORT:-54471}

as_pg() {
	if [ "$(id -u)" -eq 0 ]; then
		runuser -u postgres -- "$@"
	else
		"$@"
	fi
}

options_of() {
	case "$1" in
		dsplug-zstd1) echo "dsplug|, 'publication_names', 'bench_pub'" ;;
		dsplug-none) echo "dsplug|, 'publication_names', 'bench_pub', 'compression', 'none'" ;;
		pgoutput) echo "pgoutput|, 'proto_version', '1', 'publication_names', 'bench_pub'" ;;
		floor) echo "bench_floor|" ;;
		*) echo "instructions.sh: unknown configuration $1" >&2; exit 2 ;;
	esac
}

# the plugin of this checkout, or of DSPLUG_PLUGIN_DIR (another build, to
# compare with)
install_plugins() {
	plugindir=${DSPLUG_PLUGIN_DIR:-$top/plugin}
	make -s -C "$plugindir" >/dev/null
	make -s -C "$top/bench/floor" >/dev/null
	pkglibdir=$("$dir/pg_config" --pkglibdir)
	cp "$plugindir/dsplug.so" "$top/bench/floor/bench_floor.so" "$pkglibdir/"
}

case "$cmd" in
prepare)
	[ $# -gt 0 ] || set -- single=2000 wide=100 filtered=10000
	mkdir -p "$dir"
	privconfig=$("$top/scripts/pgtree.sh" "$dir/pg")
	ln -sf "$privconfig" "$dir/pg_config"
	install_plugins
	export DSPLUG_PG_BINDIR="$("$privconfig" --bindir)"
	"$top/scripts/cluster.sh" start "$dir/cluster" "$port" \
		"output_plugin_libraries = 'pgoutput, dsplug, bench_floor'"
	psql="psql -X -q -At -v ON_ERROR_STOP=1 -h $dir/cluster -p $port -U postgres"
	$psql -d postgres -c "CREATE DATABASE bench"
	$psql -d bench -f "$top/bench/workloads/schema.sql" >/dev/null
	: >"$dir/workloads"
	for w in "$@"; do
		name=${w%%=*}
		rows=${w#*=}
		$psql -d bench -c "TRUNCATE orders, orders_full, big, docs, events"
		[ -f "$top/bench/workloads/$name-setup.sql" ] &&
			$psql -d bench -v rows="$rows" -f "$top/bench/workloads/$name-setup.sql" >/dev/null
		$psql -d bench -c "CHECKPOINT" \
			-c "SELECT pg_create_logical_replication_slot('i_${name}_' || p, p) FROM unnest(ARRAY['dsplug', 'pgoutput', 'bench_floor']) p" >/dev/null
		$psql -d bench -v rows="$rows" -f "$top/bench/workloads/$name.sql" >/dev/null
		end=$($psql -d bench -c "SELECT pg_current_wal_insert_lsn()")
		echo "$name $rows $end" >>"$dir/workloads"
	done
	$psql -d bench -c "CHECKPOINT"
	"$top/scripts/cluster.sh" stop "$dir/cluster"
	cat "$dir/workloads"
	;;
measure)
	[ $# -gt 0 ] || set -- dsplug-zstd1 dsplug-none pgoutput floor
	install_plugins
	bindir=$("$dir/pg_config" --bindir)
	mkdir -p "$dir/out"
	chmod 777 "$dir/out"
	printf '%-10s %-14s %16s %12s %14s\n' workload config instructions "/ pgoutput" "above floor /"
	while read -r name rows end; do
		results=""
		for c in "$@"; do
			spec=$(options_of "$c")
			plugin=${spec%%|*}
			opts=${spec#*|}
			out="$dir/out/$name-$c.callgrind"
			rm -f "$out"
			echo "SELECT count(*), sum(octet_length(data)) FROM pg_logical_slot_peek_binary_changes('i_${name}_$plugin', '$end', NULL$opts)" |
				as_pg valgrind --tool=callgrind --callgrind-out-file="$out" \
					--toggle-collect=pg_logical_slot_peek_binary_changes \
					"$bindir/postgres" --single -D "$dir/cluster/data" -c output_plugin_libraries=pgoutput,dsplug,bench_floor \
					-c log_min_messages=warning bench >"$dir/out/$name-$c.log" 2>&1 ||
				{ cat "$dir/out/$name-$c.log" >&2; exit 1; }
			ir=$(sed -n 's/^totals: \([0-9]*\).*/\1/p' "$out")
			results="$results $c=$ir"
		done
		echo "$results" | tr ' ' '\n' | python3 -c '
import sys
name, rows = sys.argv[1], sys.argv[2]
ir = dict(l.split("=") for l in sys.stdin.read().split())
base, floor = int(ir.get("pgoutput", 0)), int(ir.get("floor", 0))
for c, v in ir.items():
    v = int(v)
    r = "%.3f" % (v / base) if base else "-"
    f = "%.3f" % ((v - floor) / (base - floor)) if base and floor and base != floor else "-"
    print("%-10s %-14s %16d %12s %14s" % (name + "/" + rows if c == list(ir)[0] else "", c, v, r, f))
' "$name" "$rows"
	done <"$dir/workloads"
	;;
*)
	sed -n '6,7p' "$0" >&2
	exit 2
	;;
esac
