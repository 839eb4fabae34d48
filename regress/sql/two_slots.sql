-- The seed's two-region setup: pub1/pub2 FOR ALL TABLES, rs1/rs2 on
-- dsplug, each slot read with its own publication.  Both regions must see
-- exactly the same changes.
CREATE TABLE accounts (id bigint PRIMARY KEY, owner text, balance numeric(12,2), updated timestamptz);
CREATE PUBLICATION pub1 FOR ALL TABLES WITH (publish = 'insert,update,delete');
CREATE PUBLICATION pub2 FOR ALL TABLES WITH (publish = 'insert,update,delete');
SELECT 'init' FROM pg_create_logical_replication_slot('rs1', 'dsplug');
SELECT 'init' FROM pg_create_logical_replication_slot('rs2', 'dsplug');

INSERT INTO accounts SELECT g, 'owner ' || g, g * 10.5, '2026-11-23 10:00:00+00' FROM generate_series(1, 50) g;
UPDATE accounts SET balance = balance + 1 WHERE id % 5 = 0;
UPDATE accounts SET id = id + 1000 WHERE id = 7;
DELETE FROM accounts WHERE id % 10 = 0;
-- TRUNCATE is not in publish: neither region sees it
TRUNCATE accounts;

CREATE TEMP TABLE region1 AS SELECT * FROM dsplug.get_changes('rs1', NULL, NULL, 'publication_names', 'pub1');
CREATE TEMP TABLE region2 AS SELECT * FROM dsplug.get_changes('rs2', NULL, NULL, 'publication_names', 'pub2');
SELECT kind, count(*) FROM region1 GROUP BY kind ORDER BY kind;
-- same rows, same order, same sequence numbers (xid, lsn, position):
-- nothing in one region's stream that is not in the other's
SELECT count(*) AS only_in_region1 FROM (
	SELECT lsn, xid, frame, kind, position, relation, data::text FROM region1
	EXCEPT ALL
	SELECT lsn, xid, frame, kind, position, relation, data::text FROM region2) d;
SELECT count(*) AS only_in_region2 FROM (
	SELECT lsn, xid, frame, kind, position, relation, data::text FROM region2
	EXCEPT ALL
	SELECT lsn, xid, frame, kind, position, relation, data::text FROM region1) d;
SELECT (SELECT count(*) FROM region1) AS region1, (SELECT count(*) FROM region2) AS region2;
-- the update that moved a key: old key and new row
SELECT data FROM region1 WHERE kind = 'update' AND data->'old' IS NOT NULL;

-- each slot advanced independently: nothing left for either
SELECT count(*) FROM dsplug.get_changes('rs1', NULL, NULL, 'publication_names', 'pub1');
SELECT count(*) FROM dsplug.get_changes('rs2', NULL, NULL, 'publication_names', 'pub2');

SELECT 'drop' FROM pg_drop_replication_slot('rs1');
SELECT 'drop' FROM pg_drop_replication_slot('rs2');
DROP PUBLICATION pub1, pub2;
DROP TABLE accounts;
