/*-------------------------------------------------------------------------
 *
 * wire_crc.c
 *		The frame checksum (CRC-32C), computed with PostgreSQL's own
 *		pg_crc32c: hardware-accelerated where the CPU has it, and the same
 *		code in the plugin (the backend's copy) and in every reader (the
 *		client copy in libpgport).
 *
 * This is the one file of proto/ that includes PostgreSQL headers, so that
 * the rest of the wire reader stays plain C99.  Compiled into the backend
 * it includes postgres.h; compiled with -DFRONTEND (the consumer, the unit
 * tests) postgres_fe.h, and the program links libpgport.
 *
 * proto/wire_crc.c
 *
 *-------------------------------------------------------------------------
 */
#ifdef FRONTEND
#include "postgres_fe.h"
#else
#include "postgres.h"
#endif

#include "port/pg_crc32c.h"

#include "wire.h"

/*
 * CRC-32C of len bytes of data.
 */
uint32_t
wire_crc32c(const void *data, size_t len)
{
	pg_crc32c	crc;

	INIT_CRC32C(crc);
	COMP_CRC32C(crc, data, len);
	FIN_CRC32C(crc);
	return (uint32_t) crc;
}

/*
 * The checksum a frame of wire version 2 or later carries: CRC-32C of the
 * frame's sequence number in its session (8 bytes, big-endian, 0 for the
 * session-start frame), then the frame with its checksum field left out.
 * Covering the sequence number makes a frame lost, repeated or moved within
 * its session fail like a damaged one, although the number itself is never
 * sent.  len must be at least DSPLUG_FRAME_HEADER_SIZE_V2.
 */
uint32_t
wire_frame_checksum(uint64_t seqno, const uint8_t *frame, size_t len)
{
	pg_crc32c	crc;
	uint8_t		seq[8];

	for (int i = 7; i >= 0; i--)
	{
		seq[i] = (uint8_t) (seqno & 0xFF);
		seqno >>= 8;
	}
	INIT_CRC32C(crc);
	COMP_CRC32C(crc, seq, sizeof(seq));
	COMP_CRC32C(crc, frame, DSPLUG_FRAME_CHECKSUM_OFFSET);
	COMP_CRC32C(crc, frame + DSPLUG_FRAME_HEADER_SIZE_V2,
				len - DSPLUG_FRAME_HEADER_SIZE_V2);
	FIN_CRC32C(crc);
	return (uint32_t) crc;
}

/*
 * Write a version 2 frame's checksum into its header, once the rest of the
 * frame is complete.
 */
void
wire_frame_seal(uint8_t *frame, size_t len, uint64_t seqno)
{
	uint32_t	crc = wire_frame_checksum(seqno, frame, len);

	frame[DSPLUG_FRAME_CHECKSUM_OFFSET] = (uint8_t) (crc >> 24);
	frame[DSPLUG_FRAME_CHECKSUM_OFFSET + 1] = (uint8_t) (crc >> 16);
	frame[DSPLUG_FRAME_CHECKSUM_OFFSET + 2] = (uint8_t) (crc >> 8);
	frame[DSPLUG_FRAME_CHECKSUM_OFFSET + 3] = (uint8_t) crc;
}

/*
 * Does a version 2 frame carry the checksum of its contents as frame seqno
 * of its session?
 */
bool
wire_frame_verify(const uint8_t *frame, size_t len, uint64_t seqno)
{
	const uint8_t *p = frame + DSPLUG_FRAME_CHECKSUM_OFFSET;
	uint32_t	stored;

	stored = ((uint32_t) p[0] << 24) | ((uint32_t) p[1] << 16) |
		((uint32_t) p[2] << 8) | (uint32_t) p[3];
	return stored == wire_frame_checksum(seqno, frame, len);
}
