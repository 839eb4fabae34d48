#!/bin/sh
# pgtree.sh - a private copy of the PostgreSQL 15 installation with this
# checkout's dsplug plugin installed into it, for the tests.
#
# Usage: scripts/pgtree.sh DEST
#
# Copies the server's binaries, libraries and share directory (the ones
# PG_CONFIG names) under DEST, keeping their layout, links its server
# headers there, then installs plugin/ into the copy.  PostgreSQL finds its share and library
# directories relative to its own binary, so a cluster started from
# DEST's binaries loads this checkout's dsplug.so and extension script and
# nothing else: the tests never depend on, or change, what is installed on
# the machine, and two checkouts can run their tests at the same time.
# Prints the copy's pg_config; DEST is made readable by the postgres user.
set -eu

dest=${1:?usage: scripts/pgtree.sh DEST}
PG_CONFIG=${PG_CONFIG:-pg_config}
top=$(cd "$(dirname "$0")/.." && pwd)

bindir=$("$PG_CONFIG" --bindir)
pkglibdir=$("$PG_CONFIG" --pkglibdir)
sharedir=$("$PG_CONFIG" --sharedir)
includedir_server=$("$PG_CONFIG" --includedir-server)

copy_dir() {
	mkdir -p "$dest$2"
	# JIT bitcode is large and unused by the tests; the installed dsplug is
	# what must not be seen.
	(cd "$1" && tar cf - --exclude=./bitcode --exclude='./dsplug*' .) |
		(cd "$dest$2" && tar xf -)
}

rm -rf "$dest"
copy_dir "$bindir" "$bindir"
copy_dir "$pkglibdir" "$pkglibdir"
copy_dir "$sharedir" "$sharedir"
# The copy's pg_config also answers for the headers (what is built against
# it during the tests, such as proto/wire_crc.c, needs the server's): they
# are the installation's own, linked, not copied.
mkdir -p "$dest$(dirname "$includedir_server")"
ln -s "$includedir_server" "$dest$includedir_server"
rm -f "$dest$sharedir"/extension/dsplug*

# The copy's own pg_config answers with the copy's directories.
priv="$dest$bindir/pg_config"
[ "$("$priv" --sharedir)" = "$dest$sharedir" ] || {
	echo "pgtree.sh: the copy in $dest does not find its own share directory" >&2
	exit 1
}
make -s -C "$top/plugin" install DESTDIR="$dest" >"$dest/install.log" 2>&1 || {
	cat "$dest/install.log" >&2
	exit 1
}
chmod -R a+rX "$dest"
echo "$priv"
