-- wide: :rows documents (16 kB TOASTed text, 6 kB jsonb) inserted 10 per
-- transaction; then every document's version bumped, which leaves both
-- TOASTed values unchanged (sent as "unchanged", never re-read); then half
-- of the bodies rewritten, which sends the new body in full.
CREATE OR REPLACE PROCEDURE bench_wide(n bigint) LANGUAGE plpgsql AS $$
BEGIN
	FOR b IN 0 .. n / 10 - 1 LOOP
		INSERT INTO docs SELECT d.* FROM generate_series(b * 10 + 1, b * 10 + 10) g, bench_doc(g) d;
		COMMIT;
	END LOOP;
	FOR b IN 0 .. n / 10 - 1 LOOP
		UPDATE docs SET version = version + 1 WHERE id BETWEEN b * 10 + 1 AND b * 10 + 10;
		COMMIT;
	END LOOP;
	FOR b IN 0 .. n / 20 - 1 LOOP
		UPDATE docs SET version = version + 1, body = upper(body)
		WHERE id BETWEEN b * 20 + 1 AND b * 20 + 10;
		COMMIT;
	END LOOP;
END
$$;
CALL bench_wide(:rows);
