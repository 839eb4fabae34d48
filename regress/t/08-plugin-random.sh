#!/bin/sh
# 08-plugin-random.sh - a random workload decoded by dsplug and by
# test_decoding from the same slot position must give the same changes,
# and never an ERROR (regress/t/lib/random_decode.py): tables with random
# column counts (none, and all dropped), every type the plugin encodes,
# arrays, types it sends as text, NULLs, TOAST, columns added and dropped,
# random DML in random transaction shapes.  The comparison is also shown
# to catch one changed value.
#
# The seeds are fixed, so a run is repeatable; DSPLUG_RANDOM_SEED=N runs
# seed N alone (to reproduce a failure printed here, or to explore), and
# DSPLUG_RANDOM_ROUNDS sets the workload's length.
set -eu
. regress/t/lib.sh

# only this test's part of the server log is searched for errors
log_start=$(($(wc -c <"$DSPLUG_TEST_DIR/server.log") + 1))
seeds=${DSPLUG_RANDOM_SEED:-"1 2 3"}
rounds=${DSPLUG_RANDOM_ROUNDS:-250}
for seed in $seeds; do
	db=dsplug_t08_$seed
	recreate_db "$db"
	echo "seed $seed (reproduce: DSPLUG_RANDOM_SEED=$seed regress/run.sh t/08-plugin-random.sh)"
	python3 regress/t/lib/random_decode.py --db "$db" --seed "$seed" --rounds "$rounds" \
		--sql-out "$DSPLUG_TEST_TMP/workload-$seed.sql" >"$DSPLUG_TEST_TMP/out-$seed.txt" 2>&1 ||
		{ cat "$DSPLUG_TEST_TMP/out-$seed.txt" >&2; fail "seed $seed: see above (workload in $DSPLUG_TEST_TMP/workload-$seed.sql)"; }
	sed 's/^/# /' "$DSPLUG_TEST_TMP/out-$seed.txt"
	drop_db "$db"
done
if tail -c "+$log_start" "$DSPLUG_TEST_DIR/server.log" |
	grep -E 'ERROR|PANIC|terminated by signal' >"$DSPLUG_TEST_TMP/errors.txt"; then
	cat "$DSPLUG_TEST_TMP/errors.txt" >&2
	fail "the server logged plugin errors or a crash"
fi
echo ok
