#!/bin/sh
# 40-fake-bigquery.sh - the fake BigQuery's own faithfulness tests
# (regress/fake-bigquery/test/, node's test runner): Google's Node clients
# (@google-cloud/bigquery-storage managedwriter, @google-cloud/bigquery)
# against the fake, CDC semantics, every fault type, the routing header
# check, schema evolution and the request size limit.
#
# Needs no PostgreSQL. The npm dependencies are installed by the deps step
# (regress/fake-bigquery/install.sh); this only checks they are there.
# Exits non-zero on failure.
set -eu

top=$(cd "$(dirname "$0")/../.." && pwd)
fake="$top/regress/fake-bigquery"

"$fake/install.sh" --check

cd "$fake"
# Keep Google's auth library from probing the GCE metadata server.
export METADATA_SERVER_DETECTION=none
if [ -n "${DSPLUG_TEST_TMP:-}" ]; then
	TMPDIR="$DSPLUG_TEST_TMP"
	export TMPDIR
fi
timeout 300 node --test test/*.test.js
