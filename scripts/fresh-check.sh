#!/bin/sh
# fresh-check.sh - the README's commands on a truly fresh Debian machine.
#
# Usage: scripts/fresh-check.sh [--keep] [WORKDIR]
#
# Builds a minimal Debian bookworm root (debootstrap --variant=minbase, from
# the Debian archive this machine's apt uses, with bookworm-security in its
# apt sources), clones this checkout's committed HEAD into /root/dsplug in
# it (mode 700, as a user's clone in their home directory is), and runs in
# it, as root, only what the README tells a new user to run:
#
#   apt-get update && apt-get install -y make git
#   make demo
#   make check
#
# printing how long each took and how much was downloaded and installed.
# The machine's extra CA certificates (/usr/local/share/ca-certificates, for
# a TLS-inspecting proxy) are installed into the root first, as an
# administrator of such a network would have done on any machine.
#
# Needs root, debootstrap (installed if missing) and the Debian archive and
# npm registry; takes about half an hour and about 3 GB under WORKDIR
# (default: a new directory under /var/tmp), which is removed at the end
# unless --keep is given.  Everything runs in a private mount namespace:
# /proc, /sys, /dev and /dev/shm are mounted into the root only there and
# are gone when the script exits, whatever happens.  Not part of make check.
#
# DSPLUG_TEST_PORT, if set, is passed to make check in the root (the root
# shares this machine's network).  Exit status: that of the first command
# that failed, 0 if all passed.
set -eu

keep=0
if [ "${1:-}" = "--keep" ]; then
	keep=1
	shift
fi
src=$(cd "$(dirname "$0")/.." && pwd)

if [ "$(id -u)" -ne 0 ]; then
	echo "fresh-check.sh: needs root (debootstrap, chroot, mounts)" >&2
	exit 2
fi

# Re-run in a private mount namespace, so that nothing mounted into the root
# can outlive this script or show on the host.
if [ -z "${DSPLUG_FRESH_NS:-}" ]; then
	DSPLUG_FRESH_NS=1 exec unshare --mount --propagation private "$0" \
		$([ "$keep" -eq 1 ] && echo --keep) "$@"
fi

work=${1:-}
if [ -z "$work" ]; then
	work=$(mktemp -d /var/tmp/dsplug-fresh.XXXXXX)
else
	mkdir -p "$work"
fi
root="$work/root"
log="$work/log"
mkdir -p "$log"

mounted=""
cleanup() {
	rc=$?
	for m in $mounted; do
		umount -l "$m" 2>/dev/null || true
	done
	if [ "$keep" -eq 0 ]; then
		# only after every mount is gone: never delete through a mount
		if ! grep -q " $root/" /proc/mounts; then
			rm -rf "$work"
		else
			echo "fresh-check.sh: $root still has mounts; left in place" >&2
		fi
	else
		echo "fresh-check.sh: kept $work (logs in $log)"
	fi
	exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The archive this machine's apt uses for bookworm and for its security
# updates (deb822 sources or sources.list), Debian's own by default.
apt_uri() {
	# $1: a pattern the URI must (debian-security) or must not match
	cat /etc/apt/sources.list /etc/apt/sources.list.d/*.sources \
		/etc/apt/sources.list.d/*.list 2>/dev/null | sed 's/#.*//' |
		grep -o 'https\?://[^ ]*' | grep "$1" | head -n 1
}
mirror=$(apt_uri '/debian/\?$' || true)
security=$(apt_uri 'debian-security' || true)
mirror=${mirror:-http://deb.debian.org/debian}
security=${security:-http://deb.debian.org/debian-security}

elapsed() {
	_s=$(( $(date +%s) - $1 ))
	printf '%dm%02ds' $((_s / 60)) $((_s % 60))
}
pkgs() {
	chroot "$root" dpkg-query -W -f='${Status}\n' 2>/dev/null | grep -c 'ok installed'
}
# installed size of the packages, in kB (dpkg's Installed-Size)
isize() {
	chroot "$root" dpkg-query -W -f='${Installed-Size}\n' 2>/dev/null |
		awk '{ s += $1 } END { print s + 0 }'
}
# bytes of .deb files apt fetched so far (apt keeps them in its cache)
debs() {
	du -sb "$root/var/cache/apt/archives" 2>/dev/null | cut -f1
}
mb() {
	echo "$(( (${1:-0} + 524287) / 1048576 )) MB"
}

if ! command -v debootstrap >/dev/null 2>&1; then
	echo "== installing debootstrap"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
		debootstrap >"$log/debootstrap-install.log" 2>&1 || {
		tail -n 20 "$log/debootstrap-install.log" >&2
		exit 1
	}
fi

echo "== debootstrap --variant=minbase bookworm $root ($mirror)"
t0=$(date +%s)
if ! debootstrap --variant=minbase bookworm "$root" "$mirror" >"$log/debootstrap.log" 2>&1; then
	tail -n 30 "$log/debootstrap.log" >&2
	exit 1
fi
rm -f "$root"/var/cache/apt/archives/*.deb
echo "   $(elapsed "$t0"), $(pkgs) packages"

cat >"$root/etc/apt/sources.list" <<EOF
deb $mirror bookworm main
deb $mirror bookworm-updates main
deb $security bookworm-security main
EOF
cp /etc/resolv.conf "$root/etc/resolv.conf" 2>/dev/null || true

mount -t proc proc "$root/proc" && mounted="$root/proc $mounted"
mount -t sysfs sysfs "$root/sys" && mounted="$root/sys $mounted"
mount --bind /dev "$root/dev" && mounted="$root/dev $mounted"
mount -t devpts -o newinstance,ptmxmode=0666 devpts "$root/dev/pts" 2>/dev/null &&
	mounted="$root/dev/pts $mounted" || true
mount -t tmpfs -o mode=1777 shm "$root/dev/shm" && mounted="$root/dev/shm $mounted"

# Run a command in the root as root, with a clean login-like environment.
in_root() {
	chroot "$root" /usr/bin/env -i HOME=/root LANG=C.UTF-8 TERM=dumb \
		PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
		DEBIAN_FRONTEND=noninteractive \
		${DSPLUG_TEST_PORT:+DSPLUG_TEST_PORT=$DSPLUG_TEST_PORT} \
		/bin/sh -c "$1"
}

# The network's CA certificates, as its administrator installs them on every
# machine (not one of the README's steps: without them no TLS connection
# through this network's proxy, to the npm registry for one, is trusted).
if ls /usr/local/share/ca-certificates/* >/dev/null 2>&1; then
	echo "== the network's CA certificates (ca-certificates, /usr/local/share/ca-certificates)"
	in_root 'apt-get update -q && apt-get install -y -q --no-install-recommends ca-certificates' \
		>"$log/ca.log" 2>&1 || { tail -n 20 "$log/ca.log" >&2; exit 1; }
	mkdir -p "$root/usr/local/share/ca-certificates"
	cp -r /usr/local/share/ca-certificates/. "$root/usr/local/share/ca-certificates/"
	in_root 'update-ca-certificates' >>"$log/ca.log" 2>&1 || { tail -n 20 "$log/ca.log" >&2; exit 1; }
	rm -f "$root"/var/cache/apt/archives/*.deb
fi

# The source, as a user's clone in /root: this checkout's committed HEAD.
head=$(git -C "$src" rev-parse HEAD)
git clone -q --no-local "$src" "$root/root/dsplug"
git -C "$root/root/dsplug" checkout -q -B fresh-check "$head"
chmod 700 "$root/root"
echo "== cloned $head into /root/dsplug (/root is mode $(stat -c %a "$root/root"))"

# step NAME COMMAND: run one of the README's commands in the root, timed,
# with what it downloaded and installed; its output in $log/NAME.log.
failed=""
step() {
	echo "== $2"
	_t=$(date +%s)
	_p=$(pkgs)
	_d=$(debs)
	_s=$(isize)
	_rc=0
	in_root "$2" >"$log/$1.log" 2>&1 || _rc=$?
	echo "   exit $_rc, $(elapsed "$_t"); packages +$(( $(pkgs) - _p )) ($(pkgs) installed), downloaded $(mb $(( $(debs) - _d ))) of .debs, installed $(( ($(isize) - _s + 512) / 1024 )) MB"
	if [ "$_rc" -ne 0 ]; then
		tail -n 60 "$log/$1.log" | sed 's/^/   | /'
		[ -z "$failed" ] && failed=$_rc
		return 1
	fi
	return 0
}

step tools 'apt-get update -q && apt-get install -y -q make git'
step demo 'cd /root/dsplug && make demo' &&
	sed -n '/^table  /,$p' "$log/demo.log" | sed 's/^/   /'
step check 'cd /root/dsplug && make check' || true
# the test summary: each test with its result, then the verdict
awk '/^== regress\/t\//{ name = $2; next }
	/^   (ok|FAILED) / && name { print "   " name ": " $1 " " $2; name = ""; next }
	/^ All [0-9]+ tests passed|^ [0-9]+ of [0-9]+ tests failed/ { print "   pg_regress:" $0 }
	/^== (FAILED|all tests passed)/ { print "   " $0 }' "$log/check.log" || true
echo "   npm packages: $(in_root 'ls /root/dsplug/regress/fake-bigquery/node_modules 2>/dev/null | wc -l'), npm cache $(mb "$(du -sb "$root/root/.npm" 2>/dev/null | cut -f1)")"
echo "== left in the root's /tmp after make check: $(du -sh "$root/tmp" | cut -f1)"
ls -la "$root/tmp" | sed 's/^/   /'
echo "== root's size: $(du -sh --one-file-system "$root" | cut -f1)"

if [ -n "$failed" ]; then
	echo "== fresh-check: FAILED"
	exit "$failed"
fi
echo "== fresh-check: passed"
