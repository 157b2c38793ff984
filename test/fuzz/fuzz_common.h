/*-------------------------------------------------------------------------
 *
 * fuzz_common.h
 *	  Helpers shared by the libFuzzer drivers: property checks that abort
 *	  (so libFuzzer records the input) and float formatting.
 *
 * IDENTIFICATION
 *	  test/fuzz/fuzz_common.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef GENAI_FUZZ_COMMON_H
#define GENAI_FUZZ_COMMON_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* VECTOR_MAX_DIM in src/vector/vector.h, which needs PostgreSQL headers */
#define FUZZ_MAX_DIM 16000

/* A property failed: say which, then abort so libFuzzer saves the input. */
#define FUZZ_CHECK(cond) \
	do { \
		if (!(cond)) \
		{ \
			fprintf(stderr, "%s:%d: property failed: %s\n", __FILE__, __LINE__, #cond); \
			abort(); \
		} \
	} while (0)

static inline int
fuzz_all_finite(const float *x, int n)
{
	for (int i = 0; i < n; i++)
	{
		if (isnan(x[i]) || isinf(x[i]))
			return 0;
	}
	return 1;
}

/*
 * Write "[x1,x2,...]" with printf("%.9g"): nine significant digits always
 * identify a float4, so the text must parse back to the same bits.
 * Returns a malloc'd string.
 */
static inline char *
fuzz_format_vector(const float *x, int n)
{
	/* "%.9g" of a float is at most 16 bytes, plus a comma */
	char	   *buf = malloc((size_t) n * 17 + 3);
	char	   *p = buf;

	FUZZ_CHECK(buf != NULL);
	*p++ = '[';
	for (int i = 0; i < n; i++)
	{
		if (i > 0)
			*p++ = ',';
		p += sprintf(p, "%.9g", (double) x[i]);
	}
	*p++ = ']';
	*p = '\0';
	return buf;
}

#endif							/* GENAI_FUZZ_COMMON_H */
