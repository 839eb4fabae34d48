#!/bin/sh
# 06-plugin-progress.sh - a long transaction whose changes are all filtered
# out keeps the walsender alive: the plugin reports progress while it
# skips changes (as pgoutput does on PostgreSQL 15), so the walsender keeps
# answering the client and does not hit wal_sender_timeout.
set -eu
. regress/t/lib.sh

db=dsplug_t06
recreate_db "$db"
q() { psql -X -q -At -v ON_ERROR_STOP=1 -d "$db" "$@"; }

q <<SQL
CREATE TABLE published (id integer PRIMARY KEY);
CREATE TABLE unpublished (id integer, payload text);
CREATE PUBLICATION prog_pub FOR TABLE published;
SELECT 'init' FROM pg_create_logical_replication_slot('prog_slot', 'dsplug');
ALTER SYSTEM SET wal_sender_timeout = '2s';
SELECT pg_reload_conf();
INSERT INTO unpublished SELECT g, md5(g::text) FROM generate_series(1, 1500000) g;
INSERT INTO published VALUES (1);
SQL
end_lsn=$(q -c "SELECT pg_current_wal_lsn()")

# Decoding the big transaction takes several times wal_sender_timeout;
# pg_recvlogical answers every keepalive request.  (2 s rather than less:
# the walsender asks for a reply at half the timeout, and a loaded machine
# must still be able to answer within the other half.)  Only this test's
# part of the server log is searched for timeouts.
log_start=$(($(wc -c <"$DSPLUG_TEST_DIR/server.log") + 1))
start=$(date +%s)
if ! pg_recvlogical -d "$db" -S prog_slot --start -E "$end_lsn" --no-loop \
	-o publication_names=prog_pub -f "$DSPLUG_TEST_TMP/out.bin" 2>"$DSPLUG_TEST_TMP/recv.err"; then
	cat "$DSPLUG_TEST_TMP/recv.err" >&2
	q -c "ALTER SYSTEM RESET wal_sender_timeout" -c "SELECT pg_reload_conf()" >/dev/null
	fail "pg_recvlogical did not reach the end of the filtered transaction"
fi
elapsed=$(( $(date +%s) - start ))
q -c "ALTER SYSTEM RESET wal_sender_timeout" -c "SELECT pg_reload_conf()" >/dev/null
echo "# 1.5M filtered changes streamed in ${elapsed}s with wal_sender_timeout = 2s"
[ -s "$DSPLUG_TEST_TMP/out.bin" ] || fail "the published insert was not streamed"
if tail -c "+$log_start" "$DSPLUG_TEST_DIR/server.log" |
	grep -q "terminating walsender process due to replication timeout"; then
	fail "a walsender timed out"
fi

q -c "SELECT pg_drop_replication_slot('prog_slot')" >/dev/null
drop_db "$db"
echo ok
