/*-------------------------------------------------------------------------
 *
 * spool.c
 *		Transactions kept aside until they end: the chunks of a streamed
 *		transaction until its stream_commit, a prepared transaction until
 *		its COMMIT PREPARED.  One file per top-level transaction.
 *
 * Why files.  A transaction is streamed because it outgrew the server's
 * logical_decoding_work_mem; holding it in the consumer's memory would only
 * move the problem.  Memory used here is a few counters per transaction and
 * one pack buffer the size of the largest batch.
 *
 * Why anonymous.  A spool file is created in the spool directory
 * (--spool-dir) and unlinked at once: the kernel reclaims it when the
 * consumer exits, however it exits, so a crash leaves nothing stale behind.
 * Nothing is ever read back from an earlier process or session anyway: a
 * transaction not yet in the target is not confirmed, so the server sends
 * it again, from its start, in the next session (apply.c, stream.c).
 *
 * Format: entries, each a kind byte, a 4-byte big-endian length, that many
 * bytes of protobuf, and a 4-byte big-endian CRC-32C of everything before
 * it in the entry (kind, length and protobuf):
 *
 *		'R'		a relation description (dsplug.Relation)
 *		'B'		a batch (dsplug.Batch) as received
 *
 * A spool lives as long as its transaction runs, which may be hours, on a
 * disk the frames' checksums no longer protect: an entry is checked before
 * anything of it is believed, and a mismatch fails the replay (apply.c
 * rolls back what the transaction had applied, and nothing is confirmed).
 *
 * Before a batch whose changes use a relation the spool has not described
 * yet, the session's current description of it is written.  A streamed
 * transaction's chunks describe every relation they use, but a prepared
 * transaction's batches rely on descriptions sent earlier in the session,
 * and a later description may replace those before COMMIT PREPARED comes.
 * Replaying a spool therefore needs nothing but the spool.
 *
 * consumer/core/spool.c
 *
 *-------------------------------------------------------------------------
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/core.h"

#define SPOOL_ENTRY_HEADER	5
#define SPOOL_ENTRY_CRC		4
#define SPOOL_RELATION		'R'
#define SPOOL_BATCH			'B'

static bool spool_open_file(Spool *s);
static bool spool_put(Spool *s, char kind, const ProtobufCMessage *msg);
static bool spool_described(Spool *s, uint32_t oid);
static bool spool_fail(Spool *s, const char *what);
static int	compare_xid(const void *a, const void *b);

/* one buffer to pack whole entries into, grown to the largest */
static uint8_t *pack_buf;
static size_t pack_cap;

/*
 * A spool for top-level transaction xid, in directory dir (kept by
 * reference: it must outlive the spool).  The file is created with the
 * first entry.  The caller owns the result; spool_destroy frees it.
 */
Spool *
spool_create(const char *dir, uint32_t xid)
{
	Spool	   *s = xmalloc(sizeof(Spool));

	memset(s, 0, sizeof(Spool));
	s->dir = dir;
	s->xid = xid;
	return s;
}

/* Close (and so delete) the file and free everything. */
void
spool_destroy(Spool *s)
{
	if (s == NULL)
		return;
	if (s->file != NULL)
		fclose(s->file);
	free(s->gid);
	free(s->aborted);
	free(s->described);
	free(s);
}

/*
 * Append one batch: first descriptions of the relations its changes use
 * that the spool has not described, then the batch.  Relations the batch
 * itself describes count as described from there on.  A batch without
 * records writes nothing.  Returns false after error_set().
 */
bool
spool_write_batch(Spool *s, const WireBatch *b, const WireDecoder *dec)
{
	if (b->nitems == 0)
		return true;

	for (size_t i = 0; i < b->nitems; i++)
	{
		const Dsplug__Record *rec = b->items[i].record;

		switch (rec->kind_case)
		{
			case DSPLUG__RECORD__KIND_RELATION:
				/* in the batch itself: it comes before its changes */
				if (!spool_described(s, rec->relation->oid))
					s->described[s->ndescribed++] = rec->relation->oid;
				break;
			case DSPLUG__RECORD__KIND_INSERT:
			case DSPLUG__RECORD__KIND_UPDATE:
			case DSPLUG__RECORD__KIND_DELETE:
				if (!spool_described(s, b->items[i].relation->oid))
				{
					if (!spool_put(s, SPOOL_RELATION,
								   &b->items[i].relation->base))
						return false;
					s->described[s->ndescribed++] = b->items[i].relation->oid;
				}
				break;
			case DSPLUG__RECORD__KIND_TRUNCATE:
				for (size_t r = 0; r < rec->truncate->n_relations; r++)
				{
					uint32_t	oid = rec->truncate->relations[r];

					if (!spool_described(s, oid))
					{
						const Dsplug__Relation *rel = wire_decoder_relation(dec, oid);

						/* the decoder checked that it was described */
						if (!spool_put(s, SPOOL_RELATION, &rel->base))
							return false;
						s->described[s->ndescribed++] = oid;
					}
				}
				break;
			default:
				break;
		}
	}
	if (!spool_put(s, SPOOL_BATCH, &b->batch->base))
		return false;
	s->batches++;
	return true;
}

/*
 * Is oid among the relations the spool has described?  Makes room for one
 * more, so that the caller can add it.
 */
static bool
spool_described(Spool *s, uint32_t oid)
{
	for (size_t i = 0; i < s->ndescribed; i++)
	{
		if (s->described[i] == oid)
			return true;
	}
	if (s->ndescribed == s->described_cap)
	{
		s->described_cap = s->described_cap > 0 ? s->described_cap * 2 : 8;
		s->described = xrealloc(s->described,
								s->described_cap * sizeof(uint32_t));
	}
	return false;
}

/* A subtransaction rolled back: its records are dropped at replay. */
void
spool_abort_subxact(Spool *s, uint32_t subxid)
{
	if (s->naborted == s->aborted_cap)
	{
		s->aborted_cap = s->aborted_cap > 0 ? s->aborted_cap * 2 : 16;
		s->aborted = xrealloc(s->aborted, s->aborted_cap * sizeof(uint32_t));
	}
	s->aborted[s->naborted++] = subxid;
	s->aborted_sorted = false;
}

/* Was the (sub)transaction xid rolled back?  0 (no xid) never was. */
bool
spool_aborted(Spool *s, uint32_t xid)
{
	if (s->naborted == 0 || xid == 0)
		return false;
	if (!s->aborted_sorted)
	{
		qsort(s->aborted, s->naborted, sizeof(uint32_t), compare_xid);
		s->aborted_sorted = true;
	}
	return bsearch(&xid, s->aborted, s->naborted, sizeof(uint32_t),
				   compare_xid) != NULL;
}

static int
compare_xid(const void *a, const void *b)
{
	uint32_t	x = *(const uint32_t *) a;
	uint32_t	y = *(const uint32_t *) b;

	return x < y ? -1 : x > y;
}

/* Start reading the spool from its first entry. */
bool
spool_rewind(Spool *s)
{
	if (s->file == NULL)
		return true;
	errno = 0;
	if (fflush(s->file) != 0 || fseeko(s->file, 0, SEEK_SET) != 0)
		return spool_fail(s, "read");
	s->entries_read = 0;
	return true;
}

/*
 * Read the next entry: a description into *rel or a batch into *batch,
 * unpacked with malloc; the caller frees it (dsplug__relation__free_unpacked,
 * dsplug__batch__free_unpacked with a NULL allocator).  Returns
 * SPOOL_END after the last entry, SPOOL_ERROR after error_set().
 */
SpoolEntry
spool_read(Spool *s, Dsplug__Relation **rel, Dsplug__Batch **batch)
{
	uint8_t		hdr[SPOOL_ENTRY_HEADER];
	size_t		len;
	size_t		n;
	uint32_t	stored;
	uint32_t	computed;

	*rel = NULL;
	*batch = NULL;
	errno = 0;
	if (s->file == NULL)
		return SPOOL_END;
	n = fread(hdr, 1, sizeof(hdr), s->file);
	if (n == 0 && feof(s->file))
		return SPOOL_END;
	if (n != sizeof(hdr))
	{
		spool_fail(s, "read");
		return SPOOL_ERROR;
	}
	if (hdr[0] != SPOOL_RELATION && hdr[0] != SPOOL_BATCH)
	{
		error_set(RESULT_RUNTIME, "could not read spool file of transaction %u in \"%s\": entry %llu has an unknown kind 0x%02x: the file was damaged on disk",
				  s->xid, s->dir, (unsigned long long) s->entries_read + 1,
				  (unsigned int) hdr[0]);
		return SPOOL_ERROR;
	}
	len = ((size_t) hdr[1] << 24) | ((size_t) hdr[2] << 16) |
		((size_t) hdr[3] << 8) | (size_t) hdr[4];
	if (sizeof(hdr) + len + SPOOL_ENTRY_CRC > s->bytes)
	{
		/* a damaged length: do not allocate what it claims */
		error_set(RESULT_RUNTIME, "could not read spool file of transaction %u in \"%s\": entry %llu claims %zu bytes, more than the file holds: the file was damaged on disk",
				  s->xid, s->dir, (unsigned long long) s->entries_read + 1,
				  len);
		return SPOOL_ERROR;
	}
	if (sizeof(hdr) + len + SPOOL_ENTRY_CRC > pack_cap)
	{
		pack_cap = sizeof(hdr) + len + SPOOL_ENTRY_CRC;
		pack_buf = xrealloc(pack_buf, pack_cap);
	}
	memcpy(pack_buf, hdr, sizeof(hdr));
	if (fread(pack_buf + sizeof(hdr), 1, len + SPOOL_ENTRY_CRC, s->file) !=
		len + SPOOL_ENTRY_CRC)
	{
		spool_fail(s, "read");
		return SPOOL_ERROR;
	}
	stored = ((uint32_t) pack_buf[sizeof(hdr) + len] << 24) |
		((uint32_t) pack_buf[sizeof(hdr) + len + 1] << 16) |
		((uint32_t) pack_buf[sizeof(hdr) + len + 2] << 8) |
		(uint32_t) pack_buf[sizeof(hdr) + len + 3];
	computed = wire_crc32c(pack_buf, sizeof(hdr) + len);
	if (stored != computed)
	{
		error_set(RESULT_RUNTIME, "could not read spool file of transaction %u in \"%s\": checksum mismatch in entry %llu (entry says %08x, its contents give %08x): the file was damaged on disk",
				  s->xid, s->dir, (unsigned long long) s->entries_read + 1,
				  stored, computed);
		return SPOOL_ERROR;
	}
	s->entries_read++;
	if (hdr[0] == SPOOL_RELATION)
	{
		*rel = dsplug__relation__unpack(NULL, len, pack_buf + sizeof(hdr));
		if (*rel != NULL)
			return SPOOL_RELATION_ENTRY;
	}
	else
	{
		*batch = dsplug__batch__unpack(NULL, len, pack_buf + sizeof(hdr));
		if (*batch != NULL)
			return SPOOL_BATCH_ENTRY;
	}
	error_set(RESULT_RUNTIME, "could not read spool file of transaction %u: an entry of %zu bytes does not unpack (out of memory?)",
			  s->xid, len);
	return SPOOL_ERROR;
}

/*
 * Create the file in the spool directory and unlink it: it lives as long
 * as it is open.
 */
static bool
spool_open_file(Spool *s)
{
	size_t		len = strlen(s->dir) + 64;
	char	   *path = xmalloc(len);
	int			fd;

	snprintf(path, len, "%s/dsplug-spool-%u-XXXXXX", s->dir, s->xid);
	fd = mkstemp(path);
	if (fd < 0)
	{
		error_set(RESULT_RUNTIME, "could not create spool file \"%s\": %s",
				  path, strerror(errno));
		free(path);
		return false;
	}
	if (unlink(path) != 0 || (s->file = fdopen(fd, "w+b")) == NULL)
	{
		error_set(RESULT_RUNTIME, "could not create spool file \"%s\": %s",
				  path, strerror(errno));
		close(fd);
		free(path);
		return false;
	}
	free(path);
	return true;
}

static bool
spool_put(Spool *s, char kind, const ProtobufCMessage *msg)
{
	size_t		len = protobuf_c_message_get_packed_size(msg);
	size_t		total = SPOOL_ENTRY_HEADER + len + SPOOL_ENTRY_CRC;
	uint32_t	crc;

	if (len > UINT32_MAX)
	{
		error_set(RESULT_RUNTIME, "could not write spool file of transaction %u: an entry of %zu bytes is too large",
				  s->xid, len);
		return false;
	}
	if (s->file == NULL && !spool_open_file(s))
		return false;
	errno = 0;
	if (total > pack_cap)
	{
		pack_cap = total;
		pack_buf = xrealloc(pack_buf, pack_cap);
	}
	pack_buf[0] = (uint8_t) kind;
	pack_buf[1] = (uint8_t) (len >> 24);
	pack_buf[2] = (uint8_t) (len >> 16);
	pack_buf[3] = (uint8_t) (len >> 8);
	pack_buf[4] = (uint8_t) len;
	protobuf_c_message_pack(msg, pack_buf + SPOOL_ENTRY_HEADER);
	crc = wire_crc32c(pack_buf, SPOOL_ENTRY_HEADER + len);
	pack_buf[SPOOL_ENTRY_HEADER + len] = (uint8_t) (crc >> 24);
	pack_buf[SPOOL_ENTRY_HEADER + len + 1] = (uint8_t) (crc >> 16);
	pack_buf[SPOOL_ENTRY_HEADER + len + 2] = (uint8_t) (crc >> 8);
	pack_buf[SPOOL_ENTRY_HEADER + len + 3] = (uint8_t) crc;
	if (fwrite(pack_buf, 1, total, s->file) != total)
		return spool_fail(s, "write");
	s->bytes += total;
	return true;
}

static bool
spool_fail(Spool *s, const char *what)
{
	error_set(RESULT_RUNTIME, "could not %s spool file of transaction %u in \"%s\": %s",
			  what, s->xid, s->dir,
			  errno != 0 ? strerror(errno) : "unexpected end of file");
	return false;
}
