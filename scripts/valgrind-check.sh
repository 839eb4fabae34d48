#!/bin/sh
# valgrind-check.sh - the plugin's tests with the server under Valgrind
# memcheck: no error of Valgrind's may have a frame in the plugin's code.
#
# Usage: scripts/valgrind-check.sh [TEST...]       (make check-valgrind)
#
# Runs regress/run.sh (default: every pg_regress test of regress/schedule,
# the walsender test of tables without columns and one seed of the random
# workload against test_decoding) with the cluster's server under Valgrind
# (scripts/cluster.sh, DSPLUG_VALGRIND) and PostgreSQL's own suppressions
# (src/tools/valgrind.supp, from scripts/pgsource.sh: needs the network the
# first time; the source is kept in DSPLUG_PGSOURCE, default .pgsource/).
# Then reads every process's log: errors whose stack has a frame in
# dsplug.so fail the check; others are counted and shown.
#
# Caveat: Debian's server is not built with USE_VALGRIND, so Valgrind sees
# palloc'd memory only as the malloc'd blocks it is carved from: a read or
# write past a palloc'd chunk is caught when it leaves its block (large
# chunks and the batch buffers are blocks of their own), uninitialised
# palloc'd memory is not reported, while malloc'd memory (protobuf-c's,
# zstd's), the stack and the blocks' bounds are checked fully.
set -eu

top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
src=$(scripts/pgsource.sh "${DSPLUG_PGSOURCE:-$top/.pgsource}")
supp="$src/src/tools/valgrind.supp"
command -v valgrind >/dev/null ||
	{ echo "valgrind-check.sh: valgrind is not installed (apt-get install valgrind)" >&2; exit 1; }

logs=$(mktemp -d /tmp/dsplug-valgrind.XXXXXX)
chmod 755 "$logs"
[ "$(id -u)" -eq 0 ] && chown postgres:postgres "$logs"

if [ $# -eq 0 ]; then
	set -- $(sed -n 's/^test: //p' regress/schedule) t/07-plugin-zero-columns.sh t/08-plugin-random.sh
fi
status=0
DSPLUG_VALGRIND=$logs DSPLUG_VALGRIND_SUPP=$supp \
	DSPLUG_RANDOM_SEED=${DSPLUG_RANDOM_SEED:-1} DSPLUG_RANDOM_ROUNDS=${DSPLUG_RANDOM_ROUNDS:-120} \
	regress/run.sh "$@" || status=$?

# Each error is a block between the markers.  It is the plugin's when the
# innermost frame of its stack that is in the server or the plugin (after
# libc's and other libraries' frames) is in dsplug.so, named by the library
# or by its source files (the plugin is built with -g, the server is
# stripped): an error PostgreSQL's code makes while the plugin is further up
# the stack (decoding called from dsplug.peek_changes, say) is not.
awk -v out="$logs/plugin-errors.txt" '
	function frame_owner(line) {
		if (line ~ /dsplug\.so|\((plugin|options|filter|encode|encode_row|batch|compress|inspect|wire_decode|wire_text|dsplug\.pb-c)\.c:[0-9]+\)/)
			return "plugin"
		if (line ~ /\(in [^)]*\/bin\/postgres\)/)
			return "server"
		return ""
	}
	/VALGRINDERROR-BEGIN/ { inerr = 1; block = ""; first = ""; owner = ""; instack = 0; done = 0; next }
	/VALGRINDERROR-END/ {
		inerr = 0; total++
		if (block ~ /Invalid (read|write)/) invalid++
		if (owner == "plugin") {
			plugin++
			print FILENAME ":\n" block > out
		}
		next
	}
	inerr {
		block = block $0 "\n"
		line = $0
		sub(/^==[0-9]+== /, "", line)
		if (first == "") {
			first = line
			kinds[first]++
			next
		}
		if (done)
			next
		if (line ~ /^ +(at|by) /) {
			instack = 1
			if ((o = frame_owner(line)) != "") {
				owner = o
				done = 1
			}
		} else if (instack)
			done = 1
	}
	END {
		printf "%d %d %d\n", total, invalid, plugin
		for (k in kinds)
			printf "%6d  %s\n", kinds[k], k > kindsfile
	}
' kindsfile="$logs/kinds.txt" "$logs"/*.log >"$logs/summary"
read -r total invalid plugin <"$logs/summary"
echo "valgrind: $nlogs server processes, $total errors ($invalid invalid reads or writes), $plugin in dsplug.so (logs in $logs)"
[ -s "$logs/kinds.txt" ] && sort -rn "$logs/kinds.txt"
if [ "$plugin" -gt 0 ]; then
	cat "$logs/plugin-errors.txt"
	echo "valgrind-check.sh: errors in the plugin's code" >&2
	exit 1
fi
[ "$status" -eq 0 ] || { echo "valgrind-check.sh: the tests failed under Valgrind" >&2; exit "$status"; }
[ "$total" -eq 0 ] && rm -rf "$logs"
exit 0
