/*-------------------------------------------------------------------------
 *
 * apply_positions.c
 *		Replay a dsplug-consumer recording (--record) through the
 *		consumer's real apply path (consumer/core/apply.c, spool.c,
 *		replay.c)
 *		into a sink that prints every change's sequence number instead of
 *		storing it: one line per change, "commit_lsn/position kind
 *		schema.table key", in the order the sink gets them.
 *
 * regress/t/31-consumer-positions.sh replays recordings of the same
 * transactions received streamed, unstreamed and as prepared transactions,
 * and checks that the lines are identical: sequence numbers do not depend
 * on how a transaction travelled (proto/WIRE.md, "Positions").
 *
 * Usage: apply_positions RECORDING SPOOL_DIR
 *
 * regress/unit/apply_positions.c
 *
 *-------------------------------------------------------------------------
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"

volatile sig_atomic_t stop_requested = 0;

static uint64_t committed;

static void
print_key(const Dsplug__Tuple *tuple)
{
	const Dsplug__Value *v;

	if (tuple == NULL || tuple->n_values == 0)
	{
		printf(" -");
		return;
	}
	v = tuple->values[0];
	if (v->kind_case == DSPLUG__VALUE__KIND_INT)
		printf(" %" PRId64, (int64_t) v->int_);
	else if (v->kind_case == DSPLUG__VALUE__KIND_TEXT)
		printf(" %s", v->text);
	else
		printf(" ?");
}

static bool
pos_relation(Sink *sink, const Dsplug__Relation *rel, SinkRelationInfo *info)
{
	(void) sink;
	(void) rel;
	memset(info, 0, sizeof(SinkRelationInfo));
	return true;
}

static bool
pos_begin(Sink *sink)
{
	(void) sink;
	return true;
}

static bool
pos_change(Sink *sink, const SinkChange *c)
{
	static const char *const kinds[] = {"insert", "update", "delete"};

	(void) sink;
	printf("%X/%X/%" PRIu64 " %s %s.%s", LSN_FORMAT_ARGS(c->commit_lsn),
		   c->position, kinds[c->kind], c->relation->schema, c->relation->name);
	print_key(c->kind == SINK_DELETE ? c->old : c->new_);
	printf("\n");
	return true;
}

static bool
pos_truncate(Sink *sink, const Dsplug__Relation *const *rels, size_t nrels,
			 bool cascade, bool restart_identity, uint64_t commit_lsn,
			 uint64_t position)
{
	(void) sink;
	(void) cascade;
	(void) restart_identity;
	printf("%X/%X/%" PRIu64 " truncate", LSN_FORMAT_ARGS(commit_lsn), position);
	for (size_t i = 0; i < nrels; i++)
		printf(" %s.%s", rels[i]->schema, rels[i]->name);
	printf("\n");
	return true;
}

static bool
pos_copy(Sink *sink, const Dsplug__Relation *rel, uint64_t copy_lsn)
{
	(void) sink;
	(void) rel;
	(void) copy_lsn;
	return true;
}

static bool
pos_commit(Sink *sink, uint64_t end_lsn)
{
	(void) sink;
	committed = end_lsn;
	return true;
}

static void
pos_abort(Sink *sink)
{
	(void) sink;
	printf("abort\n");
}

static bool
pos_flushed_lsn(Sink *sink, uint64_t *lsn)
{
	(void) sink;
	*lsn = committed;
	return true;
}

static const SinkOps pos_ops = {
	.relation = pos_relation,
	.begin = pos_begin,
	.change = pos_change,
	.truncate = pos_truncate,
	.begin_copy = pos_copy,
	.end_copy = pos_copy,
	.commit = pos_commit,
	.abort = pos_abort,
	.sync = NULL,
	.flushed_lsn = pos_flushed_lsn,
};

int
main(int argc, char **argv)
{
	ConsumerOptions opts;
	Sink		sink = {.ops = &pos_ops, .uri = "positions:", .state = SINK_IDLE};
	Applier		a;
	int			code;

	if (argc != 3)
	{
		fprintf(stderr, "usage: apply_positions RECORDING SPOOL_DIR\n");
		return EXIT_USAGE;
	}
	memset(&opts, 0, sizeof(opts));
	opts.group_txns = 10000;
	opts.group_bytes = (size_t) 64 * 1024 * 1024;
	opts.group_ms = 1000;
	opts.spool_dir = argv[2];
	opts.replay_file = argv[1];
	log_quiet = true;

	apply_init(&a, &sink, &opts, INVALID_LSN);
	code = replay_run(argv[1], &a);
	apply_destroy(&a);
	if (code != EXIT_OK)
		fprintf(stderr, "apply_positions: %s\n", error_message());
	return code;
}
