-- dsplug.regions: one row per dsplug slot of the cluster, other plugins'
-- slots left out; a slot nobody streams shows no consumer.
SELECT 'init' FROM pg_create_logical_replication_slot('regions_a', 'dsplug');
SELECT 'init' FROM pg_create_logical_replication_slot('regions_b', 'dsplug');
SELECT 'init' FROM pg_create_logical_replication_slot('regions_td', 'test_decoding');
CREATE TABLE regions_t (id int PRIMARY KEY, v text);
CREATE PUBLICATION regions_pub FOR TABLE regions_t;
INSERT INTO regions_t SELECT g, repeat('x', 100) FROM generate_series(1, 1000) g;

SELECT slot, database = current_database() AS this_db, publications, active,
	   consumer_address, consumer_name, lag_bytes > 0 AS behind,
	   lag_time, retained_wal_bytes >= lag_bytes AS retains_unconfirmed,
	   wal_status, last_confirmation
FROM dsplug.regions WHERE slot LIKE 'regions%' ORDER BY slot;
SELECT count(*) AS test_decoding_slots_shown FROM dsplug.regions WHERE slot = 'regions_td';

-- consuming one slot moves it and only it
SELECT count(*) > 0 FROM dsplug.get_changes('regions_a', NULL, NULL, 'publication_names', 'regions_pub');
SELECT slot, confirmed_lsn > (SELECT confirmed_lsn FROM dsplug.regions WHERE slot = 'regions_b') AS ahead_of_b
FROM dsplug.regions WHERE slot = 'regions_a';
SELECT a.lag_bytes < b.lag_bytes AS a_less_behind
FROM dsplug.regions a, dsplug.regions b WHERE a.slot = 'regions_a' AND b.slot = 'regions_b';

-- the columns, for monitoring queries written against them
SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute
WHERE attrelid = 'dsplug.regions'::regclass AND attnum > 0 ORDER BY attnum;
-- pg_monitor may read it
SELECT has_schema_privilege('pg_monitor', 'dsplug', 'USAGE') AS monitor_schema,
	   has_table_privilege('pg_monitor', 'dsplug.regions', 'SELECT') AS monitor_reads;

SELECT 'drop' FROM pg_drop_replication_slot('regions_a');
SELECT 'drop' FROM pg_drop_replication_slot('regions_b');
SELECT 'drop' FROM pg_drop_replication_slot('regions_td');
DROP PUBLICATION regions_pub;
DROP TABLE regions_t;

-- an existing installation gets the view by ALTER EXTENSION ... UPDATE
DROP EXTENSION dsplug;
CREATE EXTENSION dsplug VERSION '1.0';
SELECT to_regclass('dsplug.regions') AS view_in_1_0;
ALTER EXTENSION dsplug UPDATE;
SELECT extversion, to_regclass('dsplug.regions') AS view_after_update
FROM pg_extension WHERE extname = 'dsplug';
