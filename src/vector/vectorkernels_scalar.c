/*-------------------------------------------------------------------------
 *
 * vectorkernels_scalar.c
 *	  The scalar reference distance kernels.
 *
 * Plain loops compiled with the shipped (portable) flags.  Every SIMD
 * variant is tested against these within a tolerance relative to
 * sum |a_i b_i| (see sql/vector_kernels.sql).
 *
 * IDENTIFICATION
 *	  src/vector/vectorkernels_scalar.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "vector.h"

static float
scalar_l2_squared(const float *a, const float *b, int n)
{
	float		sum = 0.0f;

	for (int i = 0; i < n; i++)
	{
		float		d = a[i] - b[i];

		sum += d * d;
	}
	return sum;
}

static float
scalar_inner_product(const float *a, const float *b, int n)
{
	float		sum = 0.0f;

	for (int i = 0; i < n; i++)
		sum += a[i] * b[i];
	return sum;
}

static void
scalar_cosine_parts(const float *a, const float *b, int n,
					float *dot, float *norma, float *normb)
{
	float		d = 0.0f,
				na = 0.0f,
				nb = 0.0f;

	for (int i = 0; i < n; i++)
	{
		d += a[i] * b[i];
		na += a[i] * a[i];
		nb += b[i] * b[i];
	}
	*dot = d;
	*norma = na;
	*normb = nb;
}

static float
scalar_l1(const float *a, const float *b, int n)
{
	float		sum = 0.0f;

	for (int i = 0; i < n; i++)
		sum += fabsf(a[i] - b[i]);
	return sum;
}

const VectorKernels VectorKernelsScalar = {
	"scalar",
	scalar_l2_squared,
	scalar_inner_product,
	scalar_cosine_parts,
	scalar_l1,
};
