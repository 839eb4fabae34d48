-- full: the updates workload on orders_full, whose REPLICA IDENTITY FULL
-- makes every update and delete carry the whole old row: every row updated,
-- then half of them deleted, 100 rows per transaction.
CREATE OR REPLACE PROCEDURE bench_full(n bigint) LANGUAGE plpgsql AS $$
BEGIN
	FOR b IN 0 .. n / 100 - 1 LOOP
		UPDATE orders_full SET amount = amount + 1, paid = NOT paid,
			updated_at = updated_at + interval '1 hour'
		WHERE id BETWEEN b * 100 + 1 AND b * 100 + 100;
		COMMIT;
	END LOOP;
	FOR b IN 0 .. n / 200 - 1 LOOP
		DELETE FROM orders_full WHERE id BETWEEN b * 200 + 1 AND b * 200 + 100;
		COMMIT;
	END LOOP;
END
$$;
CALL bench_full(:rows);
