/*-------------------------------------------------------------------------
 *
 * vectorselfcheck.c
 *	  SQL functions that show and check the kernel dispatch.
 *
 * genai_simd_paths() lists the kernel paths this CPU runs, genai_simd_active()
 * names the one in use, and genai_kernel_selfcheck() compares one path with
 * the scalar reference over every length 1..max_len, at misaligned
 * addresses, with NaN guards around each input so that a kernel that reads
 * past either end produces NaN and fails.
 *
 * Tolerance: the SIMD kernels sum in a different order than the scalar
 * loop, and both sum in float, so they may differ by a few rounding
 * errors of the partial sums.  A result r agrees with the reference s when
 *
 *		|r - s| <= 1e-5 * sum_i |t_i| + 1e-30		(n <= 2100)
 *
 * where t_i are the summed terms (x_i y_i, (x_i - y_i)^2, |x_i - y_i|, x_i^2,
 * y_i^2) computed in double.  For n <= 2100 the expected difference of two
 * float summations is about sqrt(n) * 2^-24 * sum |t_i| (< 3e-6); a lost or
 * doubled element, or a wrong lane, is off by a whole term, which for
 * random inputs is far larger at these lengths.  Past 2100 the relative
 * tolerance grows like sqrt(n) (1e-5 * sqrt(n / 2100)), as the expected
 * difference does; at 16000 dimensions about 8e-6 has been observed.
 *
 * IDENTIFICATION
 *	  src/vector/vectorselfcheck.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/float.h"

#include "vector.h"

PG_FUNCTION_INFO_V1(genai_simd_paths);
PG_FUNCTION_INFO_V1(genai_simd_active);
PG_FUNCTION_INFO_V1(genai_kernel_selfcheck);

#define SELFCHECK_REL_TOL	1e-5
#define SELFCHECK_ABS_TOL	1e-30
/* inputs start 0..15 floats past a 64-byte boundary: every SIMD misalignment */
#define SELFCHECK_MAX_SHIFT	16
#define SELFCHECK_TRIALS	2

static const char *const simd_path_names[] = {"scalar", "avx2", "avx512"};

Datum
genai_simd_paths(PG_FUNCTION_ARGS)
{
	Datum		elems[lengthof(simd_path_names)];
	int			n = 0;

	for (int i = 0; i < lengthof(simd_path_names); i++)
		if (VectorKernelsForPath(simd_path_names[i]) != NULL)
			elems[n++] = CStringGetTextDatum(simd_path_names[i]);
	PG_RETURN_ARRAYTYPE_P(construct_array(elems, n, TEXTOID, -1, false,
										  TYPALIGN_INT));
}

Datum
genai_simd_active(PG_FUNCTION_ARGS)
{
	PG_RETURN_TEXT_P(cstring_to_text(VectorActiveKernels->name));
}

/* splitmix64: a small deterministic generator, so a seed reproduces a run */
static uint64
next_random(uint64 *state)
{
	uint64		z = (*state += UINT64CONST(0x9E3779B97F4A7C15));

	z = (z ^ (z >> 30)) * UINT64CONST(0xBF58476D1CE4E5B9);
	z = (z ^ (z >> 27)) * UINT64CONST(0x94D049BB133111EB);
	return z ^ (z >> 31);
}

/* n floats uniform in [-scale, scale), scale a power of two in 2^-6..2^6 */
static void
fill_random(float *x, int n, uint64 *state)
{
	float		scale = ldexpf(1.0f, (int) (next_random(state) % 13) - 6);

	for (int i = 0; i < n; i++)
		x[i] = scale * ((float) (next_random(state) >> 40) / (float) (1 << 23) - 1.0f);
}

/* relative error of r against reference s with terms summing to mag */
static double
rel_error(float r, float s, double mag, double reltol, bool *ok)
{
	double		diff = fabs((double) r - (double) s);

	if (isnan(r) || isnan(s) || diff > reltol * mag + SELFCHECK_ABS_TOL)
		*ok = false;
	if (isnan(r) || isnan(s))
		return get_float8_nan();
	return mag > 0 ? diff / mag : diff;
}

/* compare every kernel of k with the scalar reference on one input pair */
static double
check_one(const VectorKernels *k, const float *a, const float *b, int n, bool *ok)
{
	const VectorKernels *s = &VectorKernelsScalar;
	double		l2mag = 0,
				ipmag = 0,
				l1mag = 0,
				namag = 0,
				nbmag = 0,
				worst = 0;
	float		kd,
				kna,
				knb,
				sd,
				sna,
				snb;
	double		e[6];
	double		tol = SELFCHECK_REL_TOL * Max(1.0, sqrt(n / 2100.0));

	for (int i = 0; i < n; i++)
	{
		double		d = (double) a[i] - (double) b[i];

		l2mag += d * d;
		ipmag += fabs((double) a[i] * (double) b[i]);
		l1mag += fabs(d);
		namag += (double) a[i] * (double) a[i];
		nbmag += (double) b[i] * (double) b[i];
	}

	k->cosine_parts(a, b, n, &kd, &kna, &knb);
	s->cosine_parts(a, b, n, &sd, &sna, &snb);

	e[0] = rel_error(k->l2_squared(a, b, n), s->l2_squared(a, b, n), l2mag, tol, ok);
	e[1] = rel_error(k->inner_product(a, b, n), s->inner_product(a, b, n), ipmag, tol, ok);
	e[2] = rel_error(k->l1(a, b, n), s->l1(a, b, n), l1mag, tol, ok);
	e[3] = rel_error(kd, sd, ipmag, tol, ok);
	e[4] = rel_error(kna, sna, namag, tol, ok);
	e[5] = rel_error(knb, snb, nbmag, tol, ok);

	for (int i = 0; i < 6; i++)
	{
		if (isnan(e[i]))
			return e[i];
		worst = Max(worst, e[i]);
	}
	return worst;
}

/*
 * genai_kernel_selfcheck(path, max_len, seed) -> (cases, max_rel_error, passed)
 */
Datum
genai_kernel_selfcheck(PG_FUNCTION_ARGS)
{
	char	   *path = text_to_cstring(PG_GETARG_TEXT_PP(0));
	int32		max_len = PG_GETARG_INT32(1);
	uint64		state = (uint64) (int64) PG_GETARG_INT32(2);
	const VectorKernels *k;
	TupleDesc	tupdesc;
	Datum		values[3];
	bool		nulls[3] = {false, false, false};
	int64		cases = 0;
	double		worst = 0;
	bool		ok = true;
	Size		buflen;
	char	   *rawa,
			   *rawb;
	float	   *bufa,
			   *bufb;

	if (max_len < 1 || max_len > VECTOR_MAX_DIM)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("maximum length must be between 1 and %d", VECTOR_MAX_DIM)));
	if (strcmp(path, "scalar") != 0 && strcmp(path, "avx2") != 0 &&
		strcmp(path, "avx512") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("unrecognized kernel path \"%s\"", path),
				 errhint("Valid paths are \"scalar\", \"avx2\" and \"avx512\".")));
	k = VectorKernelsForPath(path);
	if (k == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("this CPU cannot run the \"%s\" distance kernels", path),
				 errhint("Check only the paths listed by genai_simd_paths().")));

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	tupdesc = BlessTupleDesc(tupdesc);

	/* 64 bytes of alignment slack, the shift, and a NaN guard at the end */
	buflen = sizeof(float) * (max_len + SELFCHECK_MAX_SHIFT + 16) + 64;
	rawa = palloc(buflen);
	rawb = palloc(buflen);
	bufa = (float *) TYPEALIGN(64, rawa);
	bufb = (float *) TYPEALIGN(64, rawb);

	for (int n = 1; n <= max_len; n++)
	{
		CHECK_FOR_INTERRUPTS();
		for (int t = 0; t < SELFCHECK_TRIALS; t++)
		{
			int			shifta = (n + t * 5) % SELFCHECK_MAX_SHIFT;
			int			shiftb = (n * 7 + t * 3 + 1) % SELFCHECK_MAX_SHIFT;
			float	   *a = bufa + shifta;
			float	   *b = bufb + shiftb;
			double		e;

			/* NaN everywhere, so a read outside [0, n) poisons the result */
			for (int i = 0; i < max_len + SELFCHECK_MAX_SHIFT + 16; i++)
				bufa[i] = bufb[i] = get_float4_nan();
			fill_random(a, n, &state);
			fill_random(b, n, &state);

			e = check_one(k, a, b, n, &ok);
			if (isnan(e) || e > worst)
				worst = e;
			cases++;
		}
	}

	values[0] = Int64GetDatum(cases);
	values[1] = Float8GetDatum(worst);
	values[2] = BoolGetDatum(ok);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}
