/*-------------------------------------------------------------------------
 *
 * vectorparse.h
 *	  The vector literal parser core, free of PostgreSQL calls so that the
 *	  fuzz driver can link it alone.
 *
 * IDENTIFICATION
 *	  src/vector/vectorparse.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef GENAI_VECTORPARSE_H
#define GENAI_VECTORPARSE_H

typedef enum VectorParseStatus
{
	VECTOR_PARSE_OK = 0,
	VECTOR_PARSE_SYNTAX,		/* malformed literal */
	VECTOR_PARSE_EMPTY,			/* "[]" */
	VECTOR_PARSE_TOO_MANY,		/* more than maxdim elements */
	VECTOR_PARSE_NOT_FINITE,	/* NaN or infinity written as such */
	VECTOR_PARSE_OUT_OF_RANGE,	/* a number too large for float4 */
} VectorParseStatus;

/*
 * Parse "[x1, x2, ...]" (whitespace allowed around tokens) into out[0..maxdim).
 * On success *ndim is the element count.  On failure *errpos points at the
 * offending byte of str; for VECTOR_PARSE_NOT_FINITE and
 * VECTOR_PARSE_OUT_OF_RANGE it is the start of the bad number and *ndim
 * counts the elements before it.
 */
extern VectorParseStatus VectorParseText(const char *str, float *out, int maxdim,
										 int *ndim, const char **errpos);

#endif							/* GENAI_VECTORPARSE_H */
