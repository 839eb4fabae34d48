-- paced: the sustained load for the consumer's lag: one-row inserts into
-- orders, :rate transactions a second for :seconds seconds, each due at a
-- fixed time from the start, so a slow consumer cannot slow the load down.
-- Commits wait for their WAL flush, as an OLTP application's do: with
-- asynchronous commit the walsender could not see a commit for up to
-- wal_writer_delay, and that would count as lag.
SET synchronous_commit = on;
CREATE OR REPLACE PROCEDURE bench_paced(rate int, secs int) LANGUAGE plpgsql AS $$
DECLARE
	t0 timestamptz := clock_timestamp();
	due timestamptz;
BEGIN
	FOR g IN 1 .. rate * secs LOOP
		due := t0 + (g - 1) * interval '1 second' / rate;
		IF clock_timestamp() < due THEN
			PERFORM pg_sleep(extract(epoch FROM due - clock_timestamp()));
		END IF;
		INSERT INTO orders SELECT * FROM bench_order(g);
		COMMIT;
	END LOOP;
END
$$;
CALL bench_paced(:rate, :seconds);
