/*-------------------------------------------------------------------------
 *
 * vectorparse.c
 *	  Parser for the vector text literal '[1,2,3]'.
 *
 * Kept free of palloc/ereport: the caller owns the output buffer and turns
 * the status into an error report.  That lets test/fuzz link this file
 * alone and hammer it with arbitrary bytes.
 *
 * IDENTIFICATION
 *	  src/vector/vectorparse.c
 *
 *-------------------------------------------------------------------------
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>

#include "vectorparse.h"

static const char *
skip_space(const char *p)
{
	/* the same set as PostgreSQL's scanner_isspace() */
	while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r' || *p == '\f' || *p == '\v')
		p++;
	return p;
}

VectorParseStatus
VectorParseText(const char *str, float *out, int maxdim, int *ndim,
				const char **errpos)
{
	const char *p = skip_space(str);
	int			n = 0;

	*ndim = 0;
	*errpos = p;
	if (*p != '[')
		return VECTOR_PARSE_SYNTAX;
	p = skip_space(p + 1);
	if (*p == ']')
	{
		*errpos = p;
		return VECTOR_PARSE_EMPTY;
	}

	for (;;)
	{
		char	   *end;
		float		val;

		/*
		 * strtof accepts "nan", "inf" and hex floats; the first two are
		 * rejected below, so are values that overflow to infinity (strtof
		 * sets ERANGE then, as float4in reports it).  Values too small for a
		 * float4 become a denormal or zero, as in float4in.  A leading space
		 * is skipped by strtof itself, so check for an empty token.
		 */
		p = skip_space(p);
		*errpos = p;
		if (*p == '\0' || *p == ',' || *p == ']')
			return VECTOR_PARSE_SYNTAX;
		if (n >= maxdim)
			return VECTOR_PARSE_TOO_MANY;
		errno = 0;
		val = strtof(p, &end);
		if (end == p)
			return VECTOR_PARSE_SYNTAX;
		if (isinf(val) && errno == ERANGE)
		{
			*ndim = n;			/* elements before the bad one */
			return VECTOR_PARSE_OUT_OF_RANGE;
		}
		if (isnan(val) || isinf(val))
		{
			*ndim = n;			/* elements before the bad one */
			return VECTOR_PARSE_NOT_FINITE;
		}
		out[n++] = val;

		p = skip_space(end);
		*errpos = p;
		if (*p == ',')
		{
			p++;
			continue;
		}
		if (*p != ']')
			return VECTOR_PARSE_SYNTAX;
		p = skip_space(p + 1);
		*errpos = p;
		if (*p != '\0')
			return VECTOR_PARSE_SYNTAX;
		break;
	}

	*ndim = n;
	return VECTOR_PARSE_OK;
}
