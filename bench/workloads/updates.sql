-- updates: every one of the :rows orders updated (three columns, the key
-- unchanged), then half of them deleted, 100 rows per transaction.  Under
-- the default replica identity an update carries no old row and a delete
-- only the old key.
CREATE OR REPLACE PROCEDURE bench_updates(n bigint) LANGUAGE plpgsql AS $$
BEGIN
	FOR b IN 0 .. n / 100 - 1 LOOP
		UPDATE orders SET amount = amount + 1, paid = NOT paid,
			updated_at = updated_at + interval '1 hour'
		WHERE id BETWEEN b * 100 + 1 AND b * 100 + 100;
		COMMIT;
	END LOOP;
	FOR b IN 0 .. n / 200 - 1 LOOP
		DELETE FROM orders WHERE id BETWEEN b * 200 + 1 AND b * 200 + 100;
		COMMIT;
	END LOOP;
END
$$;
CALL bench_updates(:rows);
