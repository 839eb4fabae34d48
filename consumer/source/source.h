/*-------------------------------------------------------------------------
 *
 * source.h
 *		The source layer: everything that talks to the source PostgreSQL
 *		with libpq, and nothing that knows a target.
 *
 *		conn.c			connections, their session settings, snapshot
 *						slots, which failures are worth a retry
 *		replication.c	the walsender protocol: the slot's checks,
 *						START_REPLICATION, XLogData and keepalives in,
 *						standby status updates out
 *		copy.c			tables read under an exported snapshot: what
 *						the publications publish, descriptions from the
 *						catalog, binary COPY decoded into dsplug Values,
 *						and one row read again by its key
 *		toast_fetch.c	unchanged TOAST values read again by key
 *		record.c		frames recorded to a file and read back
 *						(--record, --replay)
 *
 * Every function that can fail returns false (or NULL) after error_set();
 * a failure a later attempt may not meet (a lost connection, a server
 * shutting down) is RESULT_RETRY, a refusal RESULT_SERVER.
 *
 * consumer/source/source.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef DSPLUG_SOURCE_H
#define DSPLUG_SOURCE_H

#include <libpq-fe.h>

#include "common/common.h"
#include "dsplug.pb-c.h"

/* conn.c */
extern bool source_check_conninfo(const char *conninfo, char *err,
								  size_t errsize);
extern PGconn *source_connect(const char *conninfo, bool replication);
extern bool source_set_formats(PGconn *conn);
extern bool source_retryable_sqlstate(const char *sqlstate);
extern bool source_create_slot(PGconn *conn, const char *name,
							   bool temporary, char **snapshot,
							   uint64_t *lsn);
extern bool source_begin_snapshot(PGconn *conn, const char *snapshot);
extern bool source_conn_failed(PGconn *conn, const char *what);

/* replication.c */

/* What the slot check found (repl_check_slot). */
typedef struct ReplSlot
{
	bool		exists;
	bool		two_phase;		/* the slot decodes prepared transactions */
	uint64_t	confirmed_lsn;	/* INVALID_LSN when the server has none */
} ReplSlot;

/* One CopyData message of the replication stream. */
typedef struct ReplMessage
{
	char		type;			/* 'w' XLogData, 'k' keepalive */
	uint64_t	data_start;		/* 'w' */
	uint64_t	wal_end;
	bool		reply_requested;	/* 'k' */
	const uint8_t *data;		/* 'w': the frame */
	size_t		len;
} ReplMessage;

typedef enum ReplRead
{
	REPL_MESSAGE,				/* *msg is set; repl_release() when done */
	REPL_NONE,					/* nothing more for now */
	REPL_ENDED,					/* the server ended the stream */
	REPL_FAILED					/* error_set() says why */
} ReplRead;

typedef struct ReplOption
{
	const char *name;
	const char *value;			/* NULL: left out */
} ReplOption;

extern bool repl_check_slot(PGconn *conn, const char *slot, ReplSlot *info);
extern bool repl_check_slot_idle(PGconn *conn, const char *slot);
extern bool repl_start(PGconn *conn, const char *slot, uint64_t start,
					   int proto_version, const char *publications,
					   const ReplOption *options, int noptions);
extern ReplRead repl_read(PGconn *conn, ReplMessage *msg, char **buf);
extern void repl_release(char *buf);
extern bool repl_wait(PGconn *conn, int64_t timeout_us);
extern bool repl_send_status(PGconn *conn, uint64_t write, uint64_t flush,
							 bool request_reply);
extern void repl_end(PGconn *conn);

/* copy.c */

/*
 * A description built from the catalog (source_describe), as the plugin
 * would send it, and the memory it owns.
 */
typedef struct SourceRelation
{
	Dsplug__Relation rel;
	Dsplug__Column **cols;
	Dsplug__Column *colmem;
} SourceRelation;

/* The tables the publications publish (source_published_tables). */
typedef struct SourceTables
{
	PGresult   *res;
} SourceTables;

/* Called with every row a copy reads; the row is valid during the call. */
typedef bool (*SourceRowFn) (void *arg, const Dsplug__Relation *rel,
							 const Dsplug__Tuple *row);

extern bool source_published_tables(PGconn *conn, const char *publications,
									uint32_t only_oid, SourceTables *tables);
extern int	source_tables_count(const SourceTables *tables);
extern bool source_describe(PGconn *conn, const SourceTables *tables, int i,
							SourceRelation *out);
extern void source_describe_free(SourceRelation *r);
extern bool source_copy_table(PGconn *conn, const SourceTables *tables,
							  int i, const Dsplug__Relation *rel,
							  SourceRowFn row_fn, void *row_arg,
							  void (*tick) (void *), void *tick_arg,
							  uint64_t *rows);
extern void source_tables_free(SourceTables *tables);

typedef struct RowReader RowReader;
extern bool source_read_row(PGconn *conn, const Dsplug__Relation *rel,
							const Dsplug__Relation *want,
							const Dsplug__Tuple *key, RowReader **reader,
							const Dsplug__Tuple **row);
extern void source_read_row_free(RowReader *reader);

/* toast_fetch.c */
typedef struct ToastFetcher ToastFetcher;
extern ToastFetcher *toast_fetcher_create(const char *conninfo);
extern void toast_fetcher_free(ToastFetcher *tf);
extern bool toast_fetch_complete(ToastFetcher *tf,
								 const Dsplug__Relation *rel,
								 const Dsplug__Tuple *old,
								 const Dsplug__Tuple *new_,
								 uint64_t commit_lsn,
								 const Dsplug__Tuple **completed,
								 bool *vanished);

/* record.c */
typedef struct Recorder Recorder;
extern Recorder *recorder_open(const char *path);
extern bool recorder_write(Recorder *rec, uint64_t data_start,
						   uint64_t wal_end, const uint8_t *data, size_t len);
extern bool recorder_close(Recorder *rec);

typedef struct RecordReader RecordReader;
typedef enum RecordRead
{
	RECORD_FRAME,
	RECORD_END,
	RECORD_FAILED				/* error_set() says why */
} RecordRead;
extern RecordReader *record_reader_open(const char *path);
extern RecordRead record_reader_next(RecordReader *rr, const uint8_t **frame,
									 size_t *len, uint64_t *data_start);
extern uint64_t record_reader_frames(const RecordReader *rr);
extern void record_reader_close(RecordReader *rr);

#endif							/* DSPLUG_SOURCE_H */
