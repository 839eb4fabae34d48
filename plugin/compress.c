/*-------------------------------------------------------------------------
 *
 * compress.c
 *		The session's zstd stream: one compression context per decoding
 *		session, flushed at the end of every frame.
 *
 * Why one stream per session: most transactions are small, and a small
 * frame compressed on its own carries a zstd frame header and no history to
 * match against.  Continuing one stream lets each frame refer to everything
 * the session already sent (the same relations, column layouts and similar
 * values), and ZSTD_e_flush still makes each frame decodable as soon as it
 * arrives.  The price: a reader must decode a session's frames in order
 * from its first (proto/WIRE.md).
 *
 * Memory: zstd allocates through palloc in a context of our own under the
 * session's context, so the end of the session, or an ERROR in the middle
 * of it, frees the compressor with everything else; nothing is malloc'ed.
 *
 * plugin/compress.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

/*
 * ZSTD_customMem and ZSTD_createCCtx_advanced sit behind this macro in
 * zstd.h; both have been stable since zstd 1.0 and libzstd exports them.
 */
#define ZSTD_STATIC_LINKING_ONLY
#include <zstd.h>

#include "utils/memutils.h"

#include "dsplug.h"

struct DsplugCompressor
{
	ZSTD_CCtx  *cctx;
	MemoryContext mcxt;
};

static void *zstd_palloc(void *opaque, size_t size);
static void zstd_pfree(void *opaque, void *address);

/*
 * Create a compressor for one session, in a new child context of parent.
 */
DsplugCompressor *
compress_create(MemoryContext parent, int level)
{
	MemoryContext mcxt = AllocSetContextCreate(parent, "dsplug zstd",
											   ALLOCSET_DEFAULT_SIZES);
	DsplugCompressor *comp = MemoryContextAlloc(mcxt, sizeof(DsplugCompressor));
	ZSTD_customMem mem = {zstd_palloc, zstd_pfree, mcxt};
	size_t		ret;

	comp->mcxt = mcxt;
	comp->cctx = ZSTD_createCCtx_advanced(mem);
	if (comp->cctx == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("could not create zstd compression context")));

	ret = ZSTD_CCtx_setParameter(comp->cctx, ZSTD_c_compressionLevel, level);
	if (ZSTD_isError(ret))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("could not set zstd compression level %d: %s",
						level, ZSTD_getErrorName(ret))));
	return comp;
}

/*
 * Append the compressed form of src to out, flushed so that a reader that
 * has every earlier frame of the session can decode it completely.
 */
void
compress_frame(DsplugCompressor *comp, const char *src, size_t len,
			   StringInfo out)
{
	ZSTD_inBuffer in = {src, len, 0};

	for (;;)
	{
		ZSTD_outBuffer outbuf;
		size_t		remaining;
		size_t		room = ZSTD_compressBound(in.size - in.pos) + 64;

		enlargeStringInfo(out, (int) Min(room, (size_t) (MaxAllocSize / 2)));
		outbuf.dst = out->data + out->len;
		outbuf.size = out->maxlen - out->len - 1;
		outbuf.pos = 0;

		remaining = ZSTD_compressStream2(comp->cctx, &outbuf, &in, ZSTD_e_flush);
		if (ZSTD_isError(remaining))
			ereport(ERROR,
					(errcode(ERRCODE_INTERNAL_ERROR),
					 errmsg("could not compress dsplug batch: %s",
							ZSTD_getErrorName(remaining))));
		out->len += outbuf.pos;
		out->data[out->len] = '\0';
		if (remaining == 0 && in.pos == in.size)
			break;
	}
}

static void *
zstd_palloc(void *opaque, size_t size)
{
	return MemoryContextAllocExtended((MemoryContext) opaque, size,
									  MCXT_ALLOC_HUGE | MCXT_ALLOC_NO_OOM);
}

static void
zstd_pfree(void *opaque, void *address)
{
	if (address != NULL)
		pfree(address);
}
