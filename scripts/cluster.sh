#!/bin/sh
# cluster.sh - a throwaway PostgreSQL 15 cluster for dsplug's tests, demo
# and benchmarks.
#
# Usage: scripts/cluster.sh start DIR PORT [setting=value...]
#        scripts/cluster.sh stop DIR [fast|immediate]
#        scripts/cluster.sh restart DIR [fast|immediate]
#
# DIR holds the data directory (DIR/data), the server log (DIR/server.log)
# and the Unix socket (DIR itself); connect with host=DIR port=PORT
# user=postgres.  The server never runs as root: when called as root, DIR is
# handed to the "postgres" user and the server runs as that user.
# Extra settings are appended to postgresql.conf.
#
# The server is the one PG_CONFIG names, or the binaries in DSPLUG_PG_BINDIR
# when that is set (regress/run.sh points it at a private copy of the
# installation with this checkout's plugin: scripts/pgtree.sh).
#
# With DSPLUG_VALGRIND=LOGDIR, the server runs under Valgrind memcheck
# (scripts/valgrind-check.sh), every process logging to LOGDIR/PID.log, with
# the suppressions file DSPLUG_VALGRIND_SUPP (PostgreSQL's
# src/tools/valgrind.supp); it stays so across restart.
set -eu

PG_CONFIG=${PG_CONFIG:-pg_config}
bindir=${DSPLUG_PG_BINDIR:-$("$PG_CONFIG" --bindir)}

# As root, run as the postgres user, from / : the current directory may be
# a checkout postgres cannot enter (a clone in /root, mode 700).
as_pg() {
	if [ "$(id -u)" -eq 0 ]; then
		(cd / && runuser -u postgres -- "$@")
	else
		"$@"
	fi
}

# pg_ctl start options: the Valgrind wrapper if this cluster has one, and
# the time a server under Valgrind needs to start
server_opts() {
	if [ -x "$dir/postgres-valgrind" ]; then
		echo "-w -t 600 -p $dir/postgres-valgrind"
	else
		echo "-w -t 60"
	fi
}

cmd=${1:-}
dir=${2:-}
[ -n "$cmd" ] && [ -n "$dir" ] || { sed -n '4,8p' "$0" >&2; exit 2; }
case "$dir" in
	/*) ;;
	*) dir="$(pwd)/$dir" ;;
esac

case "$cmd" in
start)
	port=${3:?cluster.sh start: PORT missing}
	shift 3
	if [ -f "$dir/data/postmaster.pid" ]; then
		as_pg "$bindir/pg_ctl" -D "$dir/data" -m immediate stop >/dev/null 2>&1 || true
	fi
	rm -rf "$dir"
	mkdir -p "$dir"
	chmod 755 "$dir"
	[ "$(id -u)" -eq 0 ] && chown postgres:postgres "$dir"
	as_pg "$bindir/initdb" -D "$dir/data" -U postgres -A trust -E UTF8 \
		--locale=C.UTF-8 --no-sync >"$dir/initdb.log" 2>&1 ||
		{ cat "$dir/initdb.log" >&2; exit 1; }
	{
		echo "# dsplug throwaway cluster"
		echo "port = $port"
		echo "listen_addresses = ''"
		echo "unix_socket_directories = '$dir'"
		echo "wal_level = logical"
		echo "max_replication_slots = 32"
		echo "max_wal_senders = 32"
		echo "output_plugin_libraries = 'pgoutput, test_decoding, dsplug, wal2json, decoderbufs'"
		echo "fsync = off"
		echo "max_wal_size = 4GB"
		echo "max_prepared_transactions = 16"
		echo "wal_sender_timeout = 60s"
		echo "log_min_messages = warning"
		echo "log_line_prefix = '%m [%p] %q%a '"
		for s in "$@"; do echo "$s"; done
	} | as_pg tee -a "$dir/data/postgresql.conf" >/dev/null
	if [ -n "${DSPLUG_VALGRIND:-}" ]; then
		supp=${DSPLUG_VALGRIND_SUPP:?DSPLUG_VALGRIND needs DSPLUG_VALGRIND_SUPP}
		mkdir -p "$DSPLUG_VALGRIND"
		[ "$(id -u)" -eq 0 ] && chown postgres:postgres "$DSPLUG_VALGRIND"
		# what PostgreSQL's documentation runs (wiki "Valgrind"), without
		# leak checking: backends free their memory by exiting
		cat >"$dir/postgres-valgrind" <<WRAPPER
#!/bin/sh
exec valgrind --quiet --tool=memcheck --leak-check=no --num-callers=40 \\
	--error-markers=VALGRINDERROR-BEGIN,VALGRINDERROR-END \\
	--suppressions="$supp" --trace-children=yes \\
	--log-file="$DSPLUG_VALGRIND/%p.log" "$bindir/postgres" "\$@"
WRAPPER
		chmod 755 "$dir/postgres-valgrind"
	fi
	if ! as_pg "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" $(server_opts) start >/dev/null; then
		tail -n 30 "$dir/server.log" >&2
		exit 1
	fi
	;;
stop)
	mode=${3:-fast}
	[ -f "$dir/data/postmaster.pid" ] || exit 0
	as_pg "$bindir/pg_ctl" -D "$dir/data" -m "$mode" -w -t 120 stop >/dev/null
	;;
restart)
	mode=${3:-fast}
	as_pg "$bindir/pg_ctl" -D "$dir/data" -m "$mode" -w -t 120 stop >/dev/null || true
	as_pg "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" $(server_opts) start >/dev/null ||
		{ tail -n 30 "$dir/server.log" >&2; exit 1; }
	;;
*)
	sed -n '4,8p' "$0" >&2
	exit 2
	;;
esac
