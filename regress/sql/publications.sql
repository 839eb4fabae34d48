-- Publications as pgoutput honours them: FOR ALL TABLES, FOR TABLE,
-- FOR TABLES IN SCHEMA, several at once with actions OR-ed, tables in no
-- publication, partitions, and empty transactions.
CREATE SCHEMA sales;
CREATE SCHEMA hr;
CREATE TABLE sales.orders (id integer PRIMARY KEY, amount numeric);
CREATE TABLE sales.items (id integer PRIMARY KEY, sku text);
CREATE TABLE hr.staff (id integer PRIMARY KEY, name text);
CREATE TABLE public.audit (id integer PRIMARY KEY, note text);
CREATE TABLE public.scratch (id integer PRIMARY KEY);

CREATE PUBLICATION pub_orders FOR TABLE sales.orders;
CREATE PUBLICATION pub_sales FOR TABLES IN SCHEMA sales WITH (publish = 'insert');
CREATE PUBLICATION pub_hr_updates FOR TABLES IN SCHEMA hr WITH (publish = 'update');
CREATE PUBLICATION pub_audit_del FOR TABLE public.audit WITH (publish = 'delete');
CREATE PUBLICATION pub_all FOR ALL TABLES;
SELECT 'init' FROM pg_create_logical_replication_slot('pub_slot', 'dsplug');

-- one workload, read through different publication sets
INSERT INTO sales.orders VALUES (1, 10);
INSERT INTO sales.items VALUES (1, 'sku-1');
INSERT INTO hr.staff VALUES (1, 'ann');
UPDATE hr.staff SET name = 'anne';
INSERT INTO public.audit VALUES (1, 'x');
DELETE FROM public.audit;
UPDATE sales.orders SET amount = 11;
INSERT INTO public.scratch VALUES (1);

-- FOR TABLE: everything on sales.orders, nothing else
SELECT kind, relation, position, data FROM dsplug.peek_changes('pub_slot', NULL, NULL, 'publication_names', 'pub_orders')
	WHERE kind NOT IN ('begin', 'commit', 'relation');
-- TABLES IN SCHEMA with publish = 'insert': inserts of both sales tables
SELECT kind, relation, position, data FROM dsplug.peek_changes('pub_slot', NULL, NULL, 'publication_names', 'pub_sales')
	WHERE kind NOT IN ('begin', 'commit', 'relation');
-- several publications: actions OR-ed per table (orders: all, items:
-- insert, staff: update only, audit: delete only); scratch in none
SELECT kind, relation, position, data FROM dsplug.peek_changes('pub_slot', NULL, NULL, 'publication_names', 'pub_orders,pub_sales,pub_hr_updates,pub_audit_del')
	WHERE kind NOT IN ('begin', 'commit', 'relation');
-- transactions with nothing published are not sent at all: begin/commit
-- pairs match exactly the transactions above with published changes
SELECT kind, count(*) FROM dsplug.peek_changes('pub_slot', NULL, NULL, 'publication_names', 'pub_hr_updates')
	GROUP BY kind ORDER BY kind;
-- FOR ALL TABLES sees every table, including scratch
SELECT kind, count(*) FROM dsplug.peek_changes('pub_slot', NULL, NULL, 'publication_names', 'pub_all')
	GROUP BY kind ORDER BY kind;
SELECT DISTINCT relation FROM dsplug.peek_changes('pub_slot', NULL, NULL, 'publication_names', 'pub_all')
	WHERE relation IS NOT NULL ORDER BY 1;

-- publications are looked up as of each change: one created after these
-- changes does not exist for them, which is an error, as in pgoutput
CREATE PUBLICATION pub_late FOR ALL TABLES;
\set VERBOSITY terse
SELECT count(*) FROM dsplug.peek_changes('pub_slot', NULL, NULL, 'publication_names', 'pub_late');
SELECT count(*) FROM dsplug.peek_changes('pub_slot', NULL, NULL, 'publication_names', 'pub_orders,no_such_pub');
\set VERBOSITY default
SELECT count(*) FROM dsplug.get_changes('pub_slot', NULL, NULL, 'publication_names', 'pub_orders');
-- changes made after it was created see it
INSERT INTO sales.orders VALUES (2, 20);
SELECT kind, relation, position, data FROM dsplug.get_changes('pub_slot', NULL, NULL, 'publication_names', 'pub_late')
	WHERE kind NOT IN ('begin', 'commit', 'relation');
-- partitions: published through a partitioned parent, sent as themselves
-- (publish_via_partition_root is not yet honoured)
CREATE TABLE events (id integer, at date, PRIMARY KEY (id, at)) PARTITION BY RANGE (at);
CREATE TABLE events_2025 PARTITION OF events FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
CREATE TABLE events_2026 PARTITION OF events FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
CREATE PUBLICATION pub_events FOR TABLE events;
INSERT INTO events VALUES (1, '2025-06-01'), (2, '2026-06-01');
UPDATE events SET at = '2026-07-01' WHERE id = 1;
SELECT kind, relation, pos, data FROM changes('pub_slot', 'publication_names', 'pub_events')
	WHERE kind <> 'relation';

SELECT 'drop' FROM pg_drop_replication_slot('pub_slot');
DROP PUBLICATION pub_orders, pub_sales, pub_hr_updates, pub_audit_del, pub_all, pub_late, pub_events;
DROP TABLE events;
DROP SCHEMA sales, hr CASCADE;
DROP TABLE public.audit, public.scratch;
