-- Streaming of in-progress transactions (option streaming): a transaction
-- larger than logical_decoding_work_mem is sent in chunks before it
-- commits; aborted subtransactions and transactions are announced so that
-- a reader can drop what they sent.  Applying a streamed session (keeping
-- committed transactions, dropping aborted ones) gives exactly the rows of
-- the same WAL decoded without streaming.
SET logical_decoding_work_mem = '64kB';
CREATE TABLE st (id integer PRIMARY KEY, payload text);
CREATE PUBLICATION st_pub FOR TABLE st;
SELECT 'init' FROM pg_create_logical_replication_slot('st_slot', 'dsplug');

-- a big transaction with a subtransaction rolled back in the middle
BEGIN;
INSERT INTO st SELECT g, repeat('a', 200) FROM generate_series(1, 1000) g;
SAVEPOINT s1;
INSERT INTO st SELECT g, repeat('b', 200) FROM generate_series(1001, 2000) g;
ROLLBACK TO s1;
INSERT INTO st SELECT g, repeat('c', 200) FROM generate_series(2001, 3000) g;
COMMIT;
-- a small one, not streamed
INSERT INTO st VALUES (0, 'small');
-- a big one that aborts
BEGIN;
INSERT INTO st SELECT g, repeat('d', 200) FROM generate_series(5001, 6000) g;
ROLLBACK;
-- a big one that commits, with a truncate and a message in it
BEGIN;
INSERT INTO st SELECT g, repeat('e', 200) FROM generate_series(7001, 8000) g;
SELECT 'emit' FROM pg_logical_emit_message(true, 'p', 'in a stream');
COMMIT;

CREATE TEMP TABLE streamed AS
	SELECT row_number() OVER () AS ord, * FROM dsplug.peek_changes('st_slot', NULL, NULL,
		'publication_names', 'st_pub', 'streaming', 'on', 'messages', 'on');
CREATE TEMP TABLE plain AS
	SELECT row_number() OVER () AS ord, * FROM dsplug.peek_changes('st_slot', NULL, NULL,
		'publication_names', 'st_pub', 'messages', 'on');

-- what the streamed session holds (how many chunks depends on memory
-- accounting, so those counts are only checked to be several)
SELECT kind, CASE WHEN kind IN ('stream_start', 'stream_stop', 'insert')
				  THEN (count(*) > 2)::text ELSE count(*)::text END AS count
FROM streamed GROUP BY kind ORDER BY kind;
SELECT (SELECT count(*) FROM streamed WHERE kind = 'stream_start')
	 = (SELECT count(*) FROM streamed WHERE kind = 'stream_stop') AS chunks_closed;
-- every data record of a chunk names its (sub)transaction, takes no position
SELECT count(*) AS chunk_records_without_xid FROM streamed
WHERE kind IN ('insert', 'message') AND (data->>'xid') IS NULL AND position IS NULL;
-- one abort of a subtransaction (subxid differs), one of a whole transaction
SELECT (data->>'xid') <> (data->>'subxid') AS subtransaction FROM streamed
WHERE kind = 'stream_abort' ORDER BY ord;
-- the first chunk of each transaction says so
SELECT count(*) FILTER (WHERE (data->>'first')::boolean) AS first_chunks,
	   count(DISTINCT data->>'xid') AS streamed_transactions
FROM streamed WHERE kind = 'stream_start';

-- Apply the streamed session: records of committed transactions, minus
-- those of aborted subtransactions; the result is the plain session's.
CREATE TEMP TABLE chunk_rows AS
	SELECT s.ord, s.kind, s.data,
		   (SELECT (st.data->>'xid')::bigint FROM streamed st
			WHERE st.kind = 'stream_start' AND st.ord < s.ord ORDER BY st.ord DESC LIMIT 1) AS top_xid,
		   (s.data->>'xid')::bigint AS sub_xid
	FROM streamed s WHERE s.kind IN ('insert', 'message') AND s.position IS NULL;
SELECT count(*) AS applied_rows,
	   (SELECT count(*) FROM plain WHERE kind IN ('insert', 'message')) AS plain_rows
FROM chunk_rows c
WHERE c.top_xid IN (SELECT (data->>'xid')::bigint FROM streamed WHERE kind = 'stream_commit')
  AND c.sub_xid NOT IN (SELECT (data->>'subxid')::bigint FROM streamed WHERE kind = 'stream_abort')
UNION ALL
SELECT count(*), NULL FROM streamed WHERE kind IN ('insert', 'message') AND position IS NOT NULL;
SELECT (SELECT string_agg(data->'new'->>'id', ',' ORDER BY (data->'new'->>'id')::int) FROM (
			SELECT data FROM chunk_rows c
			WHERE c.kind = 'insert'
			  AND c.top_xid IN (SELECT (data->>'xid')::bigint FROM streamed WHERE kind = 'stream_commit')
			  AND c.sub_xid NOT IN (SELECT (data->>'subxid')::bigint FROM streamed WHERE kind = 'stream_abort')
			UNION ALL
			SELECT data FROM streamed WHERE kind = 'insert' AND position IS NOT NULL) a)
	 = (SELECT string_agg(data->'new'->>'id', ',' ORDER BY (data->'new'->>'id')::int)
		FROM plain WHERE kind = 'insert') AS same_rows;
-- the plain session never saw the aborted transaction at all
SELECT count(*) FROM plain WHERE kind = 'insert' AND (data->'new'->>'id')::int > 5000 AND (data->'new'->>'id')::int <= 6000;

-- streaming needs no more than the option: bad values are errors
SELECT count(*) FROM dsplug.peek_changes('st_slot', NULL, NULL, 'publication_names', 'st_pub', 'streaming', 'sometimes');

SELECT 'drop' FROM pg_drop_replication_slot('st_slot');
DROP PUBLICATION st_pub;
DROP TABLE st;
