#!/bin/sh
# pgsource.sh - PostgreSQL's source, of the release the installed server is,
# from Debian's postgresql-15 source package: for its regression suite
# (src/test/regress) and its Valgrind suppressions (src/tools/valgrind.supp).
#
# Usage: scripts/pgsource.sh DIR
#
# Prints the path of the source tree, DIR/postgresql-<version>, fetching it
# first unless one is already there.  apt-get source runs with a private
# configuration under DIR/apt: deb-src entries for the same archives the
# machine's apt uses (its deb822 .sources files and sources.list), its own
# package lists and cache; the machine's apt configuration and lists are
# neither read for packages nor changed.  Needs the network (the Debian
# archive): without it, fails within about a minute, saying so.
set -eu

dir=${1:?usage: scripts/pgsource.sh DIR}
PG_CONFIG=${PG_CONFIG:-pg_config}
pkg=postgresql-15
version=$(dpkg-query -W -f='${Version}' "$pkg" 2>/dev/null) ||
	{ echo "pgsource.sh: the $pkg package is not installed" >&2; exit 1; }
for tree in "$dir"/postgresql-15.*; do
	if [ -f "$tree/src/test/regress/parallel_schedule" ] && [ -f "$tree/src/tools/valgrind.supp" ]; then
		(cd "$tree" && pwd)
		exit 0
	fi
done

mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
apt="$dir/apt"
rm -rf "$apt"
mkdir -p "$apt/sources.list.d" "$apt/lists/partial" "$apt/cache/archives/partial"

# deb-src twins of the machine's deb entries
for f in /etc/apt/sources.list.d/*.sources; do
	[ -f "$f" ] || continue
	awk '
		/^[ \t]*#/ { next }
		/^Types:/ { print "Types: deb-src"; next }
		/^[ \t]*$/ { print; next }
		{ print }
	' "$f" >"$apt/sources.list.d/$(basename "$f")"
done
for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
	[ -f "$f" ] || continue
	sed -n 's/^[ \t]*deb[ \t]/deb-src /p' "$f"
done >"$apt/sources.list"

aptopts="-o Dir::Etc::sourcelist=$apt/sources.list
	-o Dir::Etc::sourceparts=$apt/sources.list.d
	-o Dir::State::Lists=$apt/lists
	-o Dir::Cache=$apt/cache
	-o Acquire::Retries=1
	-o Acquire::http::Timeout=20
	-o Acquire::https::Timeout=20
	-o APT::Sandbox::User=root"
# shellcheck disable=SC2086
if ! apt-get $aptopts -q update >"$apt/update.log" 2>&1 ||
	grep -q '^\(Err\|W: Failed\)' "$apt/update.log"; then
	cat "$apt/update.log" >&2
	echo "pgsource.sh: could not read the Debian archive's source lists (network?); see above" >&2
	exit 1
fi
# The installed release's source; else the newest other 15.x the archive
# lists (mirrors of the security archive do not always carry its sources),
# whose regression suite differs from the server's only in details.
# shellcheck disable=SC2086
versions="$version $(apt-cache $aptopts showsrc "$pkg" 2>/dev/null |
	sed -n 's/^Version: //p' | grep -vxF "$version" | sort -rV | tr '\n' ' ')"
got=""
for v in $versions; do
	# shellcheck disable=SC2086
	if (cd "$dir" && apt-get $aptopts -q source --download-only "$pkg=$v") >"$apt/source.log" 2>&1; then
		got=$v
		break
	fi
	echo "pgsource.sh: could not download the source of $pkg $v: $(grep -m1 '^E:' "$apt/source.log")" >&2
done
[ -n "$got" ] || { echo "pgsource.sh: no source of $pkg could be downloaded" >&2; exit 1; }
[ "$got" = "$version" ] || echo "pgsource.sh: using the source of $pkg $got (the server is $version)" >&2
upstream=${got%%-*}
tree="$dir/postgresql-$upstream"
orig=$(ls "$dir"/"${pkg}"_"$upstream".orig.tar.* 2>/dev/null | head -n 1)
[ -n "$orig" ] || { echo "pgsource.sh: no upstream tarball for $pkg $upstream in $dir" >&2; exit 1; }
rm -rf "$tree"
tar -C "$dir" -xf "$orig"
[ -f "$tree/src/test/regress/parallel_schedule" ] ||
	{ echo "pgsource.sh: $orig did not hold $tree" >&2; exit 1; }
echo "$tree"
