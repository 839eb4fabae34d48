#!/bin/bash
# plugins.sh - output size and decode time of dsplug against peer plugins,
# decoding the same WAL in the same run.
#
# Usage: bench/plugins.sh [-w WORKLOAD] [-n ROWS] [-r REPS] [-o DIR] [CONFIG...]
#
#   -w  workload in bench/workloads (default batched)
#   -n  rows parameter of the workload (default 200000)
#   -r  repetitions; runs are interleaved across configs (default 5)
#   -o  directory for results.md and results.json (default bench/results)
#   CONFIG  names from the table below (default: dsplug pgoutput)
#
# Every config peeks the same slot position with
# pg_logical_slot_peek_binary_changes (or the text variant for text
# plugins), so each run decodes exactly the same changes.  Time is the
# backend's wall time for the whole peek; CPU is the backend's user+system
# time from /proc; figures are the median over repetitions, with min and
# max.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"

workload=batched
rows=200000
reps=5
out=bench/results
while getopts "w:n:r:o:" opt; do
	case $opt in
		w) workload=$OPTARG ;;
		n) rows=$OPTARG ;;
		r) reps=$OPTARG ;;
		o) out=$OPTARG ;;
		*) sed -n '4,12p' "$0" >&2; exit 2 ;;
	esac
done
shift $((OPTIND - 1))

# name | plugin | binary output? | options (SQL list)
all_configs="
dsplug|dsplug|yes|'publication_names', 'bench_pub'
dsplug-none|dsplug|yes|'publication_names', 'bench_pub', 'compression', 'none'
dsplug-zstd1|dsplug|yes|'publication_names', 'bench_pub', 'compression_level', '1'
dsplug-zstd9|dsplug|yes|'publication_names', 'bench_pub', 'compression_level', '9'
pgoutput|pgoutput|yes|'proto_version', '1', 'publication_names', 'bench_pub'
pgoutput-binary|pgoutput|yes|'proto_version', '1', 'publication_names', 'bench_pub', 'binary', 'true'
test_decoding|test_decoding|no|'include-xids', '1'
wal2json|wal2json|no|'format-version', '2'
decoderbufs|decoderbufs|yes|
"
configs=${*:-dsplug pgoutput}

config_line() {
	echo "$all_configs" | awk -F'|' -v n="$1" '$1 == n { print; found = 1 } END { exit !found }' ||
		{ echo "plugins.sh: unknown config \"$1\"" >&2; exit 2; }
}
for c in $configs; do config_line "$c" >/dev/null; done

work=$(mktemp -d /tmp/dsplug-bench.XXXXXX)
chmod 755 "$work"
cluster="$work/cluster"
trap 'scripts/cluster.sh stop "$cluster" immediate >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
scripts/cluster.sh start "$cluster" 54330 "shared_buffers = 512MB" "checkpoint_timeout = 30min"
export PGHOST="$cluster" PGPORT=54330 PGUSER=postgres PGDATABASE=postgres
psql_q() { psql -X -q -v ON_ERROR_STOP=1 "$@"; }

psql_q -f bench/workloads/schema.sql
psql_q -c "CREATE PUBLICATION bench_pub FOR TABLE orders"
# one slot per plugin, created before the workload
for p in $(for c in $configs; do config_line "$c" | cut -d'|' -f2; done | sort -u); do
	psql_q -c "SELECT 'init' FROM pg_create_logical_replication_slot('bench_$p', '$p')" >/dev/null
done
echo "plugins.sh: running workload $workload (rows=$rows)" >&2
psql_q -v rows="$rows" -f "bench/workloads/$workload.sql"
psql_q -c "CHECKPOINT"

# measure CONFIG: prints "changes bytes seconds cpu_seconds"
measure() {
	local line plugin binary opts fn
	line=$(config_line "$1")
	plugin=$(echo "$line" | cut -d'|' -f2)
	binary=$(echo "$line" | cut -d'|' -f3)
	opts=$(echo "$line" | cut -d'|' -f4)
	fn=pg_logical_slot_peek_changes
	[ "$binary" = yes ] && fn=pg_logical_slot_peek_binary_changes
	[ -n "$opts" ] && opts=", $opts"
	psql_q -At <<SQL
SELECT (split_part(s, ' ', 12)::bigint + split_part(s, ' ', 13)::bigint) AS cpu0,
	   clock_timestamp() AS t0
FROM (SELECT split_part(pg_read_file('/proc/self/stat'), ') ', 2) AS s) x \gset
SELECT count(*) AS n, coalesce(sum(octet_length(data)), 0) AS bytes
FROM $fn('bench_$plugin', NULL, NULL$opts) \gset
SELECT :n, :bytes, extract(epoch FROM clock_timestamp() - :'t0'),
	   ((split_part(s, ' ', 12)::bigint + split_part(s, ' ', 13)::bigint) - :cpu0) / $hz.0
FROM (SELECT split_part(pg_read_file('/proc/self/stat'), ') ', 2) AS s) x;
SQL
}

hz=$(getconf CLK_TCK)
raw="$work/raw.txt"
: >"$raw"
for r in $(seq 1 "$reps"); do
	for c in $configs; do
		echo "$c $(measure "$c" | tr '|' ' ')" >>"$raw"
	done
	echo "plugins.sh: repetition $r/$reps done" >&2
done

mkdir -p "$out"
python3 - "$raw" "$out" "$workload" "$rows" "$reps" "$configs" <<'PY'
import json, statistics, sys, subprocess, platform, datetime
raw, out, workload, rows, reps, configs = sys.argv[1:7]
configs = configs.split()
runs = {}
for line in open(raw):
    name, n, b, secs, cpu = line.split()
    runs.setdefault(name, []).append((int(n), int(b), float(secs), float(cpu)))
def stat(vals):
    return {"median": statistics.median(vals), "min": min(vals), "max": max(vals)}
res = {}
for c in configs:
    rs = runs[c]
    res[c] = {"frames": rs[0][0], "bytes": rs[0][1],
              "seconds": stat([r[2] for r in rs]), "cpu_seconds": stat([r[3] for r in rs])}
base = "pgoutput" if "pgoutput" in res else configs[0]
ver = subprocess.run(["psql", "-XAtc", "SELECT version()"], capture_output=True, text=True).stdout.strip()
doc = {"workload": workload, "rows": int(rows), "repetitions": int(reps),
       "date": datetime.datetime.utcnow().isoformat() + "Z",
       "machine": {"cpu": platform.processor() or platform.machine(), "cores": __import__("os").cpu_count(),
                   "kernel": platform.release()},
       "server": ver, "baseline": base, "configs": res}
with open(f"{out}/plugins-{workload}.json", "w") as f:
    json.dump(doc, f, indent=2)
lines = [f"workload `{workload}` (rows={rows}), {reps} interleaved repetitions, "
         f"SQL interface (peek); ratios against `{base}`", "",
         "| config | bytes | bytes ratio | decode s (median) | min–max | time ratio | backend CPU s |",
         "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
for c in configs:
    r = res[c]; b = res[base]
    lines.append(f"| {c} | {r['bytes']:,} | {r['bytes']/b['bytes']:.3f} | {r['seconds']['median']:.3f} | "
                 f"{r['seconds']['min']:.3f}–{r['seconds']['max']:.3f} | "
                 f"{r['seconds']['median']/b['seconds']['median']:.3f} | {r['cpu_seconds']['median']:.2f} |")
text = "\n".join(lines) + "\n"
open(f"{out}/plugins-{workload}.md", "w").write(text)
print(text)
PY
