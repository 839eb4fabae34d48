-- TRUNCATE: relations, CASCADE, RESTART IDENTITY, and only when published.
CREATE TABLE parent (id serial PRIMARY KEY);
CREATE TABLE child (id serial PRIMARY KEY, parent_id integer REFERENCES parent);
CREATE TABLE lone (id integer PRIMARY KEY);
CREATE PUBLICATION trunc_pub FOR TABLE parent, child, lone;
CREATE PUBLICATION trunc_pub_notrunc FOR TABLE parent, child, lone WITH (publish = 'insert, update, delete');
SELECT 'init' FROM pg_create_logical_replication_slot('trunc_slot', 'dsplug');

INSERT INTO parent DEFAULT VALUES;
INSERT INTO child (parent_id) VALUES (1);
TRUNCATE parent CASCADE;
TRUNCATE lone RESTART IDENTITY;
TRUNCATE child, parent, lone;
SELECT * FROM changes('trunc_slot', 'publication_names', 'trunc_pub');

-- a publication without truncate sends none: those transactions are empty
INSERT INTO lone VALUES (1);
TRUNCATE lone;
SELECT * FROM changes('trunc_slot', 'publication_names', 'trunc_pub_notrunc');

-- a truncate of published and unpublished tables names only the published
CREATE TABLE unpublished (id integer);
CREATE PUBLICATION trunc_pub_lone FOR TABLE lone;
TRUNCATE lone, unpublished;
SELECT * FROM changes('trunc_slot', 'publication_names', 'trunc_pub_lone');

SELECT 'drop' FROM pg_drop_replication_slot('trunc_slot');
DROP PUBLICATION trunc_pub, trunc_pub_notrunc, trunc_pub_lone;
DROP TABLE child, parent, lone, unpublished;
