-- The benchmark table: nine columns of the types real OLTP tables use
-- (bigint key, int, text, numeric, two timestamptz, bool, jsonb, text).
DROP TABLE IF EXISTS orders;
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
