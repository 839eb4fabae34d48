/*-------------------------------------------------------------------------
 *
 * test_checksum.c
 *		wire_test: the frame checksum (wire version 2).
 *
 * A damaged frame must be refused at that frame, by its checksum, before
 * the decoder believes anything of it: every single-bit flip of every byte
 * of every frame of the reference session, compressed and not, is tried.
 * So are frames lost, repeated and swapped, which the checksum catches
 * because it covers the frame's place in its session.  A frame of a later
 * version with a valid checksum is told from a damaged one; version 1
 * frames, which have no checksum, still decode; and the checksum really is
 * CRC-32C.
 *
 * regress/unit/test_checksum.c
 *
 *-------------------------------------------------------------------------
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wire_test.h"

#define ERRLEN 512

/*
 * The message for damage: a checksum mismatch, or, when the frame read
 * first does not start a session, that (checked before the checksum, which
 * covers the frame's place in a session it is not in).
 */
#define DAMAGED(err, first) \
	(strstr((err), "checksum mismatch") != NULL || \
	 ((first) && strstr((err), "must carry the session-start flag") != NULL))

/*
 * Read frames[0..n) with a fresh decoder.  Returns the index of the frame
 * that failed (its message in err), or n if all decoded.
 */
static size_t
read_all(const Buf *frames, size_t n, char *err, bool *foreign)
{
	WireDecoder *dec = wire_decoder_create(NULL);
	size_t		i;

	*foreign = false;
	for (i = 0; i < n; i++)
	{
		if (wire_decoder_read(dec, frames[i].data, frames[i].len, err,
							  ERRLEN) == NULL)
		{
			*foreign = wire_decoder_foreign(dec);
			break;
		}
	}
	wire_decoder_destroy(dec);
	return i;
}

/* Every single-bit flip of every byte of every frame. */
static void
bit_flips(bool zstd)
{
	Session		s;
	char		err[ERRLEN];
	long		flips = 0;
	long		refused = 0;

	session_init(&s, zstd);
	write_reference_session(&s);
	for (size_t f = 0; f < s.nframes; f++)
	{
		for (size_t pos = 0; pos < s.frames[f].len; pos++)
		{
			for (int bit = 0; bit < 8; bit++)
			{
				bool		foreign;
				size_t		failed;

				s.frames[f].data[pos] ^= (uint8_t) (1 << bit);
				failed = read_all(s.frames, s.nframes, err, &foreign);
				s.frames[f].data[pos] ^= (uint8_t) (1 << bit);
				flips++;
				CHECK(failed == f,
					  "%s frame %zu byte %zu bit %d: %s", zstd ? "zstd" : "none",
					  f + 1, pos, bit,
					  failed == s.nframes ? "applied" : err);
				if (failed != f)
					continue;
				CHECK(DAMAGED(err, f == 0) && !foreign,
					  "%s frame %zu byte %zu bit %d: %s", zstd ? "zstd" : "none",
					  f + 1, pos, bit, err);
				refused++;
			}
		}
	}
	printf("checksum: %ld single-bit flips of %zu %s frames, %ld refused at the damaged frame\n",
		   flips, s.nframes, zstd ? "zstd" : "uncompressed", refused);
	session_free(&s);
}

/* Frames lost, repeated or swapped within a session. */
static void
moved_frames(bool zstd)
{
	Session		s;
	char		err[ERRLEN];
	Buf		   *m;
	size_t		n;
	bool		foreign;

	session_init(&s, zstd);
	write_reference_session(&s);
	CHECK(s.nframes >= 3, "the reference session has %zu frames", s.nframes);
	m = malloc((s.nframes + 1) * sizeof(Buf));
	if (m == NULL)
		abort();

	for (size_t f = 0; f < s.nframes; f++)
	{
		/* lost */
		n = 0;
		for (size_t i = 0; i < s.nframes; i++)
			if (i != f)
				m[n++] = s.frames[i];
		if (f + 1 < s.nframes)
		{
			CHECK(read_all(m, n, err, &foreign) == f && DAMAGED(err, f == 0),
				  "frame %zu lost: %s", f + 1, err);
		}

		/*
		 * repeated (a repeated session start is a new session, the same
		 * as a reconnection, and reads as one)
		 */
		if (f > 0)
		{
			n = 0;
			for (size_t i = 0; i < s.nframes; i++)
			{
				m[n++] = s.frames[i];
				if (i == f)
					m[n++] = s.frames[i];
			}
			CHECK(read_all(m, n, err, &foreign) == f + 1 && DAMAGED(err, false),
				  "frame %zu repeated: %s", f + 1, err);
		}

		/* swapped with the next */
		if (f + 1 < s.nframes)
		{
			memcpy(m, s.frames, s.nframes * sizeof(Buf));
			m[f] = s.frames[f + 1];
			m[f + 1] = s.frames[f];
			CHECK(read_all(m, s.nframes, err, &foreign) == f &&
				  DAMAGED(err, f == 0),
				  "frames %zu and %zu swapped: %s", f + 1, f + 2, err);
		}
	}
	free(m);
	session_free(&s);
}

/* Other versions: the next one is told from damage; version 1 still reads. */
static void
versions(bool zstd)
{
	Session		s;
	char		err[ERRLEN];
	bool		foreign;
	WireDecoder *dec;

	/* a later version keeps the header, so its checksum verifies */
	session_init(&s, zstd);
	write_reference_session(&s);
	s.frames[0].data[0] = DSPLUG_WIRE_VERSION + 1;
	session_reseal(&s);
	CHECK(read_all(s.frames, s.nframes, err, &foreign) == 0 && foreign &&
		  strstr(err, "unsupported wire version 3 (this reader speaks versions 1 to 2)") != NULL,
		  "later version: %s", err);
	session_free(&s);

	/* version 1: no checksum, and it reads */
	session_init(&s, zstd);
	s.version = 1;
	write_reference_session(&s);
	CHECK(s.frames[0].data[0] == 1, "version 1 session");
	CHECK(read_all(s.frames, s.nframes, err, &foreign) == s.nframes,
		  "version 1 session: %s", err);

	/* ... unless the reader asked for version 2 */
	dec = wire_decoder_create(NULL);
	wire_decoder_require_version(dec, DSPLUG_WIRE_VERSION);
	CHECK(wire_decoder_read(dec, s.frames[0].data, s.frames[0].len, err,
							ERRLEN) == NULL && wire_decoder_foreign(dec) &&
		  strstr(err, "frame of wire version 1, but this reader asked for version 2") != NULL,
		  "required version: %s", err);
	wire_decoder_destroy(dec);
	session_free(&s);
}

void
test_checksum(void)
{
	/* the check value of CRC-32C (Castagnoli), RFC 3720 B.4 */
	CHECK(wire_crc32c("123456789", 9) == 0xE3069283U,
		  "CRC-32C check value: %08x", wire_crc32c("123456789", 9));

	for (int z = 0; z < 2; z++)
	{
		bit_flips(z == 1);
		moved_frames(z == 1);
		versions(z == 1);
	}
}
