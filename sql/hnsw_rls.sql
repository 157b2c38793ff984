-- hnsw under row-level security: several roles, policies on a tenant
-- column (including tenant = current_setting('app.tenant')::int), tenants
-- of 50%, 10%, 1% and 0.1% of 5000 rows (ef_search * selectivity < k), an
-- empty tenant, policy changes between queries and a prepared statement
-- reused across tenants.  Each role must get k rows when k are visible,
-- never a row it may not see, in non-decreasing distance order, with the
-- rows of an exact scan under the same policy.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS genai;
DROP ROLE IF EXISTS hr_app;
DROP ROLE IF EXISTS hr_auditor;
DROP ROLE IF EXISTS hr_t3;
RESET client_min_messages;

CREATE ROLE hr_app;
CREATE ROLE hr_auditor;
CREATE ROLE hr_t3;

-- tenant 1: 49%, 2: 10%, 3: 1%, 4: 0.1%, 5: the rest; tenant 6 is empty
CREATE TABLE hr_docs (id int PRIMARY KEY, tenant int NOT NULL, v vector(4) NOT NULL);
SELECT setseed(0.75);
INSERT INTO hr_docs
SELECT i, CASE WHEN i % 1000 = 0 THEN 4 WHEN i % 100 = 1 THEN 3 WHEN i % 10 = 2 THEN 2
			   WHEN i % 2 = 1 THEN 1 ELSE 5 END,
	   array[random() - 0.5, random() - 0.5, random() - 0.5, random() - 0.5]::vector
FROM generate_series(1, 5000) i;
CREATE INDEX hr_docs_v ON hr_docs USING hnsw (v vector_l2_ops);
ANALYZE hr_docs;
GRANT SELECT ON hr_docs TO hr_app, hr_auditor, hr_t3;
ALTER TABLE hr_docs ENABLE ROW LEVEL SECURITY;
CREATE POLICY hr_tenant ON hr_docs FOR SELECT TO hr_app
	USING (tenant = current_setting('app.tenant')::int);
CREATE POLICY hr_audit ON hr_docs FOR SELECT TO hr_auditor USING (tenant IN (3, 4));
CREATE POLICY hr_fixed ON hr_docs FOR SELECT TO hr_t3 USING (tenant = 3);

-- the tenant of a row, read past RLS (for the leak check)
CREATE FUNCTION hr_tenant_of(int) RETURNS int LANGUAGE sql SECURITY DEFINER
	AS 'SELECT tenant FROM hr_docs WHERE id = $1';
GRANT EXECUTE ON FUNCTION hr_tenant_of(int) TO PUBLIC;

-- Run nq queries as the current role through the index and through an
-- exact sort (same role, same policy); count queries that got
-- min(k, visible rows) rows, the exact rows in exact order, non-decreasing
-- distances, and rows of a tenant not in "allowed" (must be 0).
CREATE FUNCTION hr_compare(allowed int[], k int DEFAULT 10, nq int DEFAULT 10)
RETURNS TABLE (queries int, full_k int, exact int, ordered int, recall numeric, leaked int)
LANGUAGE plpgsql AS $$
DECLARE
	qv vector;
	a int[];
	b int[];
	da float8[];
	want int;
	found int := 0;
	total int := 0;
BEGIN
	queries := 0; full_k := 0; exact := 0; ordered := 0; leaked := 0;
	SELECT count(*) INTO want FROM hr_docs;
	want := least(want, k);
	FOR i IN 1..nq LOOP
		qv := array[0.5 * sin(i), 0.5 * cos(i * 1.7), 0.5 * sin(i * 2.3), 0.5 * cos(i * 0.3)]::float4[]::vector;
		SET LOCAL enable_seqscan = off;
		SET LOCAL enable_bitmapscan = off;
		SELECT coalesce(array_agg(id ORDER BY n), '{}'), coalesce(array_agg(d ORDER BY n), '{}')
			INTO a, da
			FROM (SELECT id, v <-> qv AS d, row_number() OVER () AS n
				  FROM (SELECT id, v FROM hr_docs ORDER BY v <-> qv LIMIT k) s) t;
		SET LOCAL enable_seqscan = on;
		SET LOCAL enable_indexscan = off;
		SELECT coalesce(array_agg(id), '{}') INTO b
			FROM (SELECT id FROM hr_docs ORDER BY v <-> qv LIMIT k) s;
		SET LOCAL enable_indexscan = on;
		queries := queries + 1;
		IF coalesce(array_length(a, 1), 0) = want THEN full_k := full_k + 1; END IF;
		IF a = b THEN exact := exact + 1; END IF;
		IF NOT EXISTS (SELECT 1 FROM generate_series(2, coalesce(array_length(da, 1), 0)) j
					   WHERE da[j] < da[j - 1]) THEN
			ordered := ordered + 1;
		END IF;
		leaked := leaked + (SELECT count(*) FROM unnest(a) x WHERE hr_tenant_of(x) <> ALL (allowed));
		found := found + coalesce(array_length(array(SELECT unnest(a) INTERSECT SELECT unnest(b)), 1), 0);
		total := total + want;
	END LOOP;
	recall := round(CASE WHEN total = 0 THEN 1 ELSE found::numeric / total END, 2);
	RETURN NEXT;
END $$;

-- the policy qual is a filter on the index scan
SET ROLE hr_app;
SET app.tenant = 3;
SET enable_seqscan = off;
EXPLAIN (COSTS OFF) SELECT id FROM hr_docs ORDER BY v <-> '[0,0,0,0]' LIMIT 10;
RESET enable_seqscan;

-- every tenant through the same role and policy
SET app.tenant = 1;
SELECT '49%' AS tenant, queries, full_k, ordered, recall >= 0.95 AS recall_ok, leaked FROM hr_compare('{1}');
SET app.tenant = 2;
SELECT '10%' AS tenant, queries, full_k, ordered, recall >= 0.95 AS recall_ok, leaked FROM hr_compare('{2}');
SET app.tenant = 3;
SELECT '1%' AS tenant, queries, full_k, ordered, recall >= 0.95 AS recall_ok, leaked FROM hr_compare('{3}');
SET app.tenant = 4;
SELECT '0.1% (5 rows)' AS tenant, * FROM hr_compare('{4}');
SET app.tenant = 6;
SELECT 'empty' AS tenant, * FROM hr_compare('{6}');
-- exact settings: one ef_search batch, then an exact sweep
SET hnsw.max_scan_tuples = 1;
SET app.tenant = 2;
SELECT 'exact 10%' AS tenant, * FROM hr_compare('{2}');
SET app.tenant = 3;
SELECT 'exact 1%' AS tenant, * FROM hr_compare('{3}');
RESET hnsw.max_scan_tuples;
-- pgvector's "off" starves the 1% tenant: the tests above ran the
-- iterative path
SET hnsw.iterative_scan = off;
SELECT 'off 1%' AS tenant, full_k < queries AS starved, leaked FROM hr_compare('{3}');
RESET hnsw.iterative_scan;
RESET ROLE;

-- other roles, other policies
SET ROLE hr_auditor;
SELECT 'auditor 3+4' AS tenant, queries, full_k, ordered, recall >= 0.95 AS recall_ok, leaked FROM hr_compare('{3,4}', 20);
RESET ROLE;
SET ROLE hr_t3;
SELECT 'fixed 3' AS tenant, queries, full_k, ordered, recall >= 0.95 AS recall_ok, leaked FROM hr_compare('{3}');
RESET ROLE;

-- policy changes between queries of one session
SET ROLE hr_t3;
SELECT count(*) FROM (SELECT id FROM hr_docs ORDER BY v <-> '[0,0,0,0]' LIMIT 10) s;
RESET ROLE;
ALTER POLICY hr_fixed ON hr_docs USING (tenant = 4);
SET ROLE hr_t3;
SELECT 'fixed now 4' AS tenant, * FROM hr_compare('{4}');
RESET ROLE;
ALTER POLICY hr_fixed ON hr_docs USING (false);
SET ROLE hr_t3;
SELECT 'fixed now none' AS tenant, * FROM hr_compare('{}');
RESET ROLE;
DROP POLICY hr_fixed ON hr_docs;
SET ROLE hr_t3;
SELECT count(*) AS no_policy_no_rows FROM (SELECT id FROM hr_docs ORDER BY v <-> '[0,0,0,0]' LIMIT 10) s;
RESET ROLE;

-- A prepared statement reused across tenants: the policy's
-- current_setting() is evaluated at execution, so whichever plan the
-- plan cache keeps (custom, or generic after five runs), each execution
-- sees the current tenant's rows, all k of them.
SET ROLE hr_app;
PREPARE hr_q(vector, int) AS
	SELECT count(*) AS n,
		   bool_and(hr_tenant_of(id) = current_setting('app.tenant')::int) AS own,
		   array_agg(id ORDER BY d) = array_agg(id ORDER BY n0) AS ordered
	FROM (SELECT id, v <-> $1 AS d, row_number() OVER () AS n0
		  FROM (SELECT id, v FROM hr_docs ORDER BY v <-> $1 LIMIT $2) s) t;
SET app.tenant = 1;
EXECUTE hr_q('[0.1,0.2,0.3,0.4]', 10);
SET app.tenant = 3;
EXECUTE hr_q('[0.1,0.2,0.3,0.4]', 10);
SET app.tenant = 2;
EXECUTE hr_q('[0.1,0.2,0.3,0.4]', 10);
SET app.tenant = 4;
EXECUTE hr_q('[0.1,0.2,0.3,0.4]', 10);
SET app.tenant = 3;
EXECUTE hr_q('[0.4,0.3,0.2,0.1]', 10);
SET app.tenant = 1;
EXECUTE hr_q('[0.4,0.3,0.2,0.1]', 10);
SET app.tenant = 3;
EXECUTE hr_q('[-0.1,0.2,-0.3,0.4]', 10);
SET app.tenant = 6;
EXECUTE hr_q('[-0.1,0.2,-0.3,0.4]', 10);
SET app.tenant = 3;
EXECUTE hr_q('[0.2,0.2,0.2,0.2]', 30);
-- the same with a generic plan forced, and with custom plans forced
SET plan_cache_mode = force_generic_plan;
SET app.tenant = 2;
EXECUTE hr_q('[0.2,0.2,0.2,0.2]', 10);
SET app.tenant = 3;
EXECUTE hr_q('[0.2,0.2,0.2,0.2]', 10);
SET app.tenant = 4;
EXECUTE hr_q('[0.2,0.2,0.2,0.2]', 10);
SET plan_cache_mode = force_custom_plan;
SET app.tenant = 3;
EXECUTE hr_q('[0.2,0.2,0.2,0.2]', 10);
SET app.tenant = 1;
EXECUTE hr_q('[0.2,0.2,0.2,0.2]', 10);
RESET plan_cache_mode;
DEALLOCATE hr_q;
-- a policy change invalidates the cached plan of a prepared statement
PREPARE hr_q2(vector) AS
	SELECT count(*) AS n, bool_and(hr_tenant_of(id) = 3) AS tenant3
	FROM (SELECT id FROM hr_docs ORDER BY v <-> $1 LIMIT 10) s;
SET app.tenant = 3;
EXECUTE hr_q2('[0,0,0,0]');
EXECUTE hr_q2('[0,0,0,0]');
EXECUTE hr_q2('[0,0,0,0]');
EXECUTE hr_q2('[0,0,0,0]');
EXECUTE hr_q2('[0,0,0,0]');
EXECUTE hr_q2('[0,0,0,0]');
RESET ROLE;
ALTER POLICY hr_tenant ON hr_docs USING (tenant = current_setting('app.tenant')::int + 1);
SET ROLE hr_app;
SET app.tenant = 2;
EXECUTE hr_q2('[0,0,0,0]');
DEALLOCATE hr_q2;
RESET ROLE;

-- inserts after the build are seen by the tenant they belong to only
ALTER POLICY hr_tenant ON hr_docs USING (tenant = current_setting('app.tenant')::int);
INSERT INTO hr_docs SELECT 10000 + i, 7, array[0.01 * i, 0, 0, 0]::vector FROM generate_series(1, 12) i;
SET ROLE hr_app;
SET app.tenant = 7;
SELECT array_agg(id) AS tenant7 FROM (SELECT id FROM hr_docs ORDER BY v <-> '[0,0,0,0]' LIMIT 10) s;
SET app.tenant = 3;
SELECT 'after insert 1%' AS tenant, queries, full_k, ordered, recall >= 0.95 AS recall_ok, leaked FROM hr_compare('{3}');
RESET ROLE;
RESET app.tenant;

DROP TABLE hr_docs;
DROP FUNCTION hr_compare, hr_tenant_of;
DROP ROLE hr_app, hr_auditor, hr_t3;
DROP EXTENSION genai;
