/*-------------------------------------------------------------------------
 *
 * vector.h
 *	  Public interface of the vector subsystem: the on-disk type, its
 *	  limits, and the distance kernels shared by SQL operators and HNSW.
 *
 * The varlena layout is pgvector's (int16 dim, int16 unused, float4 x[]),
 * so a binary COPY or a pg_upgrade'd table reads the same bytes.
 *
 * IDENTIFICATION
 *	  src/vector/vector.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef GENAI_VECTOR_H
#define GENAI_VECTOR_H

#include "fmgr.h"

#define VECTOR_MAX_DIM 16000

typedef struct Vector
{
	int32		vl_len_;		/* varlena header (do not touch directly!) */
	int16		dim;			/* number of dimensions */
	int16		unused;			/* reserved, always zero */
	float		x[FLEXIBLE_ARRAY_MEMBER];
} Vector;

#define VECTOR_SIZE(_dim)		(offsetof(Vector, x) + sizeof(float) * (_dim))
#define DatumGetVector(x)		((Vector *) PG_DETOAST_DATUM(x))
#define PG_GETARG_VECTOR_P(x)	DatumGetVector(PG_GETARG_DATUM(x))
#define PG_RETURN_VECTOR_P(x)	PG_RETURN_POINTER(x)

extern Vector *InitVector(int dim);

/* Checks shared by the SQL functions (vectorio.c); each raises an ERROR. */
extern void VectorCheckDim(int dim);
extern void VectorCheckExpectedDim(int32 typmod, int dim);
extern void VectorCheckElement(float value);
extern void VectorCheckSameDims(const Vector *a, const Vector *b);

/*
 * Distance kernels over float arrays.  One table per instruction set; the
 * active one is chosen once at load (CPU detection) or by genai.simd.
 * Every kernel accumulates in float, like the scalar reference.
 */
typedef struct VectorKernels
{
	const char *name;
	float		(*l2_squared) (const float *a, const float *b, int n);
	float		(*inner_product) (const float *a, const float *b, int n);
	/* dot product and both squared norms in one pass */
	void		(*cosine_parts) (const float *a, const float *b, int n,
								 float *dot, float *norma, float *normb);
	float		(*l1) (const float *a, const float *b, int n);
} VectorKernels;

extern PGDLLIMPORT const VectorKernels *VectorActiveKernels;
extern const VectorKernels VectorKernelsScalar;

/*
 * The SIMD tables exist only where GCC/clang can compile x86 intrinsics
 * under target attributes.  They must only be called when the matching
 * VectorCpuHas* function (vectorcpu.c) returned true.
 */
#if (defined(__x86_64__) || defined(__i386__)) && defined(__GNUC__)
#define GENAI_X86_SIMD 1
extern const VectorKernels VectorKernelsAvx2;
extern const VectorKernels VectorKernelsAvx512;
#endif

/* CPU and OS support (cpuid + xgetbv); no PostgreSQL calls, benchmarks link it */
extern bool VectorCpuHasAvx2Fma(void);
extern bool VectorCpuHasAvx512(void);

/* The kernel table of a path name ("scalar", "avx2", "avx512") if this CPU runs it, else NULL */
extern const VectorKernels *VectorKernelsForPath(const char *name);

/* Convenience wrappers over the active kernel table. */
static inline float
VectorL2Squared(const float *a, const float *b, int n)
{
	return VectorActiveKernels->l2_squared(a, b, n);
}

static inline float
VectorInnerProduct(const float *a, const float *b, int n)
{
	return VectorActiveKernels->inner_product(a, b, n);
}

static inline float
VectorL1(const float *a, const float *b, int n)
{
	return VectorActiveKernels->l1(a, b, n);
}

/* cosine distance as pgvector computes it: 1 - dot / sqrt(|a|^2 |b|^2), clamped */
extern double VectorCosineDistance(const float *a, const float *b, int n);

#endif							/* GENAI_VECTOR_H */
