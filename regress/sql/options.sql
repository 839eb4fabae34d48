-- Every option, and every way to get one wrong: an ERROR with a hint
-- before anything is sent (the slot does not move).
CREATE TABLE o (id integer PRIMARY KEY, v text);
CREATE PUBLICATION opt_pub FOR TABLE o;
SELECT 'init' FROM pg_create_logical_replication_slot('opt_slot', 'dsplug');
INSERT INTO o VALUES (1, 'one');

\set VERBOSITY default
-- missing publication_names
SELECT count(*) FROM dsplug.peek_changes('opt_slot', NULL, NULL);
-- unknown option
SELECT count(*) FROM dsplug.peek_changes('opt_slot', NULL, NULL, 'publication_names', 'opt_pub', 'binary', 'true');
-- repeated option
SELECT count(*) FROM dsplug.peek_changes('opt_slot', NULL, NULL, 'publication_names', 'opt_pub', 'publication_names', 'opt_pub');
SELECT count(*) FROM dsplug.peek_changes('opt_slot', NULL, NULL, 'publication_names', 'opt_pub', 'messages', 'on', 'messages', 'off');
-- malformed values
SELECT count(*) FROM dsplug.peek_changes('opt_slot', NULL, NULL, 'publication_names', 'opt_pub,');
SELECT count(*) FROM dsplug.peek_changes('opt_slot', NULL, NULL, 'publication_names', '');
SELECT count(*) FROM dsplug.peek_changes('opt_slot', NULL, NULL, 'publication_names', 'opt_pub', 'proto_version', 'one');
SELECT count(*) FROM dsplug.peek_changes('opt_slot', NULL, NULL, 'publication_names', 'opt_pub', 'proto_version', '3');
SELECT count(*) FROM dsplug.peek_changes('opt_slot', NULL, NULL, 'publication_names', 'opt_pub', 'proto_version', '0');
SELECT count(*) FROM dsplug.peek_changes('opt_slot', NULL, NULL, 'publication_names', 'opt_pub', 'compression', 'lz4');
SELECT count(*) FROM dsplug.peek_changes('opt_slot', NULL, NULL, 'publication_names', 'opt_pub', 'compression_level', '0');
SELECT count(*) FROM dsplug.peek_changes('opt_slot', NULL, NULL, 'publication_names', 'opt_pub', 'compression_level', '20');
SELECT count(*) FROM dsplug.peek_changes('opt_slot', NULL, NULL, 'publication_names', 'opt_pub', 'compression_level', 'fast');
SELECT count(*) FROM dsplug.peek_changes('opt_slot', NULL, NULL, 'publication_names', 'opt_pub', 'compression', 'none', 'compression_level', '3');
SELECT count(*) FROM dsplug.peek_changes('opt_slot', NULL, NULL, 'publication_names', 'opt_pub', 'batch_size', '512');
SELECT count(*) FROM dsplug.peek_changes('opt_slot', NULL, NULL, 'publication_names', 'opt_pub', 'batch_size', '1GB');
SELECT count(*) FROM dsplug.peek_changes('opt_slot', NULL, NULL, 'publication_names', 'opt_pub', 'batch_size', '10 parsecs');
SELECT count(*) FROM dsplug.peek_changes('opt_slot', NULL, NULL, 'publication_names', 'opt_pub', 'messages', 'perhaps');
SELECT count(*) FROM dsplug.peek_changes('opt_slot', NULL, NULL, 'publication_names', 'opt_pub', 'messages');
-- the raw functions give the same errors, and nothing was consumed
SELECT count(*) FROM pg_logical_slot_get_binary_changes('opt_slot', NULL, NULL, 'publication_names', 'opt_pub', 'nonsense', '1');
SELECT kind, relation, data FROM dsplug.peek_changes('opt_slot', NULL, NULL, 'publication_names', 'opt_pub')
	WHERE kind = 'insert';
-- the text interface refuses a binary plugin
SELECT count(*) FROM pg_logical_slot_peek_changes('opt_slot', NULL, NULL, 'publication_names', 'opt_pub');

-- every valid option, with units; each combination decodes the same rows
SELECT count(*) FROM dsplug.peek_changes('opt_slot', NULL, NULL,
	'publication_names', 'opt_pub', 'proto_version', '1', 'compression', 'zstd',
	'compression_level', '19', 'batch_size', '1kB', 'messages', 'off') WHERE kind = 'insert';
SELECT count(*) FROM dsplug.peek_changes('opt_slot', NULL, NULL,
	'publication_names', '"opt_pub"', 'compression', 'NONE', 'batch_size', '64MB', 'messages', 'true') WHERE kind = 'insert';
SELECT count(*) FROM dsplug.peek_changes('opt_slot', NULL, NULL,
	'publication_names', 'opt_pub', 'batch_size', '4096') WHERE kind = 'insert';

-- frame headers: version 1, zstd flag, session start on the first frame
SELECT get_byte(data, 0) AS version, get_byte(data, 1) AS flags
FROM pg_logical_slot_peek_binary_changes('opt_slot', NULL, NULL, 'publication_names', 'opt_pub');
SELECT get_byte(data, 0) AS version, get_byte(data, 1) AS flags
FROM pg_logical_slot_peek_binary_changes('opt_slot', NULL, NULL, 'publication_names', 'opt_pub', 'compression', 'none');

-- a slot of another plugin is not a dsplug stream
SELECT 'init' FROM pg_create_logical_replication_slot('opt_pgoutput', 'pgoutput');
INSERT INTO o VALUES (2, 'two');
SELECT count(*) FROM dsplug.peek_changes('opt_pgoutput', NULL, NULL, 'publication_names', 'opt_pub', 'proto_version', '1');
SELECT 'drop' FROM pg_drop_replication_slot('opt_pgoutput');

SELECT 'drop' FROM pg_drop_replication_slot('opt_slot');
DROP PUBLICATION opt_pub;
DROP TABLE o;
