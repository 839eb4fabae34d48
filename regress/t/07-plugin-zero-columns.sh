#!/bin/sh
# 07-plugin-zero-columns.sh - relations without columns on the streaming
# replication protocol (issue 10: the walsender died with SIGSEGV and the
# postmaster restarted every backend).  pg_recvlogical streams the
# reproduction through a dsplug slot: it must end normally at its end
# position, the server must not have restarted, no ERROR or crash is
# logged, and the slot moves past it.  regress/sql/zero_columns.sql checks
# the decoded rows through the SQL interface.
set -eu
. regress/t/lib.sh

db=dsplug_t07
recreate_db "$db"
q() { psql -X -q -At -v ON_ERROR_STOP=1 -d "$db" "$@"; }

started=$(q -c "SELECT pg_postmaster_start_time()")
log_lines=$(wc -l <"$DSPLUG_TEST_DIR/server.log")

q <<'SQL'
CREATE PUBLICATION p FOR ALL TABLES;
SELECT 'init' FROM pg_create_logical_replication_slot('s', 'dsplug');
CREATE TABLE one (t text);
CREATE TABLE zc ();
CREATE TABLE dropped (a integer, b text);
INSERT INTO dropped VALUES (1, 'one');
ALTER TABLE dropped DROP COLUMN a, DROP COLUMN b;
ALTER TABLE dropped REPLICA IDENTITY FULL;
BEGIN;
INSERT INTO one VALUES (repeat('x', 3000));
INSERT INTO zc DEFAULT VALUES;
INSERT INTO one VALUES (repeat('y', 100000));
INSERT INTO zc DEFAULT VALUES;
INSERT INTO dropped DEFAULT VALUES;
DELETE FROM dropped;
COMMIT;
TRUNCATE zc, dropped;
SQL
end_lsn=$(q -c "SELECT pg_current_wal_lsn()")

out="$DSPLUG_TEST_TMP/stream.bin"
pg_recvlogical -d "$db" -S s --start -E "$end_lsn" -f "$out" --no-loop \
	-o publication_names=p -o compression=none ||
	fail "pg_recvlogical failed streaming tables without columns"

[ "$(q -c "SELECT pg_postmaster_start_time()")" = "$started" ] ||
	fail "the server restarted while streaming tables without columns"
bytes=$(wc -c <"$out")
echo "# streamed $bytes bytes up to $end_lsn"
[ "$bytes" -gt 103000 ] || fail "only $bytes bytes streamed (the 100000-byte row is missing)"
confirmed=$(q -c "SELECT confirmed_flush_lsn >= '$end_lsn' FROM pg_replication_slots WHERE slot_name = 's'")
[ "$confirmed" = t ] || fail "slot not confirmed up to $end_lsn"
if tail -n +"$((log_lines + 1))" "$DSPLUG_TEST_DIR/server.log" |
	grep -E 'ERROR|PANIC|terminated by signal|invalid size' >"$DSPLUG_TEST_TMP/errors.txt"; then
	cat "$DSPLUG_TEST_TMP/errors.txt" >&2
	fail "the server logged errors while streaming tables without columns"
fi

q -c "SELECT 'drop' FROM pg_drop_replication_slot('s')" >/dev/null
drop_db "$db"
