-- A large transaction is cut into bounded batches as it is decoded; its
-- positions run on across batches, with one begin and one commit.
CREATE TABLE big (id integer PRIMARY KEY, payload text);
CREATE PUBLICATION batch_pub FOR TABLE big;
SELECT 'init' FROM pg_create_logical_replication_slot('batch_slot', 'dsplug');

INSERT INTO big SELECT g, repeat(md5(g::text), 4) FROM generate_series(1, 5000) g;
INSERT INTO big VALUES (0, 'small transaction');

-- default batch_size (256kB): the 5000-row insert takes a few frames
SELECT count(DISTINCT frame) AS frames, count(*) FILTER (WHERE kind = 'insert') AS inserts
FROM dsplug.peek_changes('batch_slot', NULL, NULL, 'publication_names', 'batch_pub');

-- 1kB batches: many frames; each frame but the last of a transaction is a
-- middle or first piece without a commit
CREATE TEMP TABLE small_batches AS
	SELECT * FROM dsplug.peek_changes('batch_slot', NULL, NULL, 'publication_names', 'batch_pub', 'batch_size', '1kB');
SELECT count(DISTINCT frame) > 100 AS many_frames,
	   count(*) FILTER (WHERE kind = 'begin') AS begins,
	   count(*) FILTER (WHERE kind = 'commit') AS commits,
	   count(*) FILTER (WHERE kind = 'insert') AS inserts
FROM small_batches;
-- positions: 0..4999 in the big transaction, without gaps or repeats,
-- in frame order; 0 in the small one
SELECT xid_rank, min(position), max(position), count(*), count(DISTINCT position)
FROM (SELECT dense_rank() OVER (ORDER BY xid::text::bigint) AS xid_rank, * FROM small_batches) s
WHERE kind = 'insert' GROUP BY xid_rank ORDER BY xid_rank;
SELECT bool_and(position = rn - 1) AS positions_in_order
FROM (SELECT position, row_number() OVER (ORDER BY frame, ctid) AS rn
	  FROM small_batches WHERE kind = 'insert' AND data->'new'->>'id' <> '0') s;
-- the frames of one transaction all carry its rows: first frame has begin,
-- last has commit
SELECT min(frame) FILTER (WHERE kind = 'begin') = min(frame) AS begin_first,
	   max(frame) FILTER (WHERE kind = 'commit') = max(frame) AS commit_last
FROM small_batches;
-- the same rows as with one batch, and as without compression
SELECT (SELECT string_agg(data::text, ',' ORDER BY position) FROM small_batches WHERE kind = 'insert')
	 = (SELECT string_agg(data::text, ',' ORDER BY position) FROM dsplug.peek_changes('batch_slot', NULL, NULL,
			'publication_names', 'batch_pub', 'batch_size', '64MB', 'compression', 'none') WHERE kind = 'insert')
	AS same_rows;
-- compressed, the whole stream is much smaller than uncompressed
SELECT (SELECT sum(octet_length(data)) FROM pg_logical_slot_peek_binary_changes('batch_slot', NULL, NULL, 'publication_names', 'batch_pub'))
	 * 3 < (SELECT sum(octet_length(data)) FROM pg_logical_slot_peek_binary_changes('batch_slot', NULL, NULL, 'publication_names', 'batch_pub', 'compression', 'none'))
	AS compressed_smaller;

SELECT 'drop' FROM pg_drop_replication_slot('batch_slot');
DROP PUBLICATION batch_pub;
DROP TABLE big;
