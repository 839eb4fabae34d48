-- full, before the slot: :rows orders in the REPLICA IDENTITY FULL table.
INSERT INTO orders_full SELECT o.* FROM generate_series(1, :rows) g, bench_order(g) o;
