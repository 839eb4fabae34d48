-- batched: 200,000 inserts in 100-row transactions, then 100,000 updates
-- and 50,000 deletes, also 100 rows per transaction (350,000 changes).
CREATE OR REPLACE PROCEDURE bench_batched(n bigint) LANGUAGE plpgsql AS $$
BEGIN
	FOR b IN 0 .. n / 100 - 1 LOOP
		INSERT INTO orders SELECT (bench_order(g)).* FROM generate_series(b * 100 + 1, b * 100 + 100) g;
		COMMIT;
	END LOOP;
	FOR b IN 0 .. n / 200 - 1 LOOP
		UPDATE orders SET amount = amount + 1, paid = NOT paid,
			updated_at = updated_at + interval '1 hour'
		WHERE id BETWEEN b * 200 + 1 AND b * 200 + 100;
		COMMIT;
	END LOOP;
	FOR b IN 0 .. n / 400 - 1 LOOP
		DELETE FROM orders WHERE id BETWEEN b * 400 + 101 AND b * 400 + 200;
		COMMIT;
	END LOOP;
END
$$;
CALL bench_batched(:rows);
