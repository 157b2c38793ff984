-- Wide vectors live in TOAST, which the planner does not cost for a
-- sequential scan; the hnsw cost estimate must still let the index win
-- ORDER BY ... LIMIT on such a table at the default ef_search.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS genai;
RESET client_min_messages;
SELECT setseed(0.42);
CREATE TABLE hnsw_wide (id int, emb vector(640));
INSERT INTO hnsw_wide
	SELECT i, (SELECT array_agg(random()::real) FROM generate_series(1, 640) WHERE i > 0)::vector
	FROM generate_series(1, 2000) i;
CREATE INDEX hnsw_wide_idx ON hnsw_wide USING hnsw (emb vector_l2_ops) WITH (m = 8, ef_construction = 32);
VACUUM ANALYZE hnsw_wide;
-- the vectors are out of line: the heap's main fork is small, the index is not
SELECT pg_relation_size('hnsw_wide') < pg_relation_size('hnsw_wide_idx') / 10 AS vectors_in_toast;
-- the scan node the planner picks for the top 10 (EXPLAIN would print
-- all 640 elements of the query vector)
CREATE FUNCTION hnsw_wide_scan(q vector, lim int) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
	line text;
BEGIN
	FOR line IN EXECUTE 'EXPLAIN (COSTS OFF) SELECT id FROM hnsw_wide ORDER BY emb <-> $1 LIMIT $2'
		USING q, lim
	LOOP
		IF line ~ 'Scan' THEN
			RETURN regexp_replace(line, '^\s*(->\s*)?', '');
		END IF;
	END LOOP;
	RETURN NULL;
END $$;
SELECT hnsw_wide_scan(emb, 10) FROM hnsw_wide WHERE id = 1;
-- a search that visits about every node is not worth it
SET hnsw.ef_search = 200;
SELECT hnsw_wide_scan(emb, 10) FROM hnsw_wide WHERE id = 1;
RESET hnsw.ef_search;
-- nor is reading all rows in index order
SELECT hnsw_wide_scan(emb, 2000) FROM hnsw_wide WHERE id = 1;
DROP TABLE hnsw_wide;
DROP FUNCTION hnsw_wide_scan;
