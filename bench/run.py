#!/usr/bin/env python3
"""run.py - dsplug side by side with its peers: every output plugin decodes
the same WAL in the same run, through the SQL interface and through the
walsender; then the consumer applies a stream to its targets.

Usage: bench/run.py [--quick] [options]   (bench/run.py --help)

What one run does, in order:

  1. builds dsplug (plugin/) and bench_floor (bench/floor/), starts a
     throwaway cluster (scripts/cluster.sh) that loads both from a private
     copy (dynamic_library_path) and lists them in output_plugin_libraries;
  2. for each workload (bench/workloads/NAME.sql, after NAME-setup.sql if
     there is one): empties the tables, runs the setup, creates one origin
     slot, runs the workload, and notes the WAL position it ended at;
  3. decodes the workload's WAL with every configuration, REPS times,
     interleaved (configuration order rotates each repetition):
       sql        pg_logical_slot_peek_binary_changes (peek_changes for text
                  plugins) on a copy of the origin slot, in a fresh backend:
                  wall time, that backend's CPU (/proc/self/stat) and peak
                  memory (VmHWM), output bytes;
       walsender  pg_recvlogical --start --endpos END -f /dev/null on a fresh
                  copy of the origin slot: time until it exits; the
                  walsender's CPU (its whole life, from the postmaster's
                  cutime+cstime once it is reaped) and peak memory (VmHWM,
                  sampled every 20 ms from /proc/<pid>/status, pid from
                  pg_stat_replication);
     (the huge workload only through the walsender: SKIP_PATHS);
  4. measures dsplug-consumer (catch-up throughput and replication lag under
     a sustained load) on each target it can, and says "not measured:
     <reason>" for each it cannot;
     then the streamed measurement: one 5-million-row transaction streamed
     (streaming 'on') into dsplug-consumer --streaming, peak memory of the
     walsender and the consumer (run_streamed; alone: --streamed-only, which
     make bench-memory runs);
  5. writes results.json, results.md and PNG charts (gnuplot) into
     bench/results/<timestamp>/, and with --latest copies the table and the
     charts to bench/latest/.

Every figure is the median over the repetitions, with min and max; the
machine and the versions of everything measured are recorded with it.
"""

import argparse
import datetime
import json
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCH = os.path.join(TOP, "bench")
WORKLOADS = os.path.join(BENCH, "workloads")
HZ = os.sysconf("SC_CLK_TCK")

# name -> (plugin, binary output, options).  The order is the order of the
# tables and charts.  dsplug-zstd1 is dsplug's default.
PUBLISHED = "public.orders,public.orders_full,public.big,public.docs"
CONFIGS = {
    "dsplug-none": ("dsplug", True, [("publication_names", "bench_pub"), ("compression", "none")]),
    "dsplug-zstd1": ("dsplug", True, [("publication_names", "bench_pub"), ("compression_level", "1")]),
    "dsplug-zstd3": ("dsplug", True, [("publication_names", "bench_pub"), ("compression_level", "3")]),
    "dsplug-zstd9": ("dsplug", True, [("publication_names", "bench_pub"), ("compression_level", "9")]),
    "pgoutput": ("pgoutput", True, [("proto_version", "1"), ("publication_names", "bench_pub")]),
    "pgoutput-binary": ("pgoutput", True, [("proto_version", "1"), ("publication_names", "bench_pub"),
                                           ("binary", "true")]),
    "test_decoding": ("test_decoding", False, []),
    # wal2json has no publications; add-tables is its equivalent filter
    "wal2json": ("wal2json", False, [("format-version", "2"), ("add-tables", PUBLISHED)]),
    "decoderbufs": ("decoderbufs", True, []),
    "floor": ("bench_floor", True, []),
}
CONFIG_NOTES = {
    "dsplug-none": "dsplug, `compression 'none'`",
    "dsplug-zstd1": "dsplug, zstd level 1 (the default)",
    "dsplug-zstd3": "dsplug, zstd level 3",
    "dsplug-zstd9": "dsplug, zstd level 9",
    "pgoutput": "pgoutput, `proto_version 1`, text values",
    "pgoutput-binary": "pgoutput, `proto_version 1`, `binary true`",
    "test_decoding": "test_decoding, default options (no publication filter)",
    "wal2json": "wal2json, `format-version 2`, `add-tables` = the published tables",
    "decoderbufs": "decoderbufs (no publication filter)",
    "floor": "bench_floor: deforms every tuple, sends 1 byte per transaction",
}

# workload -> (rows for the full run, rows for --quick, what it is).  The
# full sizes keep `make bench` under 20 minutes on a 2-core machine.
WORKLOAD_SIZES = {
    "batched": (100000, 10000, "inserts, 100 rows per transaction"),
    "single": (20000, 2000, "one-row transactions: inserts, updates, deletes (pgbench-style)"),
    "updates": (60000, 6000, "updates then deletes, 100 rows per transaction"),
    "huge": (1000000, 50000, "one transaction of inserts (narrow rows)"),
    "wide": (1000, 100, "16 kB TOASTed text + 6 kB jsonb: inserts, updates leaving TOAST unchanged, updates rewriting it"),
    "full": (30000, 3000, "REPLICA IDENTITY FULL: updates then deletes, 100 rows per transaction"),
    "filtered": (100000, 10000, "100-row transactions, 90 rows to a table outside the publication"),
}
# The huge transaction takes 5 to 17 s per decode with each configuration
# (the reorder buffer spills it to disk and reads it back): three
# repetitions of it cost as much as five of all the others together.
MAX_REPS = {"huge": 3}
# The SQL interface returns a whole transaction as one materialized result,
# which is not how anyone consumes a huge one; the walsender is, and it is
# what the huge workload is about (and the SQL path would add 70 s a
# repetition).
SKIP_PATHS = {"huge": {"sql": "walsender only: the SQL interface materializes the whole transaction "
                              "before returning it, which is not how a huge transaction is consumed"}}
FULL_REPS, QUICK_REPS = 5, 3


def log(msg):
    print(f"run.py: {msg}", file=sys.stderr, flush=True)


def die(msg):
    log(msg)
    sys.exit(1)


def sh(args, **kw):
    """Run a command, failing the run with its output when it fails."""
    r = subprocess.run(args, capture_output=True, text=True, **kw)
    if r.returncode != 0:
        die(f"{' '.join(args)} failed ({r.returncode}):\n{r.stdout}{r.stderr}")
    return r.stdout


def psql(sql=None, file=None, variables=None, db="bench"):
    """Run SQL in a new session; returns its unaligned, tuples-only output."""
    args = ["psql", "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-d", db]
    for k, v in (variables or {}).items():
        args += ["-v", f"{k}={v}"]
    if file:
        args += ["-f", file]
    return sh(args, input=sql).strip()


class Session:
    """One long-lived psql session, so that polling and slot bookkeeping do
    not start (and end) backends while a walsender is being measured: the
    postmaster's cutime would count their CPU."""

    def __init__(self, db="bench"):
        # its messages go to a file: decoderbufs says INFO (which
        # client_min_messages cannot silence) whenever a slot is copied for it
        self.err = tempfile.TemporaryFile(mode="w+")
        self.proc = subprocess.Popen(["psql", "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-d", db],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.err,
                                     text=True, bufsize=1)

    def query(self, sql):
        self.proc.stdin.write(sql.rstrip().rstrip(";") + ";\n\\echo __done__\n")
        self.proc.stdin.flush()
        out = []
        while True:
            line = self.proc.stdout.readline()
            if line == "":
                self.err.seek(0)
                die(f"the monitoring session ended during: {sql}\n{self.err.read()[-500:]}")
            line = line.rstrip("\n")
            if line == "__done__":
                return "\n".join(out)
            out.append(line)

    def close(self):
        self.proc.stdin.close()
        self.proc.wait()


def proc_stat(pid):
    """(utime+stime, cutime+cstime) of a process in seconds, or None."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return ((int(fields[11]) + int(fields[12])) / HZ, (int(fields[13]) + int(fields[14])) / HZ)


def proc_hwm_kb(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError):
        return None
    return None


def system_busy():
    """CPU seconds the whole machine has been busy (every core, /proc/stat)."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    # user nice system idle iowait irq softirq steal
    return (v[0] + v[1] + v[2] + v[5] + v[6] + v[7]) / HZ


def own_cpu(postmaster):
    """CPU seconds used so far by this run: this process and the children it
    has waited for (psql, pg_recvlogical, the consumer), and the cluster (the
    postmaster, the backends and walsenders it has reaped, the ones alive)."""
    t = os.times()
    total = t.user + t.system + t.children_user + t.children_system
    st = proc_stat(postmaster)
    if st:
        total += st[0] + st[1]
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == postmaster:
            total += (int(fields[11]) + int(fields[12])) / HZ
    return total


class LoadMeter:
    """How much CPU other processes on the machine took while we measured:
    the machine's busy time minus this run's own.  Other work on a shared
    machine slows every configuration; interleaving spreads that evenly, and
    this figure says how much there was."""

    def __init__(self, postmaster):
        self.postmaster = postmaster
        self.t0, self.busy0, self.own0 = time.monotonic(), system_busy(), own_cpu(postmaster)

    def result(self):
        secs = time.monotonic() - self.t0
        other = max(0.0, (system_busy() - self.busy0) - (own_cpu(self.postmaster) - self.own0))
        return {"seconds": secs, "other_cpu_seconds": other,
                "other_share": other / (secs * os.cpu_count()) if secs > 0 else 0.0}


def stat3(values):
    values = [v for v in values if v is not None]
    if not values:
        return None
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


# ---------------------------------------------------------------------------
# the plugin measurements

class PluginBench:
    def __init__(self, args, cluster):
        self.args = args
        self.cluster = cluster
        self.postmaster = int(open(os.path.join(cluster, "data", "postmaster.pid")).readline())
        self.mon = Session()

    def run_workload(self, name, rows):
        """Set up, create the origin slot, run the workload: returns the
        facts every configuration is measured against."""
        psql("TRUNCATE orders, orders_full, big, docs, events")
        setup = os.path.join(WORKLOADS, f"{name}-setup.sql")
        # Changes are counted from the tables' statistics, read in the
        # session that wrote them after forcing them out, so they are complete.
        counts = ["-c", "SELECT pg_stat_force_next_flush()", "-c", "SELECT 1", "-c",
                  "SELECT coalesce(sum(n_tup_ins + n_tup_upd + n_tup_del) FILTER (WHERE relname <> 'events'), 0), "
                  "coalesce(sum(n_tup_ins + n_tup_upd + n_tup_del), 0), pg_current_wal_insert_lsn() "
                  "FROM pg_stat_user_tables WHERE relname IN ('orders', 'orders_full', 'big', 'docs', 'events')"]
        base = ["psql", "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-v", f"rows={rows}", "-d", "bench"]
        before = sh(base + (["-f", setup] if os.path.exists(setup) else []) + counts).strip().splitlines()[-1].split("|")
        psql("CHECKPOINT")
        psql("SELECT 'init' FROM pg_create_logical_replication_slot('bench_origin', 'pgoutput')")
        t0 = time.monotonic()
        after = sh(base + ["-f", os.path.join(WORKLOADS, f"{name}.sql")] + counts).strip().splitlines()[-1].split("|")
        secs = time.monotonic() - t0
        # the end of the workload's last commit; the CHECKPOINT below flushes
        # it (synchronous_commit is off to write the workloads quickly)
        end_lsn = after[2]
        psql("CHECKPOINT")
        wal = int(psql(f"SELECT pg_wal_lsn_diff('{end_lsn}', '{before[2]}')::bigint"))
        return {"rows": rows, "description": WORKLOAD_SIZES[name][2],
                "published_changes": int(after[0]) - int(before[0]),
                "changes": int(after[1]) - int(before[1]),
                "workload_seconds": secs, "wal_bytes": wal, "end_lsn": end_lsn}

    def measure_sql(self, config, end_lsn, prelude=""):
        plugin, binary, opts = CONFIGS[config]
        fn = "pg_logical_slot_peek_binary_changes" if binary else "pg_logical_slot_peek_changes"
        optsql = "".join(f", '{k}', '{v}'" for k, v in opts)
        sql = f"""{prelude}
SELECT (split_part(s, ' ', 12)::bigint + split_part(s, ' ', 13)::bigint) AS cpu0, clock_timestamp() AS t0
FROM (SELECT split_part(pg_read_file('/proc/self/stat'), ') ', 2) AS s) x \\gset
SELECT count(*) AS n, coalesce(sum(octet_length(data)), 0) AS bytes
FROM {fn}('bench_sql_{plugin}', '{end_lsn}', NULL{optsql}) \\gset
SELECT :n, :bytes, extract(epoch FROM clock_timestamp() - :'t0'),
       ((split_part(s, ' ', 12)::bigint + split_part(s, ' ', 13)::bigint) - :cpu0) / {HZ}.0,
       (SELECT substring(l FROM '[0-9]+') FROM regexp_split_to_table(pg_read_file('/proc/self/status'), E'\\n') l
        WHERE l LIKE 'VmHWM:%')
FROM (SELECT split_part(pg_read_file('/proc/self/stat'), ') ', 2) AS s) x;
"""
        n, nbytes, secs, cpu, hwm = psql(sql).split("|")
        return {"frames": int(n), "bytes": int(nbytes), "seconds": float(secs),
                "cpu_seconds": float(cpu), "peak_kb": int(hwm)}

    def measure_walsender(self, config, end_lsn):
        plugin, _, opts = CONFIGS[config]
        self.mon.query(f"SELECT 'copied' FROM pg_copy_logical_replication_slot('bench_origin', 'bench_ws', false, '{plugin}')")
        _, reaped0 = proc_stat(self.postmaster)
        cmd = ["pg_recvlogical", "-d", "dbname=bench application_name=bench_ws", "-S", "bench_ws",
               "--start", "-E", end_lsn, "--no-loop", "-f", "/dev/null"]
        for k, v in opts:
            cmd += ["-o", f"{k}={v}"]
        t0 = time.monotonic()
        rl = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        pid, hwm, cpu_seen = None, None, None
        while rl.poll() is None:
            if pid is None:
                got = self.mon.query("SELECT pid FROM pg_stat_replication WHERE application_name = 'bench_ws'")
                pid = int(got) if got else None
            if pid is not None:
                h = proc_hwm_kb(pid)
                st = proc_stat(pid)
                if h is not None:
                    hwm = h
                if st is not None:
                    cpu_seen = st[0]
            time.sleep(0.02)
        secs = time.monotonic() - t0
        err = rl.stderr.read()
        if rl.returncode != 0:
            die(f"pg_recvlogical for {config} failed ({rl.returncode}): {err}")
        # The walsender's CPU over its whole life: the postmaster adds it to
        # its own cutime+cstime when it reaps it.  Wait until it has, and
        # until the slot is free to drop.
        deadline = time.monotonic() + 30
        while True:
            active = self.mon.query("SELECT active FROM pg_replication_slots WHERE slot_name = 'bench_ws'")
            gone = pid is None or not os.path.exists(f"/proc/{pid}")
            if active == "f" and gone:
                break
            if time.monotonic() > deadline:
                die(f"the walsender for {config} did not exit")
            time.sleep(0.01)
        _, reaped1 = proc_stat(self.postmaster)
        self.mon.query("SELECT pg_drop_replication_slot('bench_ws')")
        cpu = reaped1 - reaped0
        if cpu_seen is not None and cpu < cpu_seen:
            # something else was reaped in between, or the counter lags:
            # fall back on the last sample rather than report too little
            cpu = cpu_seen
        return {"seconds": secs, "cpu_seconds": cpu, "peak_kb": hwm}

    def run(self, workloads, configs, paths, reps):
        results = {}
        for w in workloads:
            rows = self.args.rows.get(w) or WORKLOAD_SIZES[w][1 if self.args.quick else 0]
            log(f"workload {w}: running it (rows={rows})")
            facts = self.run_workload(w, rows)
            log(f"workload {w}: {facts['changes']:,} changes ({facts['published_changes']:,} published), "
                f"{facts['wal_bytes'] / 1e6:.1f} MB of WAL in {facts['workload_seconds']:.1f} s")
            for p in sorted({CONFIGS[c][0] for c in configs}):
                psql(f"SELECT 'copied' FROM pg_copy_logical_replication_slot('bench_origin', 'bench_sql_{p}', false, '{p}')")
            raw = {c: {p: [] for p in paths + ["sizes"]} for c in configs}
            t0 = time.monotonic()
            meter = LoadMeter(self.postmaster)
            facts["repetitions"] = wreps = min(reps, MAX_REPS.get(w, reps))
            for r in range(wreps):
                order = configs[r % len(configs):] + configs[:r % len(configs)]
                for path in paths:
                    if path in SKIP_PATHS.get(w, {}):
                        continue
                    for c in order:
                        if path == "sql":
                            raw[c][path].append(self.measure_sql(c, facts["end_lsn"]))
                            raw[c]["sizes"].append(raw[c][path][-1])
                        else:
                            raw[c][path].append(self.measure_walsender(c, facts["end_lsn"]))
                log(f"workload {w}: repetition {r + 1}/{wreps} done ({time.monotonic() - t0:.0f} s)")
            facts["load"] = meter.result()
            for c in configs:
                if not raw[c]["sizes"]:
                    # the output's size, from one SQL decode outside the timed
                    # runs; the size does not depend on spilling, so spare the
                    # time that costs
                    raw[c]["sizes"].append(self.measure_sql(c, facts["end_lsn"],
                                                            "SET logical_decoding_work_mem = '2GB';"))
            for p in sorted({CONFIGS[c][0] for c in configs}):
                psql(f"SELECT pg_drop_replication_slot('bench_sql_{p}')")
            psql("SELECT pg_drop_replication_slot('bench_origin')")
            psql("CHECKPOINT")
            facts["results"] = {}
            for c in configs:
                res = {}
                sizes = {(x["frames"], x["bytes"]) for x in raw[c]["sizes"]}
                if len(sizes) != 1:
                    die(f"{c} on {w}: output differs between repetitions: {sizes}")
                res["frames"], res["bytes"] = sizes.pop()
                for path in paths:
                    if path in SKIP_PATHS.get(w, {}):
                        res[path] = {"not_measured": SKIP_PATHS[w][path]}
                        continue
                    runs = raw[c][path]
                    res[path] = {k: stat3([x[k] for x in runs]) for k in ("seconds", "cpu_seconds", "peak_kb")}
                facts["results"][c] = res
            results[w] = facts
        self.mon.close()
        return results


# ---------------------------------------------------------------------------
# the consumer measurements

CONSUMER = os.path.join(TOP, "consumer", "dsplug-consumer")
CONSUMER_TARGETS = ("sqlite", "bigquery")
FAKE_BIGQUERY = os.path.join(TOP, "regress", "fake-bigquery")


def consumer_available(args):
    """None if dsplug-consumer builds and runs, else why not."""
    global CONSUMER
    if args.consumer:
        CONSUMER = os.path.abspath(args.consumer)
        return None if os.access(CONSUMER, os.X_OK) else f"{args.consumer} is not an executable"
    if not os.path.exists(os.path.join(TOP, "consumer", "Makefile")):
        return "consumer/dsplug-consumer is not written yet (no consumer/Makefile)"
    r = subprocess.run(["make", "-C", os.path.join(TOP, "consumer")], capture_output=True, text=True)
    if r.returncode != 0:
        tail = (r.stdout + r.stderr).strip().splitlines()[-1:] or ["?"]
        return f"consumer/dsplug-consumer does not build ({tail[0]})"
    if not os.access(CONSUMER, os.X_OK):
        return "consumer/Makefile builds no consumer/dsplug-consumer"
    return None


class ConsumerBench:
    """dsplug-consumer on one target.

    Catch-up: the batched workload is written with the consumer stopped,
    then the consumer applies all of it (--endpos): changes per second (wall
    time from start to exit), CPU per change and peak memory of the consumer
    process (wait4 rusage).

    Lag under a sustained load: the consumer follows the slot while one-row
    transactions commit at a fixed rate.  A transaction's lag is the time
    from its commit (pg_xact_commit_timestamp) until the slot's confirmed
    position reaches its end: the consumer confirms only what its target
    durably holds, so that is when the change is safe in the target.  The
    confirmed position is sampled every few ms by the server's clock (the
    lags are upper bounds, by at most the sampling interval, which is
    recorded); the end LSN of every transaction is read from a
    test_decoding copy of the slot made before the load started."""

    def __init__(self, args, work, target):
        self.args, self.work, self.target = args, work, target
        self.extra = []
        self.fake = None

    def uri(self):
        if self.target == "sqlite":
            path = os.path.join(self.work, f"target-{time.monotonic_ns()}.db")
            return f"sqlite:{path}"
        return f"bigquery://bench-project/bench_{time.monotonic_ns()}?location=US"

    def start_target(self):
        """None when ready, else why the target cannot be measured."""
        if self.target == "sqlite":
            return None
        helptext = " ".join(subprocess.run([CONSUMER, "--help"], capture_output=True, text=True).stdout.split())
        if "bigquery://" not in helptext or "not supported yet" in helptext:
            return "dsplug-consumer does not support bigquery:// targets yet (its --help says so)"
        missing = [o for o in ("--bigquery-endpoint", "--bigquery-rest-endpoint") if o not in helptext]
        if missing:
            return f"dsplug-consumer --help names no {', '.join(missing)}: bench/run.py cannot point it at the fake"
        r = subprocess.run([os.path.join(FAKE_BIGQUERY, "install.sh")], capture_output=True, text=True)
        if r.returncode != 0:
            return f"regress/fake-bigquery/install.sh failed: {(r.stderr or r.stdout).strip()[-200:]}"
        self.fake = subprocess.Popen(["node", os.path.join(FAKE_BIGQUERY, "server.js"), "--grpc-port", "0",
                                      "--http-port", "0", "--no-rate-limit"],
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        m = re.match(r"fake-bigquery ready grpc=(\d+) http=(\d+)", self.fake.stdout.readline())
        if not m:
            return "the fake BigQuery server did not start"
        # plaintext gRPC on loopback, and a bearer token (the fake accepts any)
        token = os.path.join(self.work, "bigquery-token")
        with open(token, "w") as fh:
            fh.write("ya29.bench-token\n")
        self.extra = ["--bigquery-endpoint", f"127.0.0.1:{m[1]}",
                      "--bigquery-rest-endpoint", f"http://127.0.0.1:{m[2]}",
                      "--bigquery-plaintext", "--bigquery-token-file", token]
        return None

    def stop_target(self):
        if self.fake:
            self.fake.terminate()
            self.fake.wait()

    def command(self, slot, uri, endpos=None):
        cmd = [CONSUMER, "--dbname", f"dbname=bench application_name={slot}", "--slot", slot,
               "--publication", "bench_pub", "--target", uri, "--quiet"] + self.extra
        return cmd + (["--endpos", endpos] if endpos else [])

    def run(self):
        why = self.start_target()
        if why:
            return {"not_measured": why}
        try:
            return {"catchup": self.catchup(), "lag": self.lag()}
        finally:
            self.stop_target()

    def catchup(self):
        rows = self.args.consumer_rows
        psql("TRUNCATE orders, orders_full, big, docs, events")
        psql("SELECT 'init' FROM pg_create_logical_replication_slot('bench_consumer', 'dsplug')")
        psql(file=os.path.join(WORKLOADS, "batched.sql"), variables={"rows": rows})
        end_lsn = psql("SELECT pg_current_wal_insert_lsn()")
        psql("CHECKPOINT")
        runs = []
        for rep in range(self.args.consumer_reps):
            psql("SELECT 'copied' FROM pg_copy_logical_replication_slot('bench_consumer', 'bench_consumer_rep', false)")
            t0 = time.monotonic()
            proc = subprocess.Popen(self.command("bench_consumer_rep", self.uri(), end_lsn),
                                    stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            err = proc.stderr.read()
            _, status, ru = os.wait4(proc.pid, 0)
            secs = time.monotonic() - t0
            proc.returncode = os.waitstatus_to_exitcode(status)
            psql("SELECT pg_drop_replication_slot('bench_consumer_rep')")
            if proc.returncode != 0:
                psql("SELECT pg_drop_replication_slot('bench_consumer')")
                return {"not_measured": f"dsplug-consumer exited with {proc.returncode}: {err.strip()[-300:]}"}
            runs.append({"seconds": secs, "cpu_seconds": ru.ru_utime + ru.ru_stime, "peak_kb": ru.ru_maxrss})
            log(f"consumer {self.target}: catch-up {rep + 1}/{self.args.consumer_reps}: "
                f"{rows / secs:,.0f} changes/s")
        psql("SELECT pg_drop_replication_slot('bench_consumer')")
        res = {k: stat3([x[k] for x in runs]) for k in ("seconds", "cpu_seconds", "peak_kb")}
        res.update(changes=rows, repetitions=len(runs),
                   changes_per_second=rows / res["seconds"]["median"],
                   cpu_us_per_change=res["cpu_seconds"]["median"] / rows * 1e6)
        return res

    def lag(self):
        rate, secs = self.args.lag_rate, self.args.lag_seconds
        psql("TRUNCATE orders, orders_full, big, docs, events")
        psql("SELECT 'init' FROM pg_create_logical_replication_slot('bench_lag', 'dsplug')")
        psql("SELECT 'copied' FROM pg_copy_logical_replication_slot('bench_lag', 'bench_lag_ends', false, 'test_decoding')")
        mon = Session()
        cons = subprocess.Popen(self.command("bench_lag", self.uri()),
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        load = subprocess.Popen(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-v", f"rate={rate}",
                                 "-v", f"seconds={secs}", "-f", os.path.join(WORKLOADS, "paced.sql")],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        sample = ("SELECT extract(epoch FROM clock_timestamp()), confirmed_flush_lsn - '0/0' "
                  "FROM pg_replication_slots WHERE slot_name = 'bench_lag'")
        # (commit end LSN, commit time) of every transaction of the load,
        # read once the load is done
        ends_sql = """SELECT lsn - '0/0', extract(epoch FROM pg_xact_commit_timestamp(xid))
FROM pg_logical_slot_peek_changes('bench_lag_ends', NULL, NULL, 'skip-empty-xacts', '1')
WHERE data LIKE 'COMMIT%'"""
        samples, ends = [], None
        failure, deadline = None, None
        while True:
            t, confirmed = mon.query(sample).split("|")
            samples.append((float(t), int(float(confirmed or 0))))
            if cons.poll() is not None:
                failure = f"dsplug-consumer exited with {cons.returncode}: {cons.stderr.read().strip()[-300:]}"
                break
            if ends is None and load.poll() is not None:
                if load.returncode != 0:
                    failure = f"the load failed: {load.stderr.read().strip()[-300:]}"
                    break
                ends = [(int(float(e)), float(c)) for e, c in
                        (line.split("|") for line in mon.query(ends_sql).splitlines())]
                # give the consumer a minute to confirm the last of it
                deadline = time.monotonic() + 60
            if ends is not None and (not ends or samples[-1][1] >= ends[-1][0] or time.monotonic() > deadline):
                break
            time.sleep(0.005)
        for proc in (cons, load):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        mon.close()
        psql("SELECT pg_drop_replication_slot('bench_lag'), pg_drop_replication_slot('bench_lag_ends')")
        if failure:
            return {"not_measured": failure}
        if not ends:
            return {"not_measured": "the load committed no transaction"}
        # A transaction not confirmed by the end counts with the time it had
        # waited by then, a lower bound: it is not left out.
        lags, unconfirmed, j = [], 0, 0
        for end, committed in ends:
            while j < len(samples) and samples[j][1] < end:
                j += 1
            if j == len(samples):
                unconfirmed += 1
                lags.append(max(0.0, samples[-1][0] - committed) * 1000)
            else:
                lags.append(max(0.0, samples[j][0] - committed) * 1000)
        lags.sort()
        pct = lambda q: lags[min(len(lags) - 1, int(q * len(lags)))]
        gaps = [b[0] - a[0] for a, b in zip(samples, samples[1:])]
        return {"rate": rate, "seconds": secs, "transactions": len(ends), "unconfirmed": unconfirmed,
                "p50_ms": pct(0.50), "p99_ms": pct(0.99), "max_ms": lags[-1],
                "sample_interval_ms": statistics.median(gaps) * 1000 if gaps else None}


def run_consumer(args, work):
    """Consumer figures per target, or {"not_measured": reason}."""
    why = consumer_available(args)
    out = {}
    for t in CONSUMER_TARGETS:
        if why:
            out[t] = {"not_measured": why}
        else:
            log(f"consumer {t}: measuring")
            out[t] = ConsumerBench(args, work, t).run()
            if "not_measured" in out[t]:
                log(f"consumer {t}: not measured: {out[t]['not_measured']}")
    return out


# ---------------------------------------------------------------------------
# the streamed measurement: memory of one huge transaction, streamed

STREAMED_SQL = """
DROP PUBLICATION IF EXISTS bench_stream_pub;
DROP TABLE IF EXISTS stream_big;
CREATE TABLE stream_big (id bigint PRIMARY KEY, payload text, n numeric, at timestamptz);
CREATE PUBLICATION bench_stream_pub FOR TABLE stream_big;
"""


def proc_rss_kb(pid):
    """(VmHWM, RssAnon) of a process in kB, or None once it is gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            fields = dict(line.split(":", 1) for line in f if ":" in line)
    except (FileNotFoundError, ProcessLookupError):
        return None
    if "VmHWM" not in fields or "RssAnon" not in fields:
        return None				# a zombie: it has exited
    return (int(fields["VmHWM"].split()[0]), int(fields["RssAnon"].split()[0]))


def run_streamed(args, work):
    """One transaction of args.streamed_rows rows, written with nothing
    reading the slot, then streamed (streaming 'on') through the walsender
    into dsplug-consumer --streaming, which spools it and applies it at its
    commit into SQLite.  Peak memory of the walsender and of the consumer:
    VmHWM (shared memory touched included, as in the walsender figures
    above) and the largest RssAnon sampled every 50 ms (private memory:
    what a leak or an unbounded buffer would grow)."""
    why = consumer_available(args)
    if why:
        return {"not_measured": why}
    rows = args.streamed_rows
    psql(STREAMED_SQL)
    psql("SELECT pg_create_logical_replication_slot('bench_stream', 'dsplug')")
    log(f"streamed: writing one transaction of {rows:,} rows")
    t0 = time.monotonic()
    psql(f"INSERT INTO stream_big SELECT g, 'payload ' || md5(g::text), g / 7.0, "
         f"'2026-11-23 10:00:00+00'::timestamptz + g * interval '1 ms' FROM generate_series(1, {rows}) g")
    write_secs = time.monotonic() - t0
    # the end of the commit record: the insert position (the write position
    # can still be short of it, synchronous_commit being off), flushed
    end = psql("SELECT pg_current_wal_insert_lsn()")
    psql("CHECKPOINT")
    wal_bytes = int(psql(f"SELECT '{end}'::pg_lsn - restart_lsn FROM pg_replication_slots "
                         "WHERE slot_name = 'bench_stream'"))
    mem = psql("SHOW logical_decoding_work_mem")
    spool = os.path.join(work, "spool")
    os.makedirs(spool, exist_ok=True)
    target = os.path.join(work, "streamed.db")
    cmd = [CONSUMER, "--dbname", "dbname=bench application_name=bench_stream", "--slot", "bench_stream",
           "--publication", "bench_stream_pub", "--target", f"sqlite:{target}", "--streaming",
           "--spool-dir", spool, "--endpos", end, "--status-interval", "0"]
    log(f"streamed: dsplug-consumer --streaming up to {end}")
    mon = Session()
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True)
    walsender = None
    peak = {"walsender": [0, 0], "consumer": [0, 0]}
    spool_peak = 0
    while proc.poll() is None:
        if walsender is None:
            w = mon.query("SELECT pid FROM pg_stat_replication WHERE application_name = 'bench_stream'")
            walsender = int(w) if w else None
        for who, pid in (("walsender", walsender), ("consumer", proc.pid)):
            r = proc_rss_kb(pid) if pid else None
            if r:
                peak[who] = [max(peak[who][0], r[0]), max(peak[who][1], r[1])]
        spool_peak = max(spool_peak, spool_bytes(proc.pid))
        time.sleep(0.05)
    secs = time.monotonic() - t0
    err = proc.stderr.read()
    stats = mon.query("SELECT stream_txns, stream_count, stream_bytes, spill_bytes FROM pg_stat_replication_slots "
                      "WHERE slot_name = 'bench_stream'").split("|")
    mon.close()
    if proc.returncode != 0:
        die(f"streamed: dsplug-consumer exited with {proc.returncode}: {err.strip()}")
    import sqlite3
    try:
        got = sqlite3.connect(target).execute("SELECT count(*) FROM public_stream_big").fetchone()[0]
    except sqlite3.Error as e:
        got = f"no table ({e})"
    if got != rows:
        # a wrong result is reported, not measured; the other figures stand
        why = (f"FAILED: after {secs:.1f} s the replica has {got} rows, expected {rows}; "
               f"dsplug-consumer said: {' / '.join(err.strip().splitlines())}")
        log(f"streamed: {why}")
        return {"not_measured": why}
    psql("SELECT pg_drop_replication_slot('bench_stream')")
    psql("DROP TABLE stream_big")
    return {"rows": rows, "logical_decoding_work_mem": mem, "write_seconds": write_secs,
            "wal_bytes": wal_bytes, "seconds": secs,
            "stream_txns": int(stats[0]), "stream_chunks": int(stats[1]), "stream_bytes": int(stats[2]),
            "spill_bytes": int(stats[3]), "spool_peak_bytes": spool_peak,
            "walsender_hwm_kb": peak["walsender"][0], "walsender_anon_kb": peak["walsender"][1],
            "consumer_hwm_kb": peak["consumer"][0], "consumer_anon_kb": peak["consumer"][1]}


def spool_bytes(pid):
    """Bytes in the (deleted) spool files a consumer holds open."""
    total = 0
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                if "dsplug-spool" in os.readlink(f"/proc/{pid}/fd/{fd}"):
                    total += os.stat(f"/proc/{pid}/fd/{fd}").st_size
            except OSError:
                pass
    except OSError:
        pass
    return total


def publish_streamed(doc, outdir, latest, started):
    """--streamed-only: results.json and streamed.md; with latest, copied
    to bench/latest/ (results.md there is left alone)."""
    doc["elapsed_seconds"] = time.monotonic() - started
    with open(os.path.join(outdir, "results.json"), "w") as fh:
        json.dump(doc, fh, indent=2)
    L = [f"# dsplug streamed-transaction memory, {doc['date']}", "",
         f"`{doc['command']}`, took {doc['elapsed_seconds'] / 60:.1f} min.  Machine: {doc['machine']['cpu']}, "
         f"{doc['machine']['cores']} cores.  {doc['versions']['postgresql'].split(' on ')[0]}.", ""]
    L.extend(streamed_markdown(doc))
    with open(os.path.join(outdir, "streamed.md"), "w") as fh:
        fh.write("\n".join(L))
    if latest:
        dest = os.path.join(BENCH, "latest")
        os.makedirs(dest, exist_ok=True)
        shutil.copy(os.path.join(outdir, "streamed.md"), dest)
        shutil.copy(os.path.join(outdir, "results.json"), os.path.join(dest, "streamed.json"))
    log(f"done in {doc['elapsed_seconds'] / 60:.1f} min: {outdir}/streamed.md")


def streamed_markdown(doc):
    """The streamed measurement's section of results.md."""
    st = doc.get("streamed")
    if st is None:
        return []
    L = ["## A streamed transaction: memory", ""]
    if "not_measured" in st:
        return L + [f"Not measured: {st['not_measured']}", ""]
    L.append(f"One transaction of {st['rows']:,} rows ({st['wal_bytes'] / 2**20:.0f} MB of WAL, written with "
             f"nothing reading the slot), then `dsplug-consumer --streaming` into SQLite: the walsender "
             f"(`logical_decoding_work_mem` {st['logical_decoding_work_mem']}) streamed it as "
             f"{st['stream_chunks']:,} chunks ({st['stream_bytes'] / 2**20:.0f} MB decoded); the consumer "
             f"spooled it (peak {st['spool_peak_bytes'] / 2**20:.0f} MB on disk) and applied it at its "
             f"commit.  {st['seconds']:.0f} s from start to `--endpos`.")
    L.append("")
    L.append("| process | peak VmHWM | peak RssAnon |")
    L.append("| --- | ---: | ---: |")
    for who in ("walsender", "consumer"):
        L.append(f"| {who} | {st[who + '_hwm_kb'] / 1024:.0f} MB | {st[who + '_anon_kb'] / 1024:.0f} MB |")
    L.append("")
    L.append("VmHWM counts the shared buffers a process touched; RssAnon (sampled every 50 ms) is its private "
             "memory.")
    L.append("")
    return L


# ---------------------------------------------------------------------------
# machine, versions, report

def machine_info():
    cpu = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem_kb = 0
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                mem_kb = int(line.split()[1])
    return {"cpu": cpu, "cores": os.cpu_count(), "kernel": platform.release(),
            "memory_gb": round(mem_kb / 1024 / 1024, 1), "os": _os_release()}


def _os_release():
    try:
        with open("/etc/os-release") as f:
            for line in f:
                if line.startswith("PRETTY_NAME="):
                    return line.split("=", 1)[1].strip().strip('"')
    except FileNotFoundError:
        pass
    return platform.system()


def sha256(path):
    import hashlib
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def dpkg_version(pkg):
    r = subprocess.run(["dpkg-query", "-W", "-f=${Version}", pkg], capture_output=True, text=True)
    return r.stdout.strip() if r.returncode == 0 else None


def versions(libdir):
    git = lambda *a: subprocess.run(["git", "-C", TOP, *a], capture_output=True, text=True).stdout.strip()
    dirty = git("status", "--porcelain", "--untracked-files=no", "--", "plugin", "proto", "bench", "consumer")
    return {
        "postgresql": psql("SELECT version()"),
        "dsplug": git("rev-parse", "--short=12", "HEAD") + (" (with uncommitted changes)" if dirty else ""),
        "dsplug_so_sha256": sha256(os.path.join(libdir, "dsplug.so"))[:16],
        "wal2json": dpkg_version("postgresql-15-wal2json"),
        "decoderbufs": dpkg_version("postgresql-15-decoderbufs"),
        "zstd": dpkg_version("libzstd1"),
        "protobuf-c": dpkg_version("libprotobuf-c1"),
        "gnuplot": dpkg_version("gnuplot-nox"),
        "python": platform.python_version(),
    }


def fmt_s(st, digits=3):
    if st is None:
        return "–"
    return f"{st['median']:.{digits}f} ({st['min']:.{digits}f}–{st['max']:.{digits}f})"


def ratio(a, b, digits=2):
    if a is None or b in (None, 0):
        return "–"
    return f"{a / b:.{digits}f}"


def med(res, path, key):
    st = res.get(path, {}).get(key)
    return st["median"] if st else None


def write_markdown(doc, filename):
    L = []
    m, v = doc["machine"], doc["versions"]
    L.append(f"# dsplug benchmark, {doc['date']}")
    L.append("")
    L.append(f"`{doc['command']}` ({doc['mode']} run, {reps_text(doc)} interleaved repetitions; "
             f"figures are medians, (min–max) where shown; took {doc['elapsed_seconds'] / 60:.1f} min)")
    L.append("")
    L.append(f"Machine: {m['cpu']}, {m['cores']} cores, {m['memory_gb']} GB, {m['os']}, kernel {m['kernel']}.  ")
    L.append(f"Versions: {v['postgresql'].split(' on ')[0]}; dsplug {v['dsplug']}; wal2json {v['wal2json']}; "
             f"decoderbufs {v['decoderbufs']}; zstd {v['zstd']}; protobuf-c {v['protobuf-c']}.")
    L.append("")
    L.append("Configurations: " + "; ".join(f"`{c}` {CONFIG_NOTES[c]}" for c in doc["configs"]) + ".")
    L.append("")
    L.append("`sql`: `pg_logical_slot_peek_binary_changes` (or `peek_changes`) in a fresh backend, "
             "time and CPU of that backend.  `walsender`: `pg_recvlogical --endpos` to `/dev/null`, time until "
             "it exits, CPU of the walsender over its life.  Peak: VmHWM of that process (shared memory it touched "
             "included).  µs/change: wall time per change of the workload (filtered changes included).")
    L.append("")
    # headline
    W = doc["workloads"]
    if "dsplug-zstd1" in doc["configs"] and "pgoutput" in doc["configs"]:
        L.append("## dsplug (zstd level 1, the default) against pgoutput")
        L.append("")
        L.append("| workload | changes | dsplug bytes / pgoutput | walsender time / pgoutput | walsender CPU / pgoutput | SQL time / pgoutput | dsplug-none bytes / pgoutput | dsplug-none walsender time / pgoutput |")
        L.append("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
        for w, f in W.items():
            d, p = f["results"]["dsplug-zstd1"], f["results"]["pgoutput"]
            n = f["results"].get("dsplug-none")
            L.append(f"| {w} | {f['changes']:,} | {ratio(d.get('bytes'), p.get('bytes'), 3)} | "
                     f"{ratio(med(d, 'walsender', 'seconds'), med(p, 'walsender', 'seconds'))} | "
                     f"{ratio(med(d, 'walsender', 'cpu_seconds'), med(p, 'walsender', 'cpu_seconds'))} | "
                     f"{ratio(med(d, 'sql', 'seconds'), med(p, 'sql', 'seconds'))} | "
                     f"{ratio(n.get('bytes'), p.get('bytes'), 3) if n else '–'} | "
                     f"{ratio(med(n, 'walsender', 'seconds'), med(p, 'walsender', 'seconds')) if n else '–'} |")
        L.append("")
    for w, f in W.items():
        L.append(f"## {w}: {f['description']}")
        L.append("")
        L.append(f"`bench/workloads/{w}.sql`, rows={f['rows']:,}: {f['changes']:,} changes "
                 f"({f['published_changes']:,} in published tables), {f['wal_bytes'] / 1e6:.1f} MB of WAL"
                 + (f", {f['transactions']:,} transactions" if f.get("transactions") is not None else "")
                 + f"; {f['repetitions']} repetitions in {f['load']['seconds']:.0f} s, during which other processes "
                 f"took {f['load']['other_share'] * 100:.0f}% of the machine's CPU.")
        L.append("")
        for path in doc["paths"]:
            skipped = next((r[path]["not_measured"] for r in f["results"].values() if "not_measured" in r[path]), None)
            if skipped:
                L.append(f"**{path}**: not measured: {skipped}.")
                L.append("")
                continue
            L.append(f"**{path}**")
            L.append("")
            L.append("| config | bytes | B/change | bytes / pgoutput | seconds | µs/change | CPU s | time / pgoutput | time / floor | peak MB |")
            L.append("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
            base = f["results"].get("pgoutput", {})
            floor = f["results"].get("floor", {})
            for c, r in f["results"].items():
                b = r.get("bytes")
                secs = med(r, path, "seconds")
                peak = med(r, path, "peak_kb")
                L.append(f"| {c} | {b:,} | {b / f['changes']:.1f} | {ratio(b, base.get('bytes'), 3)} | "
                         f"{fmt_s(r[path]['seconds'])} | {secs / f['changes'] * 1e6:.2f} | "
                         f"{med(r, path, 'cpu_seconds'):.2f} | "
                         f"{ratio(secs, med(base, path, 'seconds'))} | {ratio(secs, med(floor, path, 'seconds'))} | "
                         f"{peak / 1024:.0f} |" if peak is not None else
                         f"| {c} | {b:,} | {b / f['changes']:.1f} | {ratio(b, base.get('bytes'), 3)} | "
                         f"{fmt_s(r[path]['seconds'])} | {secs / f['changes'] * 1e6:.2f} | "
                         f"{med(r, path, 'cpu_seconds'):.2f} | "
                         f"{ratio(secs, med(base, path, 'seconds'))} | {ratio(secs, med(floor, path, 'seconds'))} | – |")
            L.append("")
    L.append("## dsplug-consumer")
    L.append("")
    C = doc.get("consumer", {})
    cs = doc.get("consumer_settings", {})
    L.append(f"Catch-up: `batched` with {cs.get('rows', 0):,} rows written first, then applied with `--endpos` "
             f"(median of {cs.get('reps')}; CPU and peak memory of the consumer process).  Lag: one-row "
             f"transactions at {cs.get('lag_rate')}/s for {cs.get('lag_seconds')} s while the consumer follows; "
             "a transaction's lag is from its commit until the slot's confirmed position (what the target durably "
             "holds) passes it.")
    L.append("")
    L.append("| target | changes/s | CPU µs/change | seconds | peak MB | lag p50 ms | lag p99 ms | lag max ms |")
    L.append("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    notes = []
    for t in CONSUMER_TARGETS:
        r = C.get(t, {"not_measured": "consumer measurements not run"})
        if "not_measured" in r:
            L.append(f"| {t} | not measured | | | | | | |")
            notes.append(f"- {t}: not measured: {r['not_measured']}")
            continue
        cu, lag = r["catchup"], r["lag"]
        row = f"| {t} | "
        if "not_measured" in cu:
            row += "not measured | | | | "
            notes.append(f"- {t} catch-up: not measured: {cu['not_measured']}")
        else:
            row += (f"{cu['changes_per_second']:,.0f} | {cu['cpu_us_per_change']:.2f} | {fmt_s(cu['seconds'], 2)} | "
                    f"{cu['peak_kb']['median'] / 1024:.0f} | ")
        if "not_measured" in lag:
            row += "not measured | | |"
            notes.append(f"- {t} lag: not measured: {lag['not_measured']}")
        else:
            row += f"{lag['p50_ms']:.0f} | {lag['p99_ms']:.0f} | {lag['max_ms']:.0f} |"
            notes.append(f"- {t} lag: {lag['transactions']:,} transactions; the confirmed position was sampled "
                         f"every {lag['sample_interval_ms']:.1f} ms (median), so each lag is an upper bound by "
                         "at most that")
            if lag.get("unconfirmed"):
                notes.append(f"- {t} lag: {lag['unconfirmed']} of {lag['transactions']} transactions were "
                             "not confirmed within 60 s of the end of the load; they count with the time "
                             "they had waited by then")
        L.append(row)
    L.append("")
    L.extend(notes)
    L.append("")
    L.extend(streamed_markdown(doc))
    with open(filename, "w") as fh:
        fh.write("\n".join(L))


def reps_text(doc, workloads=None):
    """"5" or "5 (huge: 3)"."""
    fewer = [f"{w}: {f['repetitions']}" for w, f in doc["workloads"].items()
             if f["repetitions"] != doc["repetitions"] and (workloads is None or w in workloads)]
    return f"{doc['repetitions']}" + (f" ({', '.join(fewer)})" if fewer else "")


COLORS = {"dsplug-none": "#9ecae1", "dsplug-zstd1": "#2171b5", "dsplug-zstd3": "#08519c",
          "dsplug-zstd9": "#08306b", "pgoutput": "#e6550d", "pgoutput-binary": "#fdae6b",
          "test_decoding": "#31a354", "wal2json": "#a1d99b", "decoderbufs": "#756bb1", "floor": "#969696"}


def write_charts(doc, outdir):
    """PNG charts with gnuplot, one panel per workload with its own linear
    scale, one bar per configuration with its value written on it: bytes per
    change (the floor left out: it sends nothing by design), and wall time
    per change on each path with min-max whiskers.  A dashed line marks
    pgoutput's value in each panel."""
    W = doc["workloads"]
    charts = []
    specs = [("bytes-per-change.png", "Output bytes per change (lower is better)", "bytes per change",
              [c for c in doc["configs"] if c != "floor"],
              lambda r, f: (r["bytes"] / f["changes"],) * 3)]
    for path in doc["paths"]:
        what = "walsender: pg_recvlogical to /dev/null" if path == "walsender" else "SQL interface: peek"
        specs.append((f"time-per-change-{path}.png", f"Decode time per change, {what} (lower is better)",
                      "µs per change (median, min–max)", doc["configs"],
                      (lambda p: lambda r, f: tuple(r[p]["seconds"][k] / f["changes"] * 1e6
                                                    for k in ("median", "min", "max")))(path)))
    ncols = 4

    for fname, title, ylabel, configs, fn in specs:
        path = fname[len("time-per-change-"):-4] if fname.startswith("time") else None
        if "pgoutput" in configs:
            title += "; dashed line: pgoutput"
        panels = []
        shown = [w for w, f in W.items()
                 if fname.startswith("bytes") or all("not_measured" not in f["results"][c][path] for c in configs)]
        if not shown or not configs:
            continue
        for w in shown:
            f = W[w]
            dat = os.path.join(outdir, f"{fname[:-4]}-{w}.dat")
            with open(dat, "w") as fh:
                for j, c in enumerate(configs):
                    med_, lo, hi = fn(f["results"][c], f)
                    label = (f"{med_ / 1000:.1f}k" if med_ >= 10000 else f"{med_:.0f}" if med_ >= 100
                             else f"{med_:.1f}" if med_ >= 1 else f"{med_:.2f}")
                    fh.write(f"{j} {c} {med_:.6g} {lo:.6g} {hi:.6g} {label} 0x{COLORS[c][1:]}\n")
            base = fn(f["results"]["pgoutput"], f)[0] if "pgoutput" in configs else None
            whiskers = "" if fname.startswith("bytes") else \
                f"""'' using 1:4:(0):($5-$4) with vectors nohead lw 1.2 lc rgb "#333333" notitle, \\\n     """
            panels.append(f"""
set title "{w}: {f['changes']:,} changes" font ",12"
set yrange [0:*]
unset arrow
{f'set arrow from graph 0, first {base:.6g} to graph 1, first {base:.6g} nohead dt 2 lw 1.5 lc rgb "#e6550d" back' if base else ''}
plot '{dat}' using 1:3:(0.8):7:xtic(2) with boxes lc rgb variable notitle, \\
     {whiskers}'' using 1:5:6 with labels offset 0,0.7 font ",8" notitle
""")
        nrows = (len(shown) + ncols - 1) // ncols
        gp = f"""
set terminal pngcairo size {ncols * 420},{nrows * 400 + 60} font "DejaVu Sans,10"
set output '{os.path.join(outdir, fname)}'
set style fill solid 0.9 border rgb "#333333"
set grid ytics lc rgb "#dddddd"
set xtics rotate by 45 right noenhanced font ",9" scale 0
set ytics font ",9"
set key off
set termoption noenhanced
set offsets 0.5, 0.5, graph 0.08, 0
set bmargin 7
set multiplot layout {nrows},{ncols} title "{title}\\n{doc['machine']['cpu']}, {doc['machine']['cores']} cores; {doc['date']}; median of {reps_text(doc, shown)} interleaved runs" font ",14"
{''.join(panels)}
unset multiplot
"""
        r = subprocess.run(["gnuplot"], input=gp, capture_output=True, text=True)
        if r.returncode != 0:
            die(f"gnuplot failed on {fname}: {r.stderr}")
        for w in shown:
            os.unlink(os.path.join(outdir, f"{fname[:-4]}-{w}.dat"))
        charts.append(fname)
    return charts


# ---------------------------------------------------------------------------

def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small workloads, 3 repetitions (a minute or two)")
    ap.add_argument("--reps", type=int, help=f"repetitions (default {FULL_REPS}, {QUICK_REPS} with --quick)")
    ap.add_argument("--workloads", help="comma-separated, default all: " + ",".join(WORKLOAD_SIZES))
    ap.add_argument("--configs", help="comma-separated, default all: " + ",".join(CONFIGS))
    ap.add_argument("--paths", default="sql,walsender", help="sql, walsender or both (default)")
    ap.add_argument("--rows", action="append", default=[], metavar="WORKLOAD=N", help="override a workload's rows")
    ap.add_argument("--out", help="results directory (default bench/results/<timestamp>)")
    ap.add_argument("--latest", action="store_true", help="copy the table and charts to bench/latest/")
    ap.add_argument("--no-consumer", action="store_true", help="skip the consumer measurements")
    ap.add_argument("--consumer", metavar="PATH", help="use this dsplug-consumer instead of building consumer/")
    ap.add_argument("--render", metavar="DIR", help="only write DIR/results.md and the charts again from "
                    "DIR/results.json (with --latest, copy them too)")
    ap.add_argument("--no-streamed", action="store_true",
                    help="skip the streamed measurement (one huge streamed transaction: memory)")
    ap.add_argument("--streamed-only", action="store_true",
                    help="only the streamed measurement (make bench-memory)")
    ap.add_argument("--streamed-rows", type=int, help="rows of the streamed transaction "
                    "(default 5000000, 500000 with --quick)")
    ap.add_argument("--port", type=int, default=54340)
    ap.add_argument("--command", help="the command line to record (default: this one)")
    a = ap.parse_args()
    a.reps = a.reps or (QUICK_REPS if a.quick else FULL_REPS)
    a.workloads = a.workloads.split(",") if a.workloads else list(WORKLOAD_SIZES)
    a.configs = a.configs.split(",") if a.configs else list(CONFIGS)
    a.paths = a.paths.split(",")
    for w in a.workloads:
        if w not in WORKLOAD_SIZES:
            ap.error(f"unknown workload {w!r}")
    for c in a.configs:
        if c not in CONFIGS:
            ap.error(f"unknown config {c!r}")
    for p in a.paths:
        if p not in ("sql", "walsender"):
            ap.error(f"unknown path {p!r}")
    rows = {}
    for spec in a.rows:
        w, _, n = spec.partition("=")
        if w not in WORKLOAD_SIZES or not n.isdigit():
            ap.error(f"bad --rows {spec!r}")
        rows[w] = int(n)
    a.rows = rows
    if a.streamed_rows is None:
        a.streamed_rows = 500000 if a.quick else 5000000
    a.consumer_rows = 20000 if a.quick else 200000
    a.consumer_reps = 3
    a.lag_rate = 500
    a.lag_seconds = 10 if a.quick else 30
    return a


def publish(doc, outdir, latest):
    """results.md and the charts from doc; with latest, copied to bench/latest/."""
    write_markdown(doc, os.path.join(outdir, "results.md"))
    charts = write_charts(doc, outdir)
    if latest:
        dest = os.path.join(BENCH, "latest")
        os.makedirs(dest, exist_ok=True)
        for f in ["results.md", "results.json"] + charts:
            shutil.copy(os.path.join(outdir, f), dest)


def main():
    args = parse_args()
    if args.render:
        with open(os.path.join(args.render, "results.json")) as fh:
            publish(json.load(fh), args.render, args.latest)
        return
    # a SIGTERM stops the run like ^C does: through the finally that stops
    # the cluster
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    started = time.monotonic()
    date = datetime.datetime.now(datetime.timezone.utc)
    outdir = args.out or os.path.join(BENCH, "results", date.strftime("%Y%m%d-%H%M%S"))
    os.makedirs(outdir, exist_ok=True)
    command = args.command or "bench/run.py " + " ".join(sys.argv[1:])

    log("building dsplug and bench_floor")
    sh(["make", "-C", os.path.join(TOP, "plugin")])
    sh(["make", "-C", os.path.join(BENCH, "floor")])

    work = tempfile.mkdtemp(prefix="dsplug-bench.")
    os.chmod(work, 0o755)
    cluster = os.path.join(work, "cluster")
    # The cluster loads dsplug and bench_floor from a private copy made now,
    # ahead of the server's library directory: what is measured is what was
    # just built, even if another build is installed during the run.
    libdir = os.path.join(work, "lib")
    os.makedirs(libdir)
    for so in (os.path.join(TOP, "plugin", "dsplug.so"), os.path.join(BENCH, "floor", "bench_floor.so")):
        shutil.copy(so, libdir)
        os.chmod(os.path.join(libdir, os.path.basename(so)), 0o755)
    os.environ.update(PGHOST=cluster, PGPORT=str(args.port), PGUSER="postgres", PGDATABASE="bench",
                      PGOPTIONS="-c client_min_messages=warning")
    sh([os.path.join(TOP, "scripts", "cluster.sh"), "start", cluster, str(args.port),
        "output_plugin_libraries = 'pgoutput, test_decoding, dsplug, wal2json, decoderbufs, bench_floor'",
        f"dynamic_library_path = '{libdir}:$libdir'",
        "shared_buffers = 512MB", "checkpoint_timeout = 30min", "autovacuum = off",
        "track_commit_timestamp = on", "max_wal_size = 8GB", "synchronous_commit = off"])
    try:
        psql("CREATE DATABASE bench", db="postgres")
        psql(file=os.path.join(WORKLOADS, "schema.sql"))
        doc = {"date": date.strftime("%Y-%m-%d %H:%M UTC"), "command": command,
               "mode": "quick" if args.quick else "full", "repetitions": args.reps,
               "machine": machine_info(), "versions": versions(libdir),
               "configs": args.configs, "paths": args.paths,
               "settings": {"autovacuum": "off", "shared_buffers": "512MB",
                            "logical_decoding_work_mem": psql("SHOW logical_decoding_work_mem")}}
        if args.streamed_only:
            doc["streamed"] = run_streamed(args, work)
            publish_streamed(doc, outdir, args.latest, started)
            return
        bench = PluginBench(args, cluster)
        doc["workloads"] = bench.run(args.workloads, args.configs, args.paths, args.reps)
        for w, f in doc["workloads"].items():
            fl = f["results"].get("floor")
            f["transactions"] = fl["frames"] if fl else None
            del f["end_lsn"]
        doc["consumer_settings"] = {"rows": args.consumer_rows, "reps": args.consumer_reps,
                                    "lag_rate": args.lag_rate, "lag_seconds": args.lag_seconds,
                                    "binary": args.consumer or "consumer/dsplug-consumer (built from this tree)"}
        if args.no_consumer:
            doc["consumer"] = {t: {"not_measured": "skipped (--no-consumer)"} for t in CONSUMER_TARGETS}
        else:
            doc["consumer"] = run_consumer(args, work)
        doc["streamed"] = {"not_measured": "skipped (--no-streamed)"} if args.no_streamed else \
            run_streamed(args, work)
    finally:
        subprocess.run([os.path.join(TOP, "scripts", "cluster.sh"), "stop", cluster, "immediate"],
                       capture_output=True)
        shutil.rmtree(work, ignore_errors=True)
    doc["elapsed_seconds"] = time.monotonic() - started
    with open(os.path.join(outdir, "results.json"), "w") as fh:
        json.dump(doc, fh, indent=2)
    publish(doc, outdir, args.latest)
    log(f"done in {doc['elapsed_seconds'] / 60:.1f} min: {outdir}/results.md")


if __name__ == "__main__":
    main()
