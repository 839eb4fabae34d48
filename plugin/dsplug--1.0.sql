/* plugin/dsplug--1.0.sql */

\echo Use "CREATE EXTENSION dsplug" to load this file. \quit

-- Read a dsplug slot's changes as rows, without consuming them.
-- Arguments are those of pg_logical_slot_peek_binary_changes; options are
-- the plugin's (publication_names is required).
CREATE FUNCTION peek_changes(
	slot_name name,
	upto_lsn pg_lsn,
	upto_nchanges integer,
	VARIADIC options text[] DEFAULT '{}',
	OUT lsn pg_lsn,
	OUT xid xid,
	OUT frame integer,
	OUT kind text,
	OUT "position" integer,
	OUT relation text,
	OUT data json)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'dsplug_peek_changes'
LANGUAGE C VOLATILE;

COMMENT ON FUNCTION peek_changes(name, pg_lsn, integer, text[]) IS
'decode what a dsplug slot emits into rows, without consuming it';

-- The same, consuming the changes (pg_logical_slot_get_binary_changes).
CREATE FUNCTION get_changes(
	slot_name name,
	upto_lsn pg_lsn,
	upto_nchanges integer,
	VARIADIC options text[] DEFAULT '{}',
	OUT lsn pg_lsn,
	OUT xid xid,
	OUT frame integer,
	OUT kind text,
	OUT "position" integer,
	OUT relation text,
	OUT data json)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'dsplug_get_changes'
LANGUAGE C VOLATILE;

COMMENT ON FUNCTION get_changes(name, pg_lsn, integer, text[]) IS
'decode what a dsplug slot emits into rows, consuming it';

-- Decode frames captured elsewhere: all frames of one decoding session, in
-- order, starting with its first.
CREATE FUNCTION decode(
	frames bytea[],
	OUT frame integer,
	OUT kind text,
	OUT "position" integer,
	OUT relation text,
	OUT data json)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'dsplug_decode'
LANGUAGE C IMMUTABLE STRICT;

COMMENT ON FUNCTION decode(bytea[]) IS
'decode the frames of one dsplug decoding session into rows';

REVOKE ALL ON FUNCTION peek_changes(name, pg_lsn, integer, text[]) FROM PUBLIC;
REVOKE ALL ON FUNCTION get_changes(name, pg_lsn, integer, text[]) FROM PUBLIC;
