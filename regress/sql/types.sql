-- Every type with a typed encoding, their extremes, NULLs, arrays, and
-- types that travel as their output function's text.
SET timezone = 'UTC';
SET extra_float_digits = 0;

CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
CREATE DOMAIN posint AS integer CHECK (VALUE > 0);
CREATE TYPE pair AS (a integer, b text);

CREATE TABLE scalars (
	id serial PRIMARY KEY,
	i2 smallint, i4 integer, i8 bigint,
	f4 real, f8 double precision,
	bo boolean,
	tx text, vc varchar(10), bc char(5), nm name,
	ba bytea,
	nu numeric, nu2 numeric(10,2),
	da date, ti time, ts timestamp, tz timestamptz,
	uu uuid, js json, jb jsonb, iv interval
);
CREATE TABLE others (
	id serial PRIMARY KEY,
	mo mood, dom posint, rng int4range, cmp pair, inet_ inet, money_ money,
	tt timetz, bits bit(4), oid_ oid
);
CREATE TABLE arrays (
	id serial PRIMARY KEY,
	a_i4 integer[], a_i8 bigint[], a_f8 float8[], a_bo boolean[],
	a_tx text[], a_nu numeric[], a_da date[], a_tz timestamptz[],
	a_uu uuid[], a_jb jsonb[], a_iv interval[], a_ba bytea[],
	a_mo mood[]
);
CREATE PUBLICATION types_pub FOR TABLE scalars, others, arrays;
SELECT 'init' FROM pg_create_logical_replication_slot('types_slot', 'dsplug');

-- ordinary values, then extremes, then all NULL
INSERT INTO scalars (i2, i4, i8, f4, f8, bo, tx, vc, bc, nm, ba, nu, nu2, da, ti, ts, tz, uu, js, jb, iv)
VALUES (1, 2, 3, 1.5, 2.25, true, 'text', 'varchar', 'ab', 'name',
		'\x00ff10', 12.50, 3.1, '2026-11-23', '10:00:00.5', '2026-11-23 10:00:00.123456',
		'2026-11-23 10:00:00.123456+02', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11',
		'{"b": 1,  "a": [1, 2]}', '{"b": 1,  "a": [1, 2]}', '1 year 2 mons 3 days 04:05:06.789');
INSERT INTO scalars (i2, i4, i8, f4, f8, bo, tx, vc, bc, nm, ba, nu, nu2, da, ti, ts, tz, uu, js, jb, iv)
VALUES (-32768, -2147483648, -9223372036854775808, 'NaN', '-Infinity', false,
		'', 'é ☃ "q"', '', '', '', 'NaN', -0.01, '-infinity', '00:00:00',
		'-infinity', '4714-11-24 00:00:00+00 BC', '00000000-0000-0000-0000-000000000000',
		'null', '[]', '-1 days +02:03:00');
INSERT INTO scalars (i2, i4, i8, f4, f8, bo, tx, vc, bc, nm, ba, nu, nu2, da, ti, ts, tz, uu, js, jb, iv)
VALUES (32767, 2147483647, 9223372036854775807, '-Infinity', 'NaN', true,
		E'tab\there\nnewline \\ backslash', 'x', 'abcde', repeat('n', 63), '\x00',
		'Infinity', 99999999.99, 'infinity', '24:00:00', 'infinity',
		'294276-12-31 23:59:59.999999+00', 'ffffffff-ffff-ffff-ffff-ffffffffffff',
		'{"nested": {"deep": [true, false, null]}}', '{"n": 1.50, "s": "\u00e9"}',
		'-178000000 years');
INSERT INTO scalars (i2, nu, f4, f8, da, ts, tz, iv)
VALUES (0, '-Infinity', '-0', 1e300, '0001-01-01 BC', '2000-01-01 00:00:00', '1970-01-01 00:00:00+00', '0');
INSERT INTO scalars (nu, f8) VALUES (0.000, 1e-300);
INSERT INTO scalars (nu) VALUES (-123456789012345678901234567890.123456789012345678901234567890);
INSERT INTO scalars (nu) VALUES (1e-30);
INSERT INTO scalars (nu) VALUES (10000);
INSERT INTO scalars DEFAULT VALUES;

INSERT INTO others (mo, dom, rng, cmp, inet_, money_, tt, bits, oid_)
VALUES ('happy', 42, '[1,10)', ROW(1, 'x'), '192.168.0.1/24', 12.34, '10:00:00+02', B'1010', 1259);
INSERT INTO others DEFAULT VALUES;

INSERT INTO arrays (a_i4, a_i8, a_f8, a_bo, a_tx, a_nu, a_da, a_tz, a_uu, a_jb, a_iv, a_ba, a_mo)
VALUES ('{1,NULL,3}', '{-9223372036854775808}', '{1.5,NaN,-Infinity}', '{t,f,NULL}',
		'{"a","b c",NULL,"d\"e",""}', '{1.10,NaN,-0.5}', '{2026-11-23,infinity}',
		'{"2026-11-23 10:00:00+00"}', '{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11}',
		ARRAY['{"a": 1}'::jsonb, '[]'], '{"1 day","-1 mons"}', '{"\\x01ff",NULL}',
		'{sad,happy}');
-- empty arrays, arrays of NULLs, a two-dimensional array and one with a
-- lower bound other than 1 (those two travel as text)
INSERT INTO arrays (a_i4, a_i8, a_tx, a_nu, a_jb)
VALUES ('{}', '{NULL,NULL}', '{{a,b},{c,d}}', '[0:1]={1,2}', '{}');
INSERT INTO arrays DEFAULT VALUES;

SELECT * FROM changes('types_slot', 'publication_names', 'types_pub');

-- the same values through the uncompressed format decode identically
INSERT INTO scalars (i4, tx, nu, tz) VALUES (7, 'plain', 7.7, '2026-01-01 00:00:00+00');
SELECT * FROM changes('types_slot', 'publication_names', 'types_pub', 'compression', 'none');

SELECT 'drop' FROM pg_drop_replication_slot('types_slot');
DROP PUBLICATION types_pub;
DROP TABLE scalars, others, arrays;
DROP TYPE pair;
DROP DOMAIN posint;
DROP TYPE mood;
