-- Changes to relations and publications during a stream are reflected:
-- ADD/DROP COLUMN, ALTER PUBLICATION ADD/DROP TABLE, replica identity.
CREATE TABLE t_ddl (id integer PRIMARY KEY, a text);
CREATE TABLE t_added (id integer PRIMARY KEY);
CREATE PUBLICATION ddl_pub FOR TABLE t_ddl;
SELECT 'init' FROM pg_create_logical_replication_slot('ddl_slot', 'dsplug');

INSERT INTO t_ddl VALUES (1, 'before');
ALTER TABLE t_ddl ADD COLUMN b integer DEFAULT 7;
INSERT INTO t_ddl VALUES (2, 'after add', 8);
-- a column added within a transaction: described again mid-transaction
BEGIN;
INSERT INTO t_ddl VALUES (3, 'in txn', 9);
ALTER TABLE t_ddl ADD COLUMN c timestamptz;
INSERT INTO t_ddl VALUES (4, 'in txn after add', 10, '2026-01-01 00:00:00+00');
COMMIT;
ALTER TABLE t_ddl DROP COLUMN a;
INSERT INTO t_ddl VALUES (5, 11, NULL);
-- an old row (without the column on disk) updated: the default comes back
UPDATE t_ddl SET id = 10 WHERE id = 1;
SELECT * FROM changes('ddl_slot', 'publication_names', 'ddl_pub');

-- generated columns are not sent
ALTER TABLE t_ddl ADD COLUMN g integer GENERATED ALWAYS AS (b * 2) STORED;
INSERT INTO t_ddl (id, b) VALUES (6, 3);
SELECT * FROM changes('ddl_slot', 'publication_names', 'ddl_pub');

-- a table added to the publication mid-stream is published from then on;
-- a dropped one is not
INSERT INTO t_added VALUES (1);
ALTER PUBLICATION ddl_pub ADD TABLE t_added;
INSERT INTO t_added VALUES (2);
ALTER PUBLICATION ddl_pub DROP TABLE t_ddl;
INSERT INTO t_ddl (id, b) VALUES (7, 1);
INSERT INTO t_added VALUES (3);
-- publish actions changed mid-stream
ALTER PUBLICATION ddl_pub SET (publish = 'insert');
DELETE FROM t_added WHERE id = 1;
INSERT INTO t_added VALUES (4);
SELECT * FROM changes('ddl_slot', 'publication_names', 'ddl_pub');

-- a replica identity change sends a new description and changes old rows
ALTER PUBLICATION ddl_pub SET (publish = 'insert, update, delete');
ALTER TABLE t_added REPLICA IDENTITY FULL;
DELETE FROM t_added WHERE id = 2;
SELECT * FROM changes('ddl_slot', 'publication_names', 'ddl_pub');

-- an old row logged whole (REPLICA IDENTITY FULL) that predates a column
-- added with a default: its old value is the default, as stored
INSERT INTO t_added VALUES (5);
ALTER TABLE t_added ADD COLUMN d integer DEFAULT 42;
UPDATE t_added SET id = 50 WHERE id = 5;
SELECT kind, relation, pos, data FROM changes('ddl_slot', 'publication_names', 'ddl_pub')
	WHERE kind IN ('insert', 'update');

SELECT 'drop' FROM pg_drop_replication_slot('ddl_slot');
DROP PUBLICATION ddl_pub;
DROP TABLE t_ddl, t_added;
