-- filtered: 100-row transactions of which 90 rows go to events, a table
-- outside the publication, and 10 to orders: :rows rows in all.  A plugin
-- that honours the publication decodes all of them and sends a tenth.
CREATE OR REPLACE PROCEDURE bench_filtered(n bigint) LANGUAGE plpgsql AS $$
BEGIN
	FOR b IN 0 .. n / 100 - 1 LOOP
		INSERT INTO events
		SELECT g, '2026-11-23 10:00:00+00'::timestamptz + g * interval '1 s',
			   (ARRAY['login', 'view', 'search', 'logout'])[1 + g % 4],
			   'session ' || (g / 7) || ' from 10.' || (g % 250) || '.' || (g % 7) || '.1'
		FROM generate_series(b * 90 + 1, b * 90 + 90) g;
		INSERT INTO orders SELECT o.* FROM generate_series(b * 10 + 1, b * 10 + 10) g, bench_order(g) o;
		COMMIT;
	END LOOP;
END
$$;
CALL bench_filtered(:rows);
