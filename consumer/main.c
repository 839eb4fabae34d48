/*-------------------------------------------------------------------------
 *
 * main.c
 *		dsplug-consumer: stream one dsplug slot into a target, crash-safe.
 *		The command line, signals, and exit codes.
 *
 * One process follows one slot into one target (one per region, as in
 * the seed's two-slot setup).  See --help for the options and common.h
 * for the exit codes.
 *
 * consumer/main.c
 *
 *-------------------------------------------------------------------------
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/core.h"
#include "sinks/sink.h"
#include "source/source.h"

#define DSPLUG_CONSUMER_VERSION	"1.0"

volatile sig_atomic_t stop_requested = 0;

static void usage(FILE *out);
static void handle_stop(int signo);
static void bad_usage(const char *fmt,...) CONSUMER_PRINTF(1, 2);
static long parse_int(const char *opt, const char *value, long min, long max);
static size_t parse_size(const char *opt, const char *value);
static struct option *command_line_options(const SinkOptionDef ***sink_defs);
static void add_target_option(const char *name, const char *value);
static void add_target_option_text(const char *text);

/*
 * The command line's long options (command_line_options), and the target's
 * options (-o, and the sinks' long options) in order; freed at the end of
 * main.
 */
static struct option *all_options;
static const SinkOptionDef **sink_defs;
static SinkOption *target_options;
static int	ntarget_options;
static char **option_names;		/* names -o allocated */
static int	noption_names;

enum
{
	OPT_CREATE_SLOT = 256,
	OPT_BACKFILL,
	OPT_ENDPOS,
	OPT_COMPRESSION,
	OPT_COMPRESSION_LEVEL,
	OPT_BATCH_SIZE,
	OPT_STREAMING,
	OPT_TWO_PHASE,
	OPT_SPOOL_DIR,
	OPT_GROUP_TXNS,
	OPT_GROUP_BYTES,
	OPT_GROUP_MS,
	OPT_STATUS_INTERVAL,
	OPT_METRICS_ADDRESS,
	OPT_FEEDBACK_INTERVAL,
	OPT_RECORD,
	OPT_REPLAY,
	OPT_VERSION,
	OPT_SINK					/* + the index of a sink's long option */
};

static const struct option long_options[] = {
	{"dbname", required_argument, NULL, 'd'},
	{"slot", required_argument, NULL, 'S'},
	{"publication", required_argument, NULL, 'P'},
	{"target", required_argument, NULL, 't'},
	{"create-slot", no_argument, NULL, OPT_CREATE_SLOT},
	{"backfill", no_argument, NULL, OPT_BACKFILL},
	{"endpos", required_argument, NULL, OPT_ENDPOS},
	{"compression", required_argument, NULL, OPT_COMPRESSION},
	{"compression-level", required_argument, NULL, OPT_COMPRESSION_LEVEL},
	{"batch-size", required_argument, NULL, OPT_BATCH_SIZE},
	{"streaming", no_argument, NULL, OPT_STREAMING},
	{"two-phase", no_argument, NULL, OPT_TWO_PHASE},
	{"spool-dir", required_argument, NULL, OPT_SPOOL_DIR},
	{"group-txns", required_argument, NULL, OPT_GROUP_TXNS},
	{"group-bytes", required_argument, NULL, OPT_GROUP_BYTES},
	{"group-ms", required_argument, NULL, OPT_GROUP_MS},
	{"status-interval", required_argument, NULL, OPT_STATUS_INTERVAL},
	{"metrics-address", required_argument, NULL, OPT_METRICS_ADDRESS},
	{"feedback-interval", required_argument, NULL, OPT_FEEDBACK_INTERVAL},
	{"record", required_argument, NULL, OPT_RECORD},
	{"replay", required_argument, NULL, OPT_REPLAY},
	{"target-option", required_argument, NULL, 'o'},
	{"quiet", no_argument, NULL, 'q'},
	{"verbose", no_argument, NULL, 'v'},
	{"help", no_argument, NULL, 'h'},
	{"version", no_argument, NULL, OPT_VERSION},
	{NULL, 0, NULL, 0}
};

static void
usage(FILE *out)
{
	fprintf(out,
			"dsplug-consumer streams a dsplug logical replication slot into a target,\n"
			"crash-safe: the target records what it holds, and the slot is confirmed\n"
			"only up to that.\n"
			"\n"
			"Usage:\n"
			"  dsplug-consumer --dbname CONNINFO --slot NAME --publication NAMES --target URI\n"
			"                  [--create-slot] [--endpos LSN] [OPTION]...\n"
			"  dsplug-consumer --replay FILE --target URI [OPTION]...\n"
			"\n"
			"Required:\n"
			"  -d, --dbname=CONNINFO    libpq connection string or URI of the source database\n"
			"                           (PG* environment variables and TLS settings apply)\n"
			"  -S, --slot=NAME          logical replication slot using the dsplug plugin\n"
			"  -P, --publication=NAMES  comma-separated publications (publication_names)\n"
			"  -t, --target=URI         where changes go, one of:\n");
	sink_usage_targets(out);
	fprintf(out,
			"  -o, --target-option=NAME[=VALUE]  an option of the target's kind (below),\n"
			"                           as its --LONG-NAME spelling is; repeatable\n"
			"\n"
			"Slot and initial copy:\n"
			"      --create-slot        create the slot (plugin dsplug) if it does not exist;\n"
			"                           a target without a position is first filled with the\n"
			"                           rows already in the published tables (as --backfill)\n"
			"      --backfill           if the target has no position yet, copy the published\n"
			"                           tables first, under a snapshot consistent with the\n"
			"                           stream; tables that join the publications later are\n"
			"                           copied when they first appear\n"
			"      --endpos=LSN         stop with exit code 0 once everything up to LSN is\n"
			"                           applied and confirmed\n"
			"\n"
			"Plugin options (passed to START_REPLICATION):\n"
			"      --compression=zstd|none    payload compression (default zstd)\n"
			"      --compression-level=N      zstd level 1-19 (default 1)\n"
			"      --batch-size=SIZE          batch threshold, e.g. 256kB, 1MB (default 256kB)\n"
			"      --streaming                receive transactions larger than the server's\n"
			"                                 logical_decoding_work_mem while in progress\n"
			"                                 (streaming 'on'); they wait in --spool-dir\n"
			"                                 and are applied at their commit\n"
			"      --two-phase                receive prepared transactions at PREPARE\n"
			"                                 (two_phase 'on'; this marks the slot two_phase\n"
			"                                 for good); they wait in --spool-dir and are\n"
			"                                 applied at COMMIT PREPARED.  While one is\n"
			"                                 pending, the slot is not confirmed past its\n"
			"                                 PREPARE.  Slots with two_phase are always\n"
			"                                 handled this way\n"
			"      --spool-dir=DIR            directory for the files that hold streamed and\n"
			"                                 prepared transactions until they end; they\n"
			"                                 are deleted on creation and take no space\n"
			"                                 after exit (default $TMPDIR, else /tmp)\n"
			"\n"
			"Target transactions (several source transactions are applied per target\n"
			"transaction; it commits at whichever limit comes first, and whenever the\n"
			"stream has nothing more to read):\n"
			"      --group-txns=N       source transactions per target transaction (default 10000)\n"
			"      --group-bytes=SIZE   batch bytes per target transaction (default 64MB)\n"
			"      --group-ms=MS        age of a target transaction (default 1000)\n"
			"\n"
			"Operation:\n"
			"      --status-interval=SECONDS  one status line on stderr every SECONDS\n"
			"                                 (default 10, 0 for none)\n"
			"      --metrics-address=HOST:PORT  serve Prometheus metrics at\n"
			"                                 http://HOST:PORT/metrics ([IPV6]:PORT,\n"
			"                                 or :PORT for every address)\n"
			"      --feedback-interval=SECONDS  standby status updates at least every\n"
			"                                 SECONDS (default 10)\n"
			"  -q, --quiet              no status or informational lines, only errors\n"
			"  -v, --verbose            also details of routine work (e.g. updates whose\n"
			"                           row no longer exists when its unchanged TOAST\n"
			"                           values are read)\n"
			"      --record=FILE        also write every frame received to FILE\n"
			"      --replay=FILE        apply the frames recorded in FILE instead of\n"
			"                           connecting to a server (testing, debugging);\n"
			"                           --dbname, --slot and --publication are then unused\n"
			"  -h, --help               show this help and exit\n"
			"      --version            show the version and exit\n");
	sink_usage_options(out);
	fprintf(out,
			"\n"
			"Signals: SIGINT and SIGTERM finish the frame being applied, commit, confirm\n"
			"and exit 0.  Lost connections and server restarts are retried with backoff.\n"
			"\n"
			"Exit codes:\n"
			"  0  stopped: --endpos reached, SIGINT/SIGTERM, or end of --replay input\n"
			"  1  runtime error that cannot be retried (undecodable frames, out of memory)\n"
			"  2  bad command line\n"
			"  3  target error: bad URI, cannot open/lock/write the target, or the target\n"
			"     follows another slot\n"
			"  4  the server refuses: slot missing or not a dsplug slot, unsupported wire\n"
			"     version, permission or authentication denied, unknown publication\n");
}

static void
bad_usage(const char *fmt,...)
{
	va_list		ap;

	fprintf(stderr, "dsplug-consumer: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, " (try --help)\n");
	exit(EXIT_USAGE);
}

static long
parse_int(const char *opt, const char *value, long min, long max)
{
	char	   *end;
	long		v;

	errno = 0;
	v = strtol(value, &end, 10);
	if (errno != 0 || end == value || *end != '\0' || v < min || v > max)
		bad_usage("invalid value \"%s\" for %s: expected a whole number from %ld to %ld",
				  value, opt, min, max);
	return v;
}

/* bytes, or a number with kB, MB or GB */
static size_t
parse_size(const char *opt, const char *value)
{
	char	   *end;
	unsigned long long v;
	unsigned long long mult = 1;

	errno = 0;
	v = strtoull(value, &end, 10);
	if (errno != 0 || end == value || value[0] == '-')
		bad_usage("invalid size \"%s\" for %s", value, opt);
	if (strcmp(end, "kB") == 0)
		mult = 1024;
	else if (strcmp(end, "MB") == 0)
		mult = 1024 * 1024;
	else if (strcmp(end, "GB") == 0)
		mult = 1024 * 1024 * 1024;
	else if (*end != '\0')
		bad_usage("invalid size \"%s\" for %s: use bytes, kB, MB or GB", value, opt);
	if (v == 0 || v > SIZE_MAX / mult)
		bad_usage("invalid size \"%s\" for %s", value, opt);
	return (size_t) (v * mult);
}

/*
 * The command line's long options: the consumer's own, then every sink's
 * (SinkOptionDef.long_name), whose val is OPT_SINK + their index in
 * *sink_defs.  Both arrays live until exit.
 */
static struct option *
command_line_options(const SinkOptionDef ***sink_defs)
{
	const SinkType *const *types = sink_types();
	size_t		nown = sizeof(long_options) / sizeof(long_options[0]) - 1;
	size_t		nsink = 0;
	struct option *all;
	const SinkOptionDef **defs;

	for (int t = 0; types[t] != NULL; t++)
	{
		for (const SinkOptionDef *d = types[t]->options; d->name != NULL; d++)
			nsink += d->long_name != NULL;
	}
	all = xmalloc(sizeof(struct option) * (nown + nsink + 1));
	defs = xmalloc(sizeof(SinkOptionDef *) * (nsink + 1));
	memcpy(all, long_options, sizeof(struct option) * nown);
	nsink = 0;
	for (int t = 0; types[t] != NULL; t++)
	{
		for (const SinkOptionDef *d = types[t]->options; d->name != NULL; d++)
		{
			struct option *o = &all[nown + nsink];

			if (d->long_name == NULL)
				continue;
			o->name = d->long_name;
			o->has_arg = d->has_value ? required_argument : no_argument;
			o->flag = NULL;
			o->val = OPT_SINK + (int) nsink;
			defs[nsink++] = d;
		}
	}
	memset(&all[nown + nsink], 0, sizeof(struct option));
	*sink_defs = defs;
	return all;
}

static void
add_target_option(const char *name, const char *value)
{
	target_options = xrealloc(target_options,
							  sizeof(SinkOption) * (size_t) (ntarget_options + 1));
	target_options[ntarget_options].name = name;
	target_options[ntarget_options].value = value;
	ntarget_options++;
}

/* -o NAME=VALUE, or -o NAME for a flag */
static void
add_target_option_text(const char *text)
{
	const char *eq = strchr(text, '=');
	char	   *name;

	if (eq == NULL)
	{
		add_target_option(text, NULL);
		return;
	}
	if (eq == text)
		bad_usage("invalid value \"%s\" for --target-option: expected NAME=VALUE or NAME",
				  text);
	name = xmalloc((size_t) (eq - text) + 1);
	memcpy(name, text, (size_t) (eq - text));
	name[eq - text] = '\0';
	option_names = xrealloc(option_names, sizeof(char *) * (size_t) (noption_names + 1));
	option_names[noption_names++] = name;
	add_target_option(name, eq + 1);
}

static void
handle_stop(int signo)
{
	(void) signo;
	stop_requested = 1;
}

int
main(int argc, char **argv)
{
	ConsumerOptions opts;
	struct sigaction sa;
	Applier		applier;
	Sink	   *sink;
	uint64_t	applied_lsn;
	char		err[512];
	int			code;
	int			c;

	all_options = command_line_options(&sink_defs);
	memset(&opts, 0, sizeof(opts));
	opts.group_txns = 10000;
	opts.group_bytes = (size_t) 64 * 1024 * 1024;
	opts.group_ms = 1000;
	opts.status_interval = 10;
	opts.feedback_interval = 10;

	while ((c = getopt_long(argc, argv, "d:S:P:t:o:qvh", all_options, NULL)) != -1)
	{
		switch (c)
		{
			case 'd':
				opts.dbname = optarg;
				break;
			case 'S':
				opts.slot = optarg;
				break;
			case 'P':
				opts.publications = optarg;
				break;
			case 't':
				opts.target = optarg;
				break;
			case OPT_CREATE_SLOT:
				opts.create_slot = true;
				break;
			case OPT_BACKFILL:
				opts.backfill = true;
				break;
			case OPT_ENDPOS:
				if (!parse_lsn(optarg, &opts.endpos) || opts.endpos == INVALID_LSN)
					bad_usage("invalid value \"%s\" for --endpos: expected an LSN such as 0/16B3748",
							  optarg);
				break;
			case OPT_COMPRESSION:
				if (strcmp(optarg, "zstd") != 0 && strcmp(optarg, "none") != 0)
					bad_usage("invalid value \"%s\" for --compression: expected zstd or none",
							  optarg);
				opts.compression = optarg;
				break;
			case OPT_COMPRESSION_LEVEL:
				parse_int("--compression-level", optarg, 1, 19);
				opts.compression_level = optarg;
				break;
			case OPT_BATCH_SIZE:
				parse_size("--batch-size", optarg);
				opts.batch_size = optarg;
				break;
			case OPT_STREAMING:
				opts.streaming = true;
				break;
			case OPT_TWO_PHASE:
				opts.two_phase = true;
				break;
			case OPT_SPOOL_DIR:
				opts.spool_dir = optarg;
				break;
			case OPT_GROUP_TXNS:
				opts.group_txns = (int) parse_int("--group-txns", optarg, 1, INT_MAX);
				break;
			case OPT_GROUP_BYTES:
				opts.group_bytes = parse_size("--group-bytes", optarg);
				break;
			case OPT_GROUP_MS:
				opts.group_ms = (int) parse_int("--group-ms", optarg, 1, 3600 * 1000);
				break;
			case OPT_STATUS_INTERVAL:
				opts.status_interval = (int) parse_int("--status-interval", optarg, 0, 86400);
				break;
			case OPT_METRICS_ADDRESS:
				opts.metrics_address = optarg;
				break;
			case OPT_FEEDBACK_INTERVAL:
				opts.feedback_interval = (int) parse_int("--feedback-interval", optarg, 1, 3600);
				break;
			case OPT_RECORD:
				opts.record_file = optarg;
				break;
			case OPT_REPLAY:
				opts.replay_file = optarg;
				break;
			case 'o':
				add_target_option_text(optarg);
				break;
			case 'q':
				opts.quiet = true;
				break;
			case 'v':
				opts.verbose = true;
				break;
			case 'h':
				usage(stdout);
				return EXIT_OK;
			case OPT_VERSION:
				printf("dsplug-consumer %s (dsplug wire version %d)\n",
					   DSPLUG_CONSUMER_VERSION, DSPLUG_WIRE_VERSION);
				return EXIT_OK;
			default:
				if (c >= OPT_SINK)
				{
					add_target_option(sink_defs[c - OPT_SINK]->name, optarg);
					break;
				}
				fprintf(stderr, "Try \"dsplug-consumer --help\" for more information.\n");
				return EXIT_USAGE;
		}
	}
	if (optind < argc)
		bad_usage("unexpected argument \"%s\"", argv[optind]);
	if (opts.spool_dir == NULL)
	{
		opts.spool_dir = getenv("TMPDIR");
		if (opts.spool_dir == NULL || opts.spool_dir[0] == '\0')
			opts.spool_dir = "/tmp";
	}
	else if (access(opts.spool_dir, W_OK | X_OK) != 0)
		bad_usage("invalid value \"%s\" for --spool-dir: %s", opts.spool_dir,
				  strerror(errno));
	if (opts.target == NULL)
		bad_usage("--target is required");
	if (!sink_check_options(opts.target, target_options, ntarget_options,
							err, sizeof(err)))
		bad_usage("%s", err);
	if (opts.replay_file != NULL)
	{
		if (opts.record_file != NULL || opts.create_slot || opts.backfill ||
			opts.metrics_address != NULL)
			bad_usage("--replay cannot be combined with --record, --create-slot, --backfill or --metrics-address");
	}
	else
	{
		if (opts.dbname == NULL)
			bad_usage("--dbname is required");
		if (opts.slot == NULL)
			bad_usage("--slot is required");
		if (opts.publications == NULL)
			bad_usage("--publication is required");
		if (opts.slot[0] == '\0' || strlen(opts.slot) > 63)
			bad_usage("invalid slot name \"%s\"", opts.slot);
		if (!source_check_conninfo(opts.dbname, err, sizeof(err)))
			bad_usage("invalid --dbname: %s", err);
	}
	log_quiet = opts.quiet;
	log_verbose_on = opts.verbose && !opts.quiet;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = handle_stop;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = 0;			/* no SA_RESTART: interrupt select() */
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	sink = sink_open(opts.target, target_options, ntarget_options,
					 opts.replay_file != NULL ? NULL : opts.slot,
					 &applied_lsn);
	if (sink == NULL)
	{
		fprintf(stderr, "dsplug-consumer: %s\n", error_message());
		return error_exit_code();
	}

	/*
	 * A metrics address that cannot be served is a configuration error:
	 * exit 2, as for a bad option, so a supervisor waits for an operator.
	 */
	if (opts.metrics_address != NULL &&
		!metrics_start(opts.metrics_address, opts.slot, opts.target,
					   err, sizeof(err)))
	{
		sink_close(sink);
		fprintf(stderr, "dsplug-consumer: could not serve metrics: %s\n", err);
		return EXIT_USAGE;
	}

	apply_init(&applier, sink, &opts, applied_lsn);
	if (opts.replay_file != NULL)
		code = replay_run(opts.replay_file, &applier);
	else
		code = stream_run(&opts, &applier);
	metrics_stop();
	apply_destroy(&applier);
	sink_close(sink);
	for (int i = 0; i < noption_names; i++)
		free(option_names[i]);
	free(option_names);
	free(target_options);
	free(sink_defs);
	free(all_options);

	if (code != EXIT_OK)
		fprintf(stderr, "dsplug-consumer: %s\n", error_message());
	return code;
}
