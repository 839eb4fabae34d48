-- single: pgbench-style one-row transactions on orders: :rows inserts, then
-- :rows/2 updates, then :rows/4 deletes, each statement its own transaction.
CREATE OR REPLACE PROCEDURE bench_single(n bigint) LANGUAGE plpgsql AS $$
BEGIN
	FOR g IN 1 .. n LOOP
		INSERT INTO orders SELECT * FROM bench_order(g);
		COMMIT;
	END LOOP;
	FOR g IN 1 .. n / 2 LOOP
		UPDATE orders SET amount = amount + 1, paid = NOT paid,
			updated_at = updated_at + interval '1 hour' WHERE id = g * 2;
		COMMIT;
	END LOOP;
	FOR g IN 1 .. n / 4 LOOP
		DELETE FROM orders WHERE id = g * 4 - 1;
		COMMIT;
	END LOOP;
END
$$;
CALL bench_single(:rows);
