# lib.sh - helpers for regress/t/*.sh (sourced; POSIX sh).
#
# Scripts run from the repository root with PGHOST, PGPORT, PGUSER,
# DSPLUG_TEST_DIR and DSPLUG_TEST_TMP set by regress/run.sh.

fail() {
	echo "FAIL: $*" >&2
	exit 1
}

# recreate_db NAME: a fresh database with the dsplug extension
recreate_db() {
	psql -X -q -d postgres -v ON_ERROR_STOP=1 \
		-c "DROP DATABASE IF EXISTS \"$1\" WITH (FORCE)" \
		-c "CREATE DATABASE \"$1\"" >/dev/null
	psql -X -q -d "$1" -v ON_ERROR_STOP=1 -c "CREATE EXTENSION dsplug" >/dev/null
}

# drop_db NAME (its slots must be gone)
drop_db() {
	psql -X -q -d postgres -c "DROP DATABASE IF EXISTS \"$1\" WITH (FORCE)" >/dev/null
}

# expect_line FILE N TEXT: line N of FILE is exactly TEXT
expect_line() {
	got=$(sed -n "${2}p" "$1")
	[ "$got" = "$3" ] || fail "line $2 of $(basename "$1"): expected '$3', got '$got'"
}
