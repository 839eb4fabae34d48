#!/bin/sh
# deps.sh - install the Debian packages dsplug needs to build, test and run.
#
# Usage: scripts/deps.sh [GROUP...]   GROUP: build (default), demo, test, bench,
#                                     valgrind
#
# Installs only what is missing, so it is fast and quiet when everything is
# there.  Needs root (or sudo) to install anything; without it, it names the
# missing packages and fails.  Packages come from the Debian archive, without
# recommends; PostgreSQL must be 15.19 or newer (output_plugin_libraries),
# which on Debian bookworm is in the bookworm-security archive.  The test
# group also installs the fake BigQuery's npm packages from the npm registry
# (regress/fake-bigquery/install.sh), failing within seconds, with one
# message, when the registry cannot be reached.
set -eu

top=$(cd "$(dirname "$0")/.." && pwd)
pg_min=15.19

build_pkgs="build-essential pkg-config postgresql-15 postgresql-server-dev-15
	libpq-dev libprotobuf-c-dev protobuf-c-compiler libzstd-dev
	libsqlite3-dev libgrpc-dev libcurl4-openssl-dev libjansson-dev
	libssl-dev libmicrohttpd-dev"
demo_pkgs="sqlite3 python3"
test_pkgs="sqlite3 python3 curl systemd prometheus"
bench_pkgs="postgresql-15-wal2json postgresql-15-decoderbufs gnuplot-nox
	postgresql-contrib"
valgrind_pkgs="valgrind"

groups=${*:-build}
want=""
for g in $groups; do
	case "$g" in
		build) want="$want $build_pkgs" ;;
		demo) want="$want $build_pkgs $demo_pkgs" ;;
		test) want="$want $build_pkgs $test_pkgs" ;;
		bench) want="$want $build_pkgs $test_pkgs $bench_pkgs" ;;
		valgrind) want="$want $valgrind_pkgs" ;;
		*) echo "deps.sh: unknown group \"$g\" (build, demo, test, bench, valgrind)" >&2; exit 2 ;;
	esac
done

# Node.js 18 or newer and npm run the fake BigQuery: Debian's nodejs and
# npm, unless a node with its npm is already installed (NodeSource's, say).
node_ok() {
	command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 &&
		[ "$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)" -ge 18 ]
}
case " $groups " in
	*" test "*|*" bench "*) node_ok || want="$want nodejs npm" ;;
esac

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

# PostgreSQL 15.19 introduced output_plugin_libraries, which every cluster
# dsplug starts sets; an older server refuses to start with it.
pg_too_old() {
	_v=$(dpkg-query -W -f='${Version}' postgresql-15 2>/dev/null || true)
	[ -n "$_v" ] && dpkg --compare-versions "$_v" lt "$pg_min"
}
pg_too_old && missing="$missing postgresql-15 postgresql-server-dev-15"

# after_install: what the packages alone do not give, checked every time
after_install() {
	if pg_too_old; then
		_v=$(dpkg-query -W -f='${Version}' postgresql-15)
		cat >&2 <<EOF
deps.sh: PostgreSQL $_v is installed, but dsplug needs $pg_min or newer
deps.sh: (output_plugin_libraries, which lets a slot use the dsplug plugin).
deps.sh: On Debian bookworm it comes from the security archive: add
deps.sh:   deb http://deb.debian.org/debian-security bookworm-security main
deps.sh: to /etc/apt/sources.list (or your mirror of it), then run
deps.sh:   apt-get update && scripts/deps.sh
EOF
		exit 1
	fi
	case " $groups " in
		*" test "*|*" bench "*)
			node_ok || { echo "deps.sh: node 18 or newer and npm are needed; $(node --version 2>/dev/null || echo "node is missing")" >&2; exit 1; }
			"$top/regress/fake-bigquery/install.sh"
			;;
	esac
}

if [ -z "$missing" ]; then
	after_install
	exit 0
fi

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
# Installing the server also upgrades it to the headers' release.  A first
# attempt with the package lists as they are; if that fails or leaves a
# server that is too old, the lists are updated and it is tried again.
log=/tmp/dsplug-apt.log
apt_install() {
	$SUDO apt-get install -y -q --no-install-recommends $missing postgresql-15 >>"$log" 2>&1
}
: >"$log"
if ! apt_install || pg_too_old; then
	$SUDO apt-get update -q >>"$log" 2>&1 || true
	if ! apt_install; then
		tail -n 30 "$log" >&2
		echo "deps.sh: could not install:$missing (log: $log)" >&2
		exit 1
	fi
fi
after_install
