/*-------------------------------------------------------------------------
 *
 * replay.c
 *		Frames recorded to a file (--record) and applied from one instead of
 *		the server (--replay): a test and debugging input that runs the real
 *		apply path, so corrupted or truncated frames can be fed to it.
 *
 * File format, all integers big-endian:
 *
 *		"DSPLUGREC1\n"				11-byte magic
 *		then per frame:
 *		'w'							1 byte
 *		data start LSN				8 bytes (XLogData's dataStart)
 *		WAL end LSN					8 bytes (XLogData's walEnd)
 *		length						4 bytes
 *		frame						length bytes (header + payload)
 *
 * A recording holds the frames of every session of the run, in order; a
 * reconnection shows as a frame with the session-start flag.
 *
 * Replaying ends with EXIT_OK at the end of the file, after committing
 * the complete transactions; a frame that does not decode, or a file that
 * ends inside a record, ends it with an error after committing the
 * transactions that were complete before it, never more: the target's
 * LSN stays at the end of the last transaction applied whole.
 *
 * consumer/replay.c
 *
 *-------------------------------------------------------------------------
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "consumer.h"

#define REPLAY_MAGIC		"DSPLUGREC1\n"
#define REPLAY_MAGIC_LEN	11
#define REPLAY_RECORD_HEADER	(1 + 8 + 8 + 4)
#define REPLAY_MAX_FRAME	((size_t) 1 << 31)

struct Recorder
{
	FILE	   *file;
	char	   *path;
};

static void
put_be(uint8_t *p, uint64_t v, int bytes)
{
	for (int i = bytes - 1; i >= 0; i--)
	{
		p[i] = (uint8_t) (v & 0xFF);
		v >>= 8;
	}
}

static uint64_t
get_be(const uint8_t *p, int bytes)
{
	uint64_t	v = 0;

	for (int i = 0; i < bytes; i++)
		v = (v << 8) | p[i];
	return v;
}

/* Start a recording (truncating path).  NULL after error_set(). */
Recorder *
recorder_open(const char *path)
{
	Recorder   *rec;
	FILE	   *f = fopen(path, "wb");

	if (f == NULL || fwrite(REPLAY_MAGIC, 1, REPLAY_MAGIC_LEN, f) != REPLAY_MAGIC_LEN)
	{
		error_set(EXIT_USAGE, "could not open record file \"%s\": %s", path,
				  strerror(errno));
		if (f != NULL)
			fclose(f);
		return NULL;
	}
	rec = xmalloc(sizeof(Recorder));
	rec->file = f;
	rec->path = xstrdup(path);
	return rec;
}

bool
recorder_write(Recorder *rec, uint64_t data_start, uint64_t wal_end,
			   const uint8_t *data, size_t len)
{
	uint8_t		hdr[REPLAY_RECORD_HEADER];

	hdr[0] = 'w';
	put_be(hdr + 1, data_start, 8);
	put_be(hdr + 9, wal_end, 8);
	put_be(hdr + 17, len, 4);
	if (fwrite(hdr, 1, sizeof(hdr), rec->file) != sizeof(hdr) ||
		fwrite(data, 1, len, rec->file) != len)
	{
		error_set(EXIT_RUNTIME, "could not write to record file \"%s\": %s",
				  rec->path, strerror(errno));
		return false;
	}
	return true;
}

bool
recorder_close(Recorder *rec)
{
	bool		ok = fclose(rec->file) == 0;

	if (!ok)
		error_set(EXIT_RUNTIME, "could not write to record file \"%s\": %s",
				  rec->path, strerror(errno));
	free(rec->path);
	free(rec);
	return ok;
}

/* Apply every frame of a recording.  Returns the exit code. */
int
replay_run(const char *path, Applier *a)
{
	FILE	   *f = fopen(path, "rb");
	uint8_t		magic[REPLAY_MAGIC_LEN];
	uint8_t    *frame = NULL;
	size_t		cap = 0;
	uint64_t	nframes = 0;
	bool		ok = false;

	if (f == NULL)
	{
		error_set(EXIT_USAGE, "could not open replay file \"%s\": %s", path,
				  strerror(errno));
		return EXIT_USAGE;
	}
	if (fread(magic, 1, REPLAY_MAGIC_LEN, f) != REPLAY_MAGIC_LEN ||
		memcmp(magic, REPLAY_MAGIC, REPLAY_MAGIC_LEN) != 0)
	{
		error_set(EXIT_RUNTIME, "could not read replay file \"%s\": not a dsplug-consumer recording",
				  path);
		fclose(f);
		return EXIT_RUNTIME;
	}

	apply_new_session(a, a->applied_lsn);
	for (;;)
	{
		uint8_t		hdr[REPLAY_RECORD_HEADER];
		size_t		n = fread(hdr, 1, sizeof(hdr), f);
		size_t		len;

		if (stop_requested)
		{
			ok = true;
			break;
		}
		if (n == 0 && feof(f))
		{
			ok = true;
			break;
		}
		if (n != sizeof(hdr) || hdr[0] != 'w')
		{
			error_set(EXIT_RUNTIME, "could not read replay file \"%s\": record %llu is %s",
					  path, (unsigned long long) nframes + 1,
					  n != sizeof(hdr) ? "truncated" : "not a frame record");
			break;
		}
		len = (size_t) get_be(hdr + 17, 4);
		if (len > REPLAY_MAX_FRAME)
		{
			error_set(EXIT_RUNTIME, "could not read replay file \"%s\": record %llu claims %zu bytes",
					  path, (unsigned long long) nframes + 1, len);
			break;
		}
		if (len > cap)
		{
			cap = len;
			frame = xrealloc(frame, cap);
		}
		if (fread(frame, 1, len, f) != len)
		{
			error_set(EXIT_RUNTIME, "could not read replay file \"%s\": record %llu is truncated",
					  path, (unsigned long long) nframes + 1);
			break;
		}
		nframes++;
		if (!apply_frame(a, frame, len, get_be(hdr + 1, 8)))
			break;
		if (a->endpos_reached)
		{
			ok = true;
			break;
		}
	}
	free(frame);
	fclose(f);

	/* commit what is complete, whatever stopped the replay */
	if (!apply_end_session(a))
		ok = false;
	log_info("replayed %llu frames, applied up to %X/%X",
			 (unsigned long long) nframes,
			 LSN_FORMAT_ARGS(a->sink->ops->flushed_lsn(a->sink)));
	return ok ? EXIT_OK : error_exit_code();
}
