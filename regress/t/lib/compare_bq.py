#!/usr/bin/env python3
"""compare_bq.py - does a dsplug-consumer BigQuery dataset (on the fake
BigQuery) equal its PostgreSQL source, row by row?

Usage: compare_bq.py --db DBNAME --fake http://127.0.0.1:PORT
                     --project P --dataset D [--table SCHEMA.NAME]...
                     [--publication NAMES] [--quiet]

Tables are those named with --table, or every table the publications
publish.  Each source table's BigQuery table (its name for schema public,
else schema__name) is read through the fake's control API (current rows
after CDC resolution, canonical JSON: regress/fake-bigquery/README.md).

A merge table (with a primary key) must hold exactly the source's rows.  A
change-log table (_dsplug_change_type ...) is replayed first: with a
primary key, the latest line of each key by sequence number, unless it is a
delete; without one, lines in sequence order (duplicates, at-least-once
delivery, dropped), inserts adding a row and deletes removing one equal row.

Source values are rendered into BigQuery's canonical JSON independently of
the consumer, from PostgreSQL's own text output (DateStyle ISO, TimeZone
UTC), following the mapping and policies in README.md ("BigQuery type
mapping"): numeric NaN/Infinity are NULL, date/timestamp infinities are
clamped to BigQuery's range, time 24:00:00 is 23:59:59.999999, NULL array
elements are left out and a NULL array is empty.  Exits 0 when every table
is equal, 1 with the first differences otherwise.
"""

import argparse
import base64
import json
import os
import struct
import subprocess
import sys
import urllib.request
from decimal import Decimal

PGOPTIONS = ("-c DateStyle=ISO,YMD -c TimeZone=UTC -c IntervalStyle=postgres "
             "-c extra_float_digits=1 -c bytea_output=hex -c client_encoding=UTF8")

LOG_COLUMNS = {"_dsplug_change_type", "_dsplug_sequence_number",
               "_dsplug_commit_timestamp", "_dsplug_is_deleted"}


def psql(db, sql):
    env = dict(os.environ, PGOPTIONS=PGOPTIONS)
    out = subprocess.run(["psql", "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1",
                          "-d", db, "-c", sql], env=env, check=True,
                         stdout=subprocess.PIPE).stdout
    return out.decode("utf-8")


def fetch(url):
    with urllib.request.urlopen(url) as r:
        return json.loads(r.read().decode("utf-8"))


def json_minify(text):
    out = []
    in_string = False
    i = 0
    while i < len(text):
        c = text[i]
        if in_string:
            out.append(c)
            if c == "\\":
                out.append(text[i + 1])
                i += 1
            elif c == '"':
                in_string = False
        elif c == '"':
            in_string = True
            out.append(c)
        elif c not in " \t\n\r":
            out.append(c)
        i += 1
    return "".join(out)


def frac6(t):
    """HH:MM:SS[.f] -> HH:MM:SS.ffffff"""
    if "." in t:
        a, b = t.split(".")
        return a + "." + (b + "000000")[:6]
    return t + ".000000"


def conv_float4(t):
    return canon_float(struct.unpack("f", struct.pack("f", float(t)))[0])


def canon_float(x):
    x = float(x)
    if x != x:
        return "NaN"
    if x == 0:
        return "0.0"            # JSON output does not keep -0's sign
    return repr(x)


def conv_numeric(t):
    if t in ("NaN", "Infinity", "-Infinity"):
        return None
    d = Decimal(t)
    if d == 0:
        return "0"
    s = format(d, "f")
    if "." in s:
        s = s.rstrip("0").rstrip(".")
    return s


def conv_date(t):
    if t == "infinity":
        return "9999-12-31"
    if t == "-infinity":
        return "0001-01-01"
    return t


def conv_time(t):
    if t.startswith("24:00:00"):
        return "23:59:59.999999"
    return frac6(t)


def conv_timestamp(t):
    if t == "infinity":
        return "9999-12-31T23:59:59.999999"
    if t == "-infinity":
        return "0001-01-01T00:00:00.000000"
    t = t.replace("T", " ")
    d, tm = t.split(" ")
    return d + "T" + frac6(tm)


def conv_timestamptz(t):
    if t == "infinity":
        return "9999-12-31T23:59:59.999999Z"
    if t == "-infinity":
        return "0001-01-01T00:00:00.000000Z"
    t = t.replace("T", " ")
    for suffix in ("+00:00", "+00"):
        if t.endswith(suffix):
            t = t[:-len(suffix)]
    d, tm = t.split(" ")
    return d + "T" + frac6(tm) + "Z"


def conv_interval(t):
    """'months days micros' -> BigQuery's canonical Y-M D H:M:S[.F]"""
    months, days, us = (int(x) for x in t.split(" "))
    sm = "-" if months < 0 else ""
    months = abs(months)
    su = "-" if us < 0 else ""
    us = abs(us)
    secs, f = divmod(us, 1000000)
    out = "%s%d-%d %d %s%d:%d:%d" % (sm, months // 12, months % 12, days, su,
                                     secs // 3600, secs // 60 % 60, secs % 60)
    if f:
        out += "." + ("%06d" % f).rstrip("0")
    return out


def conv_bytea(t):
    return base64.b64encode(bytes.fromhex(t[2:])).decode("ascii")


def conv_bool(t):
    return {"t": True, "f": False, "true": True, "false": False}[t]


SCALAR = {
    "int2": str, "int4": str, "int8": str,
    "float4": conv_float4, "float8": canon_float,
    "bool": conv_bool, "bytea": conv_bytea, "numeric": conv_numeric,
    "date": conv_date, "time": conv_time, "timestamp": conv_timestamp,
    "timestamptz": conv_timestamptz, "json": json_minify, "jsonb": json_minify,
    "interval": conv_interval,
}


# element types of arrays the wire carries as arrays (proto/WIRE.md)
TYPED_ELEMS = {"int2", "int4", "int8", "float4", "float8", "bool", "text",
               "varchar", "bpchar", "name", "bytea", "numeric", "date", "time",
               "timestamp", "timestamptz", "uuid", "json", "jsonb", "interval"}


def interval_expr(q):
    return ("(extract(year from %s)::bigint*12 + extract(month from %s)::bigint)::text"
            " || ' ' || extract(day from %s)::bigint::text || ' ' || "
            "((extract(hour from %s)::bigint*3600 + extract(minute from %s)::bigint*60)*1000000"
            " + extract(microseconds from %s)::bigint)::text") % ((q,) * 6)


def select_expr(col, typname, elem):
    q = '"%s"' % col.replace('"', '""')
    if typname == "interval":
        return interval_expr(q)
    if elem is not None:
        e = interval_expr("e") if elem == "interval" else "CASE WHEN e IS NOT NULL THEN format('%s', e) END"
        # arrays sent as text (several dimensions, lower bound not 1) are empty
        return ("CASE WHEN array_ndims(%s) > 1 OR array_lower(%s, 1) <> 1 THEN '[]' "
                "ELSE (SELECT json_agg(%s ORDER BY o) FROM unnest(%s) WITH ORDINALITY u(e, o))::text END"
                % (q, q, e, q))
    # the type's output function (bpchar keeps its padding, inet its form)
    return "CASE WHEN %s IS NOT NULL THEN format('%%s', %s) END" % (q, q)


def convert(value, typname, elem):
    if elem is not None:
        if value is None:
            return []
        out = []
        conv = SCALAR.get(elem, str)
        for e in json.loads(value):
            if e is None:
                continue
            v = conv(e)
            if v is not None:
                out.append(v)
        return out
    if value is None:
        return None
    return SCALAR.get(typname, str)(value)


def canon_bq(v):
    """BigQuery canonical JSON -> comparable (floats by value)."""
    if isinstance(v, list):
        return [canon_bq(x) for x in v]
    if isinstance(v, float) or (isinstance(v, int) and not isinstance(v, bool)):
        return canon_float(v)
    if v in ("Infinity", "-Infinity"):
        return canon_float(v)
    return v


def source_tables(db, pubs):
    sql = ("SELECT DISTINCT schemaname, tablename FROM pg_publication_tables "
           "WHERE pubname = ANY(string_to_array('%s', ',')) ORDER BY 1, 2" % pubs)
    return [tuple(l.split("|")) for l in psql(db, sql).splitlines() if l]


def describe(db, schema, name):
    sql = ("SELECT a.attname, t.typname, et.typname, "
           "coalesce((SELECT true FROM pg_index i WHERE i.indrelid = c.oid AND i.indisprimary "
           "AND a.attnum = ANY(i.indkey)), false) "
           "FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid "
           "JOIN pg_namespace n ON n.oid = c.relnamespace "
           "JOIN pg_type t ON t.oid = a.atttypid LEFT JOIN pg_type et ON et.oid = t.typelem AND t.typlen = -1 AND t.typcategory = 'A' "
           "WHERE n.nspname = '%s' AND c.relname = '%s' AND a.attnum > 0 AND NOT a.attisdropped "
           "AND a.attgenerated = '' ORDER BY a.attnum" % (schema, name))
    cols = []
    for line in psql(db, sql).splitlines():
        col, typ, elem, pk = line.split("|")
        if elem not in TYPED_ELEMS:
            elem = ""
        cols.append((col, typ, elem or None, pk == "t"))
    return cols


def table_id(schema, name):
    tid = name if schema == "public" else schema + "__" + name
    return "".join(c if c.isalnum() or c == "_" else "_" for c in tid)


def source_rows(db, schema, name, cols):
    exprs = ", ".join("json_build_array(%s)" % select_expr(c, t, e) for c, t, e, _ in cols)
    sql = 'SELECT json_build_array(%s) FROM "%s"."%s"' % (exprs, schema, name)
    rows = []
    for line in psql(db, sql).splitlines():
        raw = json.loads(line)
        rows.append(tuple(json.dumps(convert(v[0], t, e), sort_keys=True)
                          for v, (c, t, e, _) in zip(raw, cols)))
    return rows


def replay_log(rows, cols, keyed):
    seen = set()
    lines = []
    for r in rows:
        seq = r["_dsplug_sequence_number"]
        ident = (seq, r["_dsplug_change_type"], json.dumps(r, sort_keys=True))
        if ident in seen:
            continue
        seen.add(ident)
        lines.append(r)
    lines.sort(key=lambda r: r["_dsplug_sequence_number"])
    names = [c for c, _, _, _ in cols]
    if keyed:
        keycols = [c for c, _, _, pk in cols if pk]
        state = {}
        for r in lines:
            key = json.dumps([r[k] for k in keycols])
            if r["_dsplug_change_type"] == "TRUNCATE":
                state = {}
            elif r["_dsplug_is_deleted"]:
                state.pop(key, None)
            else:
                state[key] = r
        return list(state.values())
    out = []
    for r in lines:
        t = r["_dsplug_change_type"]
        vals = [r.get(n) for n in names]
        if t == "TRUNCATE":
            out = []
        elif t == "DELETE":
            for i, o in enumerate(out):
                if [o.get(n) for n in names] == vals:
                    del out[i]
                    break
        else:
            out.append(r)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--db", required=True)
    ap.add_argument("--fake", required=True)
    ap.add_argument("--project", required=True)
    ap.add_argument("--dataset", required=True)
    ap.add_argument("--table", action="append", default=[])
    ap.add_argument("--publication")
    ap.add_argument("--quiet", action="store_true")
    args = ap.parse_args()

    tables = [tuple(t.split(".", 1)) for t in args.table]
    if not tables:
        tables = source_tables(args.db, args.publication)
    failed = False
    for schema, name in tables:
        cols = describe(args.db, schema, name)
        tid = table_id(schema, name)
        url = "%s/_fake/tables/%s/%s/%s" % (args.fake, args.project, args.dataset, tid)
        try:
            info = fetch(url)
        except urllib.error.HTTPError:
            info = {"rows": [], "table": {"schema": {"fields": []}}}
        bq_rows = info["rows"]
        bq_names = {f["name"].lower() for f in info["table"]["schema"]["fields"]}
        if info.get("warnings"):
            print("%s.%s: fake BigQuery warnings: %s" % (args.dataset, tid, info["warnings"][:3]))
            failed = True
        if "_dsplug_change_type" in bq_names:
            bq_rows = replay_log(bq_rows, cols, any(pk for _, _, _, pk in cols))
        src = sorted(source_rows(args.db, schema, name, cols))
        got = sorted(tuple(json.dumps(canon_bq(r.get(c)), sort_keys=True)
                           for c, _, _, _ in cols) for r in bq_rows)
        if src != got:
            failed = True
            s, g = set(src), set(got)
            print("%s.%s differs from %s.%s: %d source rows, %d BigQuery rows"
                  % (args.dataset, tid, schema, name, len(src), len(got)))
            for r in sorted(s - g)[:5]:
                print("  only in source:   %s" % (dict(zip([c for c, _, _, _ in cols], r)),))
            for r in sorted(g - s)[:5]:
                print("  only in BigQuery: %s" % (dict(zip([c for c, _, _, _ in cols], r)),))
            if s == g:
                print("  (same rows, different multiplicities)")
        elif not args.quiet:
            print("%s.%s equals %s.%s: %d rows" % (args.dataset, tid, schema, name, len(src)))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
