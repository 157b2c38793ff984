/*-------------------------------------------------------------------------
 *
 * vectorfuncs.c
 *	  Element-wise arithmetic, concatenation, normalization, subvectors and
 *	  binary quantization of vectors.
 *
 * Arithmetic is done in float, element by element, as float4 arithmetic in
 * PostgreSQL is: a result that overflows to infinity (or, for *, underflows
 * to zero from non-zero operands) raises "value out of range" instead of
 * storing a value the type cannot hold.  The loops are plain so that the
 * compiler vectorizes them; the checks run as a second pass for the same
 * reason.
 *
 * IDENTIFICATION
 *	  src/vector/vectorfuncs.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "utils/float.h"
#include "utils/varbit.h"

#include "vector.h"

PG_FUNCTION_INFO_V1(vector_add);
PG_FUNCTION_INFO_V1(vector_sub);
PG_FUNCTION_INFO_V1(vector_mul);
PG_FUNCTION_INFO_V1(vector_concat);
PG_FUNCTION_INFO_V1(l2_normalize);
PG_FUNCTION_INFO_V1(subvector);
PG_FUNCTION_INFO_V1(binary_quantize);

static void
CheckNoOverflow(const float *x, int dim)
{
	for (int i = 0; i < dim; i++)
	{
		if (isinf(x[i]))
			float_overflow_error();
	}
}

Datum
vector_add(PG_FUNCTION_ARGS)
{
	Vector	   *a = PG_GETARG_VECTOR_P(0);
	Vector	   *b = PG_GETARG_VECTOR_P(1);
	Vector	   *result;

	VectorCheckSameDims(a, b);
	result = InitVector(a->dim);
	for (int i = 0; i < a->dim; i++)
		result->x[i] = a->x[i] + b->x[i];
	CheckNoOverflow(result->x, result->dim);
	PG_RETURN_VECTOR_P(result);
}

Datum
vector_sub(PG_FUNCTION_ARGS)
{
	Vector	   *a = PG_GETARG_VECTOR_P(0);
	Vector	   *b = PG_GETARG_VECTOR_P(1);
	Vector	   *result;

	VectorCheckSameDims(a, b);
	result = InitVector(a->dim);
	for (int i = 0; i < a->dim; i++)
		result->x[i] = a->x[i] - b->x[i];
	CheckNoOverflow(result->x, result->dim);
	PG_RETURN_VECTOR_P(result);
}

Datum
vector_mul(PG_FUNCTION_ARGS)
{
	Vector	   *a = PG_GETARG_VECTOR_P(0);
	Vector	   *b = PG_GETARG_VECTOR_P(1);
	Vector	   *result;

	VectorCheckSameDims(a, b);
	result = InitVector(a->dim);
	for (int i = 0; i < a->dim; i++)
		result->x[i] = a->x[i] * b->x[i];
	CheckNoOverflow(result->x, result->dim);

	/* as float4mul: a zero product of non-zero factors lost the value */
	for (int i = 0; i < a->dim; i++)
	{
		if (result->x[i] == 0 && a->x[i] != 0 && b->x[i] != 0)
			float_underflow_error();
	}
	PG_RETURN_VECTOR_P(result);
}

Datum
vector_concat(PG_FUNCTION_ARGS)
{
	Vector	   *a = PG_GETARG_VECTOR_P(0);
	Vector	   *b = PG_GETARG_VECTOR_P(1);
	Vector	   *result;

	VectorCheckDim(a->dim + b->dim);
	result = InitVector(a->dim + b->dim);
	memcpy(result->x, a->x, sizeof(float) * a->dim);
	memcpy(result->x + a->dim, b->x, sizeof(float) * b->dim);
	PG_RETURN_VECTOR_P(result);
}

/*
 * The norm is summed in double, so it neither overflows nor loses the small
 * elements; a zero vector has no direction and comes back unchanged, as in
 * pgvector.  Dividing by a norm below 1 can still overflow a float when the
 * elements are tiny denormals, hence the check.
 */
Datum
l2_normalize(PG_FUNCTION_ARGS)
{
	Vector	   *a = PG_GETARG_VECTOR_P(0);
	Vector	   *result = InitVector(a->dim);
	double		norm = 0.0;

	for (int i = 0; i < a->dim; i++)
		norm += (double) a->x[i] * (double) a->x[i];
	norm = sqrt(norm);

	if (norm > 0)
	{
		for (int i = 0; i < a->dim; i++)
			result->x[i] = (float) ((double) a->x[i] / norm);
		CheckNoOverflow(result->x, result->dim);
	}
	PG_RETURN_VECTOR_P(result);
}

/*
 * subvector(v, start, count): count elements from the 1-based position
 * start, clipped to the vector like substring() clips a string.  An empty
 * result is an error, since a vector has at least one dimension.  The
 * bounds are computed in 64 bits so no argument can overflow them.
 */
Datum
subvector(PG_FUNCTION_ARGS)
{
	Vector	   *a = PG_GETARG_VECTOR_P(0);
	int64		first = PG_GETARG_INT32(1);
	int64		count = PG_GETARG_INT32(2);
	int64		last;			/* one past the final element, 1-based */
	Vector	   *result;

	if (count < 1)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("vector must have at least 1 dimension")));

	last = Min(first + count, (int64) a->dim + 1);
	first = Max(first, 1);
	if (last - first < 1)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("vector must have at least 1 dimension")));

	result = InitVector((int) (last - first));
	memcpy(result->x, a->x + (first - 1), sizeof(float) * result->dim);
	PG_RETURN_VECTOR_P(result);
}

/*
 * One bit per element, set when the element is positive, first element in
 * the most significant bit of the first byte (the bit type's order).
 */
Datum
binary_quantize(PG_FUNCTION_ARGS)
{
	Vector	   *a = PG_GETARG_VECTOR_P(0);
	int			len = VARBITTOTALLEN(a->dim);
	VarBit	   *result = (VarBit *) palloc0(len);
	bits8	   *bits;

	SET_VARSIZE(result, len);
	VARBITLEN(result) = a->dim;
	bits = VARBITS(result);
	for (int i = 0; i < a->dim; i++)
	{
		if (a->x[i] > 0)
			bits[i / 8] |= (bits8) (0x80 >> (i % 8));
	}
	PG_RETURN_VARBIT_P(result);
}
