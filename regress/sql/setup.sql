-- Helpers shared by the dsplug regression tests.
--
-- changes() consumes a slot through dsplug.get_changes and shows what a
-- reader would apply: begin/commit rows without their run-dependent data
-- (xid, LSNs, times), relation descriptions without their oid.
CREATE FUNCTION changes(slot name, VARIADIC options text[])
RETURNS TABLE (kind text, relation text, pos int, data json)
LANGUAGE sql AS $$
	SELECT c.kind, c.relation, c.position,
		   CASE c.kind
			   WHEN 'begin' THEN NULL
			   WHEN 'commit' THEN NULL
			   WHEN 'relation' THEN
				   json_build_object('identity', c.data->'replica_identity',
									 'columns', c.data->'columns')
			   ELSE c.data
		   END
	FROM dsplug.get_changes(slot, NULL, NULL, VARIADIC options) c
$$;

-- The extension is there, the plugin is allowed, and the server is 15.
SELECT extname, extversion FROM pg_extension WHERE extname = 'dsplug';
SELECT current_setting('wal_level') AS wal_level,
	   'dsplug' = ANY (string_to_array(replace(current_setting('output_plugin_libraries'), ' ', ''), ',')) AS dsplug_allowed;
