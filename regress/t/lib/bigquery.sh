# bigquery.sh - helpers for the BigQuery target tests, regress/t/4*-bigquery-*.sh
# (sourced after regress/t/lib.sh and regress/t/lib/consumer.sh; POSIX sh).
#
# start_fake starts the fake BigQuery (regress/fake-bigquery) on free
# loopback ports and sets FAKE_GRPC, FAKE_HTTP and FAKE (its base URL); the
# caller's EXIT trap calls stop_fake.  bq_consume and bq_run drive the
# consumer against it with a token file, as a client of a real project
# would (the fake accepts any non-empty bearer token and records it).

COMPARE_BQ="python3 $(pwd)/regress/t/lib/compare_bq.py"
FAKE_DIR=$(pwd)/regress/fake-bigquery
fake_pid=""

start_fake() {
	"$FAKE_DIR/install.sh" --check
	rm -f "$T/fake.out"
	node "$FAKE_DIR/server.js" --grpc-port 0 --http-port 0 --no-rate-limit "$@" \
		>"$T/fake.out" 2>"$T/fake.err" &
	fake_pid=$!
	for _i in $(seq 1 1200); do
		grep -q "^fake-bigquery ready" "$T/fake.out" 2>/dev/null && break
		kill -0 "$fake_pid" 2>/dev/null || fail "the fake BigQuery did not start: $(cat "$T/fake.err")"
		sleep 0.1
	done
	FAKE_GRPC=$(sed -n 's/^fake-bigquery ready grpc=\([0-9]*\) http=.*/\1/p' "$T/fake.out")
	FAKE_HTTP=$(sed -n 's/^fake-bigquery ready grpc=[0-9]* http=\([0-9]*\).*/\1/p' "$T/fake.out")
	[ -n "$FAKE_GRPC" ] && [ -n "$FAKE_HTTP" ] || fail "the fake BigQuery did not report its ports"
	FAKE="http://127.0.0.1:$FAKE_HTTP"
	echo "ya29.test-token-$$" >"$T/token"
}

stop_fake() {
	if [ -n "$fake_pid" ]; then
		kill "$fake_pid" 2>/dev/null || true
		wait "$fake_pid" 2>/dev/null || true
		fake_pid=""
	fi
}

# The options that point the consumer at the fake.
bq_options() {
	echo "--bigquery-endpoint 127.0.0.1:$FAKE_GRPC --bigquery-rest-endpoint $FAKE --bigquery-plaintext --bigquery-token-file $T/token"
}

# bq_consume DB SLOT PUBS TARGET_URI [OPTION...]: run the consumer up to the
# current WAL position (--endpos); fails the test unless it exits 0.
bq_consume() {
	_db=$1 _slot=$2 _pubs=$3 _uri=$4
	shift 4
	_end=$(current_lsn "$_db")
	# shellcheck disable=SC2046
	"$CONSUMER" --dbname "dbname=$_db" --slot "$_slot" --publication "$_pubs" \
		--target "$_uri" $(bq_options) --endpos "$_end" --status-interval 0 "$@" \
		2>>"$T/consumer.log" ||
		fail "dsplug-consumer exited with $? (slot $_slot, up to $_end): $(tail -n 3 "$T/consumer.log")"
}

# bq_compare DB DATASET ARGS...: the dataset equals the source (compare_bq.py
# arguments), project "proj"
bq_compare() {
	_db=$1 _ds=$2
	shift 2
	if $COMPARE_BQ --db "$_db" --fake "$FAKE" --project proj --dataset "$_ds" "$@" \
		>"$T/compare.out" 2>&1; then
		sed 's/^/# /' "$T/compare.out"
	else
		cat "$T/compare.out" >&2
		fail "dataset $_ds differs from database $_db"
	fi
}

# fake_get PATH: GET a control API path of the fake, JSON on stdout
fake_get() {
	curl -sf "$FAKE$1"
}

# fake_post PATH JSON
fake_post() {
	curl -sf -X POST -H 'Content-Type: application/json' -d "$2" "$FAKE$1" >/dev/null ||
		fail "the fake refused POST $1 $2"
}

# json_get EXPR: evaluate a Python expression on the JSON document on stdin (d)
json_get() {
	python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"
}
