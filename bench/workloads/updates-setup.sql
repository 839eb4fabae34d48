-- updates, before the slot: :rows orders to update and delete.
INSERT INTO orders SELECT o.* FROM generate_series(1, :rows) g, bench_order(g) o;
