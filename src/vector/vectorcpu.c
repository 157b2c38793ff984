/*-------------------------------------------------------------------------
 *
 * vectorcpu.c
 *	  Which distance kernels this CPU (and its operating system) can run.
 *
 * An instruction set is usable only if the CPU has it (cpuid) and the OS
 * saves and restores the registers it uses across context switches
 * (OSXSAVE set, and XCR0 read by xgetbv has the YMM bits for AVX2, plus the
 * opmask and ZMM bits for AVX-512).  A CPU that has AVX-512 under an OS or
 * hypervisor that does not enable ZMM state would fault on the first
 * AVX-512 instruction: that is what the xgetbv check prevents.
 *
 * The environment variable GENAI_SIMD_DISABLE (a comma-separated list of
 * "avx2", "avx512") hides instruction sets from detection, as
 * OPENSSL_ia32cap or glibc's hwcaps tunable do: for diagnosing a suspected
 * kernel problem on a production server, and for testing how genai behaves
 * on a CPU without them (test/t/012_simd_dispatch.pl).  It can only remove
 * paths, never add one the CPU lacks.
 *
 * No PostgreSQL calls here, so test/bench/kernelbench.c links this file.
 *
 * IDENTIFICATION
 *	  src/vector/vectorcpu.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "vector.h"

#ifdef GENAI_X86_SIMD

#include <cpuid.h>

/* true if GENAI_SIMD_DISABLE names the path */
static bool
disabled_by_env(const char *path)
{
	const char *list = getenv("GENAI_SIMD_DISABLE");
	size_t		len = strlen(path);

	while (list != NULL && *list != '\0')
	{
		size_t		n = strcspn(list, ", ");

		if (n == len && strncmp(list, path, len) == 0)
			return true;
		list += n;
		list += strspn(list, ", ");
	}
	return false;
}

/* CPUID.1:ECX */
#define CPUID1_ECX_FMA		(1u << 12)
#define CPUID1_ECX_OSXSAVE	(1u << 27)
#define CPUID1_ECX_AVX		(1u << 28)
/* CPUID.(7,0):EBX */
#define CPUID7_EBX_AVX2		(1u << 5)
#define CPUID7_EBX_AVX512F	(1u << 16)
/* XCR0 state components */
#define XCR0_SSE_AVX		0x06	/* XMM and upper YMM halves */
#define XCR0_AVX512			0xe0	/* opmask, upper ZMM halves, ZMM16-31 */

static uint64
read_xcr0(void)
{
	uint32		eax,
				edx;

	/* xgetbv with ECX = 0; as bytes, so no -mxsave is needed */
	__asm__ volatile(".byte 0x0f, 0x01, 0xd0" : "=a"(eax), "=d"(edx) : "c"(0));
	return ((uint64) edx << 32) | eax;
}

/* true if the OS saves the state components in mask; needs OSXSAVE first */
static bool
os_saves(uint64 mask)
{
	unsigned int eax,
				ebx,
				ecx,
				edx;

	if (!__get_cpuid(1, &eax, &ebx, &ecx, &edx))
		return false;
	if ((ecx & CPUID1_ECX_OSXSAVE) == 0)
		return false;
	return (read_xcr0() & mask) == mask;
}

static bool
cpuid_features(unsigned int *ecx1, unsigned int *ebx7)
{
	unsigned int eax,
				ebx,
				ecx,
				edx;

	if (!__get_cpuid(1, &eax, &ebx, &ecx, &edx))
		return false;
	*ecx1 = ecx;
	if (__get_cpuid_max(0, NULL) < 7)
		return false;
	__cpuid_count(7, 0, eax, ebx, ecx, edx);
	*ebx7 = ebx;
	return true;
}

bool
VectorCpuHasAvx2Fma(void)
{
	unsigned int ecx1,
				ebx7;

	if (disabled_by_env("avx2") || !cpuid_features(&ecx1, &ebx7))
		return false;
	if ((ecx1 & (CPUID1_ECX_AVX | CPUID1_ECX_FMA)) != (CPUID1_ECX_AVX | CPUID1_ECX_FMA) ||
		(ebx7 & CPUID7_EBX_AVX2) == 0)
		return false;
	return os_saves(XCR0_SSE_AVX);
}

bool
VectorCpuHasAvx512(void)
{
	unsigned int ecx1,
				ebx7;

	if (disabled_by_env("avx512") || !cpuid_features(&ecx1, &ebx7))
		return false;
	if ((ebx7 & CPUID7_EBX_AVX512F) == 0)
		return false;
	return os_saves(XCR0_SSE_AVX | XCR0_AVX512);
}

#else							/* !GENAI_X86_SIMD */

bool
VectorCpuHasAvx2Fma(void)
{
	return false;
}

bool
VectorCpuHasAvx512(void)
{
	return false;
}

#endif							/* GENAI_X86_SIMD */

const VectorKernels *
VectorKernelsForPath(const char *name)
{
	if (strcmp(name, "scalar") == 0)
		return &VectorKernelsScalar;
#ifdef GENAI_X86_SIMD
	if (strcmp(name, "avx2") == 0 && VectorCpuHasAvx2Fma())
		return &VectorKernelsAvx2;
	if (strcmp(name, "avx512") == 0 && VectorCpuHasAvx512())
		return &VectorKernelsAvx512;
#endif
	return NULL;
}
