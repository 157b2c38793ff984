/*-------------------------------------------------------------------------
 *
 * fuzz_vector_binary.c
 *	  libFuzzer driver for VectorBinaryCheck/Decode, the validation of the
 *	  vector binary form that vector_recv relies on.
 *
 * Each input is checked twice: as raw bytes, and framed, i.e. with a
 * header prepended that matches the input's length, so that element
 * validation and decoding run on most inputs instead of only on the rare
 * ones whose first four bytes happen to match their length.
 *
 * Properties, for every status:
 *   - the status is the first failing rule, in the documented order
 *     (short, dimension count, reserved field, length, elements);
 *   - an accepted value has 1..maxdim dimensions and exactly 4 + 4 * dim
 *     bytes, decodes to finite floats, and encodes back to the same bytes;
 *   - its floats printed with "%.9g" parse back through VectorParseText
 *     to the same bits (the text and binary cores agree).
 *
 * IDENTIFICATION
 *	  test/fuzz/fuzz_vector_binary.c
 *
 *-------------------------------------------------------------------------
 */
#include <stddef.h>
#include <stdint.h>

#include "fuzz_common.h"
#include "vectorbinary.h"
#include "vectorparse.h"

static float values[FUZZ_MAX_DIM];
static float parsed[FUZZ_MAX_DIM];
static unsigned char encoded[VECTOR_BINARY_HEADER + 4 * FUZZ_MAX_DIM];

int			LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int
be_int16(const unsigned char *p)
{
	return (int16_t) (uint16_t) ((p[0] << 8) | p[1]);
}

static float
be_float4(const unsigned char *p)
{
	uint32_t	bits = ((uint32_t) p[0] << 24) | ((uint32_t) p[1] << 16) |
		((uint32_t) p[2] << 8) | p[3];
	float		f;

	memcpy(&f, &bits, sizeof(f));
	return f;
}

static void
check_value(const unsigned char *data, size_t size)
{
	int			dim;
	int			info;
	VectorBinaryStatus st = VectorBinaryCheck(data, size, FUZZ_MAX_DIM, &dim, &info);

	/* the status follows the rules in order */
	if (size < VECTOR_BINARY_HEADER)
	{
		FUZZ_CHECK(st == VECTOR_BINARY_SHORT);
		return;
	}
	FUZZ_CHECK(dim == be_int16(data));
	if (dim < 1)
	{
		FUZZ_CHECK(st == VECTOR_BINARY_BAD_DIM);
		return;
	}
	if (dim > FUZZ_MAX_DIM)
	{
		FUZZ_CHECK(st == VECTOR_BINARY_TOO_MANY);
		return;
	}
	if (be_int16(data + 2) != 0)
	{
		FUZZ_CHECK(st == VECTOR_BINARY_RESERVED && info == be_int16(data + 2));
		return;
	}
	if (size != VECTOR_BINARY_HEADER + 4 * (size_t) dim)
	{
		FUZZ_CHECK(st == VECTOR_BINARY_LENGTH);
		return;
	}
	if (st == VECTOR_BINARY_NOT_FINITE)
	{
		float		bad = be_float4(data + VECTOR_BINARY_HEADER + 4 * info);

		FUZZ_CHECK(info >= 0 && info < dim);
		FUZZ_CHECK(isnan(bad) || isinf(bad));
		for (int i = 0; i < info; i++)
		{
			float		v = be_float4(data + VECTOR_BINARY_HEADER + 4 * i);

			FUZZ_CHECK(!isnan(v) && !isinf(v));
		}
		return;
	}
	FUZZ_CHECK(st == VECTOR_BINARY_OK);

	/* accepted: decode, re-encode, and cross-check with the text parser */
	VectorBinaryDecode(data, dim, values);
	FUZZ_CHECK(fuzz_all_finite(values, dim));
	VectorBinaryEncode(values, dim, encoded);
	FUZZ_CHECK(memcmp(encoded, data, size) == 0);
	{
		char	   *text = fuzz_format_vector(values, dim);
		int			ndim;
		const char *errpos;

		FUZZ_CHECK(VectorParseText(text, parsed, FUZZ_MAX_DIM, &ndim, &errpos) == VECTOR_PARSE_OK);
		FUZZ_CHECK(ndim == dim);
		FUZZ_CHECK(memcmp(values, parsed, sizeof(float) * dim) == 0);
		free(text);
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t		n = size / 4;

	check_value(data, size);

	/* framed: a header that fits the whole-element prefix of the input */
	if (n >= 1 && n <= FUZZ_MAX_DIM)
	{
		unsigned char *framed = malloc(VECTOR_BINARY_HEADER + 4 * n);

		FUZZ_CHECK(framed != NULL);
		framed[0] = (unsigned char) (n >> 8);
		framed[1] = (unsigned char) n;
		framed[2] = 0;
		framed[3] = 0;
		memcpy(framed + VECTOR_BINARY_HEADER, data, 4 * n);
		check_value(framed, VECTOR_BINARY_HEADER + 4 * n);
		free(framed);
	}
	return 0;
}
