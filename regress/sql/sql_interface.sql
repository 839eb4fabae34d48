-- The SQL interface called over and over, with calls that ERROR midway,
-- partial reads, and decode() of captured frames: no crash, no leak, and
-- every call starts a new session that decodes on its own.
CREATE TABLE s (id integer PRIMARY KEY, v text);
CREATE PUBLICATION sql_pub FOR TABLE s;
SELECT 'init' FROM pg_create_logical_replication_slot('sql_slot', 'dsplug');
INSERT INTO s SELECT g, 'v' || g FROM generate_series(1, 10) g;
INSERT INTO s VALUES (11, 'eleven');
INSERT INTO s VALUES (12, 'twelve');

-- partial reads: upto_nchanges stops after whole transactions
SELECT count(*) FILTER (WHERE kind = 'commit') AS transactions
FROM dsplug.peek_changes('sql_slot', NULL, 1, 'publication_names', 'sql_pub');
-- decode() reads captured frames of one session; frames out of order, a
-- session without its first frame, or a frame damaged (its checksum) are a
-- clear error; frames of wire version 1 (no checksum) still decode
CREATE TEMP TABLE frames AS
	SELECT array_agg(data ORDER BY ord) AS f
	FROM pg_logical_slot_peek_binary_changes('sql_slot', NULL, NULL, 'publication_names', 'sql_pub')
		WITH ORDINALITY AS x(lsn, xid, data, ord);
SELECT frame, kind, position, relation FROM dsplug.decode((SELECT f FROM frames)) WHERE kind <> 'relation';
SELECT count(*) FROM dsplug.decode((SELECT f[2:3] FROM frames));
SELECT count(*) FROM dsplug.decode((SELECT ARRAY[f[1], f[3]] FROM frames));
SELECT count(*) FROM dsplug.decode(ARRAY['\x01'::bytea]);
SELECT count(*) FROM dsplug.decode(ARRAY['\x4200'::bytea]);
SELECT count(*) FROM dsplug.decode(ARRAY['\x010300'::bytea]);
SELECT count(*) FROM dsplug.decode(ARRAY['\x0106'::bytea]);
SELECT count(*) FROM dsplug.decode((SELECT ARRAY[substr(f[1], 1, octet_length(f[1]) - 3)] FROM frames));
SELECT count(*) FROM dsplug.decode((SELECT ARRAY[set_byte(f[1], 10, get_byte(f[1], 10) # 1)] FROM frames));
SELECT count(*) AS v1_records FROM dsplug.decode((SELECT array_agg(data ORDER BY ord)
	FROM pg_logical_slot_peek_binary_changes('sql_slot', NULL, NULL, 'publication_names', 'sql_pub', 'proto_version', '1')
		WITH ORDINALITY AS x(lsn, xid, data, ord)));

-- many sessions in one backend, half of them failing midway: memory in
-- use afterwards does not grow with the number of calls
CREATE FUNCTION churn(n integer) RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
	ok integer := 0;
BEGIN
	FOR i IN 1..n LOOP
		BEGIN
			PERFORM count(*) FROM dsplug.peek_changes('sql_slot', NULL, NULL, 'publication_names', 'sql_pub');
			PERFORM count(*) FROM pg_logical_slot_peek_binary_changes('sql_slot', NULL, NULL, 'publication_names', 'sql_pub');
			-- errors inside decoding, after the session started
			PERFORM count(*) FROM dsplug.peek_changes('sql_slot', NULL, NULL, 'publication_names', 'sql_pub,missing_pub');
		EXCEPTION WHEN undefined_object THEN
			ok := ok + 1;
		END;
		BEGIN
			PERFORM count(*) FROM dsplug.peek_changes('sql_slot', NULL, NULL, 'publication_names', 'sql_pub', 'bad', 'option');
		EXCEPTION WHEN invalid_parameter_value THEN
			ok := ok + 1;
		END;
	END LOOP;
	RETURN ok;
END
$$;
SELECT churn(20);
CREATE TEMP TABLE mem AS SELECT sum(total_bytes) AS before FROM pg_backend_memory_contexts;
SELECT churn(200);
SELECT (SELECT sum(total_bytes) FROM pg_backend_memory_contexts) - before < 1024 * 1024 AS no_growth FROM mem;

-- consuming in pieces returns every transaction exactly once
SELECT count(*) FILTER (WHERE kind = 'commit') FROM dsplug.get_changes('sql_slot', NULL, 1, 'publication_names', 'sql_pub');
SELECT count(*) FILTER (WHERE kind = 'commit') FROM dsplug.get_changes('sql_slot', NULL, NULL, 'publication_names', 'sql_pub');
SELECT count(*) FROM dsplug.get_changes('sql_slot', NULL, NULL, 'publication_names', 'sql_pub');

SELECT 'drop' FROM pg_drop_replication_slot('sql_slot');
DROP FUNCTION churn(integer);
DROP PUBLICATION sql_pub;
DROP TABLE s;
