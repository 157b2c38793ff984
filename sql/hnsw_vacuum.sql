-- hnsw: VACUUM removes dead rows and repairs the graph, freed slots are
-- reused; filtered queries get every row they ask for (iterative scans).
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS genai;
RESET client_min_messages;

SELECT setseed(0.17);
CREATE TABLE hnsw_vac (id int, v vector(8)) WITH (autovacuum_enabled = off);
INSERT INTO hnsw_vac
	SELECT i, ('[' || array_to_string(array(SELECT round((random() * 2 - 1)::numeric, 4)
									  FROM generate_series(1, 8) WHERE i > 0), ',') || ']')::vector(8)
	FROM generate_series(1, 2000) i;
CREATE INDEX hnsw_vac_idx ON hnsw_vac USING hnsw (v vector_l2_ops) WITH (m = 8, ef_construction = 32);
SELECT pg_relation_size('hnsw_vac_idx') AS size0 \gset
CREATE TABLE hnsw_vac_q AS
	SELECT i AS qid, ('[' || array_to_string(array(SELECT round((random() * 2 - 1)::numeric, 4)
									  FROM generate_series(1, 8) WHERE i > 0), ',') || ']')::vector(8) AS v
	FROM generate_series(1, 10) i;

-- exact top 10 of a few queries, via an index and via a sort
CREATE FUNCTION hnsw_vac_exact() RETURNS int LANGUAGE plpgsql AS $$
DECLARE
	r record;
	a int[];
	b int[];
	same int := 0;
BEGIN
	FOR r IN SELECT qid, v FROM hnsw_vac_q LOOP
		SET LOCAL enable_indexscan = off;
		SELECT array(SELECT id FROM hnsw_vac ORDER BY v <-> r.v LIMIT 10) INTO a;
		SET LOCAL enable_indexscan = on;
		SET LOCAL enable_seqscan = off;
		SET LOCAL hnsw.ef_search = 200;
		SELECT array(SELECT id FROM hnsw_vac ORDER BY v <-> r.v LIMIT 10) INTO b;
		IF a = b THEN
			same := same + 1;
		END IF;
	END LOOP;
	RETURN same;
END $$;

-- five rounds of deleting 10% and inserting as many
DO $$
BEGIN
	FOR round IN 1..5 LOOP
		DELETE FROM hnsw_vac WHERE (id + round) % 10 = 0;
		INSERT INTO hnsw_vac
			SELECT 10000 * round + i,
				('[' || array_to_string(array(SELECT round((random() * 2 - 1)::numeric, 4)
											  FROM generate_series(1, 8) WHERE i > 0), ',') || ']')::vector(8)
			FROM generate_series(1, 200) i;
	END LOOP;
END $$;
VACUUM hnsw_vac;
SELECT hnsw_check('hnsw_vac_idx');
SELECT count(*) FROM hnsw_vac;
SELECT hnsw_vac_exact() AS exact_of_10;
-- with VACUUM between deleting and inserting, freed slots are reused and
-- the index does not grow
SELECT pg_relation_size('hnsw_vac_idx') AS size1 \gset
DELETE FROM hnsw_vac WHERE id % 10 = 4;
VACUUM hnsw_vac;
INSERT INTO hnsw_vac
	SELECT 10000 * 6 + i, ('[' || array_to_string(array(SELECT round((random() * 2 - 1)::numeric, 4)
								  FROM generate_series(1, 8) WHERE i > 0), ',') || ']')::vector(8)
	FROM generate_series(1, 180) i;
DELETE FROM hnsw_vac WHERE id % 10 = 5;
VACUUM hnsw_vac;
INSERT INTO hnsw_vac
	SELECT 10000 * 7 + i, ('[' || array_to_string(array(SELECT round((random() * 2 - 1)::numeric, 4)
								  FROM generate_series(1, 8) WHERE i > 0), ',') || ']')::vector(8)
	FROM generate_series(1, 180) i;
DELETE FROM hnsw_vac WHERE id % 10 = 6;
VACUUM hnsw_vac;
INSERT INTO hnsw_vac
	SELECT 10000 * 8 + i, ('[' || array_to_string(array(SELECT round((random() * 2 - 1)::numeric, 4)
								  FROM generate_series(1, 8) WHERE i > 0), ',') || ']')::vector(8)
	FROM generate_series(1, 180) i;
SELECT hnsw_check('hnsw_vac_idx');
SELECT hnsw_vac_exact() AS exact_of_10;
SELECT pg_relation_size('hnsw_vac_idx') <= 1.1 * :size1 AS no_growth, :size1 <= 1.6 * :size0 AS bounded_after_churn;
-- an index scan returns every row the table has
SET enable_seqscan = off;
SELECT count(*) = (SELECT count(*) FROM hnsw_vac) AS all_rows
	FROM (SELECT id FROM hnsw_vac ORDER BY v <-> '[0,0,0,0,0,0,0,0]' LIMIT 100000) s;

-- filters: with a small ef_search the graph search alone finds too few
-- matching rows; the default iterative scan keeps going, in order
SET hnsw.ef_search = 10;
EXPLAIN (COSTS OFF) SELECT id FROM hnsw_vac WHERE id % 50 = 7 ORDER BY v <-> '[0,0,0,0,0,0,0,0]' LIMIT 10;
SELECT count(*) FROM (SELECT id FROM hnsw_vac WHERE id % 50 = 7 ORDER BY v <-> '[0,0,0,0,0,0,0,0]' LIMIT 10) s;
-- in non-decreasing distance order
SELECT bool_and(d >= prev) AS ordered FROM (
	SELECT d, lag(d, 1, 0::float8) OVER () AS prev FROM (
		SELECT v <-> '[0,0,0,0,0,0,0,0]' AS d FROM hnsw_vac WHERE id % 50 = 7
		ORDER BY v <-> '[0,0,0,0,0,0,0,0]' LIMIT 10) s) t;
-- a filter matching one row still finds it (the scan finishes exactly)
SET hnsw.max_scan_tuples = 100;
SELECT id FROM hnsw_vac WHERE id = 1001 ORDER BY v <-> '[0,0,0,0,0,0,0,0]' LIMIT 10;
SELECT id FROM hnsw_vac WHERE id = -1 ORDER BY v <-> '[0,0,0,0,0,0,0,0]' LIMIT 10;
RESET hnsw.max_scan_tuples;
-- and the same query is exact at the top: compare with a sort
SELECT array(SELECT id FROM hnsw_vac WHERE id % 50 = 7 ORDER BY v <-> '[0,0,0,0,0,0,0,0]' LIMIT 10) =
	array(SELECT id FROM hnsw_vac WHERE id % 50 = 7 ORDER BY v <-> '[0,0,0,0,0,0,0,0]' || 'x' IS NULL, v <-> '[0,0,0,0,0,0,0,0]' LIMIT 10)
	AS same_as_sort;
-- pgvector's behaviour: no iteration, at most ef_search rows before the filter
SET hnsw.iterative_scan = off;
SELECT count(*) <= 10 FROM (SELECT id FROM hnsw_vac WHERE id % 50 = 7 ORDER BY v <-> '[0,0,0,0,0,0,0,0]' LIMIT 10) s;
SET hnsw.iterative_scan = relaxed_order;
SELECT count(*) FROM (SELECT id FROM hnsw_vac WHERE id % 50 = 7 ORDER BY v <-> '[0,0,0,0,0,0,0,0]' LIMIT 10) s;
RESET hnsw.iterative_scan;
RESET hnsw.ef_search;
RESET enable_seqscan;

-- every row deleted: the index is empty but usable
DELETE FROM hnsw_vac;
VACUUM hnsw_vac;
SELECT hnsw_check('hnsw_vac_idx');
SET enable_seqscan = off;
SELECT id FROM hnsw_vac ORDER BY v <-> '[0,0,0,0,0,0,0,0]' LIMIT 1;
INSERT INTO hnsw_vac VALUES (1, '[1,1,1,1,1,1,1,1]'), (2, '[2,2,2,2,2,2,2,2]');
SELECT id FROM hnsw_vac ORDER BY v <-> '[0,0,0,0,0,0,0,0]' LIMIT 1;
SELECT hnsw_check('hnsw_vac_idx');
RESET enable_seqscan;

-- m = 2: upper pages hold more tuples (20 bytes each) than a heap page
-- can; VACUUM frees some of them (this crashed when it compacted the page
-- with PageRepairFragmentation, which sorts at most MaxHeapTuplesPerPage)
CREATE TABLE hv_small (id int, v vector(2)) WITH (autovacuum_enabled = off);
INSERT INTO hv_small SELECT i, array[sin(i), cos(i * 1.3)]::vector FROM generate_series(1, 2000) i;
CREATE INDEX hv_small_v ON hv_small USING hnsw (v vector_l2_ops) WITH (m = 2, ef_construction = 4);
DELETE FROM hv_small WHERE id % 10 = 3;
VACUUM hv_small;
SELECT count(*) AS problems FROM hnsw_check('hv_small_v');
DROP TABLE hv_small;

DROP FUNCTION hnsw_vac_exact;
DROP TABLE hnsw_vac, hnsw_vac_q;
-- leave the database as found
DROP EXTENSION genai;
