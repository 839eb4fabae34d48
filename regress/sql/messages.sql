-- Logical messages: sent only with messages 'on', transactional ones in
-- their transaction (counted in its positions), others alone.
CREATE TABLE m (id integer PRIMARY KEY);
CREATE PUBLICATION msg_pub FOR TABLE m;
SELECT 'init' FROM pg_create_logical_replication_slot('msg_slot', 'dsplug');

SELECT 'emit' FROM pg_logical_emit_message(false, 'alone', 'not in a transaction');
BEGIN;
INSERT INTO m VALUES (1);
SELECT 'emit' FROM pg_logical_emit_message(true, 'txn', 'inside');
INSERT INTO m VALUES (2);
COMMIT;
-- a transaction holding only a message is not empty
SELECT 'emit' FROM pg_logical_emit_message(true, 'only', 'message');
SELECT 'emit' FROM pg_logical_emit_message(true, 'bytes', '\x00ff'::bytea);
SELECT 'emit' FROM pg_logical_emit_message(true, 'empty', '');

-- off by default: only the inserts
SELECT frame, kind, position, relation, data FROM dsplug.peek_changes('msg_slot', NULL, NULL, 'publication_names', 'msg_pub')
	WHERE kind IN ('insert', 'message');
SELECT frame, kind, relation, position,
	   CASE WHEN kind IN ('insert', 'message') THEN data END AS data
FROM dsplug.get_changes('msg_slot', NULL, NULL, 'publication_names', 'msg_pub', 'messages', 'on')
WHERE kind <> 'relation';

SELECT 'drop' FROM pg_drop_replication_slot('msg_slot');
DROP PUBLICATION msg_pub;
DROP TABLE m;
