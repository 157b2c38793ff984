-- Compressed vector storage in hnsw indexes (storage = auto | fp32 | fp16 |
-- sq8): every kind with every opclass returns rows in the exact order of
-- the distance the user sees, with exact distances (the index returns lower
-- bounds and the executor rechecks); auto picks by what fits a page, so
-- 3072 and 4096 dimensions are indexable; option and limit errors.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS genai;
RESET client_min_messages;

SELECT setseed(0.17);
-- 2000 rows, plus 200 near-duplicates (one coordinate moved by 1e-4) whose
-- distances differ by less than the fp16 / sq8 error, so the stored
-- approximations alone could not order them
CREATE TABLE hnsw_st AS
	SELECT i AS id,
		('[' || array_to_string(array(SELECT round((random() * 2 - 1)::numeric, 4)
									  FROM generate_series(1, 48) WHERE i > 0), ',') || ']')::vector(48) AS v
	FROM generate_series(1, 2000) i;
INSERT INTO hnsw_st
	SELECT 2000 + id, (('[' || (x[1] + 0.0001)::text || ',') ||
					   array_to_string(x[2:48], ',') || ']')::vector(48)
	FROM (SELECT id, v::real[] AS x FROM hnsw_st WHERE id <= 200) s;
ANALYZE hnsw_st;

-- For 12 query rows (some with a near-duplicate): are the index's top 10
-- the exact top 10, ids and distances, and does it emit them in
-- non-decreasing order of the exact distance?  (Rows at exactly equal
-- distances, e.g. both of a near-duplicate pair under cosine, may come in
-- either order, so the sets are compared in (distance, id) order.)
CREATE FUNCTION hnsw_st_exact(op text, ef int) RETURNS TABLE (same int, ordered int, total int)
LANGUAGE plpgsql AS $$
DECLARE
	r record;
	exact text;
	approx text;
	inorder bool;
BEGIN
	same := 0;
	ordered := 0;
	total := 0;
	FOR r IN SELECT id, v FROM hnsw_st WHERE id % 250 = 1 OR id IN (2, 50, 199) ORDER BY id LOOP
		SET LOCAL enable_indexscan = off;
		EXECUTE format('SELECT string_agg(id || '':'' || d, '','' ORDER BY d, id) FROM
						(SELECT id, v %s $1 AS d FROM hnsw_st ORDER BY v %s $1 LIMIT 10) s', op, op)
			INTO exact USING r.v;
		SET LOCAL enable_indexscan = on;
		EXECUTE format('SET LOCAL hnsw.ef_search = %s', ef);
		EXECUTE format('SELECT string_agg(id || '':'' || d, '','' ORDER BY d, id),
							   array_agg(d ORDER BY n) = array_agg(d ORDER BY d) FROM
						(SELECT row_number() OVER () AS n, id, d FROM
						 (SELECT id, v %s $1 AS d FROM hnsw_st ORDER BY v %s $1 LIMIT 10) s) t', op, op)
			INTO approx, inorder USING r.v;
		total := total + 1;
		IF exact = approx THEN
			same := same + 1;
		ELSE
			RAISE NOTICE 'query % op %: exact % index %', r.id, op, exact, approx;
		END IF;
		IF inorder THEN
			ordered := ordered + 1;
		END IF;
	END LOOP;
	RETURN NEXT;
END $$;

-- every storage kind x every opclass
CREATE FUNCTION hnsw_st_all(kind text)
	RETURNS TABLE (opclass text, storage text, kb bigint, uses_index bool, same int, ordered int, total int)
LANGUAGE plpgsql SET enable_seqscan = off AS $$
DECLARE
	oc text;
	op text;
	line text;
BEGIN
	FOR oc, op IN VALUES ('vector_l2_ops', '<->'), ('vector_ip_ops', '<#>'),
						 ('vector_cosine_ops', '<=>'), ('vector_l1_ops', '<+>') LOOP
		EXECUTE format('CREATE INDEX hnsw_st_idx ON hnsw_st USING hnsw (v %s) WITH (storage = %s)', oc, kind);
		uses_index := false;
		FOR line IN EXECUTE format('EXPLAIN (COSTS OFF) SELECT id FROM hnsw_st ORDER BY v %s (SELECT v FROM hnsw_st WHERE id = 1) LIMIT 10', op) LOOP
			uses_index := uses_index OR line LIKE '%Index Scan using hnsw_st_idx%';
		END LOOP;
		opclass := oc;
		storage := hnsw_storage('hnsw_st_idx');
		kb := pg_relation_size('hnsw_st_idx') / 1024;
		SELECT * INTO same, ordered, total FROM hnsw_st_exact(op, 300);
		IF EXISTS (SELECT hnsw_check('hnsw_st_idx')) THEN
			RAISE NOTICE 'hnsw_check found problems';
		END IF;
		RETURN NEXT;
		DROP INDEX hnsw_st_idx;
	END LOOP;
END $$;

SELECT * FROM hnsw_st_all('fp32');
SELECT * FROM hnsw_st_all('fp16');
SELECT * FROM hnsw_st_all('sq8');

-- the planner picks the index with compressed storage on its own
CREATE INDEX hnsw_st_l2 ON hnsw_st USING hnsw (v vector_l2_ops) WITH (storage = sq8);
EXPLAIN (COSTS OFF) SELECT id FROM hnsw_st ORDER BY v <-> (SELECT v FROM hnsw_st WHERE id = 1) LIMIT 10;
DROP INDEX hnsw_st_l2;

-- at the default ef_search the results still come out in exact order of
-- the exact distances (whatever the recall)
CREATE INDEX hnsw_st_cos ON hnsw_st USING hnsw (v vector_cosine_ops) WITH (storage = fp16);
SELECT bool_and(d >= lag_d) AS ordered, count(*) AS n FROM (
	SELECT d, lag(d) OVER (ORDER BY ord) AS lag_d FROM (
		SELECT row_number() OVER () AS ord, v <=> (SELECT v FROM hnsw_st WHERE id = 7) AS d
		FROM (SELECT v FROM hnsw_st ORDER BY v <=> (SELECT v FROM hnsw_st WHERE id = 7) LIMIT 100) s) t) u;

-- an iterative, filtered query gets k rows in order (strict_order), and they
-- are the exact ones at a high ef_search
SET hnsw.ef_search = 10;
SELECT count(*) AS n, bool_and(d >= coalesce(prev, 0)) AS ordered FROM (
	SELECT d, lag(d) OVER (ORDER BY ord) AS prev FROM (
		SELECT row_number() OVER () AS ord, d FROM (
			SELECT v <=> (SELECT v FROM hnsw_st WHERE id = 9) AS d FROM hnsw_st
			WHERE id % 13 = 0 ORDER BY v <=> (SELECT v FROM hnsw_st WHERE id = 9) LIMIT 20) s) t) u;
SET hnsw.ef_search = 400;
SELECT (SELECT array_agg(id) FROM (SELECT id FROM hnsw_st WHERE id % 13 = 0
		ORDER BY v <=> (SELECT v FROM hnsw_st WHERE id = 9) LIMIT 20) s) =
	   (SELECT array_agg(id) FROM (SELECT id FROM hnsw_st WHERE id % 13 = 0
		ORDER BY (v <=> (SELECT v FROM hnsw_st WHERE id = 9)) + 0 LIMIT 20) s) AS filtered_exact;
RESET hnsw.ef_search;

-- inserts, deletes and VACUUM with fp16: the verifier stays clean and the
-- results exact
INSERT INTO hnsw_st
	SELECT 4000 + i, ('[' || array_to_string(array(SELECT round((random() * 2 - 1)::numeric, 4)
								  FROM generate_series(1, 48) WHERE i > 0), ',') || ']')::vector(48)
	FROM generate_series(1, 500) i;
DELETE FROM hnsw_st WHERE id % 10 = 3;
VACUUM hnsw_st;
INSERT INTO hnsw_st
	SELECT 5000 + i, ('[' || array_to_string(array(SELECT round((random() * 2 - 1)::numeric, 4)
								  FROM generate_series(1, 48) WHERE i > 0), ',') || ']')::vector(48)
	FROM generate_series(1, 300) i;
SELECT * FROM hnsw_check('hnsw_st_cos');
SET enable_seqscan = off;
SELECT * FROM hnsw_st_exact('<=>', 300);

-- the scalar fp16 decoder gives what the F16C one gives
SET genai.simd = scalar;
SELECT * FROM hnsw_st_exact('<=>', 300);
RESET genai.simd;
RESET enable_seqscan;
DROP INDEX hnsw_st_cos;

-- values beyond the half range are clamped, and order stays exact
CREATE TABLE hnsw_st_big (id int, v vector(3));
INSERT INTO hnsw_st_big VALUES (1, '[70000,0,0]'), (2, '[1e6,0,0]'), (3, '[65504,1,0]'),
	(4, '[-1e9,2,3]'), (5, '[0.00001,1e-7,0]'), (6, '[100000,0,1]');
CREATE INDEX ON hnsw_st_big USING hnsw (v vector_l2_ops) WITH (storage = fp16);
SET enable_seqscan = off;
SELECT id, v <-> '[80000,0,0]' AS d FROM hnsw_st_big ORDER BY v <-> '[80000,0,0]' LIMIT 6;
SELECT id, v <#> '[1,1,1]' AS d FROM hnsw_st_big ORDER BY v <#> '[1,1,1]' LIMIT 6;
RESET enable_seqscan;
SELECT * FROM hnsw_check('hnsw_st_big_v_idx');
DROP TABLE hnsw_st_big;

DROP FUNCTION hnsw_st_all(text);
DROP FUNCTION hnsw_st_exact(text, int);
DROP TABLE hnsw_st;

-- Dimensions beyond fp32's page limit: 3072 (text-embedding-3-large) goes
-- to fp16 and 4096 to sq8 under auto, with exact top-k
CREATE FUNCTION hnsw_st_rand(dims int, n int) RETURNS SETOF vector
LANGUAGE sql AS $$
	SELECT array(SELECT (random() * 2 - 1)::real FROM generate_series(1, dims) WHERE i > 0)::vector
	FROM generate_series(1, n) i
$$;
SELECT setseed(0.3);
CREATE TABLE hnsw_st3072 (id serial, v vector(3072));
INSERT INTO hnsw_st3072 (v) SELECT hnsw_st_rand(3072, 300);
CREATE INDEX hnsw_st3072_v ON hnsw_st3072 USING hnsw (v vector_cosine_ops);
SELECT hnsw_storage('hnsw_st3072_v');
SET hnsw.ef_search = 100;
SET enable_seqscan = off;
EXPLAIN (COSTS OFF) SELECT id FROM hnsw_st3072 ORDER BY v <=> (SELECT v FROM hnsw_st3072 WHERE id = 5) LIMIT 10;
SELECT (SELECT array_agg(id) FROM (SELECT id FROM hnsw_st3072
		ORDER BY v <=> (SELECT v FROM hnsw_st3072 WHERE id = 5) LIMIT 10) s) =
	   (SELECT array_agg(id) FROM (SELECT id FROM hnsw_st3072
		ORDER BY (v <=> (SELECT v FROM hnsw_st3072 WHERE id = 5)) + 0 LIMIT 10) s) AS exact_top10;
SELECT * FROM hnsw_check('hnsw_st3072_v');
DROP TABLE hnsw_st3072;

CREATE TABLE hnsw_st4096 (id serial, v vector(4096));
INSERT INTO hnsw_st4096 (v) SELECT hnsw_st_rand(4096, 300);
CREATE INDEX hnsw_st4096_v ON hnsw_st4096 USING hnsw (v vector_l2_ops);
SELECT hnsw_storage('hnsw_st4096_v');
SELECT (SELECT array_agg(id) FROM (SELECT id FROM hnsw_st4096
		ORDER BY v <-> (SELECT v FROM hnsw_st4096 WHERE id = 5) LIMIT 10) s) =
	   (SELECT array_agg(id) FROM (SELECT id FROM hnsw_st4096
		ORDER BY (v <-> (SELECT v FROM hnsw_st4096 WHERE id = 5)) + 0 LIMIT 10) s) AS exact_top10;
-- inserted after the build (one node per page, sq8)
INSERT INTO hnsw_st4096 (v) SELECT hnsw_st_rand(4096, 20);
SELECT * FROM hnsw_check('hnsw_st4096_v');
RESET hnsw.ef_search;
RESET enable_seqscan;
DROP TABLE hnsw_st4096;

-- limits and option errors
CREATE TABLE hnsw_st_err (v vector(8100), w vector(3072));
CREATE INDEX ON hnsw_st_err USING hnsw (v vector_l2_ops);
CREATE INDEX ON hnsw_st_err USING hnsw (v vector_l2_ops) WITH (m = 2, storage = fp16);
CREATE INDEX ON hnsw_st_err USING hnsw (w vector_l2_ops) WITH (storage = fp32);
CREATE INDEX ON hnsw_st_err USING hnsw (w vector_l2_ops) WITH (storage = fp8);
CREATE INDEX ON hnsw_st_err USING hnsw (w vector_l2_ops) WITH (storage = '');
-- a smaller m makes room for sq8
CREATE INDEX hnsw_st_err_v ON hnsw_st_err USING hnsw (v vector_l2_ops) WITH (m = 2);
SELECT hnsw_storage('hnsw_st_err_v');
SELECT hnsw_storage('hnsw_st_err');
DROP TABLE hnsw_st_err;
DROP FUNCTION hnsw_st_rand(int, int);
