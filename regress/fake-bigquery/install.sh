#!/bin/sh
# Installs fake-bigquery's npm dependencies from package-lock.json with
# `npm ci`, only when node_modules is missing or was installed from another
# lock file. Installs Debian's nodejs and npm first if node is missing.
# Safe to run from several tests at once (serialized with flock).
set -eu
cd "$(dirname "$0")"

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    if ! command -v apt-get >/dev/null 2>&1; then
        echo "fake-bigquery/install.sh: node and npm are missing and apt-get is not available" >&2
        exit 1
    fi
    echo "fake-bigquery/install.sh: installing nodejs and npm from Debian" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >&2
fi

major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$major" -lt 18 ]; then
    echo "fake-bigquery/install.sh: node $(node --version) is too old, need 18 or newer" >&2
    exit 1
fi

install_deps() {
    want=$(sha256sum package-lock.json | cut -d' ' -f1)
    stamp=node_modules/.fake-bigquery-lock.sha256
    if [ -d node_modules ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
        return 0
    fi
    echo "fake-bigquery/install.sh: npm ci" >&2
    npm ci --no-audit --no-fund >&2
    echo "$want" > "$stamp"
}

if command -v flock >/dev/null 2>&1; then
    lock=${TMPDIR:-/tmp}/fake-bigquery-install.$(id -u).lock
    exec 9>"$lock"
    flock 9
fi
install_deps
