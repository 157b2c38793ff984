-- hnsw filter keys: USING hnsw (v ..., tenant, ...) with quals on the key
-- columns evaluated inside the graph walk (Index Cond), for integer,
-- bigint, smallint, date, bool (stored exactly: = and ranges), uuid and
-- text (hashed: = only, rechecked); with and without row-level security.
-- Each query must get min(k, matching rows) rows, in order, exactly the
-- rows of an exact scan (rare keys switch to an exact sweep; common keys
-- are checked for recall).
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS genai;
DROP ROLE IF EXISTS hk_app;
RESET client_min_messages;

-- tenant 1: 49%, 2: 10%, 3: 1%, 4: 0.1%, 5: the rest; 50 rows have NULL keys
CREATE TABLE hk_docs (id int PRIMARY KEY, tenant int, t8 bigint, t2 smallint, day date,
					  flag bool, tid uuid, tname text, v vector(4) NOT NULL);
SELECT setseed(0.5);
INSERT INTO hk_docs (id, tenant, v)
SELECT i, CASE WHEN i % 100 = 50 THEN NULL WHEN i % 1000 = 0 THEN 4 WHEN i % 100 = 1 THEN 3
			   WHEN i % 10 = 2 THEN 2 WHEN i % 2 = 1 THEN 1 ELSE 5 END,
	   array[random() - 0.5, random() - 0.5, random() - 0.5, random() - 0.5]::vector
FROM generate_series(1, 5000) i;
UPDATE hk_docs SET t8 = tenant + 10000000000, t2 = tenant, day = date '2024-01-01' + tenant,
	flag = (tenant = 3), tid = md5(tenant::text)::uuid, tname = 'tenant ' || tenant;
-- exact keys first (the hashed ones follow, in an index of their own)
CREATE INDEX hk_exact ON hk_docs USING hnsw (v vector_l2_ops, tenant, t8, t2, day);
ANALYZE hk_docs;
SELECT hnsw_check('hk_exact');

-- Run nq queries "WHERE filter ORDER BY v <-> q LIMIT k" through the hnsw
-- index (no other path allowed) and through an exact sort; count queries
-- with min(k, matching rows) rows, with the exact rows in exact order, and
-- the recall.
CREATE FUNCTION hk_compare(filter text, k int DEFAULT 10, nq int DEFAULT 10)
RETURNS TABLE (queries int, full_k int, exact int, recall numeric)
LANGUAGE plpgsql AS $$
DECLARE
	q text;
	a int[];
	b int[];
	want int;
	found int := 0;
	total int := 0;
BEGIN
	queries := 0; full_k := 0; exact := 0;
	EXECUTE format('SELECT least(count(*), %s) FROM hk_docs WHERE %s', k, filter) INTO want;
	FOR i IN 1..nq LOOP
		q := format('SELECT coalesce(array_agg(id), ''{}'') FROM (SELECT id FROM hk_docs WHERE %s ORDER BY v <-> %L LIMIT %s) s',
					filter, array[0.5 * sin(i), 0.5 * cos(i * 1.7), 0.5 * sin(i * 2.3),
								  0.5 * cos(i * 0.3)]::float4[]::vector, k);
		SET LOCAL enable_seqscan = off;
		SET LOCAL enable_bitmapscan = off;
		EXECUTE q INTO a;
		SET LOCAL enable_seqscan = on;
		SET LOCAL enable_indexscan = off;
		EXECUTE q INTO b;
		SET LOCAL enable_indexscan = on;
		queries := queries + 1;
		IF coalesce(array_length(a, 1), 0) = want THEN full_k := full_k + 1; END IF;
		IF a = b THEN exact := exact + 1; END IF;
		found := found + coalesce(array_length(array(SELECT unnest(a) INTERSECT SELECT unnest(b)), 1), 0);
		total := total + want;
	END LOOP;
	recall := round(CASE WHEN total = 0 THEN 1 ELSE found::numeric / total END, 2);
	RETURN NEXT;
END $$;

-- the key quals are index conditions of the hnsw scan
SET enable_seqscan = off;
EXPLAIN (COSTS OFF) SELECT id FROM hk_docs WHERE tenant = 3 ORDER BY v <-> '[0,0,0,0]' LIMIT 10;
EXPLAIN (COSTS OFF) SELECT id FROM hk_docs WHERE t8 = 10000000003 AND day > '2024-01-02' ORDER BY v <-> '[0,0,0,0]' LIMIT 10;
EXPLAIN (COSTS OFF) SELECT id FROM hk_docs WHERE t8 < 3 ORDER BY v <-> '[0,0,0,0]' LIMIT 10;
EXPLAIN (COSTS OFF) SELECT id FROM hk_docs WHERE tenant = 1 ORDER BY v <-> '[0,0,0,0]' LIMIT 10;
RESET enable_seqscan;

-- integer: 49%, 10%, 1%, 0.1% (5 rows), none
SELECT 'int 49%' AS key, queries, full_k, recall >= 0.95 AS recall_ok FROM hk_compare('tenant = 1');
SELECT 'int 10%' AS key, queries, full_k, recall >= 0.95 AS recall_ok FROM hk_compare('tenant = 2');
SELECT 'int 1%' AS key, * FROM hk_compare('tenant = 3');
SELECT 'int 0.1%' AS key, * FROM hk_compare('tenant = 4');
SELECT 'int none' AS key, * FROM hk_compare('tenant = 6', nq => 2);
SELECT 'int null' AS key, * FROM hk_compare('tenant = NULL::int', nq => 2);
-- ranges
SELECT 'int 3..4' AS key, * FROM hk_compare('tenant BETWEEN 3 AND 4');
SELECT 'int > 4' AS key, queries, full_k, recall >= 0.95 AS recall_ok FROM hk_compare('tenant > 4');
-- bigint, against bigint and integer constants
SELECT 'bigint =' AS key, * FROM hk_compare('t8 = 10000000003');
SELECT 'bigint < int' AS key, * FROM hk_compare('t8 < 3', nq => 2);
SELECT 'bigint >= int' AS key, queries, full_k, recall >= 0.95 AS recall_ok FROM hk_compare('t8 >= 2');
-- smallint and date, two keys at once
SELECT 'smallint' AS key, * FROM hk_compare('t2 = 3::smallint');
SELECT 'smallint = int' AS key, * FROM hk_compare('t2 = 4');
SELECT 'date' AS key, * FROM hk_compare('day = date ''2024-01-04''');
SELECT 'date range + int' AS key, * FROM hk_compare('day >= ''2024-01-04'' AND tenant < 4');
-- a key qual and a filter the index cannot see
SELECT 'key + filter' AS key, * FROM hk_compare('tenant = 2 AND id % 10 = 2 AND id % 3 = 0');
-- rows with NULL keys are in the index for unfiltered scans
SET enable_seqscan = off;
SELECT count(*) AS null_key_rows FROM (SELECT id FROM hk_docs ORDER BY v <-> '[0,0,0,0]') s
 WHERE id % 100 = 50;
RESET enable_seqscan;

-- inserts after the build carry their keys
INSERT INTO hk_docs (id, tenant, t8, t2, day, flag, tid, tname, v)
SELECT 10000 + i, 7, 10000000007, 7, date '2024-01-08', false, md5('7')::uuid, 'tenant 7',
	   array[0.01 * i, 0, 0, 0]::vector
FROM generate_series(1, 12) i;
SELECT 'int inserted' AS key, * FROM hk_compare('tenant = 7');
SELECT hnsw_check('hk_exact');
-- VACUUM frees the slots of deleted rows; rows inserted into them carry
-- their own keys, not the old ones
DELETE FROM hk_docs WHERE tenant = 3 AND id % 200 = 1;
VACUUM hk_docs;
INSERT INTO hk_docs (id, tenant, t8, t2, day, v)
SELECT 20000 + i, 8, 10000000008, 8, date '2024-01-09', array[0.02 * i, 0.01, 0, 0]::vector
FROM generate_series(1, 30) i;
SELECT 'after vacuum, deleted' AS key, * FROM hk_compare('tenant = 3');
SELECT 'after vacuum, reused' AS key, * FROM hk_compare('tenant = 8');
SELECT 'after vacuum, date' AS key, * FROM hk_compare('day = ''2024-01-09'' AND t8 = 10000000008');
SELECT hnsw_check('hk_exact');

-- row-level security: the policy's qual on the key column is an index
-- condition, evaluated per node, with the tenant read at execution
CREATE ROLE hk_app;
GRANT SELECT ON hk_docs TO hk_app;
ALTER TABLE hk_docs ENABLE ROW LEVEL SECURITY;
CREATE POLICY hk_tenant ON hk_docs FOR SELECT TO hk_app
	USING (tenant = current_setting('app.tenant')::int);
SET ROLE hk_app;
SET app.tenant = 3;
SET enable_seqscan = off;
EXPLAIN (COSTS OFF) SELECT id FROM hk_docs ORDER BY v <-> '[0,0,0,0]' LIMIT 10;
RESET enable_seqscan;
SELECT 'rls 1%' AS key, * FROM hk_compare('true');
SET app.tenant = 4;
SELECT 'rls 0.1%' AS key, * FROM hk_compare('true');
SET app.tenant = 2;
SELECT 'rls 10%' AS key, queries, full_k, recall >= 0.95 AS recall_ok FROM hk_compare('true');
SELECT 'rls 10% + key' AS key, queries, full_k, recall >= 0.95 AS recall_ok FROM hk_compare('day = ''2024-01-03''', 20);
SELECT 'rls 10%, other tenant' AS key, * FROM hk_compare('tenant = 3');
SET app.tenant = 6;
SELECT 'rls empty' AS key, * FROM hk_compare('true', nq => 2);
RESET ROLE;

-- hashed keys: uuid and text (= only, rechecked on the heap row), and bool
DROP INDEX hk_exact;
CREATE INDEX hk_hashed ON hk_docs USING hnsw (v vector_l2_ops, tid, tname, flag);
SELECT hnsw_check('hk_hashed');
SET enable_seqscan = off;
EXPLAIN (COSTS OFF) SELECT id FROM hk_docs WHERE tname = 'tenant 3' ORDER BY v <-> '[0,0,0,0]' LIMIT 10;
EXPLAIN (COSTS OFF) SELECT id FROM hk_docs WHERE tid = md5('3')::uuid ORDER BY v <-> '[0,0,0,0]' LIMIT 10;
-- a bare boolean column (WHERE flag, or flag = true, which the parser
-- turns into it) is no index condition for hnsw; a comparison with a value
-- known only at execution is
EXPLAIN (COSTS OFF) SELECT id FROM hk_docs WHERE flag ORDER BY v <-> '[0,0,0,0]' LIMIT 10;
EXPLAIN (COSTS OFF) SELECT id FROM hk_docs WHERE flag = (SELECT true) ORDER BY v <-> '[0,0,0,0]' LIMIT 10;
RESET enable_seqscan;
-- hashed keys: uuid, text (rechecked); bool
SELECT 'uuid' AS key, * FROM hk_compare('tid = md5(''3'')::uuid');
SELECT 'text' AS key, * FROM hk_compare('tname = ''tenant 4''');
SELECT 'text 10%' AS key, queries, full_k, recall >= 0.95 AS recall_ok FROM hk_compare('tname = ''tenant 2''');
SELECT 'bool' AS key, * FROM hk_compare('flag');
SELECT 'bool param' AS key, * FROM hk_compare('flag = (SELECT true)');
SELECT 'text inserted' AS key, * FROM hk_compare('tname = ''tenant 7''');
-- a text policy
ALTER POLICY hk_tenant ON hk_docs USING (tname = current_setting('app.tname'));
SET ROLE hk_app;
SET app.tname = 'tenant 3';
SET enable_seqscan = off;
EXPLAIN (COSTS OFF) SELECT id FROM hk_docs ORDER BY v <-> '[0,0,0,0]' LIMIT 10;
RESET enable_seqscan;
SELECT 'rls text 1%' AS key, * FROM hk_compare('true');
SET app.tname = 'tenant 4';
SELECT 'rls text 0.1%' AS key, * FROM hk_compare('true');
RESET ROLE;
RESET app.tenant;
RESET app.tname;

-- errors
CREATE INDEX ON hk_docs USING hnsw (tenant, v vector_l2_ops);
CREATE INDEX ON hk_docs USING hnsw (v vector_l2_ops, tenant, t8, t2, day, flag);
CREATE INDEX ON hk_docs USING hnsw (v vector_l2_ops, v vector_l2_ops);
CREATE INDEX ON hk_docs USING hnsw (v vector_l2_ops, (id::float8));
CREATE TABLE hk_wide (v vector(2020), k int);
CREATE INDEX ON hk_wide USING hnsw (v vector_l2_ops) WITH (storage = fp32);
CREATE INDEX ON hk_wide USING hnsw (v vector_l2_ops, k, k, k, k) WITH (storage = fp32);

DROP TABLE hk_docs, hk_wide;
DROP FUNCTION hk_compare;
DROP ROLE hk_app;
DROP EXTENSION genai;
