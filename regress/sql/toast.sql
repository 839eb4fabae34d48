-- NULL versus unchanged TOAST: an UPDATE that does not touch an
-- out-of-line value sends a marker (keep what you have), never the value,
-- never NULL.
CREATE TABLE docs (id integer PRIMARY KEY, title text, body text, meta jsonb);
ALTER TABLE docs ALTER COLUMN body SET STORAGE EXTERNAL;
ALTER TABLE docs ALTER COLUMN meta SET STORAGE EXTERNAL;
CREATE PUBLICATION toast_pub FOR TABLE docs;
SELECT 'init' FROM pg_create_logical_replication_slot('toast_slot', 'dsplug');

-- 3000 bytes, stored out of line (EXTERNAL: not compressed)
INSERT INTO docs VALUES (1, 'first', repeat('x', 3000), jsonb_build_object('k', repeat('m', 3000)));
INSERT INTO docs VALUES (2, 'second', NULL, NULL);
SELECT kind, relation, pos,
	   CASE WHEN kind IN ('insert', 'update') THEN
		   json_build_object('id', data->'new'->'id',
							 'title', data->'new'->'title',
							 'body_len', length(data->'new'->>'body'),
							 'meta_len', length(data->'new'->>'meta'),
							 'unchanged_toast', data->'unchanged_toast')
	   END AS summary
FROM changes('toast_slot', 'publication_names', 'toast_pub');

-- untouched: markers for body and meta, title sent
UPDATE docs SET title = 'renamed' WHERE id = 1;
-- the TOASTed value itself changes: sent in full, no marker for it
UPDATE docs SET body = repeat('y', 3001) WHERE id = 1;
-- set to NULL: a real NULL, not a marker
UPDATE docs SET meta = NULL WHERE id = 1;
-- a NULL stays NULL: no marker either
UPDATE docs SET title = 'still null body' WHERE id = 2;
SELECT kind, relation, pos,
	   CASE WHEN kind IN ('insert', 'update') THEN
		   json_build_object('id', data->'new'->'id',
							 'title', data->'new'->'title',
							 'body_len', length(data->'new'->>'body'),
							 'body_is_null', (data->'new'->'body')::text = 'null',
							 'meta', CASE WHEN data->'new'->'meta' IS NULL THEN 'absent'
										  WHEN (data->'new'->'meta')::text = 'null' THEN 'null'
										  ELSE 'value' END,
							 'unchanged_toast', data->'unchanged_toast')
	   END AS summary
FROM changes('toast_slot', 'publication_names', 'toast_pub');

-- REPLICA IDENTITY FULL: the old row arrives whole (detoasted), the new
-- row still marks what it did not change
ALTER TABLE docs REPLICA IDENTITY FULL;
UPDATE docs SET title = 'full' WHERE id = 1;
SELECT kind, pos,
	   CASE WHEN kind = 'update' THEN
		   json_build_object('old_body_len', length(data->'old'->>'body'),
							 'new_title', data->'new'->'title',
							 'unchanged_toast', data->'unchanged_toast')
	   END AS summary
FROM changes('toast_slot', 'publication_names', 'toast_pub');

SELECT 'drop' FROM pg_drop_replication_slot('toast_slot');
DROP PUBLICATION toast_pub;
DROP TABLE docs;
