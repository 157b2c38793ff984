-- hnsw on a table much larger than ef_search, for every opclass: the
-- planner picks the index for ORDER BY ... LIMIT on its own, not for other
-- queries, and at a high ef_search the index returns the exact top 10.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS genai;
RESET client_min_messages;

SELECT setseed(0.42);
CREATE TABLE hnsw_big AS
	SELECT i AS id,
		('[' || array_to_string(array(SELECT round((random() * 2 - 1)::numeric, 4)
									  FROM generate_series(1, 16) WHERE i > 0), ',') || ']')::vector(16) AS v
	FROM generate_series(1, 3000) i;
ANALYZE hnsw_big;

CREATE FUNCTION hnsw_test_topk(op text, ef int) RETURNS TABLE (same int, total int)
LANGUAGE plpgsql AS $$
DECLARE
	r record;
	exact int[];
	approx int[];
BEGIN
	same := 0;
	total := 0;
	FOR r IN SELECT id, v FROM hnsw_big WHERE id % 300 = 1 LOOP
		SET LOCAL enable_indexscan = off;
		EXECUTE format('SELECT array(SELECT id FROM hnsw_big ORDER BY v %s $1 LIMIT 10)', op)
			INTO exact USING r.v;
		SET LOCAL enable_indexscan = on;
		EXECUTE format('SET LOCAL hnsw.ef_search = %s', ef);
		EXECUTE format('SELECT array(SELECT id FROM hnsw_big ORDER BY v %s $1 LIMIT 10)', op)
			INTO approx USING r.v;
		total := total + 1;
		IF exact = approx THEN
			same := same + 1;
		END IF;
	END LOOP;
	RETURN NEXT;
END $$;

CREATE INDEX hnsw_big_l2 ON hnsw_big USING hnsw (v vector_l2_ops);
EXPLAIN (COSTS OFF) SELECT id FROM hnsw_big ORDER BY v <-> (SELECT v FROM hnsw_big WHERE id = 1) LIMIT 10;
EXPLAIN (COSTS OFF) SELECT id FROM hnsw_big ORDER BY v <-> '[1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1]' LIMIT 5;
-- without ORDER BY, or without LIMIT, the index is not used
EXPLAIN (COSTS OFF) SELECT id FROM hnsw_big WHERE id < 10;
EXPLAIN (COSTS OFF) SELECT count(*) FROM hnsw_big;
SELECT * FROM hnsw_test_topk('<->', 400);
SELECT hnsw_check('hnsw_big_l2');
DROP INDEX hnsw_big_l2;

CREATE INDEX hnsw_big_ip ON hnsw_big USING hnsw (v vector_ip_ops);
EXPLAIN (COSTS OFF) SELECT id FROM hnsw_big ORDER BY v <#> '[1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1]' LIMIT 5;
SELECT * FROM hnsw_test_topk('<#>', 400);
SELECT hnsw_check('hnsw_big_ip');
DROP INDEX hnsw_big_ip;

CREATE INDEX hnsw_big_cos ON hnsw_big USING hnsw (v vector_cosine_ops) WITH (m = 8, ef_construction = 32);
EXPLAIN (COSTS OFF) SELECT id FROM hnsw_big ORDER BY v <=> '[1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1]' LIMIT 5;
SELECT * FROM hnsw_test_topk('<=>', 400);
SELECT hnsw_check('hnsw_big_cos');
DROP INDEX hnsw_big_cos;

CREATE INDEX hnsw_big_l1 ON hnsw_big USING hnsw (v vector_l1_ops);
EXPLAIN (COSTS OFF) SELECT id FROM hnsw_big ORDER BY v <+> '[1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1]' LIMIT 5;
SELECT * FROM hnsw_test_topk('<+>', 400);
SELECT hnsw_check('hnsw_big_l1');

-- rows inserted after the build are found too; the default ef_search is
-- good enough for most queries on this small table
INSERT INTO hnsw_big
	SELECT i, ('[' || array_to_string(array(SELECT round((random() * 2 - 1)::numeric, 4)
									  FROM generate_series(1, 16) WHERE i > 0), ',') || ']')::vector(16)
	FROM generate_series(3001, 3500) i;
SELECT * FROM hnsw_test_topk('<+>', 400);
SELECT same >= 8 AS mostly_exact FROM hnsw_test_topk('<+>', 40);
SELECT hnsw_check('hnsw_big_l1');

DROP FUNCTION hnsw_test_topk;
DROP TABLE hnsw_big;
-- leave the database as found
DROP EXTENSION genai;
