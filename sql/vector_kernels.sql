-- Distance kernels: every SIMD path this CPU runs agrees with the scalar
-- reference (src/vector/vectorselfcheck.c states the tolerance:
-- 1e-5 * sum |terms| + 1e-30).  Output is the same on every CPU: paths the
-- CPU lacks are skipped, and only booleans are printed.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS genai;
RESET client_min_messages;

-- scalar always runs; the list is ordered and holds only known paths
SELECT 'scalar' = ANY (genai_simd_paths()) AS has_scalar,
       genai_simd_paths() <@ ARRAY['scalar', 'avx2', 'avx512'] AS known_paths;

-- auto picks the widest supported path
SET genai.simd = 'auto';
SELECT genai_simd_active() = (genai_simd_paths())[array_length(genai_simd_paths(), 1)] AS auto_is_best;
RESET genai.simd;

-- each path agrees with scalar for every length 1..2100 at every
-- misalignment, for three seeds; cases = 2100 lengths x 2 trials
SELECT p AS path_checked, c.cases, c.passed, c.max_rel_error < 1e-5 AS within_tolerance
FROM unnest(genai_simd_paths()) p, genai_kernel_selfcheck(p, 2100, 1) c
WHERE p = 'scalar';
SELECT count(*) = 3 * array_length(genai_simd_paths(), 1) AS all_paths_checked,
       bool_and(c.passed) AS all_agree,
       max(c.max_rel_error) < 1e-5 AS within_tolerance,
       sum(c.cases) = 3 * 4200 * array_length(genai_simd_paths(), 1) AS all_cases
FROM unnest(genai_simd_paths()) p, generate_series(1, 3) s,
     genai_kernel_selfcheck(p, 2100, s) c;

-- forcing a path: supported ones switch the kernels, unsupported ones are
-- refused with FEATURE_NOT_SUPPORTED, never a crash
DO $$
DECLARE
	p text;
	ok boolean := true;
BEGIN
	FOREACH p IN ARRAY ARRAY['scalar', 'avx2', 'avx512'] LOOP
		BEGIN
			PERFORM set_config('genai.simd', p, true);
			IF NOT p = ANY (genai_simd_paths()) OR genai_simd_active() <> p THEN
				ok := false;
			END IF;
		EXCEPTION WHEN feature_not_supported THEN
			IF p = ANY (genai_simd_paths()) THEN
				ok := false;
			END IF;
		END;
	END LOOP;
	RAISE NOTICE 'forcing paths matches detection: %', ok;
END
$$;

-- the SQL operators use the forced kernels and agree with a double
-- precision computation in SQL, for dimensions 1..300
SELECT setseed(0.5);
CREATE TEMP TABLE kern AS
SELECT d, a, b,
       translate(a::text, '{}', '[]')::vector AS va,
       translate(b::text, '{}', '[]')::vector AS vb
FROM (SELECT d,
             array_agg((random() * 2 - 1)::real ORDER BY i) AS a,
             array_agg((random() * 2 - 1)::real ORDER BY i) AS b
      FROM generate_series(1, 300) d, generate_series(1, d) i
      GROUP BY d) s;
CREATE TEMP TABLE kern_exact AS
SELECT d,
       sum((x::float8 - y::float8) ^ 2) AS l2sq,
       sum(x::float8 * y::float8) AS ip,
       sum(abs(x::float8 * y::float8)) AS ipmag,
       sum(abs(x::float8 - y::float8)) AS l1,
       sqrt(sum(x::float8 ^ 2) * sum(y::float8 ^ 2)) AS normprod
FROM kern, unnest(a, b) AS u(x, y)
GROUP BY d;

DO $$
DECLARE
	p text;
	bad bigint;
	total bigint := 0;
BEGIN
	FOREACH p IN ARRAY genai_simd_paths() LOOP
		PERFORM set_config('genai.simd', p, true);
		SELECT count(*) INTO bad
		FROM kern JOIN kern_exact USING (d)
		WHERE abs((va <-> vb) ^ 2 - l2sq) > 1e-5 * l2sq + 1e-30
		   OR abs(-(va <#> vb) - ip) > 1e-5 * ipmag + 1e-30
		   OR abs(inner_product(va, vb) - ip) > 1e-5 * ipmag + 1e-30
		   OR abs((va <+> vb) - l1) > 1e-5 * l1 + 1e-30
		   OR abs((1 - (va <=> vb)) * normprod - ip) > 1e-5 * ipmag + 1e-12 * normprod;
		total := total + bad;
	END LOOP;
	RAISE NOTICE 'operators disagreeing with exact sums under any path: %', total;
END
$$;

-- only superusers may force a path; bad values are rejected
SET genai.simd = 'neon';
CREATE ROLE genai_kernels_user;
SET ROLE genai_kernels_user;
SET genai.simd = 'scalar';
RESET ROLE;
DROP ROLE genai_kernels_user;

-- bad arguments to the check
SELECT * FROM genai_kernel_selfcheck('neon', 10, 1);
SELECT * FROM genai_kernel_selfcheck('scalar', 0, 1);
SELECT * FROM genai_kernel_selfcheck('scalar', 16001, 1);

DROP TABLE kern, kern_exact;
