-- Row filters, column lists and publish_via_partition_root, compared with
-- pgoutput on the same WAL: for every publication set, dsplug and pgoutput
-- send the same changes (action, relation, column values).
--
-- pgoutput's protocol (version 1) is decoded here in PL/pgSQL; values are
-- compared as text (pgoutput's text format, dsplug's canonical text, which
-- is ISO for dates: pgoutput's follows DateStyle).
SET datestyle = 'ISO, YMD';
CREATE FUNCTION pgo_int(d bytea, p int, n int) RETURNS bigint LANGUAGE sql IMMUTABLE AS $$
	SELECT sum(get_byte(d, p + i)::bigint << (8 * (n - 1 - i)))::bigint FROM generate_series(0, n - 1) i
$$;
CREATE FUNCTION pgo_str(d bytea, p int) RETURNS text LANGUAGE sql IMMUTABLE AS $$
	SELECT convert_from(substring(d FROM p + 1 FOR position('\x00'::bytea IN substring(d FROM p + 1)) - 1), 'UTF8')
$$;
-- A TupleData at p: (jsonb object of column -> text, position after it)
CREATE FUNCTION pgo_tuple(d bytea, p int, cols text[], OUT obj jsonb, OUT pos int)
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
	n int := pgo_int(d, p, 2);
	len int;
	k char;
BEGIN
	obj := '{}';
	pos := p + 2;
	FOR i IN 1 .. n LOOP
		k := chr(get_byte(d, pos));
		pos := pos + 1;
		IF k = 'n' THEN
			obj := obj || jsonb_build_object(cols[i], NULL);
		ELSIF k = 'u' THEN
			obj := obj || jsonb_build_object(cols[i], 'unchanged-toast');
		ELSE
			len := pgo_int(d, pos, 4);
			obj := obj || jsonb_build_object(cols[i], convert_from(substring(d FROM pos + 5 FOR len), 'UTF8'));
			pos := pos + 4 + len;
		END IF;
	END LOOP;
END
$$;
-- What a pgoutput slot sends for the publications, as (n, kind, relation, data)
CREATE FUNCTION pgoutput_changes(slot name, pubs text)
RETURNS TABLE (n bigint, kind text, relation text, data jsonb)
LANGUAGE plpgsql AS $$
DECLARE
	r record;
	d bytea;
	p int;
	relid bigint;
	names jsonb := '{}';
	cols jsonb := '{}';
	colnames text[];
	t record;
	k char;
BEGIN
	n := 0;
	FOR r IN SELECT x.data FROM pg_logical_slot_peek_binary_changes(slot, NULL, NULL,
			'proto_version', '1', 'publication_names', pubs) x LOOP
		d := r.data;
		k := chr(get_byte(d, 0));
		IF k = 'R' THEN
			relid := pgo_int(d, 1, 4);
			p := 5;
			relation := pgo_str(d, p);
			p := p + octet_length(convert_to(relation, 'UTF8')) + 1;
			relation := relation || '.' || pgo_str(d, p);
			p := p + octet_length(convert_to(pgo_str(d, p), 'UTF8')) + 1;
			p := p + 1;						-- replica identity
			colnames := '{}';
			FOR i IN 1 .. pgo_int(d, p, 2) LOOP
				IF i = 1 THEN p := p + 2; END IF;
				p := p + 1;					-- flags
				colnames := colnames || pgo_str(d, p);
				p := p + octet_length(convert_to(pgo_str(d, p), 'UTF8')) + 1 + 8;
			END LOOP;
			names := names || jsonb_build_object(relid::text, relation);
			cols := cols || jsonb_build_object(relid::text, to_jsonb(colnames));
		ELSIF k IN ('I', 'U', 'D') THEN
			relid := pgo_int(d, 1, 4);
			relation := names ->> relid::text;
			SELECT array_agg(c) INTO colnames FROM jsonb_array_elements_text(cols -> relid::text) c;
			p := 5;
			data := '{}';
			IF chr(get_byte(d, p)) IN ('K', 'O') THEN
				t := pgo_tuple(d, p + 1, colnames);
				-- a key tuple's other columns are not sent
				data := jsonb_build_object('old', CASE WHEN chr(get_byte(d, p)) = 'K'
												   THEN jsonb_strip_nulls(t.obj) ELSE t.obj END);
				p := t.pos;
			END IF;
			IF p < octet_length(d) AND chr(get_byte(d, p)) = 'N' THEN
				t := pgo_tuple(d, p + 1, colnames);
				data := data || jsonb_build_object('new', t.obj);
			END IF;
			kind := CASE k WHEN 'I' THEN 'insert' WHEN 'U' THEN 'update' ELSE 'delete' END;
			n := n + 1;
			RETURN NEXT;
		ELSIF k = 'T' THEN
			kind := 'truncate';
			relation := NULL;
			data := NULL;
			n := n + 1;
			RETURN NEXT;
		END IF;
	END LOOP;
END
$$;
-- What a dsplug slot sends, in the same shape
CREATE FUNCTION text_values(j json) RETURNS jsonb LANGUAGE sql IMMUTABLE AS $$
	SELECT coalesce(jsonb_object_agg(key, value #>> '{}'), '{}') FROM json_each(j)
$$;
CREATE FUNCTION dsplug_changes(slot name, pubs text)
RETURNS TABLE (n bigint, kind text, relation text, data jsonb)
LANGUAGE sql AS $$
	SELECT row_number() OVER (ORDER BY ord), kind,
		   CASE WHEN kind = 'truncate' THEN NULL ELSE relation END,
		   CASE WHEN kind = 'truncate' THEN NULL ELSE
			   CASE WHEN data->'old' IS NULL THEN '{}'::jsonb
					ELSE jsonb_build_object('old', text_values(data->'old')) END
			   || CASE WHEN data->'new' IS NULL THEN '{}'::jsonb
					   ELSE jsonb_build_object('new', text_values(data->'new')) END
		   END
	FROM dsplug.peek_changes(slot, NULL, NULL, 'publication_names', pubs) WITH ORDINALITY AS c(lsn, xid, frame, kind, position, relation, data, ord)
	WHERE kind IN ('insert', 'update', 'delete', 'truncate')
$$;
-- Both sides for a publication set, and whether they agree exactly
CREATE FUNCTION compare(pubs text)
RETURNS TABLE (n bigint, kind text, relation text, data jsonb, pgoutput_agrees boolean)
LANGUAGE sql AS $$
	SELECT d.n, d.kind, d.relation, d.data,
		   d.kind IS NOT DISTINCT FROM p.kind AND d.relation IS NOT DISTINCT FROM p.relation
		   AND d.data IS NOT DISTINCT FROM p.data
	FROM dsplug_changes('parity_dsplug', pubs) d
	FULL JOIN pgoutput_changes('parity_pgoutput', pubs) p USING (n)
	ORDER BY coalesce(d.n, p.n)
$$;

-- the tables, publications and both slots
CREATE TABLE rf (id integer PRIMARY KEY, region text, amount integer);
ALTER TABLE rf REPLICA IDENTITY FULL;
CREATE TABLE cl (id integer PRIMARY KEY, a text, b text, secret text);
CREATE TABLE meas (id integer, at date, v text, PRIMARY KEY (id, at)) PARTITION BY RANGE (at);
CREATE TABLE meas_2025 PARTITION OF meas FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
-- columns in another order than the parent's: rows must be converted
CREATE TABLE meas_2026 (v text, at date NOT NULL, id integer NOT NULL, PRIMARY KEY (id, at));
CREATE TABLE meas_2027 (id integer NOT NULL, at date NOT NULL, v text, PRIMARY KEY (id, at));
CREATE PUBLICATION rf_eu FOR TABLE rf WHERE (region = 'eu');
CREATE PUBLICATION rf_big FOR TABLE rf WHERE (amount > 100) WITH (publish = 'insert');
CREATE PUBLICATION rf_schema FOR TABLES IN SCHEMA public WITH (publish = 'insert');
CREATE PUBLICATION cl_pub FOR TABLE cl (id, a, b);
CREATE PUBLICATION cl_other FOR TABLE cl (id, a);
CREATE PUBLICATION cl_full FOR TABLE cl (id, a, b, secret);
CREATE PUBLICATION meas_root FOR TABLE meas WITH (publish_via_partition_root = true);
CREATE PUBLICATION meas_leaf FOR TABLE meas;
SELECT 'init' FROM pg_create_logical_replication_slot('parity_dsplug', 'dsplug');
SELECT 'init' FROM pg_create_logical_replication_slot('parity_pgoutput', 'pgoutput');

-- row filters: in, out, NULL (counts as false), updates moving in and out
INSERT INTO rf VALUES (1, 'eu', 10), (2, 'us', 500), (3, NULL, 50), (4, 'eu', 200);
UPDATE rf SET amount = 11 WHERE id = 1;			-- stays in: UPDATE
UPDATE rf SET region = 'eu' WHERE id = 2;		-- moves in: INSERT
UPDATE rf SET region = 'us' WHERE id = 4;		-- moves out: DELETE
UPDATE rf SET amount = 0 WHERE id = 3;			-- stays out: nothing
DELETE FROM rf WHERE id IN (1, 3);

-- column lists
INSERT INTO cl VALUES (1, 'a', 'b', 'password');
UPDATE cl SET secret = 'changed' WHERE id = 1;
UPDATE cl SET id = 2, a = 'a2' WHERE id = 1;
DELETE FROM cl;

-- partitions as their root, with rows converted, across ATTACH and DETACH
INSERT INTO meas VALUES (1, '2025-03-01', 'x');
ALTER TABLE meas ATTACH PARTITION meas_2026 FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
INSERT INTO meas VALUES (2, '2026-03-01', 'y');
UPDATE meas SET at = '2026-04-01' WHERE id = 1;	-- moves across partitions
UPDATE meas SET v = 'y2' WHERE id = 2;
ALTER TABLE meas DETACH PARTITION meas_2025;
INSERT INTO meas_2025 VALUES (9, '2025-05-05', 'detached');
ALTER TABLE meas ATTACH PARTITION meas_2027 FOR VALUES FROM ('2027-01-01') TO ('2028-01-01');
INSERT INTO meas VALUES (3, '2027-01-01', 'z');
DELETE FROM meas WHERE id = 2;
TRUNCATE meas;

SELECT * FROM compare('rf_eu');
-- filters OR-ed per action: inserts pass rf_eu OR rf_big
SELECT * FROM compare('rf_eu,rf_big');
-- a schema publication means no filter for its actions (insert)
SELECT * FROM compare('rf_eu,rf_schema');
SELECT * FROM compare('cl_pub');
-- a list naming every column is no list
SELECT * FROM compare('cl_full');
SELECT * FROM compare('meas_root');
SELECT * FROM compare('meas_leaf');

-- different column lists for one table: the same error from both
\set VERBOSITY terse
SELECT count(*) FROM dsplug_changes('parity_dsplug', 'cl_pub,cl_other');
SELECT count(*) FROM pgoutput_changes('parity_pgoutput', 'cl_pub,cl_other');
\set VERBOSITY default

SELECT 'drop' FROM pg_drop_replication_slot('parity_dsplug');
SELECT 'drop' FROM pg_drop_replication_slot('parity_pgoutput');
DROP PUBLICATION rf_eu, rf_big, rf_schema, cl_pub, cl_other, cl_full, meas_root, meas_leaf;
DROP TABLE rf, cl, meas, meas_2025;
