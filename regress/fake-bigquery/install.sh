#!/bin/sh
# install.sh - the fake BigQuery's npm dependencies, from package-lock.json.
#
# Usage: regress/fake-bigquery/install.sh [--check]
#
# Without arguments (scripts/deps.sh test, make check's deps step, runs it):
# installs them with `npm ci`, only when node_modules is missing or was
# installed from another lock file.  It first asks the npm registry whether
# it is there (`npm ping`, no retries, 15 s at most) and fails at once, with
# one message, when it cannot be reached.
#
# With --check (the tests run this): installs nothing, needs no network;
# fails with a message naming the command to run when they are missing or
# stale.
#
# Needs node 18 or newer and npm (scripts/deps.sh test installs Debian's).
# Safe to run from several processes at once (serialized with flock).
set -eu
cd "$(dirname "$0")"
me="regress/fake-bigquery/install.sh"

check=0
case "${1:-}" in
	"") ;;
	--check) check=1 ;;
	*) echo "usage: $me [--check]" >&2; exit 2 ;;
esac

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
	echo "$me: node and npm are missing: run scripts/deps.sh test (as root)" >&2
	exit 1
fi
major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$major" -lt 18 ]; then
	echo "$me: node $(node --version) is too old, need 18 or newer" >&2
	exit 1
fi

want=$(sha256sum package-lock.json | cut -d' ' -f1)
stamp=node_modules/.fake-bigquery-lock.sha256

installed() {
	[ -d node_modules ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]
}

if [ "$check" -eq 1 ]; then
	installed && exit 0
	echo "$me: the fake BigQuery's npm packages are not installed (or are from another package-lock.json): run scripts/deps.sh test (make check does)" >&2
	exit 1
fi

if command -v flock >/dev/null 2>&1; then
	lock=${TMPDIR:-/tmp}/fake-bigquery-install.$(id -u).lock
	exec 9>"$lock"
	flock 9
fi
installed && exit 0

registry=$(npm config get registry 2>/dev/null || echo "the npm registry")
if ! npm ping --fetch-retries=0 --fetch-timeout=15000 >/tmp/fake-bigquery-npm-ping.$$ 2>&1; then
	echo "$me: cannot reach the npm registry ($registry): make check needs it once, to install the fake BigQuery's packages ($(grep -m1 -i 'err' /tmp/fake-bigquery-npm-ping.$$ | sed 's/^npm \(ERR!\|error\) *//'))" >&2
	rm -f /tmp/fake-bigquery-npm-ping.$$
	exit 1
fi
rm -f /tmp/fake-bigquery-npm-ping.$$

echo "$me: npm ci (the fake BigQuery's packages, from $registry)" >&2
rm -f "$stamp"
npm ci --no-audit --no-fund --loglevel=error >&2
echo "$want" >"$stamp"
