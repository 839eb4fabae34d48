/*-------------------------------------------------------------------------
 *
 * options.c
 *		Parse the options a dsplug session is started with.
 *
 * Options arrive as the DefElem list of START_REPLICATION (...) or of the
 * SQL functions' VARIADIC options.  Everything is checked before the first
 * byte is written: an unknown, repeated or malformed option is an ERROR
 * with a hint, so a client never streams under settings it did not mean.
 *
 * plugin/options.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "commands/defrem.h"
#include "nodes/parsenodes.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/varlena.h"

#include "dsplug.h"
#include "wire.h"

#define VALID_OPTIONS \
	"publication_names, proto_version, compression, compression_level, batch_size, messages, streaming, two_phase"

static const char *option_value(DefElem *defel);
static const char *supported_versions(void);
static int	option_int(DefElem *defel, int min, int max, int unit,
					   const char *unit_hint);
static bool option_bool(DefElem *defel);

/*
 * Fill *opts from the option list, with defaults for what is not given.
 * ERRORs on anything wrong; publication_names is required.
 */
void
options_parse(List *defels, DsplugOptions *opts)
{
	ListCell   *lc;
	bool		seen_pubnames = false;
	bool		seen_version = false;
	bool		seen_compression = false;
	bool		seen_level = false;
	bool		seen_batch_size = false;
	bool		seen_messages = false;
	bool		seen_streaming = false;
	bool		seen_two_phase = false;

	opts->publication_names = NIL;
	opts->proto_version = DSPLUG_WIRE_VERSION;
	opts->compress = true;
	opts->compression_level = DSPLUG_DEFAULT_COMPRESSION_LEVEL;
	opts->batch_size = DSPLUG_DEFAULT_BATCH_SIZE;
	opts->messages = false;
	opts->streaming = false;
	opts->two_phase = false;

	foreach(lc, defels)
	{
		DefElem    *defel = lfirst_node(DefElem, lc);
		bool	   *seen;

		if (strcmp(defel->defname, "publication_names") == 0)
			seen = &seen_pubnames;
		else if (strcmp(defel->defname, "proto_version") == 0)
			seen = &seen_version;
		else if (strcmp(defel->defname, "compression") == 0)
			seen = &seen_compression;
		else if (strcmp(defel->defname, "compression_level") == 0)
			seen = &seen_level;
		else if (strcmp(defel->defname, "batch_size") == 0)
			seen = &seen_batch_size;
		else if (strcmp(defel->defname, "messages") == 0)
			seen = &seen_messages;
		else if (strcmp(defel->defname, "streaming") == 0)
			seen = &seen_streaming;
		else if (strcmp(defel->defname, "two_phase") == 0)
			seen = &seen_two_phase;
		else
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("unrecognized dsplug option \"%s\"",
							defel->defname),
					 errhint("Valid options are: %s.", VALID_OPTIONS)));

		if (*seen)
			ereport(ERROR,
					(errcode(ERRCODE_SYNTAX_ERROR),
					 errmsg("conflicting or redundant options"),
					 errdetail("Option \"%s\" is given more than once.",
							   defel->defname),
					 errhint("Give each dsplug option at most once.")));
		*seen = true;

		if (seen == &seen_pubnames)
		{
			/* SplitIdentifierString scribbles on its input */
			char	   *names = pstrdup(option_value(defel));

			if (!SplitIdentifierString(names, ',', &opts->publication_names))
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_NAME),
						 errmsg("invalid publication_names syntax"),
						 errhint("Give a comma-separated list of publication names, for example 'pub1' or 'pub1,pub2'.")));
		}
		else if (seen == &seen_version)
		{
			const char *value = option_value(defel);
			char	   *end;
			long		version;

			errno = 0;
			version = strtol(value, &end, 10);
			if (errno != 0 || end == value || *end != '\0')
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("invalid proto_version \"%s\"", value),
						 errhint("proto_version is a whole number; this server's dsplug speaks %s.",
								 supported_versions())));
			if (version < DSPLUG_WIRE_MIN_VERSION || version > DSPLUG_WIRE_VERSION)
				ereport(ERROR,
						(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
						 errmsg("client requested dsplug proto_version %ld, but this server's dsplug speaks %s",
								version, supported_versions()),
						 errhint("Use a client built for dsplug wire version %d, or upgrade dsplug on the server.",
								 DSPLUG_WIRE_VERSION)));
			opts->proto_version = (uint32) version;
		}
		else if (seen == &seen_compression)
		{
			const char *value = option_value(defel);

			if (pg_strcasecmp(value, "zstd") == 0)
				opts->compress = true;
			else if (pg_strcasecmp(value, "none") == 0)
				opts->compress = false;
			else
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("invalid compression \"%s\"", value),
						 errhint("Valid values are \"zstd\" and \"none\".")));
		}
		else if (seen == &seen_level)
			opts->compression_level =
				option_int(defel, DSPLUG_MIN_COMPRESSION_LEVEL,
						   DSPLUG_MAX_COMPRESSION_LEVEL, 0, NULL);
		else if (seen == &seen_batch_size)
			opts->batch_size =
				option_int(defel, DSPLUG_MIN_BATCH_SIZE,
						   DSPLUG_MAX_BATCH_SIZE, GUC_UNIT_BYTE,
						   "a size such as 256kB or 4MB, or a number of bytes");
		else if (seen == &seen_messages)
			opts->messages = option_bool(defel);
		else if (seen == &seen_streaming)
			opts->streaming = option_bool(defel);
		else if (seen == &seen_two_phase)
			opts->two_phase = option_bool(defel);
	}

	if (opts->publication_names == NIL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("publication_names parameter missing"),
				 errhint("Pass the publications to stream, for example (publication_names 'pub1').")));

	if (seen_level && !opts->compress)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("compression_level given with compression \"none\""),
				 errhint("Drop compression_level, or use compression 'zstd'.")));
}

/* A boolean option; given without a value it means true, as in pgoutput. */
static bool
option_bool(DefElem *defel)
{
	bool		value = true;

	if (defel->arg != NULL && !parse_bool(option_value(defel), &value))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid %s \"%s\"", defel->defname, option_value(defel)),
				 errhint("%s is a boolean: on or off.", defel->defname)));
	return value;
}

/* "proto_version 1", or "proto_version 1 to 2": for messages. */
static const char *
supported_versions(void)
{
	if (DSPLUG_WIRE_MIN_VERSION == DSPLUG_WIRE_VERSION)
		return psprintf("only proto_version %d", DSPLUG_WIRE_VERSION);
	return psprintf("proto_version %d to %d", DSPLUG_WIRE_MIN_VERSION,
					DSPLUG_WIRE_VERSION);
}

/* The option's value as a string; an option without one is an ERROR. */
static const char *
option_value(DefElem *defel)
{
	if (defel->arg == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("dsplug option \"%s\" requires a value",
						defel->defname)));
	return strVal(defel->arg);
}

/*
 * An integer option within [min, max].  With a GUC unit, values such as
 * "256kB" are accepted as they are in postgresql.conf.
 */
static int
option_int(DefElem *defel, int min, int max, int unit, const char *unit_hint)
{
	const char *value = option_value(defel);
	const char *hintmsg = NULL;
	int			result;

	if (!parse_int(value, &result, unit, &hintmsg))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid %s \"%s\"", defel->defname, value),
				 hintmsg ? errhint("%s", _(hintmsg)) :
				 errhint("%s is %s.", defel->defname,
						 unit_hint ? unit_hint : "a whole number")));
	if (result < min || result > max)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s %s is out of range", defel->defname, value),
				 errhint("%s must be between %d and %d%s.", defel->defname,
						 min, max, unit ? " bytes" : "")));
	return result;
}
