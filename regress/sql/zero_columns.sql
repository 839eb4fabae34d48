-- Relations without columns: created so, or with every column dropped.
-- Their rows are empty tuples, never a stale value or an ERROR, on the
-- streaming protocol (t/07-plugin-zero-columns.sh) as on the SQL interface.
CREATE PUBLICATION zero_pub FOR ALL TABLES;
CREATE PUBLICATION zero_ins_pub FOR ALL TABLES WITH (publish = 'insert, truncate');
SELECT 'init' FROM pg_create_logical_replication_slot('zero_slot', 'dsplug');

-- the reproduction: rows without columns between TOASTed rows, whose
-- leftover values must not be written for them
CREATE TABLE one (t text);
CREATE TABLE zc ();
BEGIN;
INSERT INTO one VALUES (repeat('x', 3000));
INSERT INTO zc DEFAULT VALUES;
INSERT INTO one VALUES (repeat('y', 100000));
INSERT INTO zc DEFAULT VALUES;
COMMIT;
SELECT kind, relation, pos,
	   CASE WHEN relation = 'public.one' AND kind = 'insert'
			THEN json_build_object('length', length(data->'new'->>'t'))
			ELSE data END AS data
FROM changes('zero_slot', 'publication_names', 'zero_pub');

-- the same without TOAST, one row per transaction
INSERT INTO zc DEFAULT VALUES;
SELECT * FROM changes('zero_slot', 'publication_names', 'zero_pub');

-- a table whose columns were all dropped: rows inserted before still have
-- values on disk, rows inserted after have none; both send no value
CREATE TABLE dropped (a integer, b text);
INSERT INTO dropped VALUES (1, 'one');
ALTER TABLE dropped DROP COLUMN a, DROP COLUMN b;
INSERT INTO dropped DEFAULT VALUES;
SELECT count(*) FROM dropped;
SELECT * FROM changes('zero_slot', 'publication_names', 'zero_pub');

-- REPLICA IDENTITY FULL: a delete carries the (empty) old row
ALTER TABLE zc REPLICA IDENTITY FULL;
ALTER TABLE dropped REPLICA IDENTITY FULL;
DELETE FROM zc;
DELETE FROM dropped;
SELECT * FROM changes('zero_slot', 'publication_names', 'zero_pub');

-- with no replica identity, a published delete is refused by the server
-- before anything is logged
ALTER TABLE zc REPLICA IDENTITY NOTHING;
INSERT INTO zc DEFAULT VALUES;
DELETE FROM zc;
-- ... unless no publication publishes deletes: nothing is sent for them
DROP PUBLICATION zero_pub;
DELETE FROM zc;
SELECT * FROM changes('zero_slot', 'publication_names', 'zero_ins_pub');

-- truncate, and a column added back to a table that had none
INSERT INTO zc DEFAULT VALUES;
TRUNCATE zc, dropped;
ALTER TABLE zc ADD COLUMN c integer DEFAULT 7;
INSERT INTO zc DEFAULT VALUES;
SELECT * FROM changes('zero_slot', 'publication_names', 'zero_ins_pub');

SELECT 'drop' FROM pg_drop_replication_slot('zero_slot');
DROP PUBLICATION zero_ins_pub;
DROP TABLE one, zc, dropped;
