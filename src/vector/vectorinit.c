/*-------------------------------------------------------------------------
 *
 * vectorinit.c
 *	  Chooses the distance kernels at load time and defines genai.simd.
 *
 * CPU detection runs once, when the library is loaded.  genai.simd = auto
 * (the default) picks the widest path the CPU and OS support: avx512, else
 * avx2 (with FMA), else scalar.  A superuser may force a path; asking for
 * one the CPU cannot run is refused by the check hook with
 * FEATURE_NOT_SUPPORTED, so a forced setting can never reach an illegal
 * instruction.  The choice is one pointer, VectorActiveKernels, which the
 * SQL operators and the HNSW index read on every call.
 *
 * IDENTIFICATION
 *	  src/vector/vectorinit.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "utils/guc.h"

#include "genai.h"
#include "vector.h"

typedef enum SimdChoice
{
	SIMD_AUTO,
	SIMD_SCALAR,
	SIMD_AVX2,
	SIMD_AVX512
} SimdChoice;

static const struct config_enum_entry simd_options[] = {
	{"auto", SIMD_AUTO, false},
	{"scalar", SIMD_SCALAR, false},
	{"avx2", SIMD_AVX2, false},
	{"avx512", SIMD_AVX512, false},
	{NULL, 0, false}
};

static int	simd_choice = SIMD_AUTO;

/* what this CPU runs, detected once in VectorInit */
static const VectorKernels *best_kernels = &VectorKernelsScalar;

const VectorKernels *VectorActiveKernels = &VectorKernelsScalar;

/* the kernel table for a choice, or NULL if this CPU cannot run it */
static const VectorKernels *
kernels_for_choice(int choice)
{
	switch (choice)
	{
		case SIMD_AUTO:
			return best_kernels;
		case SIMD_SCALAR:
			return VectorKernelsForPath("scalar");
		case SIMD_AVX2:
			return VectorKernelsForPath("avx2");
		case SIMD_AVX512:
			return VectorKernelsForPath("avx512");
	}
	return NULL;
}

static bool
check_simd(int *newval, void **extra, GucSource source)
{
	if (kernels_for_choice(*newval) != NULL)
		return true;

	GUC_check_errcode(ERRCODE_FEATURE_NOT_SUPPORTED);
	GUC_check_errmsg("this CPU cannot run the \"%s\" distance kernels",
					 *newval == SIMD_AVX2 ? "avx2" : "avx512");
	GUC_check_errdetail("The CPU or the operating system lacks the instruction set; the best available is \"%s\".",
						best_kernels->name);
	GUC_check_errhint("Use \"auto\", or a path listed by genai_simd_paths().");
	return false;
}

static void
assign_simd(int newval, void *extra)
{
	const VectorKernels *k = kernels_for_choice(newval);

	/* the check hook has refused unsupported paths; stay safe regardless */
	VectorActiveKernels = k ? k : &VectorKernelsScalar;
}

void
VectorInit(void)
{
	const VectorKernels *k;

	if ((k = VectorKernelsForPath("avx512")) != NULL ||
		(k = VectorKernelsForPath("avx2")) != NULL)
		best_kernels = k;
	else
		best_kernels = &VectorKernelsScalar;
	VectorActiveKernels = best_kernels;

	DefineCustomEnumVariable("genai.simd",
							 "Forces the instruction set used by the vector distance kernels.",
							 "\"auto\" picks the best one this CPU supports.",
							 &simd_choice,
							 SIMD_AUTO,
							 simd_options,
							 PGC_SUSET,
							 0,
							 check_simd,
							 assign_simd,
							 NULL);
}
