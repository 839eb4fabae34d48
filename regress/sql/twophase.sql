-- Two-phase: prepared transactions are sent at PREPARE TRANSACTION (slots
-- created with two_phase, or the two_phase option), their end at COMMIT
-- PREPARED or ROLLBACK PREPARED.  Without two-phase a prepared transaction
-- arrives as an ordinary one when it commits.
CREATE TABLE tp (id integer PRIMARY KEY, v text);
CREATE TABLE tp_other (id integer);
CREATE PUBLICATION tp_pub FOR TABLE tp;
SELECT 'init' FROM pg_create_logical_replication_slot('tp_slot', 'dsplug', false, true);
SELECT 'init' FROM pg_create_logical_replication_slot('tp_plain', 'dsplug');
SELECT slot_name, two_phase FROM pg_replication_slots WHERE slot_name LIKE 'tp_%' ORDER BY 1;

BEGIN;
INSERT INTO tp VALUES (1, 'one');
PREPARE TRANSACTION 'gid-1';
BEGIN;
INSERT INTO tp VALUES (2, 'two');
PREPARE TRANSACTION 'gid-2';
-- a prepared transaction with nothing published is still sent
BEGIN;
INSERT INTO tp_other VALUES (1);
PREPARE TRANSACTION 'gid-empty';

SELECT kind, data->>'gid' AS gid FROM dsplug.peek_changes('tp_slot', NULL, NULL, 'publication_names', 'tp_pub');
SELECT kind, relation, pos, CASE WHEN kind IN ('insert') THEN data END AS data
FROM changes('tp_slot', 'publication_names', 'tp_pub');

COMMIT PREPARED 'gid-1';
ROLLBACK PREPARED 'gid-2';
COMMIT PREPARED 'gid-empty';
SELECT kind, data->>'gid' AS gid FROM dsplug.get_changes('tp_slot', NULL, NULL, 'publication_names', 'tp_pub');

-- the slot without two-phase sees only what committed, as plain transactions
SELECT kind, relation, pos, CASE WHEN kind IN ('insert') THEN data END AS data
FROM changes('tp_plain', 'publication_names', 'tp_pub');

-- a big prepared transaction, streamed: chunks, then the prepare alone
SET logical_decoding_work_mem = '64kB';
BEGIN;
INSERT INTO tp SELECT g, repeat('x', 200) FROM generate_series(100, 1100) g;
PREPARE TRANSACTION 'gid-big';
COMMIT PREPARED 'gid-big';
SELECT kind, CASE WHEN kind IN ('stream_start', 'stream_stop') THEN (count(*) > 1)::text
				  ELSE count(*)::text END AS count,
	   max(data->>'gid') AS gid
FROM dsplug.get_changes('tp_slot', NULL, NULL, 'publication_names', 'tp_pub', 'streaming', 'on')
GROUP BY kind ORDER BY kind;

SELECT 'drop' FROM pg_drop_replication_slot('tp_slot');
SELECT 'drop' FROM pg_drop_replication_slot('tp_plain');
DROP PUBLICATION tp_pub;
DROP TABLE tp, tp_other;
