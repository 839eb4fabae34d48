# consumer.sh - helpers for the dsplug-consumer tests, regress/t/2*-consumer-*.sh
# (sourced after regress/t/lib.sh; POSIX sh).
#
# The consumer under test is $DSPLUG_TEST_CONSUMER if set (a sanitizer
# build, say), else the one just built (consumer/dsplug-consumer), else the
# one installed on PATH.

if [ -n "${DSPLUG_TEST_CONSUMER:-}" ]; then
	CONSUMER=$DSPLUG_TEST_CONSUMER
elif [ -x consumer/dsplug-consumer ]; then
	CONSUMER=$(pwd)/consumer/dsplug-consumer
else
	CONSUMER=$(command -v dsplug-consumer) || fail "dsplug-consumer is not built or installed"
fi
COMPARE="python3 $(pwd)/regress/t/lib/compare.py"
T=$DSPLUG_TEST_TMP

# q DB SQL...: run SQL in DB, unaligned, tuples only, stop on error
q() {
	_db=$1
	shift
	psql -X -q -At -v ON_ERROR_STOP=1 -d "$_db" "$@"
}

# current_lsn DB
current_lsn() {
	q "$1" -c "SELECT pg_current_wal_lsn()"
}

# consume DB SLOT PUBS SQLITE [OPTION...]: run the consumer up to the
# current WAL position (--endpos); fails the test unless it exits 0.
consume() {
	_db=$1 _slot=$2 _pubs=$3 _lite=$4
	shift 4
	_end=$(current_lsn "$_db")
	"$CONSUMER" --dbname "dbname=$_db" --slot "$_slot" --publication "$_pubs" \
		--target "sqlite:$_lite" --endpos "$_end" --status-interval 0 "$@" ||
		fail "dsplug-consumer exited with $? (slot $_slot, up to $_end)"
}

# compare DB SQLITE ARGS...: replica equals source (compare.py arguments)
compare() {
	_db=$1 _lite=$2
	shift 2
	if $COMPARE --db "$_db" --sqlite "$_lite" "$@" >"$T/compare.out" 2>&1; then
		sed 's/^/# /' "$T/compare.out"
	else
		cat "$T/compare.out" >&2
		fail "replica $_lite differs from database $_db"
	fi
}

# stored_lsn SQLITE: the LSN the replica records as applied
stored_lsn() {
	sqlite3 -cmd ".timeout 5000" "$1" "SELECT lsn_text FROM _dsplug_state"
}

# slot_confirmed DB SLOT
slot_confirmed() {
	q "$1" -c "SELECT confirmed_flush_lsn FROM pg_replication_slots WHERE slot_name = '$2'"
}

# lsn_le A B: A <= B
lsn_le() {
	[ "$(q postgres -c "SELECT '$1'::pg_lsn <= '$2'::pg_lsn")" = t ]
}

# expect_exit CODE PATTERN CMD...: CMD exits with CODE and says PATTERN on stderr
expect_exit() {
	_code=$1 _pattern=$2
	shift 2
	set +e
	"$@" >"$T/expect.out" 2>"$T/expect.err"
	_rc=$?
	set -e
	[ "$_rc" -eq "$_code" ] ||
		fail "expected exit $_code, got $_rc from: $* ($(cat "$T/expect.err"))"
	grep -q -- "$_pattern" "$T/expect.err" ||
		fail "expected \"$_pattern\" in the error of: $* (got: $(cat "$T/expect.err"))"
	[ "$(wc -l <"$T/expect.err")" -ge 1 ] || fail "no message from: $*"
	echo "# exit $_rc: $(tail -n 1 "$T/expect.err")"
}
