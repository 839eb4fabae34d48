-- What old rows each replica identity provides, and key-changing updates.
CREATE TABLE id_default (id integer PRIMARY KEY, v text);
CREATE TABLE id_full (id integer PRIMARY KEY, v text);
ALTER TABLE id_full REPLICA IDENTITY FULL;
CREATE TABLE id_index (a integer NOT NULL, b integer NOT NULL, v text);
CREATE UNIQUE INDEX id_index_ab ON id_index (a, b);
ALTER TABLE id_index REPLICA IDENTITY USING INDEX id_index_ab;
CREATE TABLE id_nothing (id integer, v text);
ALTER TABLE id_nothing REPLICA IDENTITY NOTHING;
CREATE TABLE id_nokey (id integer, v text);

CREATE PUBLICATION id_pub FOR TABLE id_default, id_full, id_index;
-- tables without a usable identity can publish inserts only
CREATE PUBLICATION id_pub_noid FOR TABLE id_nothing, id_nokey WITH (publish = 'insert');
SELECT 'init' FROM pg_create_logical_replication_slot('id_slot', 'dsplug');

-- DEFAULT: no old row unless the key changes, then the old key only
INSERT INTO id_default VALUES (1, 'a'), (2, 'b');
UPDATE id_default SET v = 'a2' WHERE id = 1;
UPDATE id_default SET id = 10 WHERE id = 1;
UPDATE id_default SET id = 20, v = 'b2' WHERE id = 2;
DELETE FROM id_default WHERE id = 10;
SELECT * FROM changes('id_slot', 'publication_names', 'id_pub');

-- FULL: the whole old row on every update and delete
INSERT INTO id_full VALUES (1, 'a');
UPDATE id_full SET v = 'a2';
UPDATE id_full SET id = 2;
DELETE FROM id_full;
SELECT * FROM changes('id_slot', 'publication_names', 'id_pub');

-- USING INDEX: the index columns are the key
INSERT INTO id_index VALUES (1, 1, 'x');
UPDATE id_index SET v = 'y';
UPDATE id_index SET b = 2;
DELETE FROM id_index;
SELECT * FROM changes('id_slot', 'publication_names', 'id_pub');

-- NOTHING, and no primary key: inserts are sent; updates are allowed but
-- not published
INSERT INTO id_nothing VALUES (1, 'a');
UPDATE id_nothing SET v = 'b';
INSERT INTO id_nokey VALUES (1, 'a');
UPDATE id_nokey SET v = 'b';
SELECT * FROM changes('id_slot', 'publication_names', 'id_pub_noid');

-- the server refuses updates and deletes that a publication could not
-- identify
CREATE PUBLICATION id_pub_upd FOR TABLE id_nothing, id_nokey WITH (publish = 'update, delete');
UPDATE id_nothing SET v = 'c';
DELETE FROM id_nokey;
DROP PUBLICATION id_pub_upd;

SELECT 'drop' FROM pg_drop_replication_slot('id_slot');
DROP PUBLICATION id_pub, id_pub_noid;
DROP TABLE id_default, id_full, id_index, id_nothing, id_nokey;
