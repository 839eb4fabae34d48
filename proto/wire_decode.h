/*-------------------------------------------------------------------------
 *
 * wire_decode.h
 *		Reading dsplug frames: header check, decompression, protobuf unpack
 *		and validation, shared by the dsplug SQL functions (in the backend)
 *		and dsplug-consumer.
 *
 * A WireDecoder follows one decoding session's frames in order.  For each
 * frame it checks the header and the checksum, continues the session's zstd
 * stream, unpacks the dsplug.Batch and validates it against everything seen
 * earlier in the session: transaction boundaries, positions, relation
 * descriptions, and that every tuple matches its relation's columns and
 * kinds.  A batch that
 * passes can be applied without further checks; anything else is an error
 * with a message, never a crash and never a partial result.
 *
 * Plain C99 plus protobuf-c and zstd: no backend headers (the checksum is
 * PostgreSQL's CRC-32C, behind the plain functions of wire_crc.c).  All
 * memory comes from the WireAllocator given at creation, so the backend can
 * use palloc in a memory context an ERROR cleans up.
 *
 * proto/wire_decode.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef DSPLUG_WIRE_DECODE_H
#define DSPLUG_WIRE_DECODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dsplug.pb-c.h"
#include "wire.h"

/*
 * Where a WireDecoder gets memory.  alloc returns NULL on failure (or does
 * not return, like palloc).  A NULL WireAllocator means malloc/free.
 */
typedef struct WireAllocator
{
	void	   *(*alloc) (void *opaque, size_t size);
	void		(*free) (void *opaque, void *ptr);
	void	   *opaque;
} WireAllocator;

/* One record of a decoded batch, with what is needed to apply it alone. */
typedef struct WireItem
{
	const Dsplug__Record *record;

	/*
	 * For insert/update/delete: the description the record's tuples follow
	 * (the latest one before the record in the session).  NULL otherwise.
	 */
	const Dsplug__Relation *relation;

	/*
	 * For data records (everything but a relation description): position
	 * within the transaction.  With the transaction's commit LSN it forms
	 * the change's unique, monotonic sequence number.  (A description gets
	 * the position of the data record after it, and does not use it up.)
	 */
	uint32_t	position;
} WireItem;

/* A validated batch; valid until the next wire_decoder_read or reset. */
typedef struct WireBatch
{
	const Dsplug__Batch *batch;
	const WireItem *items;		/* one per batch->records[i], same order */
	size_t		nitems;

	/*
	 * The transaction the batch belongs to (copied from its first batch's
	 * Begin).  in_transaction is false for a lone non-transactional message.
	 */
	bool		in_transaction;
	uint32_t	xid;
	uint64_t	commit_lsn;
	int64_t		commit_time;	/* microseconds since 2000-01-01 00:00:00 UTC */
	bool		ends_transaction;	/* batch->commit or ->prepare closes it */
	bool		prepared;		/* the transaction has a gid (two-phase) */

	/*
	 * A chunk of a streamed transaction: its records carry their
	 * subtransaction's xid and no position (WireItem.position is 0); the
	 * chunk ends with batch->stream_stop.  Lone batches carrying a
	 * stream_commit, stream_abort, prepare, commit_prepared or
	 * rollback_prepared have neither in_transaction nor in_stream_chunk.
	 */
	bool		in_stream_chunk;
	uint32_t	stream_xid;
	size_t		payload_size;	/* decompressed size of the batch */
} WireBatch;

typedef struct WireDecoder WireDecoder;

/*
 * Create a decoder expecting the first frame of a session.  Returns NULL if
 * memory could not be allocated.  The caller owns the result and frees it
 * with wire_decoder_destroy.
 */
extern WireDecoder *wire_decoder_create(const WireAllocator *allocator);
extern void wire_decoder_destroy(WireDecoder *dec);

/*
 * Forget the current session (a new connection, a new SQL call): the next
 * frame must be a session start.  Relation descriptions are forgotten too.
 */
extern void wire_decoder_reset(WireDecoder *dec);

/*
 * Decode and validate one frame.  On success returns a batch owned by the
 * decoder, valid until the next call to wire_decoder_read, reset or destroy.
 * On failure returns NULL and writes a one-line reason (no trailing period)
 * into errbuf, of the form "frame N: record I (update of relation OID):
 * ...", frames counted from 1 since create or reset and records from 1
 * within the batch; the decoder is then unusable until wire_decoder_reset.
 */
extern const WireBatch *wire_decoder_read(WireDecoder *dec,
										  const uint8_t *frame, size_t len,
										  char *errbuf, size_t errlen);

/*
 * Refuse frames of any wire version but this one (for a client that asked
 * the plugin for it); 0, the default, accepts every version the reader
 * speaks.  Kept across resets.
 */
extern void wire_decoder_require_version(WireDecoder *dec, int version);

/*
 * After a failed read: was the frame one this reader does not speak (a
 * frame of another wire version, with a valid checksum, or not a dsplug
 * frame at all) rather than a damaged or invalid one?
 */
extern bool wire_decoder_foreign(const WireDecoder *dec);

/* The latest description of a relation in this session, or NULL. */
extern const Dsplug__Relation *wire_decoder_relation(const WireDecoder *dec,
													 uint32_t oid);

#endif							/* DSPLUG_WIRE_DECODE_H */
