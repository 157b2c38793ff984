/*-------------------------------------------------------------------------
 *
 * vectorkernels_avx2.c
 *	  Distance kernels for AVX2 with FMA (256-bit, 8 floats per register).
 *
 * The build is portable (no -march flags): only these functions are
 * compiled for AVX2/FMA, through target attributes, and vectorinit.c calls
 * them only after CPU detection says the CPU and the OS support them.
 *
 * Each kernel keeps eight independent accumulators over 64-float steps so
 * that consecutive FMAs do not wait on each other's latency, then handles
 * 8-float steps and finally the last 1..7 floats with a masked load.
 * Masked loads never read (or fault on) the lanes they skip.  Loads are
 * unaligned: a Vector's data sits 8 bytes into its varlena, and HNSW passes
 * pointers into pages.
 *
 * There is deliberately no head that first aligns one input: it would make
 * the lane each element lands in, and so the rounding of the sum, depend on
 * the input's address.  The same two vectors must give the same distance
 * bits wherever they sit in memory, or an index scan (which computes the
 * distance with the query first) and the SQL operator (heap value first)
 * could disagree about the order of near-ties.
 *
 * The summation order differs from the scalar reference, so results may
 * differ in the last bits; sql/vector_kernels.sql bounds the difference.
 *
 * IDENTIFICATION
 *	  src/vector/vectorkernels_avx2.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "vector.h"

#ifdef GENAI_X86_SIMD

#include <immintrin.h>

#define AVX2_FN __attribute__((target("avx2,fma")))

/* -1 (all bits set) for the first r lanes, then 0: tail_mask_bits + 8 - r */
static const int32 tail_mask_bits[16] = {
	-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0
};

static inline AVX2_FN __m256i
tail_mask(int r)
{
	return _mm256_loadu_si256((const __m256i *) (tail_mask_bits + 8 - r));
}

static inline AVX2_FN float
hsum(__m256 v)
{
	__m128		lo = _mm256_castps256_ps128(v);
	__m128		hi = _mm256_extractf128_ps(v, 1);

	lo = _mm_add_ps(lo, hi);
	lo = _mm_add_ps(lo, _mm_movehl_ps(lo, lo));
	lo = _mm_add_ss(lo, _mm_movehdup_ps(lo));
	return _mm_cvtss_f32(lo);
}

/* one step of 8 floats: acc += (a - b)^2 */
#define L2_STEP(acc, off) \
	do { \
		__m256		d_ = _mm256_sub_ps(_mm256_loadu_ps(a + i + (off)), \
									   _mm256_loadu_ps(b + i + (off))); \
		(acc) = _mm256_fmadd_ps(d_, d_, (acc)); \
	} while (0)

/* acc += a * b */
#define IP_STEP(acc, off) \
	((acc) = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + (off)), \
							 _mm256_loadu_ps(b + i + (off)), (acc)))

/* acc += |a - b| (clearing the sign bit is fabsf) */
#define L1_STEP(acc, off) \
	((acc) = _mm256_add_ps((acc), \
						   _mm256_and_ps(absmask, \
										 _mm256_sub_ps(_mm256_loadu_ps(a + i + (off)), \
													   _mm256_loadu_ps(b + i + (off))))))

/*
 * Eight accumulators: an FMA has a latency of about 4 cycles and two can
 * start per cycle, so fewer chains would leave the FMA units idle.
 */
static AVX2_FN float
avx2_l2_squared(const float *a, const float *b, int n)
{
	__m256		s0 = _mm256_setzero_ps(),
				s1 = _mm256_setzero_ps(),
				s2 = _mm256_setzero_ps(),
				s3 = _mm256_setzero_ps(),
				s4 = _mm256_setzero_ps(),
				s5 = _mm256_setzero_ps(),
				s6 = _mm256_setzero_ps(),
				s7 = _mm256_setzero_ps();
	int			i = 0;

	for (; i + 64 <= n; i += 64)
	{
		L2_STEP(s0, 0);
		L2_STEP(s1, 8);
		L2_STEP(s2, 16);
		L2_STEP(s3, 24);
		L2_STEP(s4, 32);
		L2_STEP(s5, 40);
		L2_STEP(s6, 48);
		L2_STEP(s7, 56);
	}
	for (; i + 8 <= n; i += 8)
		L2_STEP(s0, 0);
	if (i < n)
	{
		__m256i		m = tail_mask(n - i);
		__m256		d = _mm256_sub_ps(_mm256_maskload_ps(a + i, m),
									  _mm256_maskload_ps(b + i, m));

		s1 = _mm256_fmadd_ps(d, d, s1);
	}
	return hsum(_mm256_add_ps(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)),
							  _mm256_add_ps(_mm256_add_ps(s4, s5), _mm256_add_ps(s6, s7))));
}

static AVX2_FN float
avx2_inner_product(const float *a, const float *b, int n)
{
	__m256		s0 = _mm256_setzero_ps(),
				s1 = _mm256_setzero_ps(),
				s2 = _mm256_setzero_ps(),
				s3 = _mm256_setzero_ps(),
				s4 = _mm256_setzero_ps(),
				s5 = _mm256_setzero_ps(),
				s6 = _mm256_setzero_ps(),
				s7 = _mm256_setzero_ps();
	int			i = 0;

	for (; i + 64 <= n; i += 64)
	{
		IP_STEP(s0, 0);
		IP_STEP(s1, 8);
		IP_STEP(s2, 16);
		IP_STEP(s3, 24);
		IP_STEP(s4, 32);
		IP_STEP(s5, 40);
		IP_STEP(s6, 48);
		IP_STEP(s7, 56);
	}
	for (; i + 8 <= n; i += 8)
		IP_STEP(s0, 0);
	if (i < n)
	{
		__m256i		m = tail_mask(n - i);

		s1 = _mm256_fmadd_ps(_mm256_maskload_ps(a + i, m),
							 _mm256_maskload_ps(b + i, m), s1);
	}
	return hsum(_mm256_add_ps(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)),
							  _mm256_add_ps(_mm256_add_ps(s4, s5), _mm256_add_ps(s6, s7))));
}

/*
 * Three sums at once: every step already issues three independent FMAs, so
 * two accumulators per sum (six chains) keep the FMA units busy.
 */
static AVX2_FN void
avx2_cosine_parts(const float *a, const float *b, int n,
				  float *dot, float *norma, float *normb)
{
	__m256		d0 = _mm256_setzero_ps(),
				d1 = _mm256_setzero_ps(),
				na0 = _mm256_setzero_ps(),
				na1 = _mm256_setzero_ps(),
				nb0 = _mm256_setzero_ps(),
				nb1 = _mm256_setzero_ps();
	int			i = 0;

	for (; i + 16 <= n; i += 16)
	{
		__m256		x0 = _mm256_loadu_ps(a + i);
		__m256		y0 = _mm256_loadu_ps(b + i);
		__m256		x1 = _mm256_loadu_ps(a + i + 8);
		__m256		y1 = _mm256_loadu_ps(b + i + 8);

		d0 = _mm256_fmadd_ps(x0, y0, d0);
		na0 = _mm256_fmadd_ps(x0, x0, na0);
		nb0 = _mm256_fmadd_ps(y0, y0, nb0);
		d1 = _mm256_fmadd_ps(x1, y1, d1);
		na1 = _mm256_fmadd_ps(x1, x1, na1);
		nb1 = _mm256_fmadd_ps(y1, y1, nb1);
	}
	if (i + 8 <= n)
	{
		__m256		x = _mm256_loadu_ps(a + i);
		__m256		y = _mm256_loadu_ps(b + i);

		d0 = _mm256_fmadd_ps(x, y, d0);
		na0 = _mm256_fmadd_ps(x, x, na0);
		nb0 = _mm256_fmadd_ps(y, y, nb0);
		i += 8;
	}
	if (i < n)
	{
		__m256i		m = tail_mask(n - i);
		__m256		x = _mm256_maskload_ps(a + i, m);
		__m256		y = _mm256_maskload_ps(b + i, m);

		d1 = _mm256_fmadd_ps(x, y, d1);
		na1 = _mm256_fmadd_ps(x, x, na1);
		nb1 = _mm256_fmadd_ps(y, y, nb1);
	}
	*dot = hsum(_mm256_add_ps(d0, d1));
	*norma = hsum(_mm256_add_ps(na0, na1));
	*normb = hsum(_mm256_add_ps(nb0, nb1));
}

static AVX2_FN float
avx2_l1(const float *a, const float *b, int n)
{
	const __m256 absmask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
	__m256		s0 = _mm256_setzero_ps(),
				s1 = _mm256_setzero_ps(),
				s2 = _mm256_setzero_ps(),
				s3 = _mm256_setzero_ps(),
				s4 = _mm256_setzero_ps(),
				s5 = _mm256_setzero_ps(),
				s6 = _mm256_setzero_ps(),
				s7 = _mm256_setzero_ps();
	int			i = 0;

	for (; i + 64 <= n; i += 64)
	{
		L1_STEP(s0, 0);
		L1_STEP(s1, 8);
		L1_STEP(s2, 16);
		L1_STEP(s3, 24);
		L1_STEP(s4, 32);
		L1_STEP(s5, 40);
		L1_STEP(s6, 48);
		L1_STEP(s7, 56);
	}
	for (; i + 8 <= n; i += 8)
		L1_STEP(s0, 0);
	if (i < n)
	{
		__m256i		m = tail_mask(n - i);

		s1 = _mm256_add_ps(s1, _mm256_and_ps(absmask,
											 _mm256_sub_ps(_mm256_maskload_ps(a + i, m),
														   _mm256_maskload_ps(b + i, m))));
	}
	return hsum(_mm256_add_ps(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)),
							  _mm256_add_ps(_mm256_add_ps(s4, s5), _mm256_add_ps(s6, s7))));
}

const VectorKernels VectorKernelsAvx2 = {
	"avx2",
	avx2_l2_squared,
	avx2_inner_product,
	avx2_cosine_parts,
	avx2_l1,
};

#endif							/* GENAI_X86_SIMD */
