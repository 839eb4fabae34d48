-- batched: :rows inserts into orders in 100-row transactions.
CREATE OR REPLACE PROCEDURE bench_batched(n bigint) LANGUAGE plpgsql AS $$
BEGIN
	FOR b IN 0 .. n / 100 - 1 LOOP
		INSERT INTO orders SELECT o.* FROM generate_series(b * 100 + 1, b * 100 + 100) g, bench_order(g) o;
		COMMIT;
	END LOOP;
END
$$;
CALL bench_batched(:rows);
