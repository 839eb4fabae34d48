/*-------------------------------------------------------------------------
 *
 * record.c
 *		Frames recorded to a file (--record) and read back from one instead
 *		of the server (--replay, core/replay.c): a test and debugging input
 *		that runs the real apply path, so corrupted or truncated frames can
 *		be fed to it.
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
 * consumer/source/record.c
 *
 *-------------------------------------------------------------------------
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "source/source.h"

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
		error_set(RESULT_USAGE, "could not open record file \"%s\": %s", path,
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
		error_set(RESULT_RUNTIME, "could not write to record file \"%s\": %s",
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
		error_set(RESULT_RUNTIME, "could not write to record file \"%s\": %s",
				  rec->path, strerror(errno));
	free(rec->path);
	free(rec);
	return ok;
}

/* A recording being read back. */
struct RecordReader
{
	FILE	   *file;
	char	   *path;
	uint8_t    *frame;
	size_t		cap;
	uint64_t	nframes;
};

/*
 * Open a recording for reading (record_reader_next).  NULL after
 * error_set(): RESULT_USAGE when it cannot be opened, RESULT_RUNTIME when it
 * is not a recording.
 */
RecordReader *
record_reader_open(const char *path)
{
	FILE	   *f = fopen(path, "rb");
	uint8_t		magic[REPLAY_MAGIC_LEN];
	RecordReader *rr;

	if (f == NULL)
	{
		error_set(RESULT_USAGE, "could not open replay file \"%s\": %s", path,
				  strerror(errno));
		return NULL;
	}
	if (fread(magic, 1, REPLAY_MAGIC_LEN, f) != REPLAY_MAGIC_LEN ||
		memcmp(magic, REPLAY_MAGIC, REPLAY_MAGIC_LEN) != 0)
	{
		error_set(RESULT_RUNTIME, "could not read replay file \"%s\": not a dsplug-consumer recording",
				  path);
		fclose(f);
		return NULL;
	}
	rr = xmalloc(sizeof(RecordReader));
	memset(rr, 0, sizeof(RecordReader));
	rr->file = f;
	rr->path = xstrdup(path);
	return rr;
}

/*
 * The next frame: *frame (valid until the next call) and its length, and
 * the data start LSN it was received at.  RECORD_END at the end of the
 * file; RECORD_FAILED after error_set() for a record that is truncated or
 * not a frame.
 */
RecordRead
record_reader_next(RecordReader *rr, const uint8_t **frame, size_t *len,
				   uint64_t *data_start)
{
	uint8_t		hdr[REPLAY_RECORD_HEADER];
	size_t		n = fread(hdr, 1, sizeof(hdr), rr->file);

	if (n == 0 && feof(rr->file))
		return RECORD_END;
	if (n != sizeof(hdr) || hdr[0] != 'w')
	{
		error_set(RESULT_RUNTIME, "could not read replay file \"%s\": record %llu is %s",
				  rr->path, (unsigned long long) rr->nframes + 1,
				  n != sizeof(hdr) ? "truncated" : "not a frame record");
		return RECORD_FAILED;
	}
	*len = (size_t) get_be(hdr + 17, 4);
	if (*len > REPLAY_MAX_FRAME)
	{
		error_set(RESULT_RUNTIME, "could not read replay file \"%s\": record %llu claims %zu bytes",
				  rr->path, (unsigned long long) rr->nframes + 1, *len);
		return RECORD_FAILED;
	}
	if (*len > rr->cap)
	{
		rr->cap = *len;
		rr->frame = xrealloc(rr->frame, rr->cap);
	}
	if (fread(rr->frame, 1, *len, rr->file) != *len)
	{
		error_set(RESULT_RUNTIME, "could not read replay file \"%s\": record %llu is truncated",
				  rr->path, (unsigned long long) rr->nframes + 1);
		return RECORD_FAILED;
	}
	rr->nframes++;
	*frame = rr->frame;
	*data_start = get_be(hdr + 1, 8);
	return RECORD_FRAME;
}

/* Frames read so far. */
uint64_t
record_reader_frames(const RecordReader *rr)
{
	return rr->nframes;
}

void
record_reader_close(RecordReader *rr)
{
	if (rr == NULL)
		return;
	fclose(rr->file);
	free(rr->frame);
	free(rr->path);
	free(rr);
}
