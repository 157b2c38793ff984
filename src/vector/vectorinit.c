/*-------------------------------------------------------------------------
 *
 * vectorinit.c
 *	  Chooses the distance kernels at load time and defines genai.simd.
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
} SimdChoice;

static const struct config_enum_entry simd_options[] = {
	{"auto", SIMD_AUTO, false},
	{"scalar", SIMD_SCALAR, false},
	{NULL, 0, false}
};

static int	simd_choice = SIMD_AUTO;

const VectorKernels *VectorActiveKernels = &VectorKernelsScalar;

static void
assign_simd(int newval, void *extra)
{
	/* SIMD variants are added here as they are implemented */
	VectorActiveKernels = &VectorKernelsScalar;
}

void
VectorInit(void)
{
	DefineCustomEnumVariable("genai.simd",
							 "Forces the instruction set used by the vector distance kernels.",
							 "\"auto\" picks the best one this CPU supports.",
							 &simd_choice,
							 SIMD_AUTO,
							 simd_options,
							 PGC_SUSET,
							 0,
							 NULL,
							 assign_simd,
							 NULL);
}
