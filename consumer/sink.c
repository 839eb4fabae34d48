/*-------------------------------------------------------------------------
 *
 * sink.c
 *		Choosing a sink from the target URI.
 *
 * consumer/sink.c
 *
 *-------------------------------------------------------------------------
 */
#include <stdlib.h>
#include <string.h>

#include "consumer.h"
#include "sink.h"

/*
 * Open the sink a --target URI names.  The caller owns the result and
 * closes it with sink_close.  NULL after error_set(EXIT_TARGET, ...) when
 * the URI is not understood or the target cannot be opened.
 */
Sink *
sink_open(const char *uri, const char *slot, uint64_t *applied_lsn)
{
	Sink	   *sink;
	const SinkOps *ops;
	const char *location;

	if (strncmp(uri, "sqlite:", 7) == 0)
	{
		ops = &sink_sqlite_ops;
		location = uri + 7;
		if (strncmp(location, "//", 2) == 0)
			location += 2;		/* sqlite:///abs/path and sqlite://rel/path */
		if (*location == '\0')
		{
			error_set(EXIT_TARGET, "could not open target \"%s\": no database path after \"sqlite:\"",
					  uri);
			return NULL;
		}
	}
	else if (strncmp(uri, "bigquery://", 11) == 0)
	{
		ops = &sink_bigquery_ops;
		location = uri + 11;
	}
	else
	{
		error_set(EXIT_TARGET, "could not open target \"%s\": unknown target type; use sqlite:PATH or bigquery://PROJECT/DATASET?location=LOCATION",
				  uri);
		return NULL;
	}

	sink = xmalloc(sizeof(Sink));
	memset(sink, 0, sizeof(Sink));
	sink->ops = ops;
	sink->uri = uri;
	if (!ops->open(sink, location, slot, applied_lsn))
	{
		free(sink);
		return NULL;
	}
	return sink;
}

void
sink_close(Sink *sink)
{
	if (sink == NULL)
		return;
	sink->ops->close(sink);
	free(sink);
}
