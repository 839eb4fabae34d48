-- The benchmark's tables and publication.  Every workload writes to these;
-- bench/run.py empties them (TRUNCATE) before each workload's setup.
--
--   orders       nine columns of the types real OLTP tables use (bigint
--                key, int, text, numeric, two timestamptz, bool, jsonb,
--                text); batched, single, updates, filtered
--   orders_full  the same columns under REPLICA IDENTITY FULL; full
--   big          a narrow table for the one huge transaction; huge
--   docs         wide rows: a long text and a large jsonb, both TOASTed;
--                wide
--   events       an audit table outside the publication: its changes are
--                decoded but must be filtered out; filtered
DROP PUBLICATION IF EXISTS bench_pub;
DROP TABLE IF EXISTS orders, orders_full, big, docs, events;

CREATE TABLE orders (
	id bigint PRIMARY KEY,
	customer_id integer NOT NULL,
	customer text NOT NULL,
	amount numeric(12,2) NOT NULL,
	created_at timestamptz NOT NULL,
	updated_at timestamptz NOT NULL,
	paid boolean NOT NULL,
	attrs jsonb NOT NULL,
	note text
);

CREATE TABLE orders_full (LIKE orders INCLUDING ALL);
ALTER TABLE orders_full REPLICA IDENTITY FULL;

CREATE TABLE big (
	id bigint PRIMARY KEY,
	payload text NOT NULL,
	n numeric NOT NULL,
	at timestamptz NOT NULL
);

CREATE TABLE docs (
	id bigint PRIMARY KEY,
	title text NOT NULL,
	version integer NOT NULL,
	body text NOT NULL,
	doc jsonb NOT NULL
);

CREATE TABLE events (
	id bigint PRIMARY KEY,
	at timestamptz NOT NULL,
	kind text NOT NULL,
	detail text
);

CREATE PUBLICATION bench_pub FOR TABLE orders, orders_full, big, docs
	WITH (publish = 'insert, update, delete, truncate');

-- One order row from a sequence number: realistic vocabulary and numbers,
-- timestamps to the microsecond.
CREATE OR REPLACE FUNCTION bench_order(g bigint) RETURNS orders
LANGUAGE sql IMMUTABLE AS $$
	SELECT g, (g * 7919 % 50000)::integer,
		   'customer ' || (g * 7919 % 50000) || ' <c' || (g * 7919 % 50000) || '@example.com>',
		   ((g * 104729) % 100000) / 100.0,
		   '2026-11-01 00:00:00+00'::timestamptz + (g * 1234567 % 2592000000000) * interval '1 microsecond',
		   '2026-11-01 00:00:00+00'::timestamptz + (g * 7654321 % 2592000000000) * interval '1 microsecond',
		   g % 3 = 0,
		   jsonb_build_object('channel', (ARRAY['web','app','store','phone'])[1 + g % 4],
							  'items', 1 + g % 9,
							  'coupon', CASE WHEN g % 5 = 0 THEN 'SAVE' || (g % 20) END),
		   CASE WHEN g % 4 = 0 THEN 'deliver to the back door, ring twice' END
$$;

-- One document from a sequence number: a 16 kB body of hex words (which
-- pglz cannot shrink below the TOAST threshold, so it is stored out of
-- line) and a jsonb of 60 line items (about 6 kB).
CREATE OR REPLACE FUNCTION bench_doc(g bigint) RETURNS docs
LANGUAGE sql IMMUTABLE AS $$
	SELECT g, 'document ' || g, 1,
		   (SELECT string_agg(md5(g::text || '/' || i), ' ') FROM generate_series(1, 480) i),
		   jsonb_build_object('id', g, 'lines',
			   (SELECT jsonb_agg(jsonb_build_object('sku', 'SKU-' || (g * i % 9973),
													'qty', 1 + i % 7,
													'price', (g * i % 100000) / 100.0,
													'ref', md5(g::text || ':' || i)))
				FROM generate_series(1, 60) i))
$$;
