#!/bin/sh
# 26-consumer-fuzz.sh - corrupted and truncated frames through the real
# apply path (dsplug-consumer --replay): a session is recorded from a real
# slot (--record), then many mutated copies of the recording (bit flips,
# bytes overwritten, frames cut short, extended, dropped, repeated or
# swapped, the file cut anywhere) are replayed into fresh targets.  Each
# replay must end in exit 0 or a one-line "could not ..." error with exit 1
# or 4, never a crash (the replays run under AddressSanitizer and
# UndefinedBehaviorSanitizer when the compiler has them), and the target's
# recorded LSN never passes what was applied: it is always the end of a
# transaction of the recording, and a replay that stops at the first damaged
# frame leaves exactly the state an intact replay has at that LSN.  A frame
# whose bytes were changed (bits flipped, a byte overwritten, cut short or
# extended) always fails at that frame with exit 1: the frame checksum
# (wire version 2) catches it before anything of it is applied.
#
# Also: replaying the unmutated recording rebuilds the live replica, and
# replaying it again into the same target changes nothing (transactions the
# target holds are skipped, not applied twice).
set -eu
. regress/t/lib.sh
. regress/t/lib/consumer.sh

db=dsplug_t26
mutations=${DSPLUG_T26_MUTATIONS:-240}
recreate_db "$db"
q "$db" <<'SQL'
CREATE TABLE f (id int PRIMARY KEY, t text, n numeric, ts timestamptz, j jsonb, a int[],
	b bytea, f8 float8);
CREATE TABLE flog (n int, v text);
CREATE PUBLICATION p26 FOR TABLE f;
CREATE PUBLICATION p26_log FOR TABLE flog WITH (publish = 'insert');
SELECT 'slot' FROM pg_create_logical_replication_slot('t26_zstd', 'dsplug');
SELECT 'slot' FROM pg_create_logical_replication_slot('t26_none', 'dsplug');
CREATE PROCEDURE small(k int) LANGUAGE plpgsql AS $$
BEGIN
	FOR i IN 1 .. 60 LOOP
		INSERT INTO f VALUES (k * 1000 + i, 'text ' || i, i / 7.0, now(), jsonb_build_object('i', i),
			ARRAY[i, NULL, -i], decode(md5(i::text), 'hex'), i / 3.0)
			ON CONFLICT (id) DO UPDATE SET t = 'again';
		UPDATE f SET n = n + 1 WHERE id = k * 1000 + i / 2;
		DELETE FROM f WHERE id = k * 1000 + i - 10 AND i % 3 = 0;
		INSERT INTO flog VALUES (k * 1000 + i, 'small');
		COMMIT;
	END LOOP;
END
$$;
CALL small(1);
-- a transaction of many batches (--batch-size 16kB)
INSERT INTO f SELECT 100000 + g, repeat('x', 50), g, now(), '{}', '{}', '\x00', g FROM generate_series(1, 3000) g;
INSERT INTO flog VALUES (0, 'big');
CALL small(2);
ALTER TABLE f ADD COLUMN extra text DEFAULT 'd';
CALL small(3);
TRUNCATE f;
CALL small(4);
SQL

# the recordings, from live replicas
consume "$db" t26_zstd p26,p26_log "$T/live_zstd.db" --record "$T/zstd.rec" --batch-size 16kB
consume "$db" t26_none p26,p26_log "$T/live_none.db" --record "$T/none.rec" --batch-size 16kB \
	--compression none
compare "$db" "$T/live_zstd.db" --publication p26,p26_log

# a sanitizer build of the consumer, if the compiler can make one
FUZZ_CONSUMER=$CONSUMER
if echo 'int main(void){return 0;}' | cc -x c -fsanitize=address,undefined -o /dev/null - 2>/dev/null; then
	# the consumer's own Makefile, on a copy of its sources (objects here
	# stay as they are): its Makefile and sources, folders kept, no objects
	mkdir -p "$T/asan-src/consumer" "$T/asan-src/proto"
	(cd consumer && find . \( -name '*.[ch]' -o -name Makefile \) \
		-exec cp --parents {} "$T/asan-src/consumer/" \;)
	cp proto/*.proto proto/*.c proto/*.h "$T/asan-src/proto/"
	if make -s -C "$T/asan-src/consumer" dsplug-consumer \
		CFLAGS="-g -O1 -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer" \
		LDFLAGS="-fsanitize=address,undefined" >"$T/asan-build.log" 2>&1; then
		cp "$T/asan-src/consumer/dsplug-consumer" "$T/consumer-asan"
		FUZZ_CONSUMER=$T/consumer-asan
		echo "# replays run under AddressSanitizer and UndefinedBehaviorSanitizer"
	else
		cat "$T/asan-build.log" >&2
		fail "the compiler supports sanitizers, but the sanitizer build of the consumer failed"
	fi
fi
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:exitcode=99
export UBSAN_OPTIONS=halt_on_error=1:exitcode=98

python3 - "$FUZZ_CONSUMER" "$T" "$mutations" <<'PY'
import os, random, re, subprocess, sys
sys.path.insert(0, "regress/t/lib")
from recording import MAGIC, load, save, state

consumer, tmp, mutations = sys.argv[1], sys.argv[2], int(sys.argv[3])

def replay(rec, db, endpos=None):
    if os.path.exists(db):
        os.remove(db)
    cmd = [consumer, "--replay", rec, "--target", "sqlite:" + db, "--quiet"]
    if endpos:
        cmd += ["--endpos", endpos]
    p = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    return p.returncode, p.stderr.strip()

def check(cond, msg):
    if not cond:
        print("FAIL: " + msg)
        sys.exit(1)

rng = random.Random(26)
totals = {"exit 0": 0, "errors": 0, "later": 0}
for name in ("zstd", "none"):
    path = os.path.join(tmp, name + ".rec")
    recs = load(path)
    full_db = os.path.join(tmp, "full_%s.db" % name)
    rc, err = replay(path, full_db)
    check(rc == 0, "replaying the %s recording failed: %s" % (name, err))
    (full_lsn, full_text), full_tables = state(full_db)
    # positions a target may hold: none, or where a frame of the recording is
    positions = {0} | {r[0] for r in recs}
    live = state(os.path.join(tmp, "live_%s.db" % name))[1]
    check(full_tables == live, "replaying the %s recording does not rebuild the live replica" % name)
    # again, into the same target: everything is skipped
    p = subprocess.run([consumer, "--replay", path, "--target", "sqlite:" + full_db, "--quiet"],
                       stderr=subprocess.PIPE, text=True)
    check(p.returncode == 0, "second replay failed: " + p.stderr)
    check(state(full_db)[1] == full_tables, "a second replay of %s changed the target" % name)

    prefixes = {}
    count = mutations if name == "zstd" else mutations // 3
    for i in range(count):
        m = [r[:] for r in recs]
        kind = rng.choice(["flip", "flip", "byte", "cut", "extend", "drop", "dup", "swap", "file"])
        j = rng.randrange(len(m))
        frame = bytearray(m[j][2])
        cut = None
        if kind == "flip":
            for _ in range(rng.randint(1, 3)):
                b = rng.randrange(len(frame))
                frame[b] ^= 1 << rng.randrange(8)
        elif kind == "byte":
            frame[rng.randrange(len(frame))] = rng.randrange(256)
        elif kind == "cut":
            frame = frame[:rng.randrange(len(frame))]
        elif kind == "extend":
            frame += bytes(rng.randrange(256) for _ in range(rng.randint(1, 40)))
        damaged = bytes(frame) != recs[j][2]
        m[j][2] = bytes(frame)
        if kind == "drop":
            del m[j]
        elif kind == "dup":
            m.insert(j, m[j][:])
        elif kind == "swap" and j + 1 < len(m):
            m[j], m[j + 1] = m[j + 1], m[j]
        elif kind == "file":
            cut = rng.randrange(len(MAGIC), sum(21 + len(r[2]) for r in m) + len(MAGIC))
        mpath = os.path.join(tmp, "mutated.rec")
        save(mpath, m, cut)
        db = os.path.join(tmp, "mutated.db")
        rc, err = replay(mpath, db)
        what = "%s mutation %d (%s of frame %d)" % (name, i, kind, j + 1)
        check(rc in (0, 1, 4), "%s: exit %d (a crash?): %s" % (what, rc, err[-2000:]))
        if damaged:
            check(rc == 1 and re.search(r"frame %d: (checksum mismatch|the first frame of a session must carry|frame of \d+ bytes is shorter than)"
                                      % (j + 1), err),
                  "%s: damaged frame not refused by its checksum (exit %d): %s"
                  % (what, rc, err[-500:]))
        (lsn, lsn_text), tables = state(db)
        check(lsn <= full_lsn and lsn in positions,
              "%s: the target holds %s, not a position of the recording up to %s"
              % (what, lsn_text, full_text))
        if rc == 0:
            totals["exit 0"] += 1
            continue
        totals["errors"] += 1
        last = err.splitlines()[-1] if err else ""
        check(last.startswith("dsplug-consumer: could not "), "%s: unclear error: %r" % (what, err))
        # the first frame that differs from the recording, counted from 1
        first = next((k for k in range(min(len(m), len(recs))) if m[k][2] != recs[k][2]),
                     min(len(m), len(recs))) + 1
        if cut is not None:
            # the record the cut falls in
            end, first = len(MAGIC), 1
            for r in m:
                end += 21 + len(r[2])
                if end > cut:
                    break
                first += 1
        failed = re.search(r"(?:frame|record) (\d+)", last)
        if not failed or int(failed.group(1)) != first:
            totals["later"] += 1
            continue
        # what it holds is exactly what the intact stream holds at that LSN
        if lsn_text not in prefixes:
            pdb = os.path.join(tmp, "prefix.db")
            if lsn == 0:
                prefixes[lsn_text] = {}
            else:
                prc, perr = replay(path, pdb, lsn_text)
                check(prc == 0, "prefix replay to %s failed: %s" % (lsn_text, perr))
                prefixes[lsn_text] = state(pdb)[1]
        want = prefixes[lsn_text]
        have = {t: r for t, r in tables.items() if r or t in want}
        want = {t: r for t, r in want.items() if r or t in have}
        check(have == want, "%s: stopped at %s (%s) with a state the intact stream never had"
              % (what, lsn_text, last))
print("# %d mutated replays: %d clear errors (%d after damage that still decoded), "
      "%d undetected or harmless (exit 0); no crash, no position past what was applied"
      % (totals["errors"] + totals["exit 0"], totals["errors"], totals["later"],
         totals["exit 0"]))
PY

q "$db" -c "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name LIKE 't26%'" >/dev/null
drop_db "$db"
echo ok
