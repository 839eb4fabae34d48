/*-------------------------------------------------------------------------
 *
 * sink.c
 *		The registry of targets, and the wrappers every call to a sink goes
 *		through: they check the order sink.h documents and forward to the
 *		sink's ops.
 *
 * The registry below is the one place in the consumer that lists the
 * targets; everything about a target (its URI, its options, their help)
 * lives in its own folder.
 *
 * A call out of order is a bug of the consumer, not of the target or of
 * the stream: it stops the run with RESULT_RUNTIME and names both calls,
 * rather than handing a sink something it was promised never to see.
 *
 * consumer/sinks/sink.c
 *
 *-------------------------------------------------------------------------
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/common.h"
#include "sinks/sink.h"

/* the registry: sinks/<name>/ defines each */
extern const SinkType sink_sqlite_type;
extern const SinkType sink_bigquery_type;

static const SinkType *const registry[] = {
	&sink_sqlite_type,
	&sink_bigquery_type,
	NULL
};

static bool out_of_order(Sink *sink, const char *call);
static const char *state_name(SinkState state);

/* Every kind of target, NULL-terminated. */
const SinkType *const *
sink_types(void)
{
	return registry;
}

/* The kind of target uri names ("scheme:..."), or NULL. */
const SinkType *
sink_type_for(const char *uri)
{
	for (int i = 0; registry[i] != NULL; i++)
	{
		size_t		len = strlen(registry[i]->scheme);

		if (strncmp(uri, registry[i]->scheme, len) == 0 && uri[len] == ':')
			return registry[i];
	}
	return NULL;
}

/*
 * The kind of target whose option is spelled --long_name on the command
 * line, or NULL; *def is the option.
 */
const SinkType *
sink_type_of_option(const char *long_name, const SinkOptionDef **def)
{
	for (int i = 0; registry[i] != NULL; i++)
	{
		for (const SinkOptionDef *d = registry[i]->options; d->name != NULL; d++)
		{
			if (d->long_name != NULL && strcmp(d->long_name, long_name) == 0)
			{
				*def = d;
				return registry[i];
			}
		}
	}
	return NULL;
}

static const SinkOptionDef *
find_option(const SinkType *type, const char *name)
{
	for (const SinkOptionDef *d = type->options; d->name != NULL; d++)
	{
		if (strcmp(d->name, name) == 0)
			return d;
	}
	return NULL;
}

/*
 * Check the target options of the command line, before anything is
 * opened: each must be one that uri's kind of target takes, with a value
 * when it needs one, and the sink's own check must pass.  With a uri of
 * no known kind (sink_open refuses it as a target error), each kind checks
 * the options it knows.  false with the reason in err: a bad command line.
 */
bool
sink_check_options(const char *uri, const SinkOption *options, int noptions,
				   char *err, size_t errsize)
{
	const SinkType *type = sink_type_for(uri);

	if (type == NULL)
	{
		SinkOption *mine = xmalloc(sizeof(SinkOption) * (size_t) (noptions + 1));
		bool		ok = true;

		for (int t = 0; ok && registry[t] != NULL; t++)
		{
			int			n = 0;

			for (int i = 0; i < noptions; i++)
			{
				if (find_option(registry[t], options[i].name) != NULL)
					mine[n++] = options[i];
			}
			if (n > 0 && registry[t]->check_options != NULL)
				ok = registry[t]->check_options(mine, n, err, errsize);
		}
		free(mine);
		return ok;
	}
	for (int i = 0; i < noptions; i++)
	{
		const SinkOptionDef *d = find_option(type, options[i].name);

		if (d == NULL)
		{
			snprintf(err, errsize, "target option \"%s\" does not apply to %s: targets",
					 options[i].name, type->scheme);
			return false;
		}
		if (d->has_value != (options[i].value != NULL))
		{
			snprintf(err, errsize, d->has_value ?
					 "target option \"%s\" needs a value (-o %s=VALUE)" :
					 "target option \"%s\" takes no value",
					 options[i].name, options[i].name);
			return false;
		}
	}
	return type->check_options == NULL ||
		type->check_options(options, noptions, err, errsize);
}

/* --help: the target URIs, one line each */
void
sink_usage_targets(FILE *out)
{
	for (int i = 0; registry[i] != NULL; i++)
		fprintf(out, "                           %s\n", registry[i]->uri_help);
}

/* --help: each kind of target's options */
void
sink_usage_options(FILE *out)
{
	for (int i = 0; registry[i] != NULL; i++)
	{
		if (registry[i]->help != NULL)
			fprintf(out, "\n%s", registry[i]->help);
	}
}

/*
 * Open the sink a --target URI names, with its options (checked by
 * sink_check_options).  The caller owns the result and closes it with
 * sink_close.  NULL after error_set(RESULT_TARGET, ...) when the URI is not
 * understood or the target cannot be opened.
 */
Sink *
sink_open(const char *uri, const SinkOption *options, int noptions,
		  const char *slot, uint64_t *applied_lsn)
{
	const SinkType *type = sink_type_for(uri);
	Sink	   *sink;

	if (type == NULL)
	{
		char		known[256] = "";

		for (int i = 0; registry[i] != NULL; i++)
		{
			if (i > 0)
				strncat(known, " or ", sizeof(known) - strlen(known) - 1);
			strncat(known, registry[i]->uri_help, sizeof(known) - strlen(known) - 1);
		}
		error_set(RESULT_TARGET, "could not open target \"%s\": unknown target type; use %s",
				  uri, known);
		return NULL;
	}

	sink = xmalloc(sizeof(Sink));
	memset(sink, 0, sizeof(Sink));
	sink->ops = type->ops;
	sink->uri = uri;
	sink->state = SINK_IDLE;
	if (!sink->ops->open(sink, uri, options, noptions, slot, applied_lsn))
	{
		free(sink);
		return NULL;
	}
	return sink;
}

bool
sink_begin(Sink *sink)
{
	if (sink->state != SINK_IDLE)
		return out_of_order(sink, "begin");
	if (!sink->ops->begin(sink))
		return false;
	sink->state = SINK_IN_TRANSACTION;
	return true;
}

/* info is zeroed here: a sink sets only what it has something to say on */
bool
sink_relation(Sink *sink, const Dsplug__Relation *rel, SinkRelationInfo *info)
{
	if (sink->state != SINK_IN_TRANSACTION)
		return out_of_order(sink, "relation");
	memset(info, 0, sizeof(SinkRelationInfo));
	return sink->ops->relation(sink, rel, info);
}

/* Inside a copy, only that relation's copied rows; outside, no copied row. */
bool
sink_change(Sink *sink, const SinkChange *change)
{
	if (sink->state == SINK_IN_COPY ?
		!change->backfill || change->relation->oid != sink->copy_oid :
		sink->state != SINK_IN_TRANSACTION || change->backfill)
		return out_of_order(sink, change->backfill ? "change (copied row)" : "change");
	return sink->ops->change(sink, change);
}

bool
sink_truncate(Sink *sink, const Dsplug__Relation *const *rels, size_t nrels,
			  bool cascade, bool restart_identity, uint64_t commit_lsn,
			  uint64_t position)
{
	if (sink->state != SINK_IN_TRANSACTION)
		return out_of_order(sink, "truncate");
	return sink->ops->truncate(sink, rels, nrels, cascade, restart_identity,
							   commit_lsn, position);
}

bool
sink_begin_copy(Sink *sink, const Dsplug__Relation *rel, uint64_t copy_lsn)
{
	if (sink->state != SINK_IN_TRANSACTION || copy_lsn == INVALID_LSN)
		return out_of_order(sink, "begin_copy");
	if (!sink->ops->begin_copy(sink, rel, copy_lsn))
		return false;
	sink->state = SINK_IN_COPY;
	sink->copy_oid = rel->oid;
	sink->copy_lsn = copy_lsn;
	return true;
}

bool
sink_end_copy(Sink *sink, const Dsplug__Relation *rel)
{
	if (sink->state != SINK_IN_COPY || rel->oid != sink->copy_oid)
		return out_of_order(sink, "end_copy");
	if (!sink->ops->end_copy(sink, rel, sink->copy_lsn))
		return false;
	sink->state = SINK_IN_TRANSACTION;
	return true;
}

bool
sink_commit(Sink *sink, uint64_t end_lsn)
{
	if (sink->state != SINK_IN_TRANSACTION)
		return out_of_order(sink, "commit");
	if (!sink->ops->commit(sink, end_lsn))
		return false;
	sink->state = SINK_IDLE;
	return true;
}

/* Roll back the open transaction, a copy under way included; none: no-op. */
void
sink_abort(Sink *sink)
{
	if (sink->state == SINK_IDLE)
		return;
	sink->ops->abort(sink);
	sink->state = SINK_IDLE;
}

bool
sink_sync(Sink *sink)
{
	if (sink->state != SINK_IDLE)
		return out_of_order(sink, "sync");
	return sink->ops->sync == NULL || sink->ops->sync(sink);
}

/* What the target durably holds now; false after error_set(). */
bool
sink_flushed_lsn(Sink *sink, uint64_t *lsn)
{
	return sink->ops->flushed_lsn(sink, lsn);
}

/* What the sink has in flight; all zero for a synchronous sink. */
void
sink_stats(Sink *sink, SinkStats *stats)
{
	memset(stats, 0, sizeof(*stats));
	if (sink->ops->stats != NULL)
		sink->ops->stats(sink, stats);
}

void
sink_close(Sink *sink)
{
	if (sink == NULL)
		return;
	sink_abort(sink);
	sink->ops->close(sink);
	free(sink);
}

static bool
out_of_order(Sink *sink, const char *call)
{
	error_set(RESULT_RUNTIME, "could not write to target \"%s\": %s called %s (a bug of dsplug-consumer)",
			  sink->uri, call, state_name(sink->state));
	return false;
}

static const char *
state_name(SinkState state)
{
	switch (state)
	{
		case SINK_IDLE:
			return "outside a transaction";
		case SINK_IN_TRANSACTION:
			return "inside a transaction";
		case SINK_IN_COPY:
			return "during a copy";
	}
	return "in an unknown state";
}
