/*-------------------------------------------------------------------------
 *
 * vectorbinary.c
 *	  Validation and decoding of the vector binary form.
 *
 * vector_recv must trust nothing: COPY BINARY files, bind parameters and
 * shard moves can hand it any bytes.  The checks live here, away from
 * StringInfo and ereport, so test/fuzz can link this file alone; vectorio.c
 * turns the status into an error report.
 *
 * Byte order is handled with shifts, not ntohl(), so the code is the same
 * on every host and needs no PostgreSQL headers.
 *
 * IDENTIFICATION
 *	  src/vector/vectorbinary.c
 *
 *-------------------------------------------------------------------------
 */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "vectorbinary.h"

static int
read_int16(const unsigned char *p)
{
	return (int16_t) (uint16_t) ((p[0] << 8) | p[1]);
}

static float
read_float4(const unsigned char *p)
{
	uint32_t	bits;
	float		value;

	bits = ((uint32_t) p[0] << 24) | ((uint32_t) p[1] << 16) |
		((uint32_t) p[2] << 8) | (uint32_t) p[3];
	memcpy(&value, &bits, sizeof(value));
	return value;
}

VectorBinaryStatus
VectorBinaryCheck(const unsigned char *data, size_t len, int maxdim,
				  int *dim, int *info)
{
	int			n;
	int			reserved;

	*dim = 0;
	*info = 0;
	if (len < VECTOR_BINARY_HEADER)
		return VECTOR_BINARY_SHORT;

	n = read_int16(data);
	reserved = read_int16(data + 2);
	*dim = n;
	if (n < 1)
		return VECTOR_BINARY_BAD_DIM;
	if (n > maxdim)
		return VECTOR_BINARY_TOO_MANY;
	if (reserved != 0)
	{
		*info = reserved;
		return VECTOR_BINARY_RESERVED;
	}
	/* n <= maxdim <= INT16_MAX, so this cannot overflow */
	if (len - VECTOR_BINARY_HEADER != (size_t) n * 4)
		return VECTOR_BINARY_LENGTH;

	for (int i = 0; i < n; i++)
	{
		float		value = read_float4(data + VECTOR_BINARY_HEADER + 4 * i);

		if (isnan(value) || isinf(value))
		{
			*info = i;
			return VECTOR_BINARY_NOT_FINITE;
		}
	}
	return VECTOR_BINARY_OK;
}

float
VectorBinaryElement(const unsigned char *data, int i)
{
	return read_float4(data + VECTOR_BINARY_HEADER + 4 * i);
}

void
VectorBinaryDecode(const unsigned char *data, int dim, float *out)
{
	for (int i = 0; i < dim; i++)
		out[i] = read_float4(data + VECTOR_BINARY_HEADER + 4 * i);
}

void
VectorBinaryEncode(const float *x, int dim, unsigned char *out)
{
	out[0] = (unsigned char) ((dim >> 8) & 0xff);
	out[1] = (unsigned char) (dim & 0xff);
	out[2] = 0;
	out[3] = 0;
	for (int i = 0; i < dim; i++)
	{
		uint32_t	bits;
		unsigned char *p = out + VECTOR_BINARY_HEADER + 4 * i;

		memcpy(&bits, &x[i], sizeof(bits));
		p[0] = (unsigned char) (bits >> 24);
		p[1] = (unsigned char) (bits >> 16);
		p[2] = (unsigned char) (bits >> 8);
		p[3] = (unsigned char) bits;
	}
}
