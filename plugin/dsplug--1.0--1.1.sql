/* plugin/dsplug--1.0--1.1.sql */

\echo Use "ALTER EXTENSION dsplug UPDATE TO '1.1'" to load this file. \quit

-- One row per dsplug slot of the cluster: is every region healthy, and how
-- far behind is each?
--
-- The slot's own state comes from pg_replication_slots; while a consumer
-- streams it, its walsender adds who it is (pg_stat_replication) and which
-- publications it asked for (the START_REPLICATION command it ran, as
-- pg_stat_activity shows it: the publications are an option of each
-- session, not a property of the slot, so a stopped region has none).
-- Positions are measured against the server's current WAL position (on a
-- standby, the last WAL received).  Roles that are not superusers need
-- pg_monitor (or pg_read_all_stats) to see another role's consumer.
CREATE VIEW regions AS
WITH here AS (
	SELECT CASE WHEN pg_is_in_recovery() THEN pg_last_wal_receive_lsn()
				ELSE pg_current_wal_lsn() END AS lsn
)
SELECT s.slot_name AS slot,
	   s.database,
	   CASE WHEN a.query IS NOT NULL THEN
		   regexp_split_to_array(
			   replace((regexp_match(a.query,
						'"?publication_names"?\s+E?''((?:[^'']|'''')*)''', 'i'))[1],
					   '''''', ''''),
			   '\s*,\s*')
	   END AS publications,
	   s.active,
	   CASE WHEN r.pid IS NULL THEN NULL
			WHEN r.client_addr IS NULL THEN 'local'
			ELSE host(r.client_addr) || ':' || r.client_port END AS consumer_address,
	   r.application_name AS consumer_name,
	   s.confirmed_flush_lsn AS confirmed_lsn,
	   pg_wal_lsn_diff(here.lsn, s.confirmed_flush_lsn) AS lag_bytes,
	   CASE WHEN pg_wal_lsn_diff(here.lsn, s.confirmed_flush_lsn) <= 0 THEN interval '0'
			ELSE r.flush_lag END AS lag_time,
	   pg_wal_lsn_diff(here.lsn, s.restart_lsn) AS retained_wal_bytes,
	   s.wal_status,
	   s.safe_wal_size,
	   r.reply_time AS last_confirmation
FROM pg_replication_slots s
	CROSS JOIN here
	LEFT JOIN pg_stat_replication r ON r.pid = s.active_pid
	LEFT JOIN pg_stat_activity a ON a.pid = s.active_pid
WHERE s.slot_type = 'logical' AND s.plugin = 'dsplug';

COMMENT ON VIEW regions IS
'one row per dsplug slot: its consumer, position, lag and retained WAL';
COMMENT ON COLUMN regions.publications IS
'publications the consumer asked for (NULL while no consumer streams the slot)';
COMMENT ON COLUMN regions.lag_bytes IS
'WAL between the server''s position and the confirmed position';
COMMENT ON COLUMN regions.lag_time IS
'0 when caught up; else the walsender''s flush lag while a consumer streams (NULL when unknown)';
COMMENT ON COLUMN regions.retained_wal_bytes IS
'WAL the slot keeps from being removed';
COMMENT ON COLUMN regions.last_confirmation IS
'when the consumer last reported its position (NULL while no consumer streams the slot)';

GRANT USAGE ON SCHEMA @extschema@ TO pg_monitor;
GRANT SELECT ON regions TO pg_monitor;
