"""recording.py - dsplug-consumer recordings (--record) for the replay
tests (regress/t/26-consumer-fuzz.sh, 35-consumer-checksums.sh): read and
write them frame by frame, and read what a replay left in its SQLite
target.  The format is consumer/source/record.c's."""

import sqlite3
import struct

MAGIC = b"DSPLUGREC1\n"
RECORD_HEADER = 21      # 'w', data start LSN, WAL end LSN, length


def load(path):
    """The frames of a recording: a list of [data start, WAL end, frame]."""
    data = open(path, "rb").read()
    assert data.startswith(MAGIC), "%s is not a recording" % path
    recs, pos = [], len(MAGIC)
    while pos < len(data):
        start, end, n = struct.unpack(">QQI", data[pos + 1:pos + RECORD_HEADER])
        recs.append([start, end, data[pos + RECORD_HEADER:pos + RECORD_HEADER + n]])
        pos += RECORD_HEADER + n
    return recs


def save(path, recs, cut=None):
    """Write frames as a recording, cut after `cut` bytes if given."""
    out = bytearray(MAGIC)
    for start, end, frame in recs:
        out += b"w" + struct.pack(">QQI", start, end, len(frame)) + frame
    if cut is not None:
        out = out[:cut]
    open(path, "wb").write(out)


def state(db):
    """((lsn, lsn_text), {table: sorted rows with storage classes}) of a
    target; damage that decoded may not be UTF-8, so text stays bytes."""
    con = sqlite3.connect(db)
    con.text_factory = bytes
    try:
        row = con.execute("SELECT lsn, lsn_text FROM _dsplug_state").fetchone()
    except sqlite3.OperationalError:
        row = None
    tables = {}
    for (name,) in con.execute("SELECT name FROM sqlite_schema WHERE type = 'table' "
                               "AND name NOT LIKE '\\_dsplug%' ESCAPE '\\'"):
        name = name.decode()
        rows = con.execute('SELECT * FROM "%s"' % name).fetchall()
        tables[name] = sorted(repr([(type(v).__name__, v) for v in r]) for r in rows)
    con.close()
    return (row[0] if row else 0, row[1].decode() if row else None), tables
