-- hnsw: build, ordered scans for every opclass, NULLs, zero vectors,
-- inserts after build, options and their errors.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS genai;
RESET client_min_messages;

-- small exact cases
CREATE TABLE hnsw_small (id int, v vector(3));
INSERT INTO hnsw_small VALUES (1, '[0,0,0]'), (2, '[1,1,1]'), (3, '[1,2,3]'),
	(4, '[-1,0,2]'), (5, NULL), (6, '[3,3,3]'), (7, '[1,1,1]');
CREATE INDEX hnsw_small_l2 ON hnsw_small USING hnsw (v vector_l2_ops);
SET enable_seqscan = off;
EXPLAIN (COSTS OFF) SELECT id FROM hnsw_small ORDER BY v <-> '[1,1,1]' LIMIT 3;
SELECT id, round((v <-> '[1,1,1]')::numeric, 4) AS d FROM hnsw_small ORDER BY v <-> '[1,1,1]', id;
-- NULL rows are not in the index
SELECT count(*) FROM hnsw_small WHERE id > 0 AND v <-> '[0,0,0]' IS NOT NULL;
SELECT count(*) FROM (SELECT id FROM hnsw_small ORDER BY v <-> '[0,0,0]') s;
-- a NULL query has no order; the index returns its entries
SELECT count(*) FROM (SELECT id FROM hnsw_small ORDER BY v <-> NULL) s;
-- wrong dimensions
SELECT id FROM hnsw_small ORDER BY v <-> '[1,1]' LIMIT 1;
INSERT INTO hnsw_small VALUES (8, '[1,1]');
-- inserts after build are found
INSERT INTO hnsw_small VALUES (9, '[1.1,1,1]'), (10, NULL);
SELECT id FROM hnsw_small ORDER BY v <-> '[1.1,1,1]' LIMIT 2;
DROP INDEX hnsw_small_l2;

-- cosine: zero vectors are not indexed; a zero query has no order
CREATE INDEX hnsw_small_cos ON hnsw_small USING hnsw (v vector_cosine_ops);
SET enable_seqscan = off;
SELECT id, round((v <=> '[1,1,1]')::numeric, 4) AS d FROM hnsw_small ORDER BY v <=> '[1,1,1]' LIMIT 9;
SELECT count(*) FROM (SELECT id FROM hnsw_small ORDER BY v <=> '[0,0,0]') s;
DROP INDEX hnsw_small_cos;
CREATE INDEX hnsw_small_ip ON hnsw_small USING hnsw (v vector_ip_ops);
SELECT id, v <#> '[1,1,1]' AS d FROM hnsw_small ORDER BY v <#> '[1,1,1]' LIMIT 9;
DROP INDEX hnsw_small_ip;
CREATE INDEX hnsw_small_l1 ON hnsw_small USING hnsw (v vector_l1_ops);
SELECT id, v <+> '[1,1,1]' AS d FROM hnsw_small ORDER BY v <+> '[1,1,1]' LIMIT 9;
DROP INDEX hnsw_small_l1;
RESET enable_seqscan;

-- options
CREATE INDEX ON hnsw_small USING hnsw (v vector_l2_ops) WITH (m = 1);
CREATE INDEX ON hnsw_small USING hnsw (v vector_l2_ops) WITH (m = 101);
CREATE INDEX ON hnsw_small USING hnsw (v vector_l2_ops) WITH (ef_construction = 3);
CREATE INDEX ON hnsw_small USING hnsw (v vector_l2_ops) WITH (ef_construction = 1001);
CREATE INDEX ON hnsw_small USING hnsw (v vector_l2_ops) WITH (m = 16, ef_construction = 31);
CREATE INDEX ON hnsw_small USING hnsw (v vector_l2_ops) WITH (foo = 1);
CREATE INDEX hnsw_small_opts ON hnsw_small USING hnsw (v vector_l2_ops) WITH (m = 2, ef_construction = 4);
CREATE INDEX hnsw_small_pgv ON hnsw_small USING hnsw (v vector_cosine_ops) WITH (m='8', ef_construction='32');
SELECT relname, reloptions FROM pg_class WHERE relname LIKE 'hnsw_small_%' ORDER BY 1;
ALTER INDEX hnsw_small_opts SET (m = 50);
SELECT hnsw_check('hnsw_small_opts');
SELECT hnsw_check('hnsw_small_pgv');
SELECT hnsw_check('hnsw_small');
SET hnsw.ef_search = 0;
SET hnsw.ef_search = 1001;
SET hnsw.ef_search = 10;
SHOW hnsw.ef_search;
RESET hnsw.ef_search;
SET hnsw.iterative_scan = sometimes;
SHOW hnsw.iterative_scan;
-- no dimensions
CREATE TABLE hnsw_nodim (v vector);
CREATE INDEX ON hnsw_nodim USING hnsw (v vector_l2_ops);
CREATE INDEX ON hnsw_nodim USING hnsw ((v::vector(2)) vector_l2_ops);
-- multicolumn and unsupported type
CREATE INDEX ON hnsw_small USING hnsw (v vector_l2_ops, id);
CREATE INDEX ON hnsw_small USING hnsw (id);
-- too many dimensions for an fp32 page; auto then stores fp16
-- (sql/hnsw_storage.sql tests the storage kinds)
CREATE TABLE hnsw_wide (v vector(2100));
CREATE INDEX ON hnsw_wide USING hnsw (v vector_l2_ops) WITH (storage = fp32);
CREATE INDEX hnsw_wide_v ON hnsw_wide USING hnsw (v vector_l2_ops);
SELECT hnsw_storage('hnsw_wide_v');
-- opclasses validate
SELECT opcname, amvalidate(oid) FROM pg_opclass
 WHERE opcmethod = (SELECT oid FROM pg_am WHERE amname = 'hnsw') ORDER BY 1;
-- empty table, then inserts
CREATE TABLE hnsw_empty (id int, v vector(2));
CREATE INDEX hnsw_empty_idx ON hnsw_empty USING hnsw (v vector_l2_ops);
SET enable_seqscan = off;
SELECT id FROM hnsw_empty ORDER BY v <-> '[0,0]' LIMIT 1;
INSERT INTO hnsw_empty SELECT i, ('[' || i || ',' || i || ']')::vector FROM generate_series(1, 50) i;
SELECT id FROM hnsw_empty ORDER BY v <-> '[10.2,10.2]' LIMIT 3;
SELECT hnsw_check('hnsw_empty_idx');
TRUNCATE hnsw_empty;
SELECT id FROM hnsw_empty ORDER BY v <-> '[0,0]' LIMIT 1;
INSERT INTO hnsw_empty VALUES (1, '[5,5]');
SELECT id FROM hnsw_empty ORDER BY v <-> '[0,0]' LIMIT 1;
REINDEX INDEX hnsw_empty_idx;
SELECT id FROM hnsw_empty ORDER BY v <-> '[0,0]' LIMIT 1;
RESET enable_seqscan;
-- CREATE INDEX CONCURRENTLY
CREATE TABLE hnsw_cic (id int, v vector(2));
INSERT INTO hnsw_cic SELECT i, ('[' || i || ',' || (i % 7) || ']')::vector FROM generate_series(1, 300) i;
CREATE INDEX CONCURRENTLY hnsw_cic_idx ON hnsw_cic USING hnsw (v vector_l2_ops);
SELECT hnsw_check('hnsw_cic_idx');
SET enable_seqscan = off;
SELECT id FROM hnsw_cic ORDER BY v <-> '[100,2]' LIMIT 1;
RESET enable_seqscan;
-- a graph larger than maintenance_work_mem: NOTICE, then on-disk inserts
SELECT setseed(0.3);
CREATE TABLE hnsw_spill AS
	SELECT i AS id, ('[' || array_to_string(array(SELECT round(random()::numeric, 3) FROM generate_series(1, 1000) WHERE i > 0), ',') || ']')::vector(1000) AS v
	FROM generate_series(1, 400) i;
SET maintenance_work_mem = '1MB';
CREATE INDEX hnsw_spill_idx ON hnsw_spill USING hnsw (v vector_l2_ops) WITH (m = 4, ef_construction = 8);
RESET maintenance_work_mem;
-- VACUUM also links nodes that later inserts' pruning left unreachable
VACUUM hnsw_spill;
SELECT hnsw_check('hnsw_spill_idx');
SET enable_seqscan = off;
SELECT count(*) FROM (SELECT id FROM hnsw_spill ORDER BY v <-> (SELECT v FROM hnsw_spill WHERE id = 390) LIMIT 1000) s;
RESET enable_seqscan;
-- unlogged
CREATE UNLOGGED TABLE hnsw_unlogged (v vector(2));
CREATE INDEX ON hnsw_unlogged USING hnsw (v vector_l2_ops);
INSERT INTO hnsw_unlogged VALUES ('[1,2]');
SELECT v FROM hnsw_unlogged ORDER BY v <-> '[1,1]' LIMIT 1;

DROP TABLE hnsw_small, hnsw_nodim, hnsw_wide, hnsw_empty, hnsw_unlogged, hnsw_cic, hnsw_spill;
-- leave the database as found
DROP EXTENSION genai;
