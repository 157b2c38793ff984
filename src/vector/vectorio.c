/*-------------------------------------------------------------------------
 *
 * vectorio.c
 *	  Text and binary input/output of the vector type, and its typmod.
 *
 * Text output is the shortest decimal that reads back to the same float
 * bits (Ryu, via float_to_shortest_decimal_bufn), so text round-trips
 * exactly: Citus ships constants as text, pg_dump writes text.
 *
 * IDENTIFICATION
 *	  src/vector/vectorio.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "common/shortest_dec.h"
#include "libpq/pqformat.h"
#include "utils/array.h"
#include "utils/builtins.h"

#include "vector.h"
#include "vectorbinary.h"
#include "vectorparse.h"

PG_FUNCTION_INFO_V1(vector_in);
PG_FUNCTION_INFO_V1(vector_out);
PG_FUNCTION_INFO_V1(vector_typmod_in);
PG_FUNCTION_INFO_V1(vector_recv);
PG_FUNCTION_INFO_V1(vector_send);
PG_FUNCTION_INFO_V1(vector);

Vector *
InitVector(int dim)
{
	Vector	   *result = (Vector *) palloc0(VECTOR_SIZE(dim));

	SET_VARSIZE(result, VECTOR_SIZE(dim));
	result->dim = dim;
	return result;
}

/* Errors if dim does not match a declared typmod (-1: none declared). */
void
VectorCheckExpectedDim(int32 typmod, int dim)
{
	if (typmod != -1 && typmod != dim)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("expected %d dimensions, not %d", typmod, dim)));
}

void
VectorCheckDim(int dim)
{
	if (dim < 1)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("vector must have at least 1 dimension")));
	if (dim > VECTOR_MAX_DIM)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("vector cannot have more than %d dimensions", VECTOR_MAX_DIM)));
}

void
VectorCheckElement(float value)
{
	if (isnan(value))
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("NaN not allowed in vector")));
	if (isinf(value))
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("infinite value not allowed in vector")));
}

void
VectorCheckSameDims(const Vector *a, const Vector *b)
{
	if (a->dim != b->dim)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("different vector dimensions %d and %d", a->dim, b->dim)));
}

/*
 * A NaN or infinite element (0-based index) in text or binary input: the
 * same messages as VectorCheckElement and pgvector.
 */
static void
ReportNotFinite(float value, int element)
{
	ereport(ERROR,
			(errcode(ERRCODE_DATA_EXCEPTION),
			 isnan(value) ? errmsg("NaN not allowed in vector") :
			 errmsg("infinite value not allowed in vector"),
			 errdetail("Element %d is not a finite float4.", element + 1)));
}

Datum
vector_in(PG_FUNCTION_ARGS)
{
	char	   *lit = PG_GETARG_CSTRING(0);
	int32		typmod = PG_GETARG_INT32(2);
	float	   *buf = palloc(sizeof(float) * VECTOR_MAX_DIM);
	int			dim;
	const char *errpos;
	Vector	   *result;

	switch (VectorParseText(lit, buf, VECTOR_MAX_DIM, &dim, &errpos))
	{
		case VECTOR_PARSE_OK:
			break;
		case VECTOR_PARSE_EMPTY:
			ereport(ERROR,
					(errcode(ERRCODE_DATA_EXCEPTION),
					 errmsg("vector must have at least 1 dimension")));
			break;
		case VECTOR_PARSE_TOO_MANY:
			ereport(ERROR,
					(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
					 errmsg("vector cannot have more than %d dimensions", VECTOR_MAX_DIM)));
			break;
		case VECTOR_PARSE_NOT_FINITE:
			/* parse the token again to tell NaN from infinity */
			ReportNotFinite(strtof(errpos, NULL), dim);
			break;
		case VECTOR_PARSE_OUT_OF_RANGE:
			{
				char	   *end;

				/* parse the number again, only to quote it */
				(void) strtof(errpos, &end);
				ereport(ERROR,
						(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
						 errmsg("\"%.*s\" is out of range for type vector",
								(int) (end - errpos), errpos),
						 errdetail("Element %d is too large for a float4.", dim + 1)));
			}
			break;
		case VECTOR_PARSE_SYNTAX:
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
					 errmsg("invalid input syntax for type vector: \"%s\"", lit),
					 errdetail("Unexpected %s at position %d.",
							   *errpos ? "character" : "end of input",
							   (int) (errpos - lit) + 1),
					 errhint("Vector literals look like '[1,2,3]'.")));
			break;
	}

	VectorCheckExpectedDim(typmod, dim);
	result = InitVector(dim);
	memcpy(result->x, buf, sizeof(float) * dim);
	pfree(buf);
	PG_RETURN_VECTOR_P(result);
}

Datum
vector_out(PG_FUNCTION_ARGS)
{
	Vector	   *vec = PG_GETARG_VECTOR_P(0);
	int			dim = vec->dim;
	char	   *buf;
	char	   *p;

	/* sign, 9 digits, point, 'e', sign, 2 exponent digits, comma: < FLOAT_SHORTEST_DECIMAL_LEN */
	buf = palloc(FLOAT_SHORTEST_DECIMAL_LEN * dim + 2);
	p = buf;
	*p++ = '[';
	for (int i = 0; i < dim; i++)
	{
		if (i > 0)
			*p++ = ',';
		p += float_to_shortest_decimal_bufn(vec->x[i], p);
	}
	*p++ = ']';
	*p = '\0';
	PG_FREE_IF_COPY(vec, 0);
	PG_RETURN_CSTRING(buf);
}

Datum
vector_typmod_in(PG_FUNCTION_ARGS)
{
	ArrayType  *ta = PG_GETARG_ARRAYTYPE_P(0);
	int32	   *tl;
	int			n;

	tl = ArrayGetIntegerTypmods(ta, &n);
	if (n != 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid type modifier"),
				 errdetail("A vector type takes one modifier, its number of dimensions.")));
	if (tl[0] < 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("dimensions for type vector must be at least 1")));
	if (tl[0] > VECTOR_MAX_DIM)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("dimensions for type vector cannot exceed %d", VECTOR_MAX_DIM)));
	PG_RETURN_INT32(tl[0]);
}

/*
 * Binary input trusts nothing: a COPY BINARY stream, a bind parameter or a
 * shard move may hand us any bytes.  vectorbinary.c does the checking.
 */
Datum
vector_recv(PG_FUNCTION_ARGS)
{
	StringInfo	buf = (StringInfo) PG_GETARG_POINTER(0);
	int32		typmod = PG_GETARG_INT32(2);
	const unsigned char *data = (const unsigned char *) buf->data + buf->cursor;
	size_t		len = buf->len - buf->cursor;
	int			dim;
	int			info;
	Vector	   *result;

	switch (VectorBinaryCheck(data, len, VECTOR_MAX_DIM, &dim, &info))
	{
		case VECTOR_BINARY_OK:
			break;
		case VECTOR_BINARY_SHORT:
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
					 errmsg("invalid binary vector"),
					 errdetail("The value has %d bytes, fewer than its %d-byte header.",
							   (int) len, VECTOR_BINARY_HEADER)));
			break;
		case VECTOR_BINARY_BAD_DIM:
		case VECTOR_BINARY_TOO_MANY:
			VectorCheckDim(dim);
			elog(ERROR, "unexpected binary vector dimension count %d", dim);
			break;
		case VECTOR_BINARY_RESERVED:
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
					 errmsg("invalid binary vector"),
					 errdetail("The reserved field is %d, not 0.", info)));
			break;
		case VECTOR_BINARY_LENGTH:
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
					 errmsg("invalid binary vector"),
					 errdetail("The elements take %d bytes, but dimension count %d needs %d.",
							   (int) len - VECTOR_BINARY_HEADER, dim, 4 * dim)));
			break;
		case VECTOR_BINARY_NOT_FINITE:
			ReportNotFinite(VectorBinaryElement(data, info), info);
			break;
	}
	VectorCheckExpectedDim(typmod, dim);

	result = InitVector(dim);
	VectorBinaryDecode(data, dim, result->x);
	buf->cursor = buf->len;
	PG_RETURN_VECTOR_P(result);
}

Datum
vector_send(PG_FUNCTION_ARGS)
{
	Vector	   *vec = PG_GETARG_VECTOR_P(0);
	StringInfoData buf;

	pq_begintypsend(&buf);
	pq_sendint(&buf, vec->dim, sizeof(int16));
	pq_sendint(&buf, vec->unused, sizeof(int16));
	for (int i = 0; i < vec->dim; i++)
		pq_sendfloat4(&buf, vec->x[i]);
	PG_RETURN_BYTEA_P(pq_endtypsend(&buf));
}

/* Length-coercion cast vector -> vector(n): checks the dimensions. */
Datum
vector(PG_FUNCTION_ARGS)
{
	Vector	   *vec = PG_GETARG_VECTOR_P(0);
	int32		typmod = PG_GETARG_INT32(1);

	VectorCheckExpectedDim(typmod, vec->dim);
	PG_RETURN_VECTOR_P(vec);
}
