/*-------------------------------------------------------------------------
 *
 * replay.c
 *		--replay: the frames of a recording (source/record.c) applied as if
 *		they came from the server, through the real apply path.
 *
 * Replaying ends with EXIT_OK at the end of the file, after committing
 * the complete transactions; a frame that does not decode, or a file that
 * ends inside a record, ends it with an error after committing the
 * transactions that were complete before it, never more: the target's
 * LSN stays at the end of the last transaction applied whole.
 *
 * consumer/core/replay.c
 *
 *-------------------------------------------------------------------------
 */
#include "core/core.h"
#include "source/source.h"

/* Apply every frame of a recording.  Returns the exit code. */
int
replay_run(const char *path, Applier *a)
{
	RecordReader *rr = record_reader_open(path);
	uint64_t	flushed = INVALID_LSN;
	bool		ok = false;

	if (rr == NULL)
		return error_exit_code();

	apply_new_session(a, a->applied_lsn);
	for (;;)
	{
		const uint8_t *frame;
		size_t		len;
		uint64_t	data_start;
		RecordRead	r;

		if (stop_requested)
		{
			ok = true;
			break;
		}
		r = record_reader_next(rr, &frame, &len, &data_start);
		if (r == RECORD_END)
		{
			ok = true;
			break;
		}
		if (r == RECORD_FAILED || !apply_frame(a, frame, len, data_start))
			break;
		if (a->endpos_reached)
		{
			ok = true;
			break;
		}
	}

	/* commit what is complete, whatever stopped the replay */
	if (!apply_end_session(a) || !sink_flushed_lsn(a->sink, &flushed))
		ok = false;
	log_info("replayed %llu frames, applied up to %X/%X",
			 (unsigned long long) record_reader_frames(rr),
			 LSN_FORMAT_ARGS(flushed));
	record_reader_close(rr);
	return ok ? EXIT_OK : error_exit_code();
}
