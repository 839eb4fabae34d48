#!/bin/sh
# 25-consumer-errors.sh - what dsplug-consumer cannot do ends with a clear
# one-line message and the documented exit code (consumer/common/common.h,
# --help): 2 for a bad command line, 3 for the target (bad URI, a path that
# cannot be opened, read or written, a target locked by another consumer or
# following another slot), 4 for a server that refuses (no such slot, a
# slot of another plugin or kind or database, a frame of another wire
# version, a role without replication rights, an unknown publication).
set -eu
. regress/t/lib.sh
. regress/t/lib/consumer.sh

db=dsplug_t25
recreate_db "$db"
q "$db" <<'SQL'
CREATE TABLE t (id int PRIMARY KEY, v text);
CREATE PUBLICATION p FOR TABLE t;
SELECT 'slot' FROM pg_create_logical_replication_slot('t25_dsplug', 'dsplug');
SELECT 'slot' FROM pg_create_logical_replication_slot('t25_pgoutput', 'pgoutput');
SELECT 'slot' FROM pg_create_physical_replication_slot('t25_physical');
SQL
recreate_db "${db}_other"
q "${db}_other" -c "SELECT 'slot' FROM pg_create_logical_replication_slot('t25_other_db', 'dsplug')" >/dev/null

C="$CONSUMER --status-interval 0"
good="--dbname dbname=$db --publication p"

# --- the command line: 2
expect_exit 2 "target is required" $C --dbname "dbname=$db" --slot t25_dsplug --publication p
expect_exit 2 "slot is required" $C --dbname "dbname=$db" --publication p --target "sqlite:$T/a.db"
expect_exit 2 "unrecognized option" $C --no-such-option
expect_exit 2 "invalid value \"zz\" for --endpos" $C $good --slot t25_dsplug --target "sqlite:$T/a.db" --endpos zz
expect_exit 2 "for --compression" $C $good --slot t25_dsplug --target "sqlite:$T/a.db" --compression lz4
expect_exit 2 "for --batch-size" $C $good --slot t25_dsplug --target "sqlite:$T/a.db" --batch-size 10XB
expect_exit 2 "invalid --dbname" $C --dbname "host='unterminated" --slot t25_dsplug --publication p --target "sqlite:$T/a.db"
expect_exit 2 "unexpected argument" $C $good --slot t25_dsplug --target "sqlite:$T/a.db" extra
expect_exit 2 "could not open replay file" $C --replay "$T/no-such-file" --target "sqlite:$T/a.db"
"$CONSUMER" --help >"$T/help.txt" || fail "--help exited with $?"
for opt in --dbname --slot --publication --target --create-slot --backfill --endpos \
	--compression --compression-level --batch-size --group-txns --group-bytes --group-ms \
	--status-interval --feedback-interval --quiet --record --replay --help --version \
	"Exit codes"; do
	grep -q -- "$opt" "$T/help.txt" || fail "--help does not document $opt"
done

# --- the target: 3
expect_exit 3 "unknown target type" $C $good --slot t25_dsplug --target "postgres://x"
expect_exit 3 "could not open target \"bigquery://project/dataset\": location=LOCATION is required" $C $good --slot t25_dsplug --target "bigquery://project/dataset"
expect_exit 3 "no database path" $C $good --slot t25_dsplug --target "sqlite:"
expect_exit 3 "could not open target database \"$T/no/such/dir/x.db\": No such file or directory" \
	$C $good --slot t25_dsplug --target "sqlite:$T/no/such/dir/x.db"
mkdir -p "$T/adir"
expect_exit 3 "it is a directory" $C $good --slot t25_dsplug --target "sqlite:$T/adir"
printf 'this is not a database, just some text that fills the header page....................................................' >"$T/garbage.db"
expect_exit 3 "could not open target database .*file is not a database" $C $good --slot t25_dsplug --target "sqlite:$T/garbage.db"
# unreadable: a file only root may read, opened by another user (or, when
# not root, a file without permissions)
touch "$T/private.db"
chmod 600 "$T/private.db"
if [ "$(id -u)" -eq 0 ]; then
	# the postgres user runs a copy of the consumer: the checkout may be
	# where postgres cannot reach it (a clone in /root, mode 700)
	chmod 755 "$T"
	cp "$CONSUMER" "$T/dsplug-consumer"
	chmod 755 "$T/dsplug-consumer"
	(cd / && expect_exit 3 "Permission denied" runuser -u postgres -- "$T/dsplug-consumer" \
		--status-interval 0 $good --slot t25_dsplug --target "sqlite:$T/private.db")
else
	chmod 000 "$T/private.db"
	expect_exit 3 "Permission denied" $C $good --slot t25_dsplug --target "sqlite:$T/private.db"
fi

# a target following another slot
consume "$db" t25_dsplug p "$T/mine.db"
expect_exit 3 "it follows slot \"t25_dsplug\", not \"t25_other\"" \
	$C $good --slot t25_other --target "sqlite:$T/mine.db"

# a target another consumer is writing to
"$CONSUMER" $good --slot t25_dsplug --target "sqlite:$T/mine.db" --quiet &
first=$!
# it locks the target before it starts streaming: wait for the slot to be
# in use (however long that takes on a loaded machine)
until [ "$(q "$db" -c "SELECT active FROM pg_replication_slots WHERE slot_name = 't25_dsplug'")" = t ]; do
	kill -0 "$first" 2>/dev/null || fail "the first consumer exited before it started streaming"
	sleep 0.1
done
expect_exit 3 "another dsplug-consumer is writing to it" \
	$C $good --slot t25_dsplug --target "sqlite:$T/mine.db"
kill -TERM "$first"
wait "$first" || fail "the first consumer did not stop cleanly on SIGTERM"

# --- the server: 4
expect_exit 4 "replication slot \"t25_missing\" does not exist" \
	$C $good --slot t25_missing --target "sqlite:$T/b.db"
expect_exit 4 "uses output plugin \"pgoutput\", not dsplug" \
	$C $good --slot t25_pgoutput --target "sqlite:$T/c.db"
expect_exit 4 "is a physical slot" $C $good --slot t25_physical --target "sqlite:$T/d.db"
expect_exit 4 "belongs to database \"${db}_other\"" \
	$C $good --slot t25_other_db --target "sqlite:$T/e.db"
q postgres -c "DROP ROLE IF EXISTS t25_norepl" -c "CREATE ROLE t25_norepl LOGIN" >/dev/null
expect_exit 4 "could not connect to the server" \
	$C --dbname "dbname=$db user=t25_norepl" --slot t25_dsplug --publication p --target "sqlite:$T/f.db"
grep -q -i "replication\|permission" "$T/expect.err" || fail "the refusal does not say why: $(cat "$T/expect.err")"
q "$db" -c "INSERT INTO t VALUES (1, 'x')" >/dev/null
expect_exit 4 "publication \"nosuchpub\" does not exist" \
	$C --dbname "dbname=$db" --slot t25_dsplug --publication nosuchpub --target "sqlite:$T/g.db" \
	--endpos "$(current_lsn "$db")"

# frames of another plugin or wire version (the reader's own check), fed
# through --replay: a pgoutput 'B' message and a version 2 frame
python3 - "$T" <<'PY'
import struct, sys
def rec(path, frame):
    with open(path, "wb") as f:
        f.write(b"DSPLUGREC1\n")
        f.write(b"w" + struct.pack(">QQI", 1, 1, len(frame)) + frame)
rec(sys.argv[1] + "/pgoutput.rec", b"B" + b"\0" * 20)
rec(sys.argv[1] + "/v2.rec", b"\x02\x02" + b"\0" * 4)
PY
expect_exit 4 "unsupported wire version 66 .* suggests a pgoutput" \
	$C --replay "$T/pgoutput.rec" --target "sqlite:$T/h.db"
expect_exit 4 "unsupported wire version 2 (this reader speaks version 1)" \
	$C --replay "$T/v2.rec" --target "sqlite:$T/i.db"

q postgres -c "DROP ROLE t25_norepl" >/dev/null
q "$db" -c "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name LIKE 't25%'" >/dev/null
drop_db "$db"
drop_db "${db}_other"
echo ok
