#!/bin/sh
# 45-bigquery-protos.sh - proto/bigquery_write.proto, the subset of Google's
# protos the BigQuery target encodes and decodes with protobuf-c, has the
# names, numbers, labels and types of Google's published protos (npm's
# google-proto-files, as the fake BigQuery serves them) for every field it
# declares (regress/t/lib/check_bq_protos.js).  Needs no PostgreSQL.
set -eu
top=$(cd "$(dirname "$0")/../.." && pwd)
"$top/regress/fake-bigquery/install.sh" --check
node "$top/regress/t/lib/check_bq_protos.js" "$top/proto/bigquery_write.proto" \
	"$top/regress/fake-bigquery"
