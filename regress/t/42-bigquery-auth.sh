#!/bin/sh
# 42-bigquery-auth.sh - Google credentials of the BigQuery target
# (consumer/sinks/bigquery/bigquery_auth.c) against the fake BigQuery's OAuth token
# endpoint and metadata server (regress/fake-bigquery/lib/oauth.js):
#
#  - a service-account key: a signed JWT exchanged at token_uri, the token
#    accepted by the fake's REST API, renewed before it expires (two
#    distinct tokens; the fake refuses expired ones), one refresh for many
#    threads, transient endpoint failures retried;
#  - an authorized_user file (refresh token grant);
#  - the metadata server (GCE_METADATA_HOST), and a clear error without one;
#  - an explicit token file, rotated while in use;
#  - bad keys, unsupported credential types, Google's 4xx errors and
#    unreachable endpoints end with one clear line and exit code 3;
#  - dsplug-consumer itself streaming into the fake with a service-account
#    key and 4-second tokens: after its token expired and its AppendRows
#    call was cut, it carries on with a fresh token;
#  - no token, key, refresh token, client secret or assertion in any output.
#
# Drives bq_auth_* through consumer/test_bigquery_auth (make test-programs),
# which prints a SHA-256 fingerprint of each token, never the token.
set -eu
. regress/t/lib.sh
. regress/t/lib/consumer.sh

T=${DSPLUG_TEST_TMP:?}
fake_dir=$(pwd)/regress/fake-bigquery

make -s -C consumer test-programs >/dev/null || fail "make -C consumer test-programs failed"
DRIVER=$(pwd)/consumer/test_bigquery_auth
"$fake_dir/install.sh" --check

# --- the fake
node "$fake_dir/server.js" --grpc-port 0 --http-port 0 >"$T/fake.out" 2>"$T/fake.err" &
fake_pid=$!
trap 'kill "$fake_pid" 2>/dev/null || true' EXIT
for _ in $(seq 1200); do
	grep -q '^fake-bigquery ready' "$T/fake.out" 2>/dev/null && break
	kill -0 "$fake_pid" 2>/dev/null || fail "the fake did not start: $(cat "$T/fake.err")"
	sleep 0.1
done
HTTP=$(sed -n 's/^fake-bigquery ready grpc=[0-9]* http=\([0-9]*\)$/\1/p' "$T/fake.out")
[ -n "$HTTP" ] || fail "the fake is not ready"
BASE="http://127.0.0.1:$HTTP"
REST_URL="$BASE/bigquery/v2/projects/p/datasets/none"	# 404 once authenticated

# ctl METHOD PATH [JSON]: the fake's control API
ctl() {
	curl -sS -f -X "$1" -H 'Content-Type: application/json' ${3:+--data "$3"} "$BASE/_fake$2" ||
		fail "control request $1 $2 failed"
}

# fp TOKEN: the fingerprint the driver prints
fp() {
	printf %s "$1" | sha256sum | cut -c1-16
}

# json EXPR: evaluate a Python expression over the JSON on stdin (as j)
json() {
	python3 -c "import json,sys; j=json.load(sys.stdin); print($1)"
}

# run_driver NAME ARGS...: the driver, output in $T/NAME.out/.err; fails
# unless it exits 0
run_driver() {
	_name=$1
	shift
	"$DRIVER" "$@" >"$T/$_name.out" 2>"$T/$_name.err" ||
		fail "$_name: the driver exited with $? ($(cat "$T/$_name.err"))"
}

# expect_error NAME CODE PATTERN ARGS...: the driver fails with CODE and a
# one-line message matching PATTERN
expect_error() {
	_name=$1 _code=$2 _pattern=$3
	shift 3
	set +e
	"$DRIVER" "$@" >"$T/$_name.out" 2>"$T/$_name.err"
	_rc=$?
	set -e
	[ "$_rc" -eq "$_code" ] || fail "$_name: expected exit $_code, got $_rc ($(cat "$T/$_name.err"))"
	_last=$(grep -v '^dsplug-consumer: warning:' "$T/$_name.err" || true)
	[ "$(printf '%s\n' "$_last" | wc -l)" -eq 1 ] || fail "$_name: expected one error line, got: $_last"
	printf '%s\n' "$_last" | grep -q -- "$_pattern" ||
		fail "$_name: expected \"$_pattern\" in: $_last"
	echo "$_name: exit $_rc: $_last"
}

# wait_for FILE PATTERN: until a line of FILE matches (120 s at most)
wait_for() {
	for _ in $(seq 1200); do
		grep -q -- "$2" "$1" 2>/dev/null && return 0
		sleep 0.1
	done
	fail "timed out waiting for \"$2\" in $(basename "$1"): $(tail -n 3 "$1")"
}

# distinct NAME: how many distinct tokens the driver saw
distinct() {
	sed -n 's/^token [0-9]*: \([0-9a-f]*\).*/\1/p' "$T/$1.out" | sort -u | wc -l
}

# all_accepted NAME: every use of a token got past the fake's auth (404)
all_accepted() {
	_n=$(grep -c '^token ' "$T/$1.out")
	[ "$_n" -ge 1 ] || fail "$1: no tokens"
	[ "$(grep -c '^token .* http 404$' "$T/$1.out")" -eq "$_n" ] ||
		fail "$1: a token was refused: $(grep -v 'http 404$' "$T/$1.out" | tr '\n' ' ')"
}

# --- keys
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$T/sa.pem" 2>/dev/null
openssl pkey -in "$T/sa.pem" -pubout -out "$T/sa.pub"
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$T/other.pem" 2>/dev/null
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$T/ec.pem" 2>/dev/null
EMAIL=dsplug-test@p.iam.gserviceaccount.com
SECRET_SAMPLE=$(sed -n 5p "$T/sa.pem")	# a line of the private key

# keyfile OUT TYPE [KEY_PEM [TOKEN_URI [EMAIL]]]: a Google credentials file
keyfile() {
	python3 - "$@" <<'PY'
import json, sys
out, kind = sys.argv[1], sys.argv[2]
pem = open(sys.argv[3]).read() if len(sys.argv) > 3 and sys.argv[3] else None
uri = sys.argv[4] if len(sys.argv) > 4 else None
email = sys.argv[5] if len(sys.argv) > 5 else "dsplug-test@p.iam.gserviceaccount.com"
k = {"type": kind}
if kind == "service_account":
    k.update(project_id="p", private_key_id="key-1", private_key=pem,
             client_email=email, client_id="1234")
    if uri:
        k["token_uri"] = uri
elif kind == "authorized_user":
    k.update(client_id="cid.apps.googleusercontent.com",
             client_secret="client-secret-XYZZY", refresh_token="1//refresh-PLUGH")
    if uri:
        k["token_uri"] = uri
json.dump(k, open(out, "w"), indent=2)
PY
}

ctl POST /oauth "$(python3 -c '
import json, sys
print(json.dumps({"serviceAccounts": [{"clientEmail": sys.argv[1], "keyId": "key-1",
                  "publicKey": open(sys.argv[2]).read()}],
                  "users": [{"clientId": "cid.apps.googleusercontent.com",
                             "clientSecret": "client-secret-XYZZY", "refreshToken": "1//refresh-PLUGH"}],
                  "expiresIn": 4, "issuedOnly": True}))' "$EMAIL" "$T/sa.pub")" >/dev/null

keyfile "$T/sa.json" service_account "$T/sa.pem" "$BASE/token"
# nothing falls back to a metadata server by accident
export GCE_METADATA_HOST=127.0.0.1:1
unset GOOGLE_APPLICATION_CREDENTIALS || true

# --- service account: token used, renewed before expiry (4 s tokens,
# renewed at half-life); expired tokens would get 401 from the fake
GOOGLE_APPLICATION_CREDENTIALS="$T/sa.json" run_driver sa --count 7 --interval-ms 1000 --url "$REST_URL"
expect_line "$T/sa.out" 1 "auth: service account $EMAIL (key file $T/sa.json)"
all_accepted sa
n=$(distinct sa)
[ "$n" -ge 2 ] || fail "sa: expected the token to be renewed, saw $n distinct token(s)"
issued=$(ctl GET /oauth | json "' '.join(t['token'] for t in j['issued'] if t['via'] == 'jwt')")
for tok in $issued; do
	grep -q "^token [0-9]*: $(fp "$tok") http 404$" "$T/sa.out" || fail "sa: issued token not used"
done
[ "$(echo "$issued" | wc -w)" -eq "$n" ] || fail "sa: $n tokens used but $(echo "$issued" | wc -w) issued"
# renewed ahead of expiry: each token issued at least 1 s before the last expired
early=$(ctl GET /oauth | json "min([(__import__('datetime').datetime.fromisoformat(a['expires'][:-1]) - __import__('datetime').datetime.fromisoformat(b['issued'][:-1])).total_seconds() for a, b in zip([t for t in j['issued'] if t['via'] == 'jwt'], [t for t in j['issued'] if t['via'] == 'jwt'][1:])])")
python3 -c "import sys; sys.exit(0 if float(sys.argv[1]) >= 1.0 else 1)" "$early" ||
	fail "sa: a token was renewed only $early s before the previous one expired"
echo "# sa: $(grep -c '^token' "$T/sa.out") calls over 6 s, $n distinct 4-second tokens, all accepted, each renewed $early s or more before expiry"

# --- many threads share one refresh
before=$(ctl GET /oauth | json "len(j['issued'])")
GOOGLE_APPLICATION_CREDENTIALS="$T/sa.json" run_driver threads --threads 8 --count 6 --interval-ms 500 --url "$REST_URL"
all_accepted threads
[ "$(grep -c '^token' "$T/threads.out")" -eq 48 ] || fail "threads: expected 48 tokens"
new=$(( $(ctl GET /oauth | json "len(j['issued'])") - before ))
[ "$new" -ge 2 ] && [ "$new" -le 4 ] || fail "threads: expected 2 to 4 tokens issued for 8 threads over 2.5 s, got $new"
echo "# threads: 8 threads x 6 calls over 2.5 s: $new tokens issued"

# --- transient failures are retried; Google's 4xx errors are final
ctl POST /oauth '{"fail": {"times": 2, "status": 503}}' >/dev/null
GOOGLE_APPLICATION_CREDENTIALS="$T/sa.json" run_driver retry --url "$REST_URL"
all_accepted retry
[ "$(grep -c 'warning: could not obtain access token from .*/token: HTTP 503: temporarily_unavailable: .*retrying in' "$T/retry.err")" -eq 2 ] ||
	fail "retry: expected two retry warnings: $(cat "$T/retry.err")"
ctl POST /oauth '{"fail": {"times": 1, "status": 429, "error": "rate_limit_exceeded", "description": "slow down"}}' >/dev/null
GOOGLE_APPLICATION_CREDENTIALS="$T/sa.json" run_driver retry429
ctl POST /oauth '{"fail": {"times": 9, "status": 500, "error": "internal_failure", "description": "oops"}}' >/dev/null
GOOGLE_APPLICATION_CREDENTIALS="$T/sa.json" expect_error gives-up 3 \
	"could not obtain access token from $BASE/token: HTTP 500: internal_failure: oops" 
[ "$(grep -c 'retrying in' "$T/gives-up.err")" -eq 3 ] || fail "gives-up: expected 3 retries"
ctl POST /oauth '{"fail": null}' >/dev/null

# a renewal that fails while the token still works: a warning, the token
# kept, renewal tried again a little later (8 s tokens: renewed from 4 s)
ctl POST /oauth '{"expiresIn": 8}' >/dev/null
GOOGLE_APPLICATION_CREDENTIALS="$T/sa.json" "$DRIVER" --count 12 --interval-ms 500 --url "$REST_URL" \
	>"$T/keep.out" 2>"$T/keep.err" &
driver_pid=$!
wait_for "$T/keep.out" "^token 1: "
ctl POST /oauth '{"fail": {"times": 1, "status": 503}}' >/dev/null
wait "$driver_pid" || fail "keep: the driver exited with $? ($(cat "$T/keep.err"))"
ctl POST /oauth '{"expiresIn": 4}' >/dev/null
all_accepted keep
[ "$(distinct keep)" -eq 2 ] || fail "keep: expected 2 distinct tokens, got $(distinct keep)"
[ "$(grep -c 'warning: could not obtain access token from .*: HTTP 503: .*; the current access token is valid for [0-9]* more seconds$' "$T/keep.err")" -eq 1 ] ||
	fail "keep: expected one warning: $(cat "$T/keep.err")"
grep -q 'retrying in' "$T/keep.err" && fail "keep: callers held up by backoff while the token works"

keyfile "$T/wrong-key.json" service_account "$T/other.pem" "$BASE/token"
GOOGLE_APPLICATION_CREDENTIALS="$T/wrong-key.json" expect_error wrong-key 3 \
	"could not obtain access token from $BASE/token: HTTP 400: invalid_grant: Invalid JWT Signature."
[ "$(grep -c 'retrying' "$T/wrong-key.err")" -eq 0 ] || fail "wrong-key: a 400 was retried"
keyfile "$T/unknown.json" service_account "$T/sa.pem" "$BASE/token" nobody@p.iam.gserviceaccount.com
GOOGLE_APPLICATION_CREDENTIALS="$T/unknown.json" expect_error unknown-account 3 \
	"HTTP 400: invalid_grant: Invalid grant: account not found"

# --- bad key files
GOOGLE_APPLICATION_CREDENTIALS="$T/missing.json" expect_error missing-file 3 \
	"could not read Google credentials file \"$T/missing.json\" (GOOGLE_APPLICATION_CREDENTIALS): No such file or directory"
printf '{"type": "service_account", "private_key": "%s' "$SECRET_SAMPLE" >"$T/truncated.json"
GOOGLE_APPLICATION_CREDENTIALS="$T/truncated.json" expect_error not-json 3 \
	"could not parse Google credentials file \"$T/truncated.json\" (GOOGLE_APPLICATION_CREDENTIALS): not valid JSON"
keyfile "$T/external.json" external_account
GOOGLE_APPLICATION_CREDENTIALS="$T/external.json" expect_error external-account 3 \
	"could not use Google credentials file \"$T/external.json\": credentials of type \"external_account\" are not supported"
keyfile "$T/impersonated.json" impersonated_service_account
GOOGLE_APPLICATION_CREDENTIALS="$T/impersonated.json" expect_error impersonated 3 \
	"type \"impersonated_service_account\" are not supported"
echo '{"client_email": "x@y"}' >"$T/notype.json"
GOOGLE_APPLICATION_CREDENTIALS="$T/notype.json" expect_error no-type 3 "it has no \"type\""
printf 'not a key\n' >"$T/garbage.pem"
keyfile "$T/garbage.json" service_account "$T/garbage.pem" "$BASE/token"
GOOGLE_APPLICATION_CREDENTIALS="$T/garbage.json" expect_error garbage-key 3 \
	"could not use service account key \"$T/garbage.json\": \"private_key\" is not a PEM private key"
keyfile "$T/ec.json" service_account "$T/ec.pem" "$BASE/token"
GOOGLE_APPLICATION_CREDENTIALS="$T/ec.json" expect_error ec-key 3 "is not an RSA key"
keyfile "$T/nokey.json" service_account "" "$BASE/token"
GOOGLE_APPLICATION_CREDENTIALS="$T/nokey.json" expect_error no-private-key 3 \
	"\"client_email\" or \"private_key\" is missing"
keyfile "$T/plain-http.json" service_account "$T/sa.pem" "http://oauth.example.com/token"
GOOGLE_APPLICATION_CREDENTIALS="$T/plain-http.json" expect_error plain-http 3 \
	"token_uri \"http://oauth.example.com/token\" is neither https nor http on loopback"

# --- unreachable token endpoint: retried, then a clear error
keyfile "$T/unreachable.json" service_account "$T/sa.pem" "http://127.0.0.1:1/token"
GOOGLE_APPLICATION_CREDENTIALS="$T/unreachable.json" expect_error unreachable 3 \
	"could not obtain access token from http://127.0.0.1:1/token: .*[Cc]onnect"
[ "$(grep -c 'retrying in' "$T/unreachable.err")" -eq 3 ] || fail "unreachable: expected 3 retries"

# --- authorized_user (gcloud application-default credentials)
keyfile "$T/user.json" authorized_user "" "$BASE/token"
GOOGLE_APPLICATION_CREDENTIALS="$T/user.json" run_driver user --url "$REST_URL"
expect_line "$T/user.out" 1 "auth: user credentials (authorized_user file $T/user.json)"
all_accepted user
ctl GET /oauth | json "[t['via'] for t in j['issued']][-1]" | grep -qx refresh_token ||
	fail "user: no refresh_token grant seen"

# --- the metadata server
GCE_METADATA_HOST=127.0.0.1:$HTTP run_driver metadata --count 6 --interval-ms 1000 --url "$REST_URL"
expect_line "$T/metadata.out" 1 "auth: default service account of the metadata server 127.0.0.1:$HTTP"
all_accepted metadata
[ "$(distinct metadata)" -ge 2 ] || fail "metadata: expected the token to be renewed"
echo "# metadata: $(distinct metadata) distinct tokens over 5 s"
ctl POST /oauth '{"metadata": false}' >/dev/null
GCE_METADATA_HOST=127.0.0.1:$HTTP expect_error metadata-404 3 \
	"could not obtain access token from http://127.0.0.1:$HTTP/computeMetadata/v1/instance/service-accounts/default/token: HTTP 404"
ctl POST /oauth '{"metadata": true}' >/dev/null
GCE_METADATA_HOST=127.0.0.1:1 expect_error no-credentials 3 \
	"could not obtain access token: no credentials: set GOOGLE_APPLICATION_CREDENTIALS, use --bigquery-token-file, or run on Google Cloud"
# the metadata server is asked only when no key file is named
GCE_METADATA_HOST=127.0.0.1:$HTTP GOOGLE_APPLICATION_CREDENTIALS="$T/sa.json" run_driver precedence
expect_line "$T/precedence.out" 1 "auth: service account $EMAIL (key file $T/sa.json)"

# --- an explicit token file, rotated while in use; it wins over the rest
ctl POST /oauth '{"issuedOnly": false}' >/dev/null
TOKEN_A=file-token-AAAA-$$
TOKEN_B=file-token-BBBB-$$
TOKEN_C=file-token-CCCC-$$
printf '  %s\n\n' "$TOKEN_A" >"$T/token"
GOOGLE_APPLICATION_CREDENTIALS="$T/sa.json" "$DRIVER" --token-file "$T/token" --count 80 --interval-ms 100 \
	>"$T/file.out" 2>"$T/file.err" &
driver_pid=$!
wait_for "$T/file.out" "^token [0-9]*: $(fp "$TOKEN_A")$"
printf '%s\n' "$TOKEN_B" >"$T/token.new"
mv "$T/token.new" "$T/token"			# atomic rotation
wait_for "$T/file.out" "^token [0-9]*: $(fp "$TOKEN_B")$"
: >"$T/token"							# caught half-way through an in-place rewrite
wait_for "$T/file.err" "the file is empty; keeping the token read before"
sleep 0.5
printf '%s' "$TOKEN_C" >"$T/token"
wait_for "$T/file.out" "^token [0-9]*: $(fp "$TOKEN_C")$"
wait "$driver_pid" || fail "file: the driver exited with $? ($(cat "$T/file.err"))"
expect_line "$T/file.out" 1 "auth: access token file $T/token"
expect_line "$T/file.out" 2 "token 1: $(fp "$TOKEN_A")"
seen=$(sed -n 's/^token [0-9]*: //p' "$T/file.out" | uniq | tr '\n' ' ')
[ "$seen" = "$(fp "$TOKEN_A") $(fp "$TOKEN_B") $(fp "$TOKEN_C") " ] ||
	fail "file: expected tokens A, B, C in turn, got $seen"
[ "$(grep -c "warning: could not read access token file \"$T/token\": the file is empty; keeping the token read before" "$T/file.err")" -eq 1 ] ||
	fail "file: expected one warning for the emptied file: $(cat "$T/file.err")"
grep -q "access token file $T/token changed: using the new token" "$T/file.err" ||
	fail "file: rotation not logged"
: >"$T/empty"
expect_error empty-token-file 3 "could not read access token file \"$T/empty\": the file is empty" --token-file "$T/empty"
expect_error missing-token-file 3 "could not read access token file \"$T/nope\": No such file or directory" --token-file "$T/nope"
printf 'two words\n' >"$T/two"
expect_error two-word-token-file 3 "the file holds more than one word" --token-file "$T/two"

# --- no credentials at all
run_driver none --no-auth --count 2
expect_line "$T/none.out" 1 "auth: no credentials (--bigquery-no-auth)"
expect_line "$T/none.out" 2 "token 1: none"

# --- the consumer's command line
consumer/dsplug-consumer --help >"$T/help.txt"
grep -q -- '--bigquery-token-file=FILE' "$T/help.txt" || fail "--help lacks --bigquery-token-file"
grep -q -- '--bigquery-no-auth' "$T/help.txt" || fail "--help lacks --bigquery-no-auth"
set +e
consumer/dsplug-consumer --target x --bigquery-no-auth --bigquery-token-file "$T/token" 2>"$T/both.err"
rc=$?
set -e
[ "$rc" -eq 2 ] && grep -q 'cannot be combined' "$T/both.err" || fail "both auth options: exit $rc"

# --- the consumer: a service account with 4-second tokens, REST and gRPC
db=dsplug_t42
recreate_db "$db"
q "$db" <<'SQL'
CREATE TABLE t (id int PRIMARY KEY, v text);
CREATE PUBLICATION p FOR TABLE t;
SELECT 'slot' FROM pg_create_logical_replication_slot('t42', 'dsplug');
SQL
ctl POST /oauth '{"expiresIn": 4, "issuedOnly": true}' >/dev/null
ctl DELETE /tokens >/dev/null
GRPC=$(sed -n 's/^fake-bigquery ready grpc=\([0-9]*\) .*/\1/p' "$T/fake.out")
rows() {
	curl -sS "$BASE/_fake/tables/proj/d42/t/rows" 2>/dev/null | json "len(j.get('rows', []))" 2>/dev/null || echo 0
}
wait_rows() {
	for _ in $(seq 150); do
		[ "$(rows)" -eq "$1" ] && return 0
		kill -0 "$consumer_pid" 2>/dev/null || fail "the consumer died: $(tail -n 3 "$T/consumer.err")"
		sleep 0.1
	done
	fail "the fake holds $(rows) rows, expected $1: $(tail -n 3 "$T/consumer.err")"
}
GOOGLE_APPLICATION_CREDENTIALS="$T/sa.json" "$CONSUMER" --dbname "dbname=$db" --slot t42 --publication p \
	--target 'bigquery://proj/d42?location=EU' --bigquery-endpoint "127.0.0.1:$GRPC" \
	--bigquery-rest-endpoint "$BASE" --bigquery-plaintext --status-interval 0 --group-ms 50 \
	>"$T/consumer.out" 2>"$T/consumer.err" &
consumer_pid=$!
trap 'kill "$fake_pid" 2>/dev/null || true; kill -KILL "$consumer_pid" 2>/dev/null || true' EXIT
q "$db" -c "INSERT INTO t VALUES (1, 'before')"
wait_rows 1
sleep 5									# the first token has expired
ctl POST /faults '{"type": "unavailable"}' >/dev/null
q "$db" -c "INSERT INTO t VALUES (2, 'after')"
wait_rows 2
kill -TERM "$consumer_pid"
wait "$consumer_pid" || fail "the consumer exited with $? after SIGTERM: $(tail -n 3 "$T/consumer.err")"
grep -q "service account $EMAIL (key file $T/sa.json)" "$T/consumer.err" ||
	fail "the consumer does not say where its credentials come from: $(head -n 3 "$T/consumer.err")"
used=$(ctl GET /tokens | json "sum(1 for t in j['tokens'] if t['grpc'] > 0 and t['accepted'] > 0)")
[ "$used" -ge 2 ] || fail "the consumer wrote with $used accepted token(s), expected a fresh one after expiry"
echo "# consumer: streamed with $used successive service-account tokens (4 s each) over AppendRows, REST calls too: $(ctl GET /tokens | json "sum(t['rest'] for t in j['tokens'])")"

# --- no secret anywhere: every token issued, the file tokens, the private
# key, the user's secrets, and JWTs (base64url JSON starts "eyJ")
ctl GET /oauth | json "'\n'.join(t['token'] for t in j['issued'])" >"$T/issued.txt"
total=$(wc -l <"$T/issued.txt")
[ "$total" -ge 8 ] || fail "expected at least 8 issued tokens, got $total"
printf '%s\n' "$TOKEN_A" "$TOKEN_B" "$TOKEN_C" "$SECRET_SAMPLE" client-secret-XYZZY refresh-PLUGH eyJ >>"$T/issued.txt"
outputs=$(ls "$T"/*.out "$T"/*.err)
# (name the files, not the secret)
if leaks=$(grep -l -F -f "$T/issued.txt" $outputs); then
	fail "a secret was printed in: $(echo $leaks)"
fi
echo "# no secret in $(echo "$outputs" | wc -w) output files ($total issued tokens, 3 file tokens, key, client secret, refresh token, JWTs)"
