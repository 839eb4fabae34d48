#!/bin/sh
# 35-consumer-checksums.sh - damage is refused, never applied: frame
# checksums (wire version 2) and spool checksums, through the real apply
# path.
#
# 1. A bit-flip sweep: a small stream is recorded from a real slot
#    (--record), with and without compression, and every byte of every
#    frame of the recording is damaged in turn (one bit flipped) and
#    replayed (--replay) into a fresh target.  Every replay must exit 1
#    with a clear error naming the damaged frame, and the target must hold
#    exactly what an intact replay holds before that frame: 0 damaged
#    frames applied, nothing confirmed past the last complete transaction
#    before it.  (The replay file's own record headers are not frames and
#    are not swept.)
# 2. A spool file damaged on disk: a live consumer (--two-phase) holds a
#    prepared transaction in its spool file until COMMIT PREPARED; one byte
#    of the file is flipped (through /proc/PID/fd, as the file is unlinked)
#    before COMMIT PREPARED.  The consumer must exit 1 naming the spool
#    checksum, with none of the prepared transaction's rows in the target
#    and the slot not confirmed past its PREPARE; a new consumer then gets
#    the transaction again from the server and the replica equals the
#    source.
set -eu
. regress/t/lib.sh
. regress/t/lib/consumer.sh

db=dsplug_t35
recreate_db "$db"
q "$db" <<'SQL'
CREATE TABLE c (id int PRIMARY KEY, t text, n numeric);
CREATE PUBLICATION p35 FOR TABLE c;
SELECT 'slot' FROM pg_create_logical_replication_slot('t35_zstd', 'dsplug');
SELECT 'slot' FROM pg_create_logical_replication_slot('t35_none', 'dsplug');
INSERT INTO c VALUES (1, 'one', 1.5), (2, 'two', -2);
UPDATE c SET t = 'uno', n = n * 10 WHERE id = 1;
DELETE FROM c WHERE id = 2;
SQL

consume "$db" t35_zstd p35 "$T/live_zstd.db" --record "$T/zstd.rec" --quiet
consume "$db" t35_none p35 "$T/live_none.db" --record "$T/none.rec" --quiet \
	--compression none
compare "$db" "$T/live_zstd.db" --publication p35

python3 - "$CONSUMER" "$T" <<'PY'
import os, re, subprocess, sys
sys.path.insert(0, "regress/t/lib")
from recording import load, save, state

consumer, tmp = sys.argv[1], sys.argv[2]

def replay(recs, db):
    path = os.path.join(tmp, "sweep.rec")
    save(path, recs)
    if os.path.exists(db):
        os.remove(db)
    p = subprocess.run([consumer, "--replay", path, "--target", "sqlite:" + db, "--quiet"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    return p.returncode, p.stderr.strip()

def check(cond, msg):
    if not cond:
        print("FAIL: " + msg)
        sys.exit(1)

db = os.path.join(tmp, "sweep.db")
for name in ("zstd", "none"):
    recs = load(os.path.join(tmp, name + ".rec"))
    check(len(recs) >= 3, "%s: only %d frames recorded" % (name, len(recs)))
    check(all(r[2][0] == 2 for r in recs), "%s: frames are not wire version 2" % name)
    # what an intact replay holds before each frame, and after the last
    before = []
    for j in range(len(recs) + 1):
        rc, err = replay(recs[:j], db)
        check(rc == 0, "%s: intact replay of %d frames failed: %s" % (name, j, err))
        before.append(state(db))
    live = state(os.path.join(tmp, "live_%s.db" % name))
    check(before[-1][1] == live[1], "%s: the intact replay does not rebuild the live replica" % name)
    check(before[-1] != before[0], "%s: the recording changes nothing" % name)

    flips = 0
    for j, (start, end, frame) in enumerate(recs):
        for pos in range(len(frame)):
            bad = bytearray(frame)
            bad[pos] ^= 1 << (pos % 8)
            rc, err = replay(recs[:j] + [[start, end, bytes(bad)]] + recs[j + 1:], db)
            what = "%s frame %d byte %d" % (name, j + 1, pos)
            last = err.splitlines()[-1] if err else ""
            check(rc == 1, "%s: exit %d, not 1 (%s)" % (what, rc, last or "no message"))
            m = re.search(r"could not decode frame: frame (\d+): (.*)", last)
            check(m is not None and int(m.group(1)) == j + 1,
                  "%s: the error does not name frame %d: %r" % (what, j + 1, last))
            check("checksum mismatch" in m.group(2) or
                  (j == 0 and "must carry the session-start flag" in m.group(2)),
                  "%s: not refused by its checksum: %r" % (what, last))
            check(state(db) == before[j],
                  "%s: the target does not hold exactly what the frames before it hold"
                  % what)
            flips += 1
    print("# %s: %d frames, %d bytes flipped one by one: %d refused at the damaged frame "
          "with exit 1, 0 applied" % (name, len(recs), flips, flips))
PY

# 2. a spool file damaged while it waits for COMMIT PREPARED
spool=$T/spool
mkdir -p "$spool"
q "$db" <<'SQL'
CREATE TABLE sp (id int PRIMARY KEY, t text, n numeric, ts timestamptz, a int[]);
CREATE TABLE l (n int, what text);
CREATE PUBLICATION p35_2pc FOR TABLE sp, l;
SELECT 'slot' FROM pg_create_logical_replication_slot('t35_2pc', 'dsplug', false, true);
INSERT INTO sp VALUES (1, 'before', 1, now(), '{1}');
SQL
consume "$db" t35_2pc p35_2pc "$T/spooled.db" --two-phase --spool-dir "$spool" --quiet

"$CONSUMER" --dbname "dbname=$db" --slot t35_2pc --publication p35_2pc --two-phase \
	--spool-dir "$spool" --target "sqlite:$T/spooled.db" --status-interval 1 --quiet \
	2>"$T/spool-consumer.err" &
pid=$!
trap 'kill -KILL "$pid" 2>/dev/null || true' EXIT

q "$db" <<'SQL'
BEGIN;
INSERT INTO sp SELECT g, 'prepared ' || g, g, now(), ARRAY[g] FROM generate_series(100, 1099) g;
PREPARE TRANSACTION 't35';
SQL
prepare_lsn=$(current_lsn "$db")
q "$db" -c "INSERT INTO l VALUES (1, 'after the prepare')" >/dev/null

# the transaction after the PREPARE is applied: the prepared one is spooled
n=600
until [ "$(sqlite3 -cmd ".timeout 5000" "$T/spooled.db" "SELECT count(*) FROM public_l" 2>/dev/null || echo 0)" = 1 ]; do
	kill -0 "$pid" 2>/dev/null || fail "the consumer exited: $(cat "$T/spool-consumer.err")"
	n=$((n - 1))
	[ "$n" -gt 0 ] || fail "the consumer did not apply the transaction after the PREPARE"
	sleep 0.1
done

python3 - "$pid" <<'PY'
import os, sys
pid = sys.argv[1]
fds = "/proc/%s/fd" % pid
spools = [os.path.join(fds, fd) for fd in os.listdir(fds)
          if "dsplug-spool-" in os.readlink(os.path.join(fds, fd))]
assert len(spools) == 1, "spool files open: %r" % spools
with open(spools[0], "r+b") as f:
    size = os.fstat(f.fileno()).st_size
    assert size > 1000, "the spool file holds only %d bytes" % size
    f.seek(size // 2)
    byte = f.read(1)[0]
    f.seek(size // 2)
    f.write(bytes([byte ^ 0x10]))
print("# flipped a bit of byte %d of the %d-byte spool file" % (size // 2, size))
PY

q "$db" -c "COMMIT PREPARED 't35'" >/dev/null
set +e
wait "$pid"
rc=$?
set -e
trap - EXIT
err=$(tail -n 1 "$T/spool-consumer.err")
[ "$rc" -eq 1 ] || fail "the consumer exited with $rc, not 1, after its spool was damaged: $err"
echo "$err" | grep -q "could not read spool file of transaction [0-9]* in .*: checksum mismatch in entry [0-9]*" ||
	fail "unclear error for a damaged spool file: $err"
echo "# exit 1: $err"
[ "$(sqlite3 "$T/spooled.db" "SELECT count(*) FROM public_sp WHERE id >= 100")" -eq 0 ] ||
	fail "rows of the damaged spooled transaction are in the target"
confirmed=$(slot_confirmed "$db" t35_2pc)
lsn_le "$confirmed" "$prepare_lsn" ||
	fail "the slot is confirmed at $confirmed, past the PREPARE of the damaged transaction"

# the server sends it again: applied whole
consume "$db" t35_2pc p35_2pc "$T/spooled.db" --two-phase --spool-dir "$spool" --quiet
[ "$(sqlite3 "$T/spooled.db" "SELECT count(*) FROM public_sp WHERE id >= 100")" -eq 1000 ] ||
	fail "the prepared transaction was not applied by the next consumer"
compare "$db" "$T/spooled.db" --publication p35_2pc

q "$db" -c "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name LIKE 't35%'" >/dev/null
drop_db "$db"
echo ok
