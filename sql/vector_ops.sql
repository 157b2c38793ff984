-- The pgvector-compatible SQL surface of vector beyond I/O and distances:
-- arithmetic, concatenation, comparison and btree, functions, casts and
-- aggregates, with their errors.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS genai;
RESET client_min_messages;

-- element-wise arithmetic
SELECT '[1,2,3]'::vector + '[4,5,6]';
SELECT '[1,2,3]'::vector - '[4,5,6]';
SELECT '[1,2,3]'::vector * '[4,5,6]';
SELECT '[1.5,-0]'::vector * '[2,7]';
SELECT '[1,2,3]'::vector + '[4,5]';
SELECT '[1,2,3]'::vector - '[4,5]';
SELECT '[1,2,3]'::vector * '[4,5]';
-- overflow and underflow are errors, not infinities or silent zeros
SELECT '[3e38]'::vector + '[3e38]';
SELECT '[-3e38]'::vector - '[3e38]';
SELECT '[1e20]'::vector * '[1e20]';
SELECT '[1e-30]'::vector * '[1e-30]';
-- a denormal result is a value, not an underflow
SELECT '[1e-30]'::vector * '[1e-10]';

-- concatenation
SELECT '[1,2]'::vector || '[3]';
SELECT vector_dims(array_fill(1, ARRAY[8000])::vector || array_fill(2, ARRAY[8000])::vector);
SELECT array_fill(1, ARRAY[8000])::vector || array_fill(2, ARRAY[8001])::vector;

-- comparison: element by element, then a prefix sorts first
SELECT '[1,2,3]'::vector < '[1,2,4]', '[1,2,3]'::vector <= '[1,2,3]',
       '[1,2,3]'::vector = '[1,2,3]', '[1,2,3]'::vector <> '[1,2,3]',
       '[1,2,3]'::vector >= '[1,3]', '[1,2,3]'::vector > '[1,2]';
SELECT '[-0]'::vector = '[0]' AS minus_zero_equals_zero;
SELECT vector_cmp('[1,2]', '[1,2,0]'), vector_cmp('[2]', '[1,9]'), vector_cmp('[1,2]', '[1,2]');
CREATE TABLE vector_ops_t (id int, v vector);
INSERT INTO vector_ops_t VALUES
	(1, '[1,2,3]'), (2, '[1,2]'), (3, '[0,5,5]'), (4, '[1,2,3]'), (5, '[-1,0]'), (6, NULL);
SELECT id, v FROM vector_ops_t ORDER BY v, id;
SELECT v, count(*) FROM vector_ops_t GROUP BY v ORDER BY v;
SELECT DISTINCT v FROM vector_ops_t ORDER BY v DESC;
-- the default btree opclass: an index scan returns the same rows in order
CREATE INDEX vector_ops_t_v ON vector_ops_t (v);
SET enable_seqscan = off;
EXPLAIN (COSTS OFF) SELECT id FROM vector_ops_t WHERE v = '[1,2,3]';
SELECT id FROM vector_ops_t WHERE v = '[1,2,3]' ORDER BY id;
SELECT id, v FROM vector_ops_t WHERE v >= '[1,2]' ORDER BY v, id;
RESET enable_seqscan;
DROP TABLE vector_ops_t;

-- functions
SELECT vector_dims('[1,2,3,4,5]'::vector), vector_norm('[3,4]'), vector_norm('[0,0]');
SELECT vector_norm('[3e38,3e38]') AS norm_sums_in_double;
SELECT l2_normalize('[3,4]'), l2_normalize('[0,0,0]'), l2_normalize('[-1e-45]');
SELECT vector_norm(l2_normalize('[1,2,3,4,5,6,7]')) BETWEEN 0.9999999 AND 1.0000001 AS unit;
SELECT subvector('[1,2,3,4,5]', 2, 3), subvector('[1,2,3,4,5]', 4, 10),
       subvector('[1,2,3,4,5]', -1, 3), subvector('[1,2,3,4,5]', 1, 2147483647);
SELECT subvector('[1,2,3]', 4, 1);
SELECT subvector('[1,2,3]', -1, 2);
SELECT subvector('[1,2,3]', 1, 0);
SELECT subvector('[1,2,3]', -2147483648, 2147483647);
SELECT binary_quantize('[1,-1,0,2.5,1e-45,-0,3,4,5]');
SELECT binary_quantize('[1,1,1,1,1,1,1,1]'), binary_quantize('[-1]');
SELECT pg_typeof(binary_quantize('[1]'));

-- casts: arrays to vector by assignment, vector to real[] implicitly
SELECT ARRAY[1,2,3]::vector, ARRAY[1.5,2,3]::real[]::vector,
       ARRAY[1.25,2,3]::double precision[]::vector, ARRAY[0.1,2,3]::numeric[]::vector;
SELECT '{1,2,3}'::real[]::vector(3);
SELECT '{1,2,3}'::int[]::vector(2);
SELECT '[1.5,2,-0]'::vector::real[], '[0.1,2]'::vector::double precision[];
CREATE FUNCTION vector_ops_first(real[]) RETURNS real
	AS 'SELECT $1[1]' LANGUAGE sql IMMUTABLE;
SELECT vector_ops_first('[7,8]'::vector) AS implicit_to_real_array;
DROP FUNCTION vector_ops_first(real[]);
CREATE TABLE vector_ops_cast (v vector(3));
INSERT INTO vector_ops_cast VALUES (ARRAY[1,2,3]), ('{4,5,6}'::float8[]), ('{7,8,9}'::numeric[]);
INSERT INTO vector_ops_cast VALUES (ARRAY[1,2]);
SELECT * FROM vector_ops_cast ORDER BY v;
DROP TABLE vector_ops_cast;
SELECT '{{1,2},{3,4}}'::int[]::vector;
SELECT '{1,NULL,3}'::int[]::vector;
SELECT '{}'::int[]::vector;
SELECT '{1e300}'::float8[]::vector;
SELECT '{1e39}'::numeric[]::vector;
SELECT '{NaN}'::real[]::vector;
SELECT '{Infinity}'::float8[]::vector;
SELECT '{NaN}'::numeric[]::vector;
SELECT '{1e-50}'::float8[]::vector AS rounds_to_zero;
SELECT vector_dims(array_fill(0.5::real, ARRAY[16000])::vector);
SELECT array_fill(0.5::real, ARRAY[16001])::vector;
SELECT '{1,2}'::text[]::vector;

-- aggregates
CREATE TABLE vector_ops_agg (g int, v vector);
INSERT INTO vector_ops_agg VALUES (1, '[1,2,3]'), (1, '[3,4,5]'), (1, NULL), (2, '[-1,0.5,8]');
SELECT g, avg(v), sum(v), count(v) FROM vector_ops_agg GROUP BY g ORDER BY g;
SELECT avg(v), sum(v) FROM vector_ops_agg;
SELECT avg(v), sum(v) FROM vector_ops_agg WHERE false;
SELECT avg(v), sum(v) FROM vector_ops_agg WHERE v IS NULL;
INSERT INTO vector_ops_agg VALUES (3, '[1,2]');
SELECT avg(v) FROM vector_ops_agg;
SELECT sum(v) FROM vector_ops_agg;
-- sums are kept in double: intermediate sums beyond float4 range are fine,
-- and only a final result that does not fit in a float4 is an error
SELECT sum(v) FROM (VALUES ('[3e38]'::vector), ('[3e38]'), ('[-3e38]')) s(v);
SELECT avg(v) FROM (VALUES ('[3e38]'::vector), ('[3e38]')) s(v);
SELECT sum(v) FROM (VALUES ('[3e38]'::vector), ('[3e38]')) s(v);
-- small addends are not lost next to a large one
SELECT sum(v) - '[16777216]' AS small_addends
	FROM (SELECT '[16777216]'::vector UNION ALL SELECT '[1]' FROM generate_series(1, 4)) s(v);
DROP TABLE vector_ops_agg;

-- as window functions (the final functions leave the state as it was),
-- and over vectors stored out of line (4000 bytes each, TOAST)
SELECT i, avg(v) OVER w, sum(v) OVER w, sum(v) OVER (ORDER BY i) AS running
	FROM (VALUES (1, '[1,10]'::vector), (2, '[2,20]'), (3, '[3,30]'), (4, '[4,40]')) s(i, v)
	WINDOW w AS (ORDER BY i ROWS BETWEEN 1 PRECEDING AND CURRENT ROW) ORDER BY i;
CREATE TABLE vector_ops_toast (v vector(1000));
INSERT INTO vector_ops_toast SELECT array_fill(i, ARRAY[1000]) FROM generate_series(1, 4) i;
SELECT pg_relation_size(reltoastrelid) > 0 AS stored_out_of_line
	FROM pg_class WHERE relname = 'vector_ops_toast';
SELECT avg(v) = array_fill(2.5, ARRAY[1000])::vector AS avg_ok,
       sum(v) = array_fill(10, ARRAY[1000])::vector AS sum_ok
	FROM vector_ops_toast;
DROP TABLE vector_ops_toast;

-- pgvector's float8[]-state support functions, and an aggregate built on
-- them as a pgvector user might have (it runs in parallel too)
SELECT vector_accum('{0}', '[1,2,3]'), vector_accum('{1,1,2,3}', '[1,2,3]'),
       vector_combine('{1,2}', '{3,4}'), vector_combine('{0}', '{2,4,6}'),
       vector_avg('{2,2,4,6}'), vector_avg('{0}');
SELECT vector_accum('{1,0}', '[1,2,3]');
SELECT vector_combine('{1,2}', '{1,2,3}');
SELECT vector_avg('{1}');
SELECT vector_avg('{{1,2}}');
SELECT vector_accum('{1,NULL}', '[1]');
SELECT vector_avg(('{1,' || repeat('0,', 16000) || '0}')::float8[]);
SELECT vector_combine('{1,1.7e308}', '{1,1.7e308}');
CREATE AGGREGATE vector_ops_myavg(vector) (
	SFUNC = vector_accum, STYPE = double precision[], FINALFUNC = vector_avg,
	COMBINEFUNC = vector_combine, INITCOND = '{0}', PARALLEL = SAFE);
SELECT vector_ops_myavg(v) FROM (VALUES ('[1,2]'::vector), ('[3,4]'), (NULL)) s(v);
SELECT vector_ops_myavg(v) FROM (VALUES ('[1,2]'::vector)) s(v) WHERE false;

-- parallel aggregation goes through combine, serialize and deserialize,
-- and gives the same result as a serial plan
CREATE TABLE vector_ops_par (v vector(3));
INSERT INTO vector_ops_par
	SELECT ARRAY[i % 7, i % 11 - 5, (i % 13) * 0.5] FROM generate_series(1, 30000) i;
ANALYZE vector_ops_par;
SET max_parallel_workers_per_gather = 0;
SELECT avg(v) AS serial_avg, sum(v) AS serial_sum FROM vector_ops_par \gset
SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
SET max_parallel_workers_per_gather = 2;
SET parallel_leader_participation = off;
EXPLAIN (COSTS OFF) SELECT avg(v), sum(v) FROM vector_ops_par;
SELECT avg(v), sum(v), avg(v) = :'serial_avg' AS same_avg, sum(v) = :'serial_sum' AS same_sum
	FROM vector_ops_par;
EXPLAIN (COSTS OFF) SELECT vector_ops_myavg(v) FROM vector_ops_par;
SELECT vector_ops_myavg(v) = :'serial_avg' AS same_avg FROM vector_ops_par;
RESET parallel_setup_cost;
RESET parallel_tuple_cost;
RESET min_parallel_table_scan_size;
RESET max_parallel_workers_per_gather;
RESET parallel_leader_participation;
DROP TABLE vector_ops_par;
DROP AGGREGATE vector_ops_myavg(vector);

-- every function of the vector type (pgvector's names) is immutable and
-- parallel safe; only the aggregate support functions taking internal are
-- not strict
SELECT p.proname, p.provolatile, p.proparallel, p.proisstrict
	FROM pg_proc p JOIN pg_depend d ON d.classid = 'pg_proc'::regclass AND d.objid = p.oid
	JOIN pg_extension e ON d.refclassid = 'pg_extension'::regclass AND d.refobjid = e.oid
	WHERE e.extname = 'genai' AND p.prokind = 'f'
	  AND (p.provolatile <> 'i' OR p.proparallel <> 's' OR NOT p.proisstrict)
	  AND (p.proname LIKE 'vector%' OR p.proname IN ('l2_distance', 'inner_product',
		   'cosine_distance', 'l1_distance', 'l2_normalize', 'subvector',
		   'binary_quantize', 'array_to_vector'))
	ORDER BY 1;
SELECT aggfnoid::regprocedure, aggcombinefn, aggserialfn, aggdeserialfn, proparallel
	FROM pg_aggregate JOIN pg_proc ON pg_proc.oid = aggfnoid
	WHERE aggfnoid::regprocedure::text ~ '\(vector\)' ORDER BY 1;
SELECT castsource::regtype, casttarget::regtype, castcontext
	FROM pg_cast WHERE castsource = 'vector'::regtype OR casttarget = 'vector'::regtype
	ORDER BY castsource::regtype::text, casttarget::regtype::text;
