/*-------------------------------------------------------------------------
 *
 * fuzz_vector_text.c
 *	  libFuzzer driver for VectorParseText, the vector literal parser.
 *
 * Besides "no crash, no sanitizer report", it checks properties:
 *   - errpos always points inside the input;
 *   - a successful parse has 1..maxdim elements, all finite;
 *   - printing the result with "%.9g" and parsing it again gives the
 *     same element count and the same float bits;
 *   - parsing with a small maxdim agrees: the same values when they fit,
 *     VECTOR_PARSE_TOO_MANY when they do not;
 *   - the element count reported with NOT_FINITE / OUT_OF_RANGE is below
 *     maxdim.
 *
 * IDENTIFICATION
 *	  test/fuzz/fuzz_vector_text.c
 *
 *-------------------------------------------------------------------------
 */
#include <stddef.h>
#include <stdint.h>

#include "fuzz_common.h"
#include "vectorparse.h"

#define SMALL_MAX_DIM 4

static float values[FUZZ_MAX_DIM];
static float again[FUZZ_MAX_DIM];

int			LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char	   *str;
	size_t		len;
	int			ndim;
	int			ndim2;
	const char *errpos;
	VectorParseStatus st;
	VectorParseStatus st2;

	/* a cstring ends at the first NUL, as PostgreSQL hands it to vector_in */
	str = malloc(size + 1);
	FUZZ_CHECK(str != NULL);
	memcpy(str, data, size);
	str[size] = '\0';
	len = strlen(str);

	st = VectorParseText(str, values, FUZZ_MAX_DIM, &ndim, &errpos);
	FUZZ_CHECK(errpos >= str && errpos <= str + len);

	switch (st)
	{
		case VECTOR_PARSE_OK:
			{
				char	   *text;

				FUZZ_CHECK(ndim >= 1 && ndim <= FUZZ_MAX_DIM);
				FUZZ_CHECK(fuzz_all_finite(values, ndim));

				text = fuzz_format_vector(values, ndim);
				st2 = VectorParseText(text, again, FUZZ_MAX_DIM, &ndim2, &errpos);
				FUZZ_CHECK(st2 == VECTOR_PARSE_OK);
				FUZZ_CHECK(ndim2 == ndim);
				FUZZ_CHECK(memcmp(values, again, sizeof(float) * ndim) == 0);
				free(text);
			}
			break;
		case VECTOR_PARSE_NOT_FINITE:
		case VECTOR_PARSE_OUT_OF_RANGE:
			FUZZ_CHECK(ndim >= 0 && ndim < FUZZ_MAX_DIM);
			break;
		case VECTOR_PARSE_SYNTAX:
		case VECTOR_PARSE_EMPTY:
		case VECTOR_PARSE_TOO_MANY:
			break;
		default:
			FUZZ_CHECK(!"unrecognized parse status");
	}

	/* the dimension cap is applied consistently */
	st2 = VectorParseText(str, again, SMALL_MAX_DIM, &ndim2, &errpos);
	if (st == VECTOR_PARSE_OK && ndim <= SMALL_MAX_DIM)
	{
		FUZZ_CHECK(st2 == VECTOR_PARSE_OK && ndim2 == ndim);
		FUZZ_CHECK(memcmp(values, again, sizeof(float) * ndim) == 0);
	}
	else if (st == VECTOR_PARSE_OK)
		FUZZ_CHECK(st2 == VECTOR_PARSE_TOO_MANY);
	if (st2 == VECTOR_PARSE_OK)
		FUZZ_CHECK(st == VECTOR_PARSE_OK);

	free(str);
	return 0;
}
