-- huge: one transaction of :rows inserts into the narrow table big.  Every
-- plugin must stream it without holding it whole in memory (the reorder
-- buffer spills it to disk past logical_decoding_work_mem).
INSERT INTO big
SELECT g, 'payload ' || md5(g::text), g / 7.0,
	   '2026-11-23 10:00:00+00'::timestamptz + g * interval '1 ms'
FROM generate_series(1, :rows) g;
