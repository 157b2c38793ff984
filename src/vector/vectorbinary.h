/*-------------------------------------------------------------------------
 *
 * vectorbinary.h
 *	  Validation and decoding of the vector binary (send/recv) form, free
 *	  of PostgreSQL calls so that the fuzz driver can link it alone.
 *
 * The wire form is pgvector's: int16 dim, int16 reserved (zero), then dim
 * float4 values, everything in network byte order.
 *
 * IDENTIFICATION
 *	  src/vector/vectorbinary.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef GENAI_VECTORBINARY_H
#define GENAI_VECTORBINARY_H

#include <stddef.h>

/* bytes before the elements: int16 dim + int16 reserved */
#define VECTOR_BINARY_HEADER 4

typedef enum VectorBinaryStatus
{
	VECTOR_BINARY_OK = 0,
	VECTOR_BINARY_SHORT,		/* fewer bytes than the header */
	VECTOR_BINARY_BAD_DIM,		/* dimension count below 1 */
	VECTOR_BINARY_TOO_MANY,		/* dimension count above maxdim */
	VECTOR_BINARY_RESERVED,		/* reserved field is not zero */
	VECTOR_BINARY_LENGTH,		/* byte count does not match the dimensions */
	VECTOR_BINARY_NOT_FINITE,	/* an element is NaN or infinite */
} VectorBinaryStatus;

/*
 * Validate len bytes at data.  *dim receives the declared dimension count
 * once the header is read.  *info receives the reserved field's value
 * (VECTOR_BINARY_RESERVED) or the 0-based index of the first bad element
 * (VECTOR_BINARY_NOT_FINITE).  Nothing is written anywhere else.
 */
extern VectorBinaryStatus VectorBinaryCheck(const unsigned char *data, size_t len,
											int maxdim, int *dim, int *info);

/* Element i (0-based) of a value with at least i + 1 elements. */
extern float VectorBinaryElement(const unsigned char *data, int i);

/* Decode the dim elements of a value VectorBinaryCheck accepted. */
extern void VectorBinaryDecode(const unsigned char *data, int dim, float *out);

/* Encode dim floats into VECTOR_BINARY_HEADER + 4 * dim bytes at out. */
extern void VectorBinaryEncode(const float *x, int dim, unsigned char *out);

#endif							/* GENAI_VECTORBINARY_H */
