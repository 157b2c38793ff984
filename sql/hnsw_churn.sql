-- hnsw: an index that lives through churn stays as good and as small as a
-- fresh build.  Five rounds of deleting 10% of the rows, VACUUM, and
-- inserting as many new ones; then the same rows are indexed from scratch
-- in a copy of the table, and the two indexes are compared: recall@10 at a
-- small ef_search (so that it is below 1 and can drop) within 0.01, size at
-- most 1.1x, and the verifier finds nothing wrong (no unreachable node).
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS genai;
RESET client_min_messages;

SELECT setseed(0.42);
CREATE FUNCTION churn_vec() RETURNS vector LANGUAGE sql VOLATILE AS $$
	SELECT ('[' || array_to_string(array(SELECT round((random() * 2 - 1)::numeric, 4)
										 FROM generate_series(1, 16)), ',') || ']')::vector(16)
$$;
CREATE TABLE churn (id int, v vector(16)) WITH (autovacuum_enabled = off);
INSERT INTO churn SELECT i, churn_vec() FROM generate_series(1, 4000) i;
CREATE INDEX churn_idx ON churn USING hnsw (v vector_l2_ops);
CREATE TABLE churn_q AS SELECT i AS qid, churn_vec() AS v FROM generate_series(1, 50) i;

-- mean recall@10 of an index scan at the current hnsw.ef_search, against
-- an exact sort, over churn_q
CREATE FUNCTION churn_recall(tab regclass) RETURNS float8 LANGUAGE plpgsql AS $$
DECLARE
	q record;
	truth int[];
	got int[];
	hits int := 0;
BEGIN
	FOR q IN SELECT v FROM churn_q ORDER BY qid LOOP
		SET LOCAL enable_indexscan = off;
		EXECUTE format('SELECT array(SELECT id FROM %s ORDER BY v <-> $1 LIMIT 10)', tab)
			INTO truth USING q.v;
		SET LOCAL enable_indexscan = on;
		SET LOCAL enable_seqscan = off;
		EXECUTE format('SELECT array(SELECT id FROM %s ORDER BY v <-> $1 LIMIT 10)', tab)
			INTO got USING q.v;
		RESET enable_seqscan;
		SELECT hits + count(*) INTO hits FROM unnest(got) g WHERE g = ANY (truth);
	END LOOP;
	RETURN hits / (10.0 * 50);
END $$;

-- five rounds: delete 10%, VACUUM, insert as many (\gexec runs each cell
-- as a statement of its own, so VACUUM runs outside a transaction block)
SELECT 'DELETE FROM churn WHERE id IN (SELECT id FROM churn ORDER BY random() LIMIT 400)',
	'VACUUM churn',
	format('INSERT INTO churn SELECT i, churn_vec() FROM generate_series(%s, %s) i',
		   4000 + 400 * (r - 1) + 1, 4000 + 400 * r)
	FROM generate_series(1, 5) r \gexec
SELECT count(*) FROM churn;
SELECT hnsw_check('churn_idx');

-- the same rows, indexed from scratch
CREATE TABLE churn_fresh AS SELECT * FROM churn;
CREATE INDEX churn_fresh_idx ON churn_fresh USING hnsw (v vector_l2_ops);
SELECT hnsw_check('churn_fresh_idx');

SET hnsw.ef_search = 10;
SET enable_seqscan = off;
EXPLAIN (COSTS OFF) SELECT id FROM churn ORDER BY v <-> (SELECT v FROM churn_q WHERE qid = 1) LIMIT 10;
RESET enable_seqscan;
SELECT churn_recall('churn') AS r_churn, churn_recall('churn_fresh') AS r_fresh \gset
SELECT :r_fresh < 1 AS recall_can_drop,
	:r_churn >= :r_fresh - 0.01 AS recall_within_001;
RESET hnsw.ef_search;
SELECT pg_relation_size('churn_idx') <= 1.1 * pg_relation_size('churn_fresh_idx')
	AS size_within_11x;

DROP FUNCTION churn_recall, churn_vec;
DROP TABLE churn, churn_q, churn_fresh;
-- leave the database as found
DROP EXTENSION genai;
