/*-------------------------------------------------------------------------
 *
 * hnswstorage.c
 *	  How an hnsw index stores vectors in its node slots: fp32 (exact),
 *	  fp16 (IEEE half) or sq8 (per-vector affine 8-bit codes), and the
 *	  lower bound of the exact distance that scans of compressed indexes
 *	  return so the executor can restore exact order.
 *
 * A compressed slot stores an approximation x~ of the indexed vector x and,
 * in front of it, ||x - x~||, |x - x~|_1 and ||x||, computed in double from
 * x at insert time and rounded up to float.  From the distance between the
 * query q and x~, the triangle and Cauchy-Schwarz inequalities give a lower
 * bound of the distance between q and x:
 *
 *	L2       ||q - x|| >= ||q - x~|| - ||x - x~||
 *	L1       |q - x|_1 >= |q - x~|_1 - |x - x~|_1
 *	IP       -(q.x) >= -(q.x~) - ||q|| ||x - x~||
 *	cosine   1 - q.x / (||q|| ||x||) >= 1 - (q.x~ + ||q|| ||x - x~||) / (||q|| ||x||)
 *
 * The SQL operator the executor uses to recheck computes its value with
 * float accumulation, so the bound must stay below that computed value, not
 * only below the exact real number: every bound is lowered by the worst-case
 * relative rounding error of a float sum of dims terms (on both sides), see
 * BoundSlack.  A bound above the recomputed value would make the executor
 * raise "index returned tuples in wrong order".
 *
 * fp16 is decoded with F16C (one instruction per 8 values) when the vector
 * kernels run a SIMD path and the CPU has it, else by a portable scalar
 * routine; both are exact conversions, so they give the same floats.
 * Encoding is scalar (round to nearest even); values beyond the half range
 * are clamped to +-65504, which the stored error norms account for.
 *
 * IDENTIFICATION
 *	  src/hnsw/hnswstorage.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <float.h>
#include <math.h>

#include "access/relation.h"
#include "catalog/index.h"
#include "commands/defrem.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"

#include "hnsw.h"

#ifdef GENAI_X86_SIMD
#include <cpuid.h>
#include <immintrin.h>
#endif

#define HALF_MAX_BITS	0x7BFF		/* 65504 */

const char *
HnswStorageName(HnswStorage storage)
{
	switch (storage)
	{
		case HNSW_STORAGE_AUTO:
			return "auto";
		case HNSW_STORAGE_FP32:
			return "fp32";
		case HNSW_STORAGE_FP16:
			return "fp16";
		case HNSW_STORAGE_SQ8:
			return "sq8";
	}
	return "unknown";
}

/* Bytes of one stored vector */
int
HnswStorageBytes(HnswStorage storage, int dims)
{
	switch (storage)
	{
		case HNSW_STORAGE_FP16:
			return sizeof(HnswCodeHeader) + sizeof(uint16) * dims;
		case HNSW_STORAGE_SQ8:
			return sizeof(HnswSq8Header) + dims;
		default:
			return sizeof(float) * dims;
	}
}

/*
 * float -> IEEE half, round to nearest even, clamped to the finite range
 * (inputs are finite: the index rejects NaN and infinity).
 */
static uint16
FloatToHalf(float f)
{
	uint32		x;
	uint32		sign;
	uint32		absx;

	memcpy(&x, &f, sizeof(x));
	sign = (x >> 16) & 0x8000;
	absx = x & 0x7FFFFFFF;
	if (absx >= 0x477FE000)		/* >= 65504: clamp (65504..65520 rounds there anyway) */
		return (uint16) (sign | HALF_MAX_BITS);
	if (absx < 0x38800000)		/* below 2^-14: subnormal half or zero */
	{
		float		a;

		memcpy(&a, &absx, sizeof(a));
		/* a * 2^24 is exact; rint rounds to nearest even; 1024 is 2^-14 */
		return (uint16) (sign | (uint32) rintf(a * 16777216.0f));
	}
	{
		uint32		h = ((((absx >> 23) - 127 + 15)) << 10) | ((absx >> 13) & 0x3FF);
		uint32		rem = absx & 0x1FFF;

		if (rem > 0x1000 || (rem == 0x1000 && (h & 1)))
			h++;				/* a carry into the exponent is right */
		return (uint16) (sign | h);
	}
}

static inline float
HalfToFloat(uint16 h)
{
	uint32		sign = (uint32) (h & 0x8000) << 16;
	uint32		exp = (h >> 10) & 0x1F;
	uint32		mant = h & 0x3FF;
	uint32		bits;
	float		f;

	if (exp == 0)
	{
		f = (float) mant * (1.0f / 16777216.0f);	/* exact */
		return sign ? -f : f;
	}
	if (exp == 31)
		bits = sign | 0x7F800000 | (mant << 13);
	else
		bits = sign | ((exp + 112) << 23) | (mant << 13);
	memcpy(&f, &bits, sizeof(f));
	return f;
}

static void
HalfDecodeScalar(const uint16 *src, float *dst, int n)
{
	for (int i = 0; i < n; i++)
		dst[i] = HalfToFloat(src[i]);
}

#ifdef GENAI_X86_SIMD
__attribute__((target("avx,f16c")))
static void
HalfDecodeF16C(const uint16 *src, float *dst, int n)
{
	int			i = 0;

	for (; i + 8 <= n; i += 8)
		_mm256_storeu_ps(dst + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *) (src + i))));
	for (; i < n; i++)
		dst[i] = HalfToFloat(src[i]);
}

/* F16C, on a CPU whose OS saves YMM state (implied by a SIMD kernel path) */
static bool
CpuHasF16C(void)
{
	static int	has = -1;

	if (has < 0)
	{
		unsigned int eax,
					ebx,
					ecx,
					edx;

		has = (__get_cpuid(1, &eax, &ebx, &ecx, &edx) && (ecx & bit_F16C) != 0) ? 1 : 0;
	}
	return has == 1;
}
#endif

/*
 * Decode halves.  The F16C path is taken only when the distance kernels run
 * a SIMD path (genai.simd), which the CPU and OS were checked for; with
 * genai.simd = scalar everything is scalar, which tests compare against.
 */
static void
HalfDecode(const uint16 *src, float *dst, int n)
{
#ifdef GENAI_X86_SIMD
	if (VectorActiveKernels != &VectorKernelsScalar && CpuHasF16C())
	{
		HalfDecodeF16C(src, dst, n);
		return;
	}
#endif
	HalfDecodeScalar(src, dst, n);
}

/*
 * sq8: x~[i] = lo + code[i] * scale, evaluated in double and rounded to
 * float (clamped, so extreme ranges cannot overflow).  Encoding computes
 * the error norms from this very routine's output.
 */
static void
Sq8Decode(const HnswSq8Header *h, const uint8 *codes, float *dst, int n)
{
	double		lo = h->lo;
	double		scale = h->scale;

	for (int i = 0; i < n; i++)
	{
		double		v = lo + codes[i] * scale;

		if (v > FLT_MAX)
			v = FLT_MAX;
		else if (v < -FLT_MAX)
			v = -FLT_MAX;
		dst[i] = (float) v;
	}
}

/* A non-negative double rounded up to a float */
static float
FloatUp(double v)
{
	float		f = (float) v;

	if ((double) f < v)
		f = nextafterf(f, FLT_MAX);
	return f;
}

/* Store src (dims floats) at dest in the index's storage */
void
HnswStoreVector(const HnswInfo *info, char *dest, const float *src)
{
	int			n = info->dims;
	HnswCodeHeader hdr;
	float	   *approx;
	double		e2 = 0,
				e1 = 0,
				norm = 0;

	if (info->storage == HNSW_STORAGE_FP32)
	{
		memcpy(dest, src, info->vector_bytes);
		return;
	}

	approx = palloc(sizeof(float) * n);
	if (info->storage == HNSW_STORAGE_FP16)
	{
		uint16	   *codes = (uint16 *) (dest + sizeof(HnswCodeHeader));

		for (int i = 0; i < n; i++)
			codes[i] = FloatToHalf(src[i]);
		HalfDecodeScalar(codes, approx, n);
	}
	else
	{
		HnswSq8Header sh;
		uint8	   *codes = (uint8 *) (dest + sizeof(HnswSq8Header));
		float		lo = src[0],
					hi = src[0];
		double		scale;

		for (int i = 1; i < n; i++)
		{
			lo = Min(lo, src[i]);
			hi = Max(hi, src[i]);
		}
		scale = ((double) hi - (double) lo) / 255.0;
		memset(&sh, 0, sizeof(sh));
		sh.lo = lo;
		sh.scale = (float) scale;
		for (int i = 0; i < n; i++)
		{
			double		c = sh.scale > 0 ? rint(((double) src[i] - lo) / sh.scale) : 0;

			codes[i] = (uint8) (c < 0 ? 0 : c > 255 ? 255 : c);
		}
		Sq8Decode(&sh, codes, approx, n);
		memcpy(dest, &sh, sizeof(sh));
	}

	for (int i = 0; i < n; i++)
	{
		double		d = (double) src[i] - (double) approx[i];	/* exact */

		e2 += d * d;
		e1 += fabs(d);
		norm += (double) src[i] * src[i];
	}
	/* round up, and a little more for the double sums' own rounding */
	hdr.err2 = FloatUp(sqrt(e2) * (1 + 1e-12));
	hdr.err1 = FloatUp(e1 * (1 + 1e-12));
	hdr.norm = (float) sqrt(norm);
	memcpy(dest, &hdr, sizeof(hdr));	/* sq8: the leading part of its header */
	pfree(approx);
}

/* Decode a stored vector into dims floats (x~; x itself for fp32) */
void
HnswLoadVector(const HnswInfo *info, const char *src, float *dest)
{
	switch (info->storage)
	{
		case HNSW_STORAGE_FP16:
			HalfDecode((const uint16 *) (src + sizeof(HnswCodeHeader)), dest, info->dims);
			break;
		case HNSW_STORAGE_SQ8:
			{
				HnswSq8Header sh;

				memcpy(&sh, src, sizeof(sh));
				Sq8Decode(&sh, (const uint8 *) (src + sizeof(HnswSq8Header)), dest, info->dims);
			}
			break;
		default:
			memcpy(dest, src, info->vector_bytes);
			break;
	}
}

/*
 * Relative slack of a bound: a float sum of n terms (with the rounding of
 * each term) is within about (n + 3) * 2^-24 of the exact sum, relative to
 * the sum of the terms' magnitudes, whatever the order or lane split of
 * the kernel.  The bound and the executor's value each carry such an error;
 * twice the worst case covers both with room.
 */
static inline double
BoundSlack(int dims)
{
	return (double) (dims + 16) * (1.0 / 8388608.0);	/* 2^-23 */
}

/*
 * A lower bound, in the index's internal scale (squared for L2), of the
 * value the SQL operator computes between q and the vector whose
 * compressed form is stored at 'stored'.  scratch holds dims floats.
 */
double
HnswLowerBound(const HnswInfo *info, const float *q, double qnorm,
			   const char *stored, float *scratch)
{
	HnswCodeHeader h;
	double		rel = BoundSlack(info->dims);
	double		lb = 0;
	int			n = info->dims;

	memcpy(&h, stored, sizeof(h));
	HnswLoadVector(info, stored, scratch);
	switch (info->metric)
	{
		case HNSW_METRIC_L2:
			{
				double		d = sqrt((double) VectorActiveKernels->l2_squared(q, scratch, n));

				lb = (d * (1 - 2 * rel) - h.err2) * (1 - rel);
				lb = lb > 0 ? lb * lb : 0;
			}
			break;
		case HNSW_METRIC_L1:
			{
				double		d = (double) VectorActiveKernels->l1(q, scratch, n);

				lb = (d * (1 - rel) - h.err1) * (1 - rel);
				if (lb < 0)
					lb = 0;
			}
			break;
		case HNSW_METRIC_IP:
			{
				double		dot = (double) VectorActiveKernels->inner_product(q, scratch, n);

				/* both dot products err by at most rel * ||q|| * ||x|| (or ||x~||) */
				lb = -dot - qnorm * ((double) h.err2 +
									 rel * (2.0 * h.norm + h.err2)) * (1 + 1e-9);
			}
			break;
		case HNSW_METRIC_COSINE:
			{
				double		dot = (double) VectorActiveKernels->inner_product(q, scratch, n);
				double		hi;

				hi = dot + qnorm * ((double) h.err2 + rel * (2.0 * h.norm + h.err2));
				hi /= qnorm * (double) h.norm;
				/* the executor's norms are float sums too */
				hi = hi > 0 ? hi * (1 + 2 * rel) : hi * (1 - 2 * rel);
				hi += 1e-12;
				if (hi > 1)
					hi = 1;
				lb = 1 - hi;
				if (lb < 0)
					lb = 0;
			}
			break;
	}
	/* overflowing sums: claim nothing rather than something wrong */
	if (isnan(lb))
		lb = info->metric == HNSW_METRIC_IP ? -DBL_MAX : 0;
	return lb;
}

PG_FUNCTION_INFO_V1(hnsw_storage);

/* hnsw_storage(regclass): the storage kind recorded in the metapage */
Datum
hnsw_storage(PG_FUNCTION_ARGS)
{
	Oid			indexoid = PG_GETARG_OID(0);
	Relation	index;
	HnswMetaPageData meta;

	if (!OidIsValid(IndexGetRelation(indexoid, true)))
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("\"%s\" is not an index",
						get_rel_name(indexoid) ? get_rel_name(indexoid) : "?")));
	index = index_open(indexoid, AccessShareLock);
	if (index->rd_rel->relam != get_index_am_oid("hnsw", false))
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("\"%s\" is not an hnsw index", RelationGetRelationName(index))));
	HnswReadMeta(index, &meta);
	index_close(index, AccessShareLock);
	PG_RETURN_TEXT_P(cstring_to_text(HnswStorageName((HnswStorage) meta.storage)));
}
