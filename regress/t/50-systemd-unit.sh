#!/bin/sh
# 50-systemd-unit.sh - dsplug-consumer@.service (systemd/): make install puts
# the unit, the sysusers.d entry and the example configuration where systemd
# and the README say, under PREFIX and DESTDIR; systemd-analyze verify finds
# nothing wrong with an instance of it (and does find a broken copy wrong);
# its restart policy matches the consumer's exit codes; and one instance
# runs with a configuration made from the example: it copies and streams a
# region into its state directory, stops cleanly on SIGTERM (exit 0), and a
# configuration the server refuses ends with an exit code the unit does not
# restart.
#
# Where systemd is the running init (and the test runs as root), the
# instance runs under systemd itself; elsewhere (a container, a chroot) that
# part is skipped, loudly, and the unit's ExecStart runs with the
# configuration expanded as systemd expands it.  Where systemd-analyze is
# missing, the verify part is skipped, loudly.
set -eu
. regress/t/lib.sh
. regress/t/lib/consumer.sh

top=$(pwd)
db=dsplug_t46

# --- make install, with DESTDIR: the paths a Debian administrator expects,
#     and nothing of DESTDIR inside the files
dest=$T/dest
make -s -C systemd install DESTDIR="$dest" >/dev/null
for f in /usr/local/lib/systemd/system/dsplug-consumer@.service \
	/usr/local/lib/sysusers.d/dsplug.conf \
	/usr/local/share/doc/dsplug/example.conf \
	/usr/local/share/doc/dsplug/README.md; do
	[ -f "$dest$f" ] || fail "make install DESTDIR=... did not install $f"
done
unit_d=$dest/usr/local/lib/systemd/system/dsplug-consumer@.service
grep -q "^ExecStart=/usr/local/bin/dsplug-consumer " "$unit_d" ||
	fail "the installed unit does not run /usr/local/bin/dsplug-consumer: $(grep ^ExecStart "$unit_d")"
grep -q "$dest" "$unit_d" && fail "the installed unit names DESTDIR"
make -s -C systemd install DESTDIR="$T/dest-usr" PREFIX=/usr >/dev/null
grep -q "^ExecStart=/usr/bin/dsplug-consumer " "$T/dest-usr/usr/lib/systemd/system/dsplug-consumer@.service" ||
	fail "PREFIX=/usr does not give a unit that runs /usr/bin/dsplug-consumer"

# --- the restart policy against the exit codes (consumer --help): restart
#     on failure (exit 1, signals), never on 2, 3 or 4
setting() {
	sed -n "s/^$1=//p" "$unit_d"
}
[ "$(setting Restart)" = on-failure ] || fail "Restart=$(setting Restart), expected on-failure"
[ "$(setting RestartPreventExitStatus)" = "2 3 4" ] ||
	fail "RestartPreventExitStatus=$(setting RestartPreventExitStatus), expected 2 3 4"
"$CONSUMER" --help >"$T/help.txt"
for code in 2 3 4; do
	grep -q "^  $code  " "$T/help.txt" || fail "dsplug-consumer --help does not document exit code $code"
done
[ "$(setting EnvironmentFile)" = "/etc/dsplug/%i.conf" ] || fail "EnvironmentFile=$(setting EnvironmentFile)"
[ "$(setting StateDirectory)" = "dsplug/%i" ] || fail "StateDirectory=$(setting StateDirectory)"

# A unit whose ExecStart names a consumer that exists on this machine (in
# the scratch directory), for systemd-analyze verify and the run below.
prefix=$T/prefix
make -s -C systemd install PREFIX="$prefix" >/dev/null
mkdir -p "$prefix/bin"
cp "$CONSUMER" "$prefix/bin/dsplug-consumer"
unit=$prefix/lib/systemd/system/dsplug-consumer@.service

# --- systemd-analyze verify: an instance of the unit is clean, and a copy
#     with a wrong setting is not (the check can fail)
if command -v systemd-analyze >/dev/null 2>&1; then
	v=$T/verify
	mkdir -p "$v/good" "$v/bad"
	cp "$unit" "$v/good/dsplug-consumer@.service"
	ln -s dsplug-consumer@.service "$v/good/dsplug-consumer@rs1.service"
	systemd-analyze verify --man=no "$v/good/dsplug-consumer@rs1.service" >"$v/good.out" 2>&1 ||
		fail "systemd-analyze verify failed: $(cat "$v/good.out")"
	[ ! -s "$v/good.out" ] || fail "systemd-analyze verify complained: $(cat "$v/good.out")"
	sed 's/^RestartPreventExitStatus=.*/RestartPreventExitStatus=two/' "$unit" >"$v/bad/dsplug-consumer@.service"
	ln -s dsplug-consumer@.service "$v/bad/dsplug-consumer@rs1.service"
	systemd-analyze verify --man=no "$v/bad/dsplug-consumer@rs1.service" >"$v/bad.out" 2>&1 || true
	grep -q "Failed to parse value, ignoring: two" "$v/bad.out" ||
		fail "systemd-analyze verify did not notice a broken RestartPreventExitStatus: $(cat "$v/bad.out")"
	echo "# systemd-analyze verify: dsplug-consumer@rs1.service clean ($(systemd-analyze --version | head -n 1))"
else
	echo "# SKIPPED: systemd-analyze verify (systemd-analyze is not installed here)"
fi

# --- a region to stream (in the cluster PGHOST names)
source_db() {
	recreate_db "$db"
	q "$db" <<'SQL'
CREATE TABLE accounts (id int PRIMARY KEY, owner text, balance numeric(12,2));
INSERT INTO accounts SELECT g, 'owner ' || g, g * 1.5 FROM generate_series(1, 1000) g;
CREATE PUBLICATION pub1 FOR TABLE accounts;
SQL
}

# conf FILE DBNAME SLOT TARGET: a region's configuration, made from the
# example by changing only its values
conf() {
	sed -e "s|^DSPLUG_DBNAME=.*|DSPLUG_DBNAME=\"$2\"|" \
		-e "s|^DSPLUG_SLOT=.*|DSPLUG_SLOT=$3|" \
		-e "s|^DSPLUG_TARGET=.*|DSPLUG_TARGET=$4|" \
		"$top/systemd/example.conf" >"$1"
	grep -q "^DSPLUG_PUBLICATION=pub1$" "$1" || fail "the example configuration does not name pub1"
}

# the source keeps writing while the region streams
workload() {
	q "$db" -c "INSERT INTO accounts SELECT g, 'late ' || g, g FROM generate_series(1001, 1500) g" \
		-c "UPDATE accounts SET balance = balance + 1 WHERE id % 7 = 0" \
		-c "DELETE FROM accounts WHERE id % 11 = 0" >/dev/null
}

# replica_ready DB: the replica holds everything up to now
replica_ready() {
	[ -f "$1" ] || return 1
	_lsn=$(sqlite3 -cmd ".timeout 5000" "$1" "SELECT lsn_text FROM _dsplug_state" 2>/dev/null) || return 1
	[ -n "$_lsn" ] && lsn_le "$_want" "$_lsn"
}

# wait_replica DB: until replica_ready (10 minutes at most)
wait_replica() {
	_want=$(current_lsn "$db")
	for _i in $(seq 1 3000); do
		replica_ready "$1" && return 0
		sleep 0.2
	done
	fail "the replica $1 did not reach $_want"
}

if [ "$(id -u)" -eq 0 ] && [ -d /run/systemd/system ] && [ "$(cat /proc/1/comm)" = systemd ]; then
	# --- under systemd: the unit as installed, a configuration in
	#     /etc/dsplug, the dsplug user from the sysusers.d entry.  The
	#     unit's /tmp is private, so the consumer and the cluster it reads
	#     live under /run for the test.
	inst=t46-$$
	run=/run/dsplug-$inst
	mkdir -p "$run/bin"
	cp "$CONSUMER" "$run/bin/dsplug-consumer"
	chmod -R a+rX "$run"
	make -s -C systemd install PREFIX="$run" >/dev/null
	cleanup_systemd() {
		systemctl stop "dsplug-consumer@$inst" 2>/dev/null || true
		rm -f "/run/systemd/system/dsplug-consumer@.service" "/etc/dsplug/$inst.conf"
		systemctl daemon-reload 2>/dev/null || true
		rm -rf "/var/lib/dsplug/$inst" "/var/cache/dsplug/$inst"
		"$top/scripts/cluster.sh" stop "$run/cluster" immediate >/dev/null 2>&1 || true
		rm -rf "$run"
	}
	trap cleanup_systemd EXIT
	[ -e /run/systemd/system/dsplug-consumer@.service ] &&
		fail "a dsplug-consumer@.service is already in /run/systemd/system"
	"$top/scripts/cluster.sh" start "$run/cluster" "$PGPORT"
	PGHOST=$run/cluster
	export PGHOST
	source_db
	systemd-sysusers "$run/lib/sysusers.d/dsplug.conf"
	cp "$run/lib/systemd/system/dsplug-consumer@.service" /run/systemd/system/
	mkdir -p /etc/dsplug
	conf "/etc/dsplug/$inst.conf" "host=$run/cluster port=$PGPORT dbname=$db user=postgres" \
		"$inst" "sqlite:/var/lib/dsplug/$inst/region.db"
	systemctl daemon-reload
	systemctl start "dsplug-consumer@$inst"
	workload
	wait_replica "/var/lib/dsplug/$inst/region.db"
	compare "$db" "/var/lib/dsplug/$inst/region.db" --publication pub1
	systemctl stop "dsplug-consumer@$inst"
	status=$(systemctl show -p ExecMainStatus --value "dsplug-consumer@$inst")
	[ "$status" = 0 ] || fail "dsplug-consumer@$inst exited with $status on stop"
	owner=$(stat -c %U "/var/lib/dsplug/$inst")
	[ "$owner" = dsplug ] || fail "the state directory belongs to $owner, not dsplug"
	journalctl -u "dsplug-consumer@$inst" -o cat >"$T/journal.txt" 2>/dev/null || true
	grep -q "^dsplug-consumer: " "$T/journal.txt" || fail "nothing from the consumer in the journal"
	echo "# under systemd: dsplug-consumer@$inst streamed the region into /var/lib/dsplug/$inst and stopped with exit 0"
	exit 0
fi

# --- no systemd running: the unit's ExecStart, expanded as systemd expands
#     it (%i, %C; ${NAME} one argument, $NAME split at spaces), with the
#     configuration file's variables in the environment
echo "# SKIPPED: a dsplug-consumer@ instance under systemd (systemd is not the running init here: PID 1 is '$(cat /proc/1/comm 2>/dev/null || echo unknown)'); ran the unit's ExecStart with the example configuration instead"
execstart=$(setting ExecStart | sed "s|^/usr/local/bin/|$prefix/bin/|")
state=$T/var/lib/dsplug/rs1
cache=$T/var/cache/dsplug/rs1
mkdir -p "$state" "$cache"

# instance CONF: run the unit's command line for instance rs1 with CONF,
# in the background (pid in $inst_pid), stderr in $T/instance.err
instance() {
	_cmd=$(echo "$execstart" | sed -e 's/%i/rs1/g' -e 's/\${\([A-Z_]*\)}/"${\1}"/g')
	(
		set -a
		. "$1"
		set +a
		TMPDIR=$cache
		export TMPDIR
		cd /
		eval "exec $_cmd"
	) 2>"$T/instance.err" &
	inst_pid=$!
}

source_db
conf "$T/rs1.conf" "dbname=$db" rs1 "sqlite:$state/region.db"
instance "$T/rs1.conf"
workload
wait_replica "$state/region.db"
compare "$db" "$state/region.db" --publication pub1
kill -TERM "$inst_pid"
rc=0
wait "$inst_pid" || rc=$?
[ "$rc" -eq 0 ] || fail "the instance exited with $rc on SIGTERM: $(tail -n 3 "$T/instance.err")"
# journald-friendly: one line per message, no timestamps of its own
grep -v "^dsplug-consumer: " "$T/instance.err" && fail "lines without the dsplug-consumer: prefix on stderr"
grep -E "^dsplug-consumer: [0-9]{4}-[0-9]{2}-[0-9]{2}" "$T/instance.err" && fail "the consumer prints timestamps of its own"
echo "# instance rs1: copied and streamed pub1 into its state directory, exit 0 on SIGTERM; $(wc -l <"$T/instance.err") lines on stderr, none timestamped"

# a configuration the server refuses ends with a code the unit does not
# restart: a slot that does not exist, without --create-slot
conf "$T/bad.conf" "dbname=$db" no_such_slot "sqlite:$state/other.db"
sed -i 's/^DSPLUG_OPTIONS=.*/DSPLUG_OPTIONS="--streaming"/' "$T/bad.conf"
instance "$T/bad.conf"
rc=0
wait "$inst_pid" || rc=$?
case " $(setting RestartPreventExitStatus) " in
	*" $rc "*) ;;
	*) fail "a missing slot ended with exit $rc, which the unit would restart: $(cat "$T/instance.err")" ;;
esac
echo "# a missing slot: exit $rc, not restarted ($(tail -n 1 "$T/instance.err"))"

q "$db" -c "SELECT pg_drop_replication_slot('rs1')" >/dev/null
drop_db "$db"
echo ok
