/*-------------------------------------------------------------------------
 *
 * wire.h
 *		The dsplug frame header and wire version: the one copy shared by the
 *		plugin (which writes frames) and every reader (which checks them).
 *
 * Every message the dsplug output plugin writes (one CopyData message on
 * the replication protocol, one row from pg_logical_slot_*_binary_changes)
 * is a frame:
 *
 *		byte 0		wire version (DSPLUG_WIRE_VERSION)
 *		byte 1		flags (DSPLUG_FRAME_*)
 *		bytes 2-5	CRC-32C, big-endian (version 2 and later; see
 *					wire_frame_checksum for what it covers)
 *		byte 6..	payload: a dsplug.Batch protobuf message, zstd-compressed
 *					when DSPLUG_FRAME_ZSTD is set
 *
 * A version 1 frame has no checksum: its payload starts at byte 2.
 *
 * Compressed payloads are consecutive pieces of one zstd stream per decoding
 * session, each flushed so that it decodes completely once every earlier
 * piece of the session has been decoded.  DSPLUG_FRAME_SESSION_START marks
 * the first frame of a session; a reader starts a fresh decompression
 * context there and must see every later frame, in order.  See
 * proto/WIRE.md.
 *
 * This header is plain C99 so that backend and client code can include it.
 *
 * proto/wire.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef DSPLUG_WIRE_H
#define DSPLUG_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * The wire version this build writes and reads.  A reader rejects frames of
 * any other version; the plugin rejects a proto_version option outside
 * [DSPLUG_WIRE_MIN_VERSION, DSPLUG_WIRE_VERSION].
 */
#define DSPLUG_WIRE_VERSION			2
#define DSPLUG_WIRE_MIN_VERSION		1

/* The first wire version whose frames carry a checksum. */
#define DSPLUG_WIRE_CHECKSUM_VERSION	2

/*
 * Version and flags: the part of the header every version shares.  A
 * version 2 header adds the checksum.
 */
#define DSPLUG_FRAME_HEADER_SIZE		2
#define DSPLUG_FRAME_CHECKSUM_OFFSET	2
#define DSPLUG_FRAME_HEADER_SIZE_V2		6
#define DSPLUG_FRAME_HEADER_SIZE_OF(version) \
	((version) >= DSPLUG_WIRE_CHECKSUM_VERSION ? \
	 DSPLUG_FRAME_HEADER_SIZE_V2 : DSPLUG_FRAME_HEADER_SIZE)

/* byte 1 of the frame header */
#define DSPLUG_FRAME_ZSTD			0x01	/* payload is zstd-compressed */
#define DSPLUG_FRAME_SESSION_START	0x02	/* first frame of a session */
#define DSPLUG_FRAME_KNOWN_FLAGS	(DSPLUG_FRAME_ZSTD | DSPLUG_FRAME_SESSION_START)

/*
 * Largest decompressed payload a reader accepts.  The plugin cuts batches at
 * its batch_size threshold (at most DSPLUG_MAX_BATCH_SIZE), but one record
 * may exceed that: a single row holds at most a few values of up to 1 GB.
 */
#define DSPLUG_MAX_BATCH_SIZE		(64 * 1024 * 1024)
#define DSPLUG_MAX_PAYLOAD_SIZE		((size_t) 1 << 31)

/* Limits on values a reader can trust the plugin to respect. */
#define DSPLUG_UUID_SIZE			16

/*
 * The frame checksum (wire_crc.c): PostgreSQL's CRC-32C.  seqno is the
 * frame's number in its session, from 0 at the session-start frame.
 */
extern uint32_t wire_crc32c(const void *data, size_t len);
extern uint32_t wire_frame_checksum(uint64_t seqno, const uint8_t *frame,
									size_t len);
extern void wire_frame_seal(uint8_t *frame, size_t len, uint64_t seqno);
extern bool wire_frame_verify(const uint8_t *frame, size_t len,
							  uint64_t seqno);

#endif							/* DSPLUG_WIRE_H */
