-- hnsw cost estimate under filters: the planner picks the hnsw index for
-- ORDER BY ... LIMIT k when the filter (WHERE or a row-level security
-- policy) keeps many rows, and a btree on the tenant column plus an exact
-- sort when the tenant is small, because the scan must explore about
-- k / selectivity rows of the graph.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS genai;
DROP ROLE IF EXISTS hc_app;
RESET client_min_messages;

-- 20000 rows; tenant 1: 49%, 2: 10%, 3: 1%, 4: 0.1%, 5: the rest
CREATE TABLE hc_docs (id int PRIMARY KEY, tenant int NOT NULL, v vector(2) NOT NULL)
	WITH (autovacuum_enabled = off);
SELECT setseed(0.5);
INSERT INTO hc_docs
SELECT i, CASE WHEN i % 1000 = 0 THEN 4 WHEN i % 100 = 1 THEN 3 WHEN i % 10 = 2 THEN 2
			   WHEN i % 2 = 1 THEN 1 ELSE 5 END,
	   array[random() - 0.5, random() - 0.5]::vector
FROM generate_series(1, 20000) i;
CREATE INDEX hc_docs_v ON hc_docs USING hnsw (v vector_l2_ops) WITH (m = 8, ef_construction = 16);
CREATE INDEX hc_docs_tenant ON hc_docs (tenant);
ANALYZE hc_docs;

-- unfiltered: the index
EXPLAIN (COSTS OFF) SELECT id FROM hc_docs ORDER BY v <-> '[0,0]' LIMIT 10;
-- no LIMIT: every row is wanted, a sort of a scan is cheaper
EXPLAIN (COSTS OFF) SELECT id FROM hc_docs ORDER BY v <-> '[0,0]';
-- large tenants: the index; small tenants: the tenant btree and a sort
EXPLAIN (COSTS OFF) SELECT id FROM hc_docs WHERE tenant = 1 ORDER BY v <-> '[0,0]' LIMIT 10;
EXPLAIN (COSTS OFF) SELECT id FROM hc_docs WHERE tenant = 2 ORDER BY v <-> '[0,0]' LIMIT 10;
EXPLAIN (COSTS OFF) SELECT id FROM hc_docs WHERE tenant = 3 ORDER BY v <-> '[0,0]' LIMIT 10;
EXPLAIN (COSTS OFF) SELECT id FROM hc_docs WHERE tenant = 4 ORDER BY v <-> '[0,0]' LIMIT 10;
-- the larger k, the more of the graph: a 10% tenant with k = 500 sorts
EXPLAIN (COSTS OFF) SELECT id FROM hc_docs WHERE tenant = 2 ORDER BY v <-> '[0,0]' LIMIT 500;
-- the same through a row-level security policy: current_setting() is
-- read at planning time for the estimate, so each tenant gets its plan
CREATE ROLE hc_app;
GRANT SELECT ON hc_docs TO hc_app;
ALTER TABLE hc_docs ENABLE ROW LEVEL SECURITY;
CREATE POLICY hc_tenant ON hc_docs FOR SELECT TO hc_app
	USING (tenant = current_setting('app.tenant')::int);
SET ROLE hc_app;
SET app.tenant = 1;
EXPLAIN (COSTS OFF) SELECT id FROM hc_docs ORDER BY v <-> '[0,0]' LIMIT 10;
SET app.tenant = 3;
EXPLAIN (COSTS OFF) SELECT id FROM hc_docs ORDER BY v <-> '[0,0]' LIMIT 10;
SET app.tenant = 4;
SELECT count(*) FROM (SELECT id FROM hc_docs ORDER BY v <-> '[0,0]' LIMIT 10) s;

-- A prepared statement: with custom plans (plan_cache_mode =
-- force_custom_plan, what retrieval code should use) each execution is
-- planned for the tenant of the moment.
PREPARE hc_q(vector) AS SELECT id FROM hc_docs ORDER BY v <-> $1 LIMIT 10;
SET plan_cache_mode = force_custom_plan;
SET app.tenant = 1;
EXPLAIN (COSTS OFF) EXECUTE hc_q('[0,0]');
SET app.tenant = 3;
EXPLAIN (COSTS OFF) EXECUTE hc_q('[0,0]');
-- By default the plan cache switches to a generic plan after five
-- executions, planned for the tenant current then (here the large one).
-- Other tenants then run that plan: slower for a small tenant, but still
-- complete, as the iterative scan finishes exactly.
RESET plan_cache_mode;
SET app.tenant = 1;
EXECUTE hc_q('[0,0]') \g /dev/null
EXECUTE hc_q('[0,0]') \g /dev/null
EXECUTE hc_q('[0,0]') \g /dev/null
EXECUTE hc_q('[0,0]') \g /dev/null
EXECUTE hc_q('[0,0]') \g /dev/null
EXECUTE hc_q('[0,0]') \g /dev/null
SET app.tenant = 3;
EXPLAIN (COSTS OFF) EXECUTE hc_q('[0,0]');
CREATE TEMP TABLE hc_got3 AS EXECUTE hc_q('[0.1,0.1]');
SET app.tenant = 4;
CREATE TEMP TABLE hc_got4 AS EXECUTE hc_q('[0.1,0.1]');
DEALLOCATE hc_q;
RESET app.tenant;
RESET ROLE;
-- tenant 3's and tenant 4's ten nearest, exactly
SELECT (SELECT array_agg(id ORDER BY id) FROM hc_got3) =
	   (SELECT array_agg(id ORDER BY id) FROM
		 (SELECT id FROM hc_docs WHERE tenant = 3 ORDER BY (v <-> '[0.1,0.1]') + 0 LIMIT 10) s)
	   AS tenant3_exact,
	   (SELECT array_agg(id ORDER BY id) FROM hc_got4) =
	   (SELECT array_agg(id ORDER BY id) FROM
		 (SELECT id FROM hc_docs WHERE tenant = 4 ORDER BY (v <-> '[0.1,0.1]') + 0 LIMIT 10) s)
	   AS tenant4_exact;
DROP TABLE hc_got3, hc_got4;

-- a tenant-key index and no btree: the key path for small tenants (a scan
-- that gives up on the graph early and sweeps the index's keys is charged
-- the early give-up, not the whole budget), the same index with the key
-- checked in the graph walk for large ones
DROP INDEX hc_docs_v, hc_docs_tenant;
CREATE INDEX hc_docs_vt ON hc_docs USING hnsw (v vector_l2_ops, tenant) WITH (m = 8, ef_construction = 16);
ANALYZE hc_docs;
EXPLAIN (COSTS OFF) SELECT id FROM hc_docs WHERE tenant = 1 ORDER BY v <-> '[0,0]' LIMIT 10;
EXPLAIN (COSTS OFF) SELECT id FROM hc_docs WHERE tenant = 3 ORDER BY v <-> '[0,0]' LIMIT 10;
EXPLAIN (COSTS OFF) SELECT id FROM hc_docs WHERE tenant = 4 ORDER BY v <-> '[0,0]' LIMIT 10;
SET ROLE hc_app;
SET app.tenant = 3;
EXPLAIN (COSTS OFF) SELECT id FROM hc_docs ORDER BY v <-> '[0,0]' LIMIT 10;
RESET app.tenant;
RESET ROLE;

DROP TABLE hc_docs;
DROP ROLE hc_app;
DROP EXTENSION genai;
