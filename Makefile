# dsplug: stream PostgreSQL changes into BigQuery, region by region.
#
#   make            build the plugin (and the consumer)
#   make install    install them: the plugin into the server pg_config
#                   names, dsplug-consumer and its systemd unit under
#                   PREFIX (default /usr/local); DESTDIR is honoured
#   make check      install what is missing, build, and run every test
#                   against a throwaway PostgreSQL 15 cluster
#   make demo       the two-region demo on the embedded SQLite target
#   make check-valgrind   the plugin's tests with the server under Valgrind
#   make check-pg-regress PostgreSQL's regression suite as a dsplug workload
#   make bench      the side-by-side benchmarks (bench/README.md)
#   make bench-memory  one streamed 5-million-row transaction: peak memory
#
# PG_CONFIG selects the server (default: the pg_config on PATH).
# WERROR=1 turns compiler warnings into errors (make check sets it).

PG_CONFIG ?= pg_config
WERROR ?= 0
export PG_CONFIG WERROR

.PHONY: all plugin consumer install deps check check-valgrind check-pg-regress demo bench bench-quick bench-memory clean

all: plugin consumer

plugin:
	$(MAKE) -C plugin

consumer:
	$(MAKE) -C consumer

install: all
	$(MAKE) -C plugin install
	$(MAKE) -C consumer install
	$(MAKE) -C systemd install

# The test group also installs the fake BigQuery's npm packages (the npm
# registry must be reachable); the demo needs neither Node.js nor npm.
deps:
	scripts/deps.sh test

# make demo: the two-region demo on the embedded SQLite target.
demo:
	scripts/deps.sh demo
	$(MAKE) all
	$(MAKE) install
	scripts/demo.sh

# make check builds with warnings as errors and runs as root on a fresh
# machine: the deps step installs Debian packages, regress/run.sh starts its
# own cluster as the postgres user, from a private copy of the server that
# holds this checkout's plugin (nothing is installed into the server).
check: deps
	$(MAKE) WERROR=1 all
	regress/run.sh

# make check-valgrind: the plugin's pg_regress tests, the walsender test of
# tables without columns and a random workload against test_decoding, with
# the server under Valgrind memcheck and PostgreSQL's suppressions; fails on
# any error with a frame in the plugin (scripts/valgrind-check.sh).
# make check-pg-regress: PostgreSQL 15's own regression suite as the
# workload of a FOR ALL TABLES publication, a dsplug slot and the consumer
# following into SQLite; fails on a crash, a plugin ERROR or a consumer
# that stops (regress/pg_regress_workload.sh).  Both read PostgreSQL's
# source (scripts/pgsource.sh: Debian's source package, fetched once into
# .pgsource/ with a private apt configuration; needs the network then), and
# take several minutes each: CI runs them after make check (.ci/run).
check-valgrind: deps
	scripts/deps.sh valgrind
	$(MAKE) WERROR=1 all
	scripts/valgrind-check.sh

check-pg-regress: deps
	$(MAKE) WERROR=1 all
	regress/pg_regress_workload.sh

# make bench: every output plugin on every workload, through the SQL
# interface and the walsender, then the consumer; results, table and charts
# in bench/results/<timestamp>/, copied to bench/latest/ (bench/README.md).
# Under 20 minutes on 2 cores; bench-quick is the same, small, in about two.
# bench/run.py also builds bench_floor and the consumer (a consumer that does
# not build is reported as not measured), and its cluster loads the plugins
# it built from a private directory: nothing is installed into the server.
bench bench-quick:
	scripts/deps.sh bench
	$(MAKE) plugin
	bench/run.py $(if $(filter bench-quick,$@),--quick,--latest) --command "make $@"

# make bench-memory: only the streamed measurement that make bench ends
# with (one 5-million-row transaction streamed into dsplug-consumer
# --streaming: peak memory of the walsender and the consumer), in about
# 2 minutes; bench/latest/streamed.md.
bench-memory:
	scripts/deps.sh bench
	$(MAKE) plugin
	bench/run.py --streamed-only --latest --command "make $@"

clean:
	$(MAKE) -C plugin clean
	$(MAKE) -C consumer clean
	rm -rf regress/results regress/regression.diffs regress/regression.out regress/tmp
