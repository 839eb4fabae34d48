#!/usr/bin/env python3
"""compare.py - does a dsplug-consumer SQLite replica equal its source, row by row?

Usage: compare.py --db DBNAME --sqlite PATH [--table SCHEMA.NAME]...
                  [--publication NAMES] [--where SCHEMA.NAME=SQL]
                  [--sample SCHEMA.NAME=SQL] [--quiet] [--summary]

--where filters the source rows (a publication's row filter: the replica
holds only those); --sample filters both sides (SQL valid in both), to
compare part of a large table.

Tables are those named with --table, or every table the publications publish
(pg_get_publication_tables: leaf partitions, or roots with
publish_via_partition_root).  For each table, every source row is rendered
into the exact value dsplug-consumer's SQLite sink must hold for it
(INTEGER, REAL, 0/1, BLOB, or the TEXT rendering its column kind calls for),
independently of the consumer's code, from PostgreSQL's own text output
(DateStyle ISO, TimeZone UTC, IntervalStyle postgres).  Both sides are
compared as multisets of rows, storage classes included: an INTEGER 1 is not
the TEXT '1'.  Columns the replica has and the source does not (dropped on the
source) are ignored.  A missing replica table counts as empty.  A table without
columns (none created, all dropped, or only generated ones) is compared by its
number of rows: its replica rows are all alike (the sink's placeholder column).

Connects with psql (PGHOST, PGPORT, PGUSER from the environment).  Exits 0
when every table is equal, 1 with the first differences otherwise.  With
--summary (a survey of many tables, as after PostgreSQL's regression suite):
one line per table that differs or cannot be compared, then the counts, and
exit 0 whatever they are.
"""

import argparse
import contextlib
import io
import json
import os
import sqlite3
import struct
import subprocess
import sys

# type oids with typed wire kinds (proto/WIRE.md)
INT = {20, 21, 23}
FLOAT4, FLOAT8, BOOL, BYTEA, NUMERIC = 700, 701, 16, 17, 1700
DATE, TIME, TIMESTAMP, TIMESTAMPTZ, UUID, INTERVAL = 1082, 1083, 1114, 1184, 2950, 1186
JSON = {114, 3802}
TEXTLIKE = {25, 1043, 1042, 19}
TYPED = INT | {FLOAT4, FLOAT8, BOOL, BYTEA, NUMERIC, DATE, TIME, TIMESTAMP,
               TIMESTAMPTZ, UUID, INTERVAL} | JSON

PGOPTIONS = ("-c DateStyle=ISO,YMD -c TimeZone=UTC -c IntervalStyle=postgres "
             "-c extra_float_digits=1 -c bytea_output=hex -c client_encoding=UTF8")


def psql(db, sql):
    env = dict(os.environ, PGOPTIONS=PGOPTIONS)
    out = subprocess.run(["psql", "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1",
                          "-d", db, "-c", sql], env=env, check=True,
                         stdout=subprocess.PIPE).stdout
    return out.decode("utf-8")


def copy_rows(db, sql):
    """Rows of COPY (sql) TO STDOUT, fields unescaped, None for NULL."""
    text = psql(db, "COPY (%s) TO STDOUT" % sql)
    rows = []
    for line in text.split("\n"):
        if line == "":
            continue
        rows.append([unescape(f) for f in line.split("\t")])
    return rows


ESCAPES = {"b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v",
           "\\": "\\"}


def unescape(field):
    if field == "\\N":
        return None
    if "\\" not in field:
        return field
    out = []
    i = 0
    while i < len(field):
        c = field[i]
        if c == "\\" and i + 1 < len(field):
            out.append(ESCAPES.get(field[i + 1], field[i + 1]))
            i += 2
        else:
            out.append(c)
            i += 1
    return "".join(out)


def quote_ident(name):
    return '"' + name.replace('"', '""') + '"'


def quote_literal(s):
    return "'" + s.replace("'", "''") + "'"


# ---------------------------------------------------------------------------
# PostgreSQL text -> the SQLite value the sink stores

def iso_date(text):
    """PostgreSQL ISO date 'YYYY-MM-DD[ BC]' -> astronomical 'YYYY-MM-DD'."""
    if text in ("infinity", "-infinity"):
        return text
    bc = text.endswith(" BC")
    if bc:
        text = text[:-3]
    year, rest = text.split("-", 1)
    y = int(year)
    if bc:
        y = 1 - y
    if y < 0:
        return "-%04d-%s" % (-y, rest)
    return "%04d-%s" % (y, rest)


def iso_timestamp(text, tz):
    """'YYYY-MM-DD HH:MM:SS[.ffffff][+00][ BC]' -> 'YYYY-MM-DDTHH:MM:SS.ffffff[Z]'."""
    if text in ("infinity", "-infinity"):
        return text
    bc = text.endswith(" BC")
    if bc:
        text = text[:-3]
    date, time = text.split(" ", 1)
    if tz:
        assert time.endswith("+00"), "TimeZone must be UTC: %r" % text
        time = time[:-3]
    if "." in time:
        hms, frac = time.split(".")
    else:
        hms, frac = time, ""
    frac = (frac + "000000")[:6]
    return "%sT%s.%s%s" % (iso_date(date + (" BC" if bc else "")), hms, frac,
                           "Z" if tz else "")


def float4_value(text):
    return struct.unpack("f", struct.pack("f", float(text)))[0]


def scalar(kind_oid, text):
    """A non-NULL scalar of a typed kind as the sink stores it."""
    if kind_oid in INT:
        return int(text)
    if kind_oid in (FLOAT4, FLOAT8):
        if text == "NaN":
            return "NaN"
        if text in ("Infinity", "-Infinity"):
            return float(text.replace("Infinity", "inf"))
        return float4_value(text) if kind_oid == FLOAT4 else float(text)
    if kind_oid == BOOL:
        return 1 if text == "t" else 0
    if kind_oid == BYTEA:
        assert text.startswith("\\x")
        return bytes.fromhex(text[2:])
    if kind_oid == DATE:
        return iso_date(text)
    if kind_oid == TIMESTAMP:
        return iso_timestamp(text, False)
    if kind_oid == TIMESTAMPTZ:
        return iso_timestamp(text, True)
    return text     # numeric, time, uuid, json, interval: PostgreSQL's text


def json_element(elem_oid, text):
    """An array element's JSON, as proto/wire_text.c renders it."""
    if text is None:
        return "null"
    if elem_oid in INT:
        return text
    if elem_oid in (FLOAT4, FLOAT8, NUMERIC):
        if text in ("NaN", "Infinity", "-Infinity"):
            return '"%s"' % text
        return text
    if elem_oid == BOOL:
        return "true" if text == "t" else "false"
    if elem_oid in JSON:
        return text
    if elem_oid == BYTEA:
        return json.dumps(text, ensure_ascii=False)
    v = scalar(elem_oid, text) if elem_oid in TYPED else text
    return json.dumps(v, ensure_ascii=False)


def parse_array(text):
    """Elements of a one-dimensional array literal '{a,"b c",NULL}'."""
    assert text[0] == "{" and text[-1] == "}", text
    body = text[1:-1]
    elems = []
    i = 0
    if body == "":
        return elems
    while True:
        if body[i] == '"':
            i += 1
            buf = []
            while body[i] != '"':
                if body[i] == "\\":
                    i += 1
                buf.append(body[i])
                i += 1
            i += 1
            elems.append("".join(buf))
        else:
            j = i
            while j < len(body) and body[j] != ",":
                j += 1
            word = body[i:j]
            elems.append(None if word == "NULL" else word)
            i = j
        if i >= len(body):
            return elems
        assert body[i] == ",", body
        i += 1


def array_value(elem_oid, text):
    if text.startswith("[") or text.startswith("{{"):
        return text     # other lower bounds, several dimensions: the text
    return "[" + ", ".join(json_element(elem_oid, e)
                           for e in parse_array(text)) + "]"


# ---------------------------------------------------------------------------

def columns(db, oid, attrs):
    """(name, kind, elem) per sent column; kind: 'typed', 'array', 'text'."""
    cond = ""
    if attrs:
        cond = " AND a.attnum = ANY ('%s'::int2[])" % attrs
    rows = copy_rows(db, """
        SELECT a.attname, a.atttypid,
               t.typlen = -1 AND t.typsubscript = 'array_subscript_handler'::regproc,
               t.typelem
        FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid
        WHERE a.attrelid = %s AND a.attnum > 0 AND NOT a.attisdropped
          AND a.attgenerated = ''%s
        ORDER BY a.attnum""" % (oid, cond))
    cols = []
    for name, typoid, is_array, elem in rows:
        typoid, elem = int(typoid), int(elem)
        if typoid in TYPED:
            cols.append((name, "typed", typoid))
        elif typoid in TEXTLIKE:
            cols.append((name, "text", typoid))
        elif is_array == "t" and elem != 0 and (elem in TYPED or elem in TEXTLIKE):
            cols.append((name, "array", elem))
        else:
            cols.append((name, "text", typoid))
    return cols


def expected(kind, oid, text):
    if text is None:
        return None
    if kind == "typed":
        return scalar(oid, text)
    if kind == "array":
        return array_value(oid, text)
    return text


def cell(v):
    """A typed, printable rendering used to compare and to report."""
    if v is None:
        return "NULL"
    if isinstance(v, bool):
        raise TypeError(v)
    if isinstance(v, int):
        return "I:%d" % v
    if isinstance(v, float):
        return "R:%r" % v
    if isinstance(v, bytes):
        return "B:" + v.hex()
    return "T:" + v


def compare_table(db, lite, oid, schema, name, attrs, where, sample, quiet):
    cols = columns(db, oid, attrs)
    # SELECT with no columns: PostgreSQL's empty target list, SQLite's ()
    sel = ", ".join(quote_ident(c[0]) for c in cols)
    sql = "SELECT %s FROM ONLY %s.%s" % (sel, quote_ident(schema), quote_ident(name))
    if relkind(db, oid) == "p":
        sql = sql.replace(" FROM ONLY ", " FROM ")
    conds = [c for c in (where, sample) if c]
    if conds:
        sql += " WHERE " + " AND ".join("(%s)" % c for c in conds)
    if cols:
        src = sorted(tuple(cell(expected(k, o, v)) for (n, k, o), v in zip(cols, row))
                     for row in copy_rows(db, sql))
    else:
        # COPY writes an empty line for a row of no columns: count instead
        n = int(psql(db, sql.replace("SELECT  FROM", "SELECT count(*) FROM", 1)))
        src = [()] * n

    table = "%s_%s" % (schema, name)
    exists = lite.execute("SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = ?",
                          (table,)).fetchone()
    rep = []
    if exists:
        have = {r[1] for r in lite.execute("SELECT * FROM pragma_table_info(?)", (table,))}
        missing = [c[0] for c in cols if c[0] not in have]
        if missing:
            print("FAIL %s: replica lacks columns %s" % (table, missing))
            return False
        q = "SELECT %s FROM %s" % (", ".join(quote_ident(c[0]) for c in cols) or "NULL",
                                   quote_ident(table))
        if sample:
            q += " WHERE " + sample
        rep = sorted(tuple(cell(v) for v in row[:len(cols)]) for row in lite.execute(q))

    if src == rep:
        return len(src)
    print("FAIL %s: source has %d rows, replica %d" % (table, len(src), len(rep)))
    from collections import Counter
    cs, cr = Counter(src), Counter(rep)
    only_src = list((cs - cr).elements())[:5]
    only_rep = list((cr - cs).elements())[:5]
    names = [c[0] for c in cols]
    for r in only_src:
        print("  only in source:  " + " | ".join("%s=%s" % x for x in zip(names, r)))
    for r in only_rep:
        print("  only in replica: " + " | ".join("%s=%s" % x for x in zip(names, r)))
    return False


_relkinds = {}


def relkind(db, oid):
    if oid not in _relkinds:
        _relkinds[oid] = psql(db, "SELECT relkind FROM pg_class WHERE oid = %s" % oid).strip()
    return _relkinds[oid]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--db", required=True)
    ap.add_argument("--sqlite", required=True)
    ap.add_argument("--table", action="append", default=[])
    ap.add_argument("--publication")
    ap.add_argument("--where", action="append", default=[])
    ap.add_argument("--sample", action="append", default=[])
    ap.add_argument("--quiet", action="store_true")
    ap.add_argument("--summary", action="store_true")
    args = ap.parse_args()

    wheres = dict(w.split("=", 1) for w in args.where)
    samples = dict(w.split("=", 1) for w in args.sample)
    tables = []     # (oid, schema, name, attrs)
    for t in args.table:
        schema, name = t.split(".", 1) if "." in t else ("public", t)
        oid = psql(args.db, "SELECT %s::regclass::oid" %
                   quote_literal(quote_ident(schema) + "." + quote_ident(name))).strip()
        tables.append((oid, schema, name, None))
    if args.publication:
        for oid, schema, name, attrs in copy_rows(args.db, """
                SELECT c.oid, n.nspname, c.relname,
                       (array_agg(g.attrs::int2[]::text) FILTER (WHERE g.attrs IS NOT NULL))[1]
                FROM unnest(string_to_array(%s, ',')) p,
                     LATERAL pg_get_publication_tables(trim(p)) g
                JOIN pg_class c ON c.oid = g.relid
                JOIN pg_namespace n ON n.oid = c.relnamespace
                GROUP BY 1, 2, 3 ORDER BY 2, 3""" % quote_literal(args.publication)):
            tables.append((oid, schema, name, attrs))
    if not tables:
        print("compare.py: no tables to compare")
        return 1

    lite = sqlite3.connect(args.sqlite)
    if args.summary:
        return summary(args, lite, tables, wheres, samples)
    ok = True
    total = 0
    for oid, schema, name, attrs in tables:
        key = "%s.%s" % (schema, name)
        n = compare_table(args.db, lite, oid, schema, name, attrs, wheres.get(key),
                          samples.get(key), args.quiet)
        if n is False:
            ok = False
        else:
            total += n
    if ok and not args.quiet:
        print("compare: %d tables, %d rows equal" % (len(tables), total))
    return 0 if ok else 1


def summary(args, lite, tables, wheres, samples):
    equal = different = failed = 0
    for oid, schema, name, attrs in tables:
        key = "%s.%s" % (schema, name)
        out = io.StringIO()
        try:
            with contextlib.redirect_stdout(out):
                n = compare_table(args.db, lite, oid, schema, name, attrs,
                                  wheres.get(key), samples.get(key), True)
        except Exception as e:      # a type or name this script cannot render
            failed += 1
            print("  not compared: %s: %s" % (key, str(e).splitlines()[0] if str(e) else type(e).__name__))
            continue
        if n is False:
            different += 1
            print("  different: %s: %s" % (key, out.getvalue().splitlines()[0]))
        else:
            equal += 1
    print("tables: %d equal, %d different, %d not compared (of %d)"
          % (equal, different, failed, len(tables)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
