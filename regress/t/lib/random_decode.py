#!/usr/bin/env python3
"""random_decode.py - dsplug's decoding of a random workload, against
test_decoding's of the same WAL.

Usage: random_decode.py --db DBNAME --seed N [--tables N] [--rounds N]

Creates tables with random column counts (zero included, and some whose
columns all get dropped), random types (every type the plugin encodes
itself, arrays of them, and types it sends as text), random replica
identities; then runs random DML (NULLs, TOASTed values, extremes,
unchanged TOAST in updates, key changes) in random transaction shapes
(autocommit, multi-statement, savepoints rolled back and released,
aborted transactions) with DDL between them (ADD COLUMN with and without a
default, DROP COLUMN, every column dropped).  Everything is drawn from a
random generator seeded with --seed, so a seed reproduces its workload.

A dsplug slot is created before the workload and copied, at the same
position, to a test_decoding slot (pg_copy_logical_replication_slot).  Both
are peeked up to the same LSN: dsplug.peek_changes must not raise an
ERROR, and the two must hold the same transactions with the same changes
(kind, relation, old and new values column by column, unchanged TOAST
markers, truncates).  Values are compared in one canonical form made from
each side independently: test_decoding's text literals (PostgreSQL's own
output functions) and dsplug's JSON rendering of its typed values.  Old
tuples are compared without their NULL columns, which test_decoding skips.

Then one value of test_decoding's side is changed and the comparison must
fail: a comparison that cannot fail proves nothing.

Connects with psql (PGHOST, PGPORT, PGUSER from the environment).  Prints
figures (tables, transactions, changes compared); exits 0 when equal, 1
with the first difference otherwise.
"""

import argparse
import json
import os
import random
import subprocess
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from compare import iso_date, iso_timestamp, parse_array, unescape  # noqa: E402

PGOPTIONS = ("-c DateStyle=ISO,YMD -c TimeZone=UTC -c IntervalStyle=postgres "
             "-c extra_float_digits=1 -c bytea_output=hex -c client_encoding=UTF8 "
             "-c lc_monetary=C")

INTS = {"smallint", "integer", "bigint"}
FLOATS = {"real", "double precision"}
# element types of the arrays the plugin sends as arrays (proto/WIRE.md);
# arrays of other types travel as their text
ARRAY_ELEMENTS = INTS | FLOATS | {
    "boolean", "text", "character varying", "character", "name", "bytea",
    "numeric", "date", "time without time zone", "timestamp without time zone",
    "timestamp with time zone", "uuid", "json", "jsonb", "interval"}


def psql(db, sql, stdin=None):
    env = dict(os.environ, PGOPTIONS=PGOPTIONS)
    cmd = ["psql", "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-d", db]
    if stdin is None:
        cmd += ["-c", sql]
    res = subprocess.run(cmd, env=env, input=stdin.encode() if stdin else None,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if res.returncode != 0:
        raise RuntimeError("psql failed: %s" % res.stderr.decode(errors="replace").strip())
    return res.stdout.decode("utf-8")


def copy_lines(db, sql):
    """Rows of COPY (sql) TO STDOUT as lists of unescaped fields."""
    out = psql(db, "COPY (%s) TO STDOUT" % sql)
    return [[unescape(f) for f in line.split("\t")]
            for line in out.split("\n") if line != ""]


def lit(s):
    return "'" + s.replace("'", "''") + "'"


# ---------------------------------------------------------------------------
# Types and random values

class Gen:
    def __init__(self, rng):
        self.r = rng

    def text(self, big=False):
        r = self.r
        if big:
            n = r.randint(3000, 12000)
            if r.random() < 0.5:
                # repeated text compresses: stored inline, compressed
                return (self.text() or "x") * (n // 8 + 1)
            # random hex does not compress: stored out of line
            return "".join(r.choice("0123456789abcdef") for _ in range(n))
        pieces = ["a", "Z", " ", "'", '"', "\\", "\n", "\t", "é", "ß", "€", "😀",
                  ",", "{", "}", "NULL", "x y"]
        return "".join(r.choice(pieces) for _ in range(r.randint(0, 12)))

    def int_of(self, lo, hi):
        r = self.r
        return str(r.choice([lo, hi, 0, -1, 1, r.randint(lo, hi)]))

    def float_(self):
        r = self.r
        return r.choice(["'NaN'", "'Infinity'", "'-Infinity'", "0", "-0",
                         repr(r.uniform(-1e6, 1e6)), repr(r.random() * 10.0 ** r.randint(-30, 30)),
                         "1.5", "0.1"])

    def numeric(self):
        r = self.r
        return r.choice(["'NaN'", "'Infinity'", "'-Infinity'", "0", "-0.000",
                         "%d.%0*d" % (r.randint(-10 ** 12, 10 ** 12), 4, r.randint(0, 9999)),
                         str(r.randint(-10 ** 30, 10 ** 30)),
                         "0.%s" % "".join(r.choice("0123456789") for _ in range(r.randint(1, 40))),
                         "1e-20", "123456789012345678901234567890.123456789"])

    def date(self):
        r = self.r
        return lit(r.choice(["infinity", "-infinity", "2000-01-01", "1999-12-31",
                             "0044-03-15 BC", "4713-01-01 BC", "5874897-12-31",
                             "%04d-%02d-%02d" % (r.randint(1, 9999), r.randint(1, 12), r.randint(1, 28))]))

    def timestamp(self, tz):
        r = self.r
        v = r.choice(["infinity", "-infinity", "2000-01-01 00:00:00", "0044-03-15 12:00:00 BC",
                      "294276-12-31 23:59:59.999999",
                      "%04d-%02d-%02d %02d:%02d:%02d.%06d" % (
                          r.randint(1, 9999), r.randint(1, 12), r.randint(1, 28),
                          r.randint(0, 23), r.randint(0, 59), r.randint(0, 59),
                          r.randint(0, 999999))])
        if tz and v not in ("infinity", "-infinity"):
            v += r.choice(["+00", "+05:30", "-08"]) if " BC" not in v else ""
        return lit(v)

    def time(self):
        r = self.r
        return lit(r.choice(["00:00:00", "24:00:00", "23:59:59.999999",
                             "%02d:%02d:%02d.%d" % (r.randint(0, 23), r.randint(0, 59),
                                                    r.randint(0, 59), r.randint(0, 999999))]))

    def interval(self):
        r = self.r
        return lit(r.choice(["0", "-1 day", "1 year 2 mons -3 days 04:05:06.789",
                             "%d months %d days %d microseconds" % (
                                 r.randint(-10000, 10000), r.randint(-1000, 1000),
                                 r.randint(-10 ** 12, 10 ** 12))]))

    def uuid(self):
        return lit("%032x" % self.r.getrandbits(128))

    def bytea(self, big=False):
        n = self.r.randint(3000, 9000) if big else self.r.randint(0, 20)
        return "'\\x%s'::bytea" % "".join("%02x" % self.r.getrandbits(8) for _ in range(n))

    def json_doc(self, big=False):
        r = self.r
        if big:
            return json.dumps([self.text(big=True)[:200] for _ in range(60)])
        return r.choice(['{"a": [1, 2.50, "x"], "b": null}', '[]', '"s\\"q"', '3.0',
                         '{"nested": {"k": true, "z": -1e5}}', ' { "spaced" : 1 } '])


# (SQL type, value generator, can be TOASTed, can be a key)
def type_table(g):
    r = g.r
    def arr(elem_fn, n=None):
        elems = [r.choice(["NULL", elem_fn()]) for _ in range(r.randint(0, 5) if n is None else n)]
        return "ARRAY[%s]" % ", ".join(elems) if elems else "'{}'"
    return {
        "smallint": (lambda: g.int_of(-32768, 32767), False, True),
        "integer": (lambda: g.int_of(-2 ** 31, 2 ** 31 - 1), False, True),
        "bigint": (lambda: g.int_of(-2 ** 63, 2 ** 63 - 1), False, True),
        "real": (g.float_, False, False),
        "double precision": (g.float_, False, False),
        "boolean": (lambda: r.choice(["true", "false"]), False, False),
        "text": (lambda: lit(g.text()), True, True),
        "varchar(40)": (lambda: lit(g.text()[:40]), False, True),
        "char(5)": (lambda: lit(g.text()[:5]), False, False),
        "name": (lambda: lit(g.text()[:20]), False, False),
        "bytea": (g.bytea, True, False),
        "numeric": (g.numeric, False, True),
        "numeric(12,3)": (lambda: "%d.%03d" % (r.randint(-10 ** 8, 10 ** 8), r.randint(0, 999)), False, False),
        "date": (g.date, False, True),
        "time": (g.time, False, False),
        "timestamp": (lambda: g.timestamp(False), False, False),
        "timestamptz": (lambda: g.timestamp(True), False, True),
        "uuid": (g.uuid, False, True),
        "json": (lambda: lit(g.json_doc()), True, False),
        "jsonb": (lambda: lit(g.json_doc()), True, False),
        "interval": (g.interval, False, False),
        "integer[]": (lambda: arr(lambda: g.int_of(-2 ** 31, 2 ** 31 - 1)) + "::integer[]", False, False),
        "text[]": (lambda: arr(lambda: lit(g.text())) + "::text[]", True, False),
        "double precision[]": (lambda: arr(g.float_) + "::double precision[]", False, False),
        "numeric[]": (lambda: arr(g.numeric) + "::numeric[]", False, False),
        "boolean[]": (lambda: arr(lambda: r.choice(["true", "false"])) + "::boolean[]", False, False),
        "timestamptz[]": (lambda: arr(lambda: g.timestamp(True) + "::timestamptz") + "::timestamptz[]", False, False),
        "uuid[]": (lambda: arr(lambda: g.uuid() + "::uuid") + "::uuid[]", False, False),
        "date[]": (lambda: r.choice([arr(lambda: g.date() + "::date"), "'[0:1]={2000-01-01,infinity}'"]) + "::date[]", False, False),
        "integer[][]": (lambda: "'{{1,2},{3,NULL}}'::integer[]", False, False),
        # types the plugin sends as text
        "inet": (lambda: lit(r.choice(["10.0.0.1", "::1", "192.168.0.0/16"])), False, False),
        "point": (lambda: lit("(%s,%s)" % (r.randint(-9, 9), r.random())), False, False),
        "money": (lambda: lit(r.choice(["12.34", "-0.01", "1000000"])), False, False),
        "mood": (lambda: lit(r.choice(["sad", "ok", "happy"])), False, False),
        "int4range": (lambda: lit(r.choice(["[1,5)", "empty", "(,3]"])), False, False),
        "tstzrange": (lambda: lit("[2026-01-01 10:00+00,2026-01-02 00:00+00)"), False, False),
        "timetz": (lambda: lit(r.choice(["10:00:00+02", "23:59:59.5-08"])), False, False),
        "bit varying(8)": (lambda: "B'%s'" % "".join(r.choice("01") for _ in range(r.randint(0, 8))), False, False),
        "tsvector": (lambda: lit("a fat:2 cat"), False, False),
        "pair": (lambda: "ROW(%s, %s)::pair" % (r.randint(-5, 5), lit(g.text())), False, False),
        "inet[]": (lambda: "ARRAY['10.0.0.1', NULL]::inet[]", False, False),
    }


# ---------------------------------------------------------------------------
# The workload

class Table:
    def __init__(self, name):
        self.name = name
        self.cols = []          # [name, type]
        self.key = None         # primary key column, or None
        self.identity = "default"
        self.rows = 0
        self.next_col = 0

    def can_change_rows(self):
        return self.key is not None or self.identity == "full"


class Workload:
    def __init__(self, seed, ntables, rounds):
        self.r = random.Random(seed)
        self.g = Gen(self.r)
        self.types = type_table(self.g)
        self.ntables = ntables
        self.rounds = rounds
        self.tables = []
        self.sql = []

    def value(self, typ, big_ok=True):
        fn, toastable, _ = self.types[typ]
        if self.r.random() < 0.12:
            return "NULL"
        if toastable and big_ok and self.r.random() < 0.25:
            if typ in ("text", "text[]"):
                v = lit(self.g.text(big=True))
                return v if typ == "text" else "ARRAY[%s]::text[]" % v
            if typ == "bytea":
                return self.g.bytea(big=True)
            return lit(self.g.json_doc(big=True))
        return fn()

    def new_column(self, t):
        typ = self.r.choice(list(self.types))
        name = "c%d" % t.next_col
        t.next_col += 1
        return [name, typ]

    def schema(self):
        out = ["CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');",
               "CREATE TYPE pair AS (n integer, s text);"]
        for i in range(self.ntables):
            t = Table("t%d" % i)
            # t0 never has a column; others may start without any too, and
            # narrow tables are as likely as wide ones
            shape = self.r.random()
            if shape < 0.15 or i == 0:
                n = 0
            elif shape < 0.55:
                n = self.r.randint(1, 2)
            else:
                n = self.r.randint(3, 12)
            t.cols = [self.new_column(t) for _ in range(n)]
            keyable = [c for c in t.cols if self.types[c[1]][2]]
            defs = ["%s %s" % (c[0], c[1]) for c in t.cols]
            if keyable and self.r.random() < 0.6:
                t.key = self.r.choice(keyable)[0]
                defs.append("PRIMARY KEY (%s)" % t.key)
            out.append("CREATE TABLE %s (%s);" % (t.name, ", ".join(defs)))
            if t.key is None:
                t.identity = self.r.choice(["full", "full", "default", "nothing"])
            elif self.r.random() < 0.25:
                t.identity = "full"
            if t.identity != "default":
                out.append("ALTER TABLE %s REPLICA IDENTITY %s;" % (t.name, t.identity.upper()))
            for c in t.cols:
                if c[1] in ("text", "bytea", "jsonb", "json", "text[]") and self.r.random() < 0.5:
                    out.append("ALTER TABLE %s ALTER %s SET STORAGE EXTERNAL;" % (t.name, c[0]))
            self.tables.append(t)
        return out

    def insert(self, t):
        n = self.r.choice([1, 1, 2, 5])
        t.rows += n
        if not t.cols:
            return "INSERT INTO %s SELECT FROM generate_series(1, %d);" % (t.name, n)
        rows = []
        for _ in range(n):
            vals = []
            for c in t.cols:
                if c[0] == t.key:
                    vals.append(self.key_value(c[1]))
                else:
                    vals.append(self.value(c[1]))
            rows.append("(%s)" % ", ".join(vals))
        return "INSERT INTO %s (%s) VALUES %s ON CONFLICT DO NOTHING;" % (
            t.name, ", ".join(c[0] for c in t.cols), ", ".join(rows))

    def key_value(self, typ):
        v = self.types[typ][0]()
        while v == "NULL":
            v = self.types[typ][0]()
        return v

    def some_rows(self, t):
        k = self.r.randint(0, max(t.rows, 1))
        return "ctid IN (SELECT ctid FROM %s ORDER BY ctid OFFSET %d LIMIT %d)" % (
            t.name, k, self.r.choice([1, 1, 2, 3]))

    def update(self, t):
        settable = [c for c in t.cols if c[0] != t.key or self.r.random() < 0.3]
        if not settable:
            return None
        chosen = self.r.sample(settable, self.r.randint(1, min(3, len(settable))))
        sets = ["%s = %s" % (c[0], self.key_value(c[1]) if c[0] == t.key else self.value(c[1]))
                for c in chosen]
        # a key change could collide: let it fail quietly inside its own
        # subtransaction-free statement by choosing a key unlikely to exist
        return "UPDATE %s SET %s WHERE %s;" % (t.name, ", ".join(sets), self.some_rows(t))

    def delete(self, t):
        t.rows = max(t.rows - 1, 0)
        return "DELETE FROM %s WHERE %s;" % (t.name, self.some_rows(t))

    def statement(self):
        t = self.r.choice(self.tables)
        x = self.r.random()
        if x < 0.5 or not t.can_change_rows():
            if x > 0.97:
                others = self.r.sample(self.tables, self.r.randint(1, 2))
                for o in others + [t]:
                    o.rows = 0
                return "TRUNCATE %s;" % ", ".join(sorted({o.name for o in others + [t]}))
            return self.insert(t)
        if x < 0.8:
            return self.update(t) or self.insert(t)
        return self.delete(t)

    def ddl(self):
        t = self.r.choice(self.tables)
        x = self.r.random()
        if x < 0.4:
            c = self.new_column(t)
            default = ""
            if self.r.random() < 0.5:
                v = self.types[c[1]][0]()
                default = " DEFAULT %s" % v
            t.cols.append(c)
            return ["ALTER TABLE %s ADD COLUMN %s %s%s;" % (t.name, c[0], c[1], default)]
        if x < 0.8 and t.cols:
            c = self.r.choice(t.cols)
            return self.drop(t, [c])
        if t.cols:
            # every column dropped
            return self.drop(t, list(t.cols))
        return []

    def drop(self, t, cols):
        out = []
        if t.key in [c[0] for c in cols]:
            # the key goes with its column: keep updates and deletes possible
            t.key = None
            t.identity = "full"
            out.append("ALTER TABLE %s REPLICA IDENTITY FULL;" % t.name)
        out.append("ALTER TABLE %s %s;" % (t.name, ", ".join("DROP COLUMN %s" % c[0] for c in cols)))
        for c in cols:
            t.cols.remove(c)
        return out

    def workload(self):
        out = []
        for n in range(self.rounds):
            shape = self.r.random()
            if n == self.rounds // 3 and self.tables[1].cols:
                # t1 loses every column while it has rows
                out += self.drop(self.tables[1], list(self.tables[1].cols))
            elif shape < 0.1:
                out += self.ddl()
            elif shape < 0.4:
                out.append(self.statement())
            else:
                out.append("BEGIN;")
                for _ in range(self.r.randint(1, 8)):
                    y = self.r.random()
                    if y < 0.1:
                        out += ["SAVEPOINT s;", self.statement(), self.statement(),
                                self.r.choice(["ROLLBACK TO SAVEPOINT s;", "RELEASE SAVEPOINT s;"])]
                    else:
                        out.append(self.statement())
                out.append("ROLLBACK;" if self.r.random() < 0.1 else "COMMIT;")
        return out


# ---------------------------------------------------------------------------
# Canonical values

TOAST = ("<unchanged toast>",)


def canon_text(typ, s):
    """A value's canonical form from PostgreSQL's text output."""
    if s is None or s is TOAST:
        return s
    if typ in INTS:
        return int(s)
    if typ in FLOATS:
        f = float(s)
        return "NaN" if f != f else f
    if typ == "boolean":
        return s in ("true", "t")
    if typ == "date":
        return iso_date(s)
    if typ == "timestamp without time zone":
        return iso_timestamp(s, False)
    if typ == "timestamp with time zone":
        return iso_timestamp(s, True)
    if typ in ("json", "jsonb"):
        return json.loads(s, parse_float=str, parse_int=str)
    if (typ.endswith("[]") and typ[:-2] in ARRAY_ELEMENTS and s.startswith("{")
            and not s.startswith("{{")):
        elem = typ[:-2]
        return [canon_text(elem, e) for e in parse_array(s)]
    return s


def canon_json(typ, v):
    """A value's canonical form from dsplug's JSON rendering (numbers as
    their text: parsed with parse_int=str, parse_float=str)."""
    if v is None or v is TOAST:
        return v
    if typ in INTS:
        return int(v)
    if typ in FLOATS:
        f = float(v.replace("Infinity", "inf"))
        return "NaN" if f != f else f
    if typ in ("json", "jsonb"):
        return v
    if isinstance(v, list):
        return [canon_json(typ[:-2], e) for e in v]
    return v


def td_values(text, pos):
    """Columns of a test_decoding tuple from text[pos:]: [(name, type, raw)]."""
    cols = []
    n = len(text)
    while pos < n:
        if text.startswith("new-tuple:", pos):
            break
        if text[pos] == '"':
            end = pos + 1
            buf = []
            while True:
                if text[end] == '"' and text.startswith('""', end):
                    buf.append('"')
                    end += 2
                elif text[end] == '"':
                    break
                else:
                    buf.append(text[end])
                    end += 1
            name = "".join(buf)
            pos = end + 1
        else:
            end = text.index("[", pos)
            name = text[pos:end]
            pos = end
        assert text[pos] == "[", text[pos:pos + 40]
        close = text.index("]:", pos)
        typ = text[pos + 1:close]
        pos = close + 2
        if text[pos] == "'" or text.startswith("B'", pos):
            if text[pos] == "B":
                pos += 1
            pos += 1
            buf = []
            while True:
                if text.startswith("''", pos):
                    buf.append("'")
                    pos += 2
                elif text[pos] == "'":
                    pos += 1
                    break
                else:
                    buf.append(text[pos])
                    pos += 1
            raw = "".join(buf)
        else:
            end = text.find(" ", pos)
            end = n if end < 0 else end
            raw = text[pos:end]
            pos = end
            raw = None if raw == "null" else TOAST if raw == "unchanged-toast-datum" else raw
        cols.append((name, typ, raw))
        while pos < n and text[pos] == " ":
            pos += 1
    return cols, pos


def td_tuple(cols, drop_nulls):
    return {name: canon_text(typ, raw) for name, typ, raw in cols
            if not (drop_nulls and raw is None)}


def parse_td(lines):
    """test_decoding's lines -> [[change, ...] per transaction]."""
    txns = []
    cur = None
    for line in lines:
        if line == "BEGIN" or line.startswith("BEGIN "):
            cur = []
        elif line == "COMMIT" or line.startswith("COMMIT "):
            txns.append(cur)
            cur = None
        elif line.startswith("table "):
            head, rest = line[6:].split(": ", 1)
            kind, rest = rest.split(":", 1)
            rest = rest.lstrip(" ")
            if kind == "TRUNCATE":
                flags = rest.split()
                cur.append(("truncate", tuple(sorted(head.split(", "))),
                            "cascade" in flags, "restart_seqs" in flags))
                continue
            old = new = None
            if kind == "INSERT":
                new = td_tuple(td_values(rest, 0)[0], False)
            elif kind == "UPDATE":
                pos = 0
                if rest.startswith("old-key: "):
                    cols, pos = td_values(rest, 9)
                    old = td_tuple(cols, True)
                if rest.startswith("new-tuple: ", pos):
                    pos += 11
                new = td_tuple(td_values(rest, pos)[0], False)
            elif kind == "DELETE":
                if not rest.startswith("(no-tuple-data)"):
                    old = td_tuple(td_values(rest, 0)[0], True)
            else:
                raise ValueError("unknown test_decoding line: %s" % line[:200])
            cur.append((kind.lower(), head, old, new))
        else:
            raise ValueError("unknown test_decoding line: %s" % line[:200])
    return txns


def parse_dsplug(rows):
    """dsplug.peek_changes rows (kind, relation, data) -> the same shape."""
    txns = []
    cur = None
    types = {}
    for kind, relation, data in rows:
        d = json.loads(data, parse_float=str, parse_int=str) if data is not None else None
        if kind == "begin":
            cur = []
        elif kind == "commit":
            txns.append(cur)
            cur = None
        elif kind == "relation":
            types[relation] = {c["name"]: c["type"] for c in d["columns"]}
        elif kind == "truncate":
            cur.append(("truncate", tuple(sorted(d["relations"])), d["cascade"],
                        d["restart_identity"]))
        elif kind in ("insert", "update", "delete"):
            ty = types[relation]
            old = new = None
            if "old" in d:
                old = {k: canon_json(ty[k], v) for k, v in d["old"].items() if v is not None}
            if "new" in d:
                new = {k: canon_json(ty[k], v) for k, v in d["new"].items()}
                for k in d.get("unchanged_toast") or []:
                    new[k] = TOAST
            cur.append((kind, relation, old, new))
        else:
            raise ValueError("unexpected dsplug row kind %s" % kind)
    return txns


def first_difference(a, b):
    """None when equal, else a description of the first difference."""
    if len(a) != len(b):
        return "dsplug has %d transactions, test_decoding %d" % (len(a), len(b))
    for i, (ta, tb) in enumerate(zip(a, b)):
        if len(ta) != len(tb):
            return "transaction %d: dsplug has %d changes, test_decoding %d" % (i, len(ta), len(tb))
        for j, (ca, cb) in enumerate(zip(ta, tb)):
            if ca != cb:
                return ("transaction %d, change %d:\n  dsplug:        %.2000r\n"
                        "  test_decoding: %.2000r" % (i, j, ca, cb))
    return None


def corrupt(txns, rng):
    """Change one value of one new tuple (a copy of txns)."""
    candidates = [(i, j) for i, t in enumerate(txns) for j, c in enumerate(t)
                  if c[0] in ("insert", "update") and c[3]]
    i, j = rng.choice(candidates)
    kind, rel, old, new = txns[i][j]
    new = dict(new)
    col = rng.choice(sorted(new))
    new[col] = ["changed", new[col]]
    out = [list(t) for t in txns]
    out[i][j] = (kind, rel, old, new)
    return out, "%s.%s in transaction %d" % (rel, col, i)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--db", required=True)
    ap.add_argument("--seed", type=int, required=True)
    ap.add_argument("--tables", type=int, default=12)
    ap.add_argument("--rounds", type=int, default=300)
    ap.add_argument("--sql-out", help="write the workload's SQL here")
    args = ap.parse_args()

    w = Workload(args.seed, args.tables, args.rounds)
    schema = w.schema()
    work = w.workload()
    if args.sql_out:
        with open(args.sql_out, "w") as f:
            f.write("\n".join(schema + work) + "\n")

    db = args.db
    started = psql(db, "SELECT pg_postmaster_start_time()").strip()
    psql(db, None, stdin="\n".join(schema + [
        "CREATE PUBLICATION rnd_pub FOR ALL TABLES;",
        "SELECT 'slot' FROM pg_create_logical_replication_slot('rnd_dsplug', 'dsplug');",
        "SELECT 'slot' FROM pg_copy_logical_replication_slot('rnd_dsplug', 'rnd_td', false, 'test_decoding');",
    ]) + "\n")
    # statements that fail (a key update colliding, say) are part of the
    # workload: psql goes on after them, each in its own transaction
    env = dict(os.environ, PGOPTIONS=PGOPTIONS)
    subprocess.run(["psql", "-X", "-q", "-d", db, "-v", "ON_ERROR_STOP=0"],
                   input=("\n".join(work) + "\n").encode(), env=env,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    end = psql(db, "SELECT pg_current_wal_lsn()").strip()

    ds_rows = copy_lines(db, "SELECT kind, relation, data::text FROM dsplug.peek_changes("
                             "'rnd_dsplug', '%s', NULL, 'publication_names', 'rnd_pub')" % end)
    td_lines = [r[0] for r in copy_lines(
        db, "SELECT data FROM pg_logical_slot_peek_changes('rnd_td', '%s', NULL, "
            "'include-xids', '0', 'skip-empty-xacts', '1')" % end)]
    if psql(db, "SELECT pg_postmaster_start_time()").strip() != started:
        print("FAIL: the server restarted during the workload or decoding")
        return 1

    ds = parse_dsplug([(r[0], r[1], r[2]) for r in ds_rows])
    td = parse_td(td_lines)
    nchanges = sum(len(t) for t in td)
    kinds = {}
    for t in td:
        for c in t:
            kinds[c[0]] = kinds.get(c[0], 0) + 1
    diff = first_difference(ds, td)
    if diff is not None:
        print("FAIL (seed %d): dsplug and test_decoding differ up to %s: %s" % (args.seed, end, diff))
        return 1
    print("seed %d: %d tables, %d transactions, %d changes equal (%s)" % (
        args.seed, args.tables, len(td), nchanges,
        ", ".join("%s %d" % kv for kv in sorted(kinds.items()))))

    bad, where = corrupt(td, random.Random(args.seed))
    if first_difference(ds, bad) is None:
        print("FAIL: the comparison did not notice a changed value (%s)" % where)
        return 1
    print("a changed value (%s) is caught" % where)

    psql(db, "SELECT pg_drop_replication_slot('rnd_dsplug'), pg_drop_replication_slot('rnd_td')")
    return 0


if __name__ == "__main__":
    sys.exit(main())
