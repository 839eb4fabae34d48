#!/bin/sh
# deps.sh - install the Debian packages dsplug needs to build, test and run.
#
# Usage: scripts/deps.sh [GROUP...]   GROUP: build (default), test, bench
#
# Installs only what is missing, so it is fast and quiet when everything is
# there.  Needs root (or sudo) to install anything; without it, it names the
# missing packages and fails.
set -eu

build_pkgs="build-essential pkg-config postgresql-15 postgresql-server-dev-15
	libpq-dev libprotobuf-c-dev protobuf-c-compiler libzstd-dev
	libsqlite3-dev libgrpc-dev libcurl4-openssl-dev libjansson-dev
	libssl-dev libmicrohttpd-dev"
test_pkgs="sqlite3 nodejs python3 curl prometheus"
bench_pkgs="postgresql-15-wal2json postgresql-15-decoderbufs gnuplot-nox
	postgresql-contrib"

groups=${*:-build}
want=""
for g in $groups; do
	case "$g" in
		build) want="$want $build_pkgs" ;;
		test) want="$want $build_pkgs $test_pkgs" ;;
		bench) want="$want $build_pkgs $test_pkgs $bench_pkgs" ;;
		*) echo "deps.sh: unknown group \"$g\" (build, test, bench)" >&2; exit 2 ;;
	esac
done

missing=""
for p in $want; do
	case " $missing " in *" $p "*) continue ;; esac
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed"; then
		missing="$missing $p"
	fi
done

# The server and its development headers must be the same minor release, or
# the plugin is built against headers that do not match the running server.
srv=$(dpkg-query -W -f='${Version}' postgresql-15 2>/dev/null || true)
dev=$(dpkg-query -W -f='${Version}' postgresql-server-dev-15 2>/dev/null || true)
if [ -n "$srv" ] && [ -n "$dev" ] && [ "$srv" != "$dev" ]; then
	missing="$missing postgresql-15 postgresql-server-dev-15"
fi

[ -z "$missing" ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
	if command -v sudo >/dev/null 2>&1; then
		SUDO=sudo
	else
		echo "deps.sh: missing Debian packages:$missing" >&2
		echo "deps.sh: run as root (or install them) and try again" >&2
		exit 1
	fi
else
	SUDO=
fi

echo "deps.sh: installing$missing"
export DEBIAN_FRONTEND=noninteractive
# postgresql-common would create and start a "main" cluster on first
# install; dsplug's scripts start their own throwaway clusters instead.
if [ ! -e /etc/postgresql-common/createcluster.conf ]; then
	$SUDO mkdir -p /etc/postgresql-common
	echo "create_main_cluster = false" | $SUDO tee /etc/postgresql-common/createcluster.conf >/dev/null
fi
# Packages must not start services (prometheus would, through its init
# script): a policy-rc.d that forbids it while apt runs, unless the machine
# has its own.
policy=
if [ ! -e /usr/sbin/policy-rc.d ]; then
	policy=/usr/sbin/policy-rc.d
	printf '#!/bin/sh\n# dsplug deps.sh: no service starts while it installs\nexit 101\n' |
		$SUDO tee "$policy" >/dev/null
	$SUDO chmod 755 "$policy"
	trap '$SUDO rm -f "$policy"' EXIT
fi
# Installing the server also upgrades it to the headers' release.
if ! $SUDO apt-get install -y -q --no-install-recommends $missing postgresql-15 >/tmp/dsplug-apt.log 2>&1; then
	$SUDO apt-get update -q >>/tmp/dsplug-apt.log 2>&1 || true
	if ! $SUDO apt-get install -y -q --no-install-recommends $missing postgresql-15 >>/tmp/dsplug-apt.log 2>&1; then
		tail -n 30 /tmp/dsplug-apt.log >&2
		echo "deps.sh: could not install:$missing (log: /tmp/dsplug-apt.log)" >&2
		exit 1
	fi
fi
