-- Parallel hnsw builds (PG15: the access method runs its own
-- ParallelContext).  A DEBUG1 message says how many workers a build
-- planned and launched; the built index must pass the verifier, hold every
-- row and return the exact top 10 at a high ef_search, for l2 and cosine,
-- also when the shared graph outgrows maintenance_work_mem.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS genai;
RESET client_min_messages;

SELECT setseed(0.17);
CREATE TABLE hnsw_par (id int, v vector(16)) WITH (parallel_workers = 2, autovacuum_enabled = off);
INSERT INTO hnsw_par
	SELECT i, ('[' || array_to_string(array(SELECT round((random() * 2 - 1)::numeric, 4)
											FROM generate_series(1, 16) WHERE i > 0), ',') || ']')::vector(16)
	FROM generate_series(1, 10000) i;
INSERT INTO hnsw_par VALUES (10001, NULL), (10002, '[0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0]');

-- exact top 10 of 25 queries, per operator
CREATE TABLE hnsw_par_exact AS
	SELECT q.id AS qid, op.op,
		CASE op.op
			WHEN '<->' THEN array(SELECT id FROM hnsw_par t WHERE t.v IS NOT NULL ORDER BY t.v <-> q.v, id LIMIT 10)
			ELSE array(SELECT id FROM hnsw_par t WHERE t.v IS NOT NULL AND t.id <> 10002 ORDER BY t.v <=> q.v, id LIMIT 10)
		END AS ids
	FROM hnsw_par q, (VALUES ('<->'), ('<=>')) op(op)
	WHERE q.id % 400 = 7;

CREATE FUNCTION hnsw_par_topk(op text) RETURNS TABLE (same bigint, total bigint, hits bigint)
LANGUAGE plpgsql AS $$
DECLARE
	r record;
	approx int[];
BEGIN
	same := 0;
	total := 0;
	hits := 0;
	SET LOCAL enable_seqscan = off;
	SET LOCAL hnsw.ef_search = 1000;
	FOR r IN SELECT e.ids, q.v FROM hnsw_par_exact e JOIN hnsw_par q ON q.id = e.qid
			 WHERE e.op = hnsw_par_topk.op LOOP
		EXECUTE format('SELECT array(SELECT id FROM hnsw_par ORDER BY v %s $1 LIMIT 10)', op)
			INTO approx USING r.v;
		IF approx = r.ids THEN
			same := same + 1;
		END IF;
		hits := hits + (SELECT count(*) FROM unnest(approx) a WHERE a = ANY (r.ids));
		total := total + 1;
	END LOOP;
	RETURN NEXT;
END $$;

-- every row is found by a full index scan (NULL and, for cosine, the zero
-- vector are not indexed)
CREATE FUNCTION hnsw_par_count(op text) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
	n bigint;
BEGIN
	SET LOCAL enable_seqscan = off;
	SET LOCAL hnsw.iterative_scan = relaxed_order;
	SET LOCAL hnsw.max_scan_tuples = 100000;
	EXECUTE format('SELECT count(*) FROM (SELECT id FROM hnsw_par ORDER BY v %s %L LIMIT 100000) s',
				   op, '[1,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0]') INTO n;
	RETURN n;
END $$;

SET max_parallel_maintenance_workers = 2;
SET min_parallel_table_scan_size = 0;
SET maintenance_work_mem = '64MB';

-- l2, two workers and the leader
SET client_min_messages = debug1;
CREATE INDEX hnsw_par_l2 ON hnsw_par USING hnsw (v vector_l2_ops);
RESET client_min_messages;
SELECT * FROM hnsw_check('hnsw_par_l2');
SELECT hnsw_par_count('<->');
SELECT same, total FROM hnsw_par_topk('<->');
DROP INDEX hnsw_par_l2;

-- cosine
SET client_min_messages = debug1;
CREATE INDEX hnsw_par_cos ON hnsw_par USING hnsw (v vector_cosine_ops) WITH (m = 8, ef_construction = 40);
RESET client_min_messages;
SELECT * FROM hnsw_check('hnsw_par_cos');
SELECT hnsw_par_count('<=>');
SELECT same, total FROM hnsw_par_topk('<=>');

DROP INDEX hnsw_par_cos;

-- compressed slots (fp16) are written from the same shared graph
SET client_min_messages = debug1;
CREATE INDEX hnsw_par_fp16 ON hnsw_par USING hnsw (v vector_l2_ops) WITH (storage = fp16);
RESET client_min_messages;
SELECT * FROM hnsw_check('hnsw_par_fp16');
SELECT hnsw_par_count('<->');
SELECT same, total FROM hnsw_par_topk('<->');
DROP INDEX hnsw_par_fp16;

-- REINDEX and CREATE INDEX CONCURRENTLY build in parallel too
CREATE INDEX hnsw_par_cos ON hnsw_par USING hnsw (v vector_cosine_ops) WITH (m = 8, ef_construction = 40);
SET client_min_messages = debug1;
REINDEX INDEX hnsw_par_cos;
RESET client_min_messages;
SELECT * FROM hnsw_check('hnsw_par_cos');
DROP INDEX hnsw_par_cos;
CREATE INDEX CONCURRENTLY hnsw_par_cic ON hnsw_par USING hnsw (v vector_l2_ops);
SELECT * FROM hnsw_check('hnsw_par_cic');
SELECT hnsw_par_count('<->');
SELECT same, total FROM hnsw_par_topk('<->');
DROP INDEX hnsw_par_cic;

-- a cancelled parallel build leaves nothing behind; the next one works
SET statement_timeout = '50ms';
CREATE INDEX hnsw_par_cancel ON hnsw_par USING hnsw (v vector_l2_ops);
RESET statement_timeout;
SELECT count(*) FROM pg_class WHERE relname = 'hnsw_par_cancel';

-- no workers: a serial build, no hnsw message
SET max_parallel_maintenance_workers = 0;
SET client_min_messages = debug1;
CREATE INDEX hnsw_par_serial ON hnsw_par USING hnsw (v vector_l2_ops);
RESET client_min_messages;
SELECT * FROM hnsw_check('hnsw_par_serial');
DROP INDEX hnsw_par_serial;
SET max_parallel_maintenance_workers = 2;

-- the shared graph outgrows maintenance_work_mem: the leader writes it,
-- then inserts the rows that did not fit on disk, after a NOTICE
SET maintenance_work_mem = '1MB';
CREATE INDEX hnsw_par_spill ON hnsw_par USING hnsw (v vector_l2_ops) WITH (m = 4, ef_construction = 16);
RESET maintenance_work_mem;
-- VACUUM links nodes that the on-disk inserts' pruning left unreachable
VACUUM hnsw_par;
SELECT * FROM hnsw_check('hnsw_par_spill');
SELECT hnsw_par_count('<->');
-- m = 4 makes a weak graph: recall, not exactness
SELECT hits >= 0.98 * 10 * total AS recall_ok FROM hnsw_par_topk('<->');
DROP INDEX hnsw_par_spill;

-- unlogged tables build in parallel and get an init fork
CREATE UNLOGGED TABLE hnsw_par_unlogged WITH (parallel_workers = 2) AS SELECT * FROM hnsw_par;
CREATE INDEX hnsw_par_unlogged_idx ON hnsw_par_unlogged USING hnsw (v vector_l2_ops);
SELECT * FROM hnsw_check('hnsw_par_unlogged_idx');
SELECT pg_relation_size('hnsw_par_unlogged_idx', 'init') > 0 AS has_init_fork;

DROP TABLE hnsw_par_unlogged;
DROP FUNCTION hnsw_par_topk(text);
DROP FUNCTION hnsw_par_count(text);
DROP TABLE hnsw_par_exact;
DROP TABLE hnsw_par;
RESET max_parallel_maintenance_workers;
RESET min_parallel_table_scan_size;
