#!/bin/sh
# 22-consumer-backfill.sh - the initial copy of rows that exist before the
# consumer starts, while writes continue during and after the copy: with
# --create-slot (the new slot's exported snapshot) and with --backfill on a
# slot created beforehand in SQL, as the seed creates its slots (a
# temporary slot's snapshot).  Also a partitioned table published through
# its root, and a column list with a row filter.  Both replicas equal the
# source once the writes stop.
set -eu
. regress/t/lib.sh
. regress/t/lib/consumer.sh

db=dsplug_t22
rows=${DSPLUG_T22_ROWS:-200000}
recreate_db "$db"
pubs=p22,p22_root,p22_cl
q "$db" <<SQL
CREATE TABLE items (id bigint PRIMARY KEY, qty int NOT NULL, note text, tags text[], at timestamptz);
CREATE TABLE events (n bigint, what text);
ALTER TABLE events REPLICA IDENTITY FULL;
CREATE TABLE part (id int NOT NULL, region text NOT NULL, v int, PRIMARY KEY (id, region))
	PARTITION BY LIST (region);
CREATE TABLE part_eu PARTITION OF part FOR VALUES IN ('eu');
CREATE TABLE part_us PARTITION OF part FOR VALUES IN ('us');
CREATE TABLE cl (a int PRIMARY KEY, b text, secret text);
CREATE PUBLICATION p22 FOR TABLE items, events;
CREATE PUBLICATION p22_root FOR TABLE part WITH (publish_via_partition_root = true);
CREATE PUBLICATION p22_cl FOR TABLE cl (a, b) WHERE (a % 2 = 0);
INSERT INTO items SELECT g, g % 100, 'note ' || g, ARRAY['t' || g % 7, 'x'],
	'2026-11-23 10:00+00'::timestamptz + g * interval '1 s' FROM generate_series(1, $rows) g;
INSERT INTO events SELECT g, 'old' FROM generate_series(1, 20000) g;
INSERT INTO part SELECT g, CASE WHEN g % 2 = 0 THEN 'eu' ELSE 'us' END, g FROM generate_series(1, 5000) g;
INSERT INTO cl SELECT g, 'b' || g, 's' || g FROM generate_series(1, 1000) g;
-- the seed's way: a slot made in SQL, before the consumer ever runs
SELECT 'slot' FROM pg_create_logical_replication_slot('t22_sql', 'dsplug');
CREATE PROCEDURE write(iters int, seed int) LANGUAGE plpgsql AS \$\$
BEGIN
	PERFORM setseed(seed / 1000.0);
	FOR i IN 1 .. iters LOOP
		UPDATE items SET qty = qty + 1, note = 'w' || i WHERE id = 1 + (random() * ($rows - 1))::int;
		DELETE FROM items WHERE id = 1 + (random() * ($rows - 1))::int;
		INSERT INTO items VALUES ($rows + seed * 100000 + i, i, 'new', '{}', now());
		INSERT INTO events VALUES (i, 'new');
		DELETE FROM events WHERE ctid = (SELECT ctid FROM events WHERE n = i AND what = 'old' LIMIT 1);
		UPDATE part SET v = v + 1 WHERE id = 1 + i % 5000;
		UPDATE part SET region = CASE region WHEN 'eu' THEN 'us' ELSE 'eu' END WHERE id = 1 + (i * 7) % 5000;
		UPDATE cl SET a = a + 100000, b = 'moved' WHERE a = i % 1000 + 1;
		COMMIT;
	END LOOP;
END
\$\$;
SQL

# writes run all along: before, during and after the copies
touch "$T/write.run"
(
	s=1
	while [ -f "$T/write.run" ]; do
		q "$db" -c "CALL write(200, $s)" >/dev/null
		s=$((s + 1))
	done
) &
writer=$!
sleep 1

C="$CONSUMER --dbname dbname=$db --publication $pubs --status-interval 0"
$C --slot t22_new --create-slot --target "sqlite:$T/created.db" >/dev/null 2>"$T/created.log" &
created=$!
$C --slot t22_sql --backfill --target "sqlite:$T/backfilled.db" >/dev/null 2>"$T/backfilled.log" &
backfilled=$!
trap 'rm -f "$T/write.run"; for p in $created $backfilled; do kill -KILL "$p" 2>/dev/null || true; done' EXIT

# wait for both copies, then let the writes go on a little
for log in created backfilled; do
	i=0
	until grep -q "^dsplug-consumer: copied" "$T/$log.log"; do
		i=$((i + 1))
		[ "$i" -lt 600 ] || fail "no copy after 60 s: $(tail -n 3 "$T/$log.log")"
		sleep 0.1
	done
	echo "# $log: $(grep "^dsplug-consumer: copied" "$T/$log.log")"
done
sleep 3
rm -f "$T/write.run"
wait "$writer"

end=$(current_lsn "$db")
for slot in t22_new t22_sql; do
	i=0
	until lsn_le "$end" "$(slot_confirmed "$db" "$slot")"; do
		i=$((i + 1))
		[ "$i" -lt 300 ] || fail "slot $slot not confirmed up to $end within 60 s"
		sleep 0.2
	done
done
kill -TERM "$created" "$backfilled"
wait "$created" || fail "the --create-slot consumer exited with $?: $(tail -n 3 "$T/created.log")"
wait "$backfilled" || fail "the --backfill consumer exited with $?: $(tail -n 3 "$T/backfilled.log")"
created=""
backfilled=""

grep -q "created replication slot \"t22_new\"" "$T/created.log" || fail "--create-slot did not create the slot"
for r in created backfilled; do
	compare "$db" "$T/$r.db" --publication "$pubs" --where "public.cl=a % 2 = 0"
done
n=$(sqlite3 "$T/created.db" "SELECT count(*) FROM sqlite_schema WHERE name LIKE 'public_part_%'")
[ "$n" = 0 ] || fail "partitions appear as tables of their own, not through their root"

# a second start changes nothing: the copy is not made again
$C --slot t22_sql --backfill --target "sqlite:$T/backfilled.db" --endpos "$(current_lsn "$db")" 2>"$T/again.log" ||
	fail "restarting the --backfill consumer failed: $(cat "$T/again.log")"
grep -q "copied" "$T/again.log" && fail "a target with a position was copied again"

q "$db" -c "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name LIKE 't22%'" >/dev/null
drop_db "$db"
echo ok
