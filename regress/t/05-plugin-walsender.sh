#!/bin/sh
# 05-plugin-walsender.sh - the plugin on the streaming replication protocol,
# with a 2-million-row transaction: it streams through the walsender with
# the walsender's memory bounded (no whole-transaction buffer, no 1 GB
# StringInfo limit), side by side with pgoutput on the same WAL; the SQL
# interface decodes it too, in bounded batches.
set -eu
. regress/t/lib.sh

db=dsplug_t05
recreate_db "$db"
q() { psql -X -q -At -v ON_ERROR_STOP=1 -d "$db" "$@"; }

rows=${DSPLUG_T05_ROWS:-2000000}
q <<SQL
CREATE TABLE big (id bigint PRIMARY KEY, payload text, n numeric, at timestamptz);
CREATE PUBLICATION big_pub FOR TABLE big;
SELECT 'init' FROM pg_create_logical_replication_slot('big_dsplug', 'dsplug');
SELECT 'init' FROM pg_create_logical_replication_slot('big_pgoutput', 'pgoutput');
INSERT INTO big SELECT g, 'payload ' || md5(g::text), g / 7.0, '2026-11-23 10:00:00+00'::timestamptz + g * interval '1 ms'
	FROM generate_series(1, $rows) g;
INSERT INTO big VALUES (0, 'after', 0, now());
SQL
end_lsn=$(q -c "SELECT pg_current_wal_lsn()")

# Peak resident memory (VmHWM, kB) of the walsender serving one slot, while
# pg_recvlogical streams everything up to end_lsn and throws it away.
stream_peak() {
	slot=$1
	shift
	pg_recvlogical -d "$db" -S "$slot" --start -E "$end_lsn" -f /dev/null \
		--no-loop "$@" &
	rl=$!
	peak=0
	while kill -0 "$rl" 2>/dev/null; do
		pid=$(q -c "SELECT pid FROM pg_stat_replication WHERE application_name = 'pg_recvlogical'" || true)
		if [ -n "$pid" ] && [ -r "/proc/$pid/status" ]; then
			hwm=$(awk '/^VmHWM/ { print $2 }' "/proc/$pid/status" 2>/dev/null || true)
			[ -n "$hwm" ] && [ "$hwm" -gt "$peak" ] && peak=$hwm
		fi
		sleep 0.2
	done
	wait "$rl" || fail "pg_recvlogical on $slot failed"
	echo "$peak"
}

dsplug_kb=$(stream_peak big_dsplug -o publication_names=big_pub)
pgoutput_kb=$(stream_peak big_pgoutput -o proto_version=1 -o publication_names=big_pub)
echo "# walsender peak RSS: dsplug ${dsplug_kb} kB, pgoutput ${pgoutput_kb} kB ($rows-row transaction)"

[ "$dsplug_kb" -gt 0 ] || fail "could not sample the dsplug walsender's memory"
[ "$pgoutput_kb" -gt 0 ] || fail "could not sample the pgoutput walsender's memory"
# bounded: within 32 MB of pgoutput, which writes each change as it comes
[ "$dsplug_kb" -le $((pgoutput_kb + 32768)) ] ||
	fail "dsplug walsender peaked at ${dsplug_kb} kB, pgoutput at ${pgoutput_kb} kB"

# both slots were confirmed up to the end by pg_recvlogical
confirmed=$(q -c "SELECT count(*) FROM pg_replication_slots WHERE slot_name IN ('big_dsplug', 'big_pgoutput') AND confirmed_flush_lsn >= '$end_lsn'")
[ "$confirmed" = 2 ] || fail "slots not confirmed up to $end_lsn"

# The SQL interface: the big transaction arrives in many bounded frames,
# one begin, every row once, positions 0..rows-1; backend memory bounded.
q <<SQL >"$DSPLUG_TEST_TMP/sql.txt"
INSERT INTO big SELECT g, 'again', g, now() FROM generate_series($rows + 1, $rows + $rows / 4) g;
SELECT count(*) AS frames,
	   max(octet_length(data)) AS largest_frame,
	   (SELECT split_part(l, ':', 2) FROM regexp_split_to_table(pg_read_file('/proc/self/status'), E'\n') l
		WHERE l LIKE 'VmHWM%') AS backend_peak
FROM pg_logical_slot_peek_binary_changes('big_dsplug', NULL, NULL, 'publication_names', 'big_pub');
SELECT count(*) FILTER (WHERE kind = 'begin'), count(*) FILTER (WHERE kind = 'insert'),
	   min(position), max(position), count(DISTINCT frame) > 1
FROM dsplug.peek_changes('big_dsplug', NULL, NULL, 'publication_names', 'big_pub');
SQL
sed "s/^/# SQL interface: /" "$DSPLUG_TEST_TMP/sql.txt"
expect_line "$DSPLUG_TEST_TMP/sql.txt" 2 "1|$((rows / 4))|0|$((rows / 4 - 1))|t"
largest=$(sed -n 1p "$DSPLUG_TEST_TMP/sql.txt" | cut -d'|' -f2)
# frames are cut at batch_size (256 kB of encoded records); compressed they
# are smaller still
[ "$largest" -le 300000 ] || fail "largest frame is $largest bytes"

q -c "SELECT pg_drop_replication_slot('big_dsplug'), pg_drop_replication_slot('big_pgoutput')" >/dev/null
drop_db "$db"
echo "ok"
