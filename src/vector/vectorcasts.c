/*-------------------------------------------------------------------------
 *
 * vectorcasts.c
 *	  Casts between vector and arrays of integer, real, double precision
 *	  and numeric.
 *
 * Arrays become vectors by assignment (INSERT ... VALUES (ARRAY[...]))
 * and a vector becomes real[] implicitly, as in pgvector.  A vector also
 * casts explicitly to double precision[], which is exact.
 *
 * Values too large for a float4 raise "value out of range: overflow";
 * values too small for one round to zero or a denormal, as pgvector does,
 * so data loaded into pgvector loads the same way here.
 *
 * IDENTIFICATION
 *	  src/vector/vectorcasts.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "catalog/pg_type.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/float.h"
#include "utils/lsyscache.h"

#include "vector.h"

PG_FUNCTION_INFO_V1(array_to_vector);
PG_FUNCTION_INFO_V1(vector_to_float4);
PG_FUNCTION_INFO_V1(vector_to_float8);

static float
ElementToFloat(Oid elemtype, Datum value)
{
	switch (elemtype)
	{
		case INT4OID:
			return (float) DatumGetInt32(value);
		case FLOAT4OID:
			return DatumGetFloat4(value);
		case FLOAT8OID:
			{
				double		d = DatumGetFloat8(value);
				float		f = (float) d;

				if (isinf(f) && !isinf(d))
					float_overflow_error();
				return f;
			}
		case NUMERICOID:
			/* numeric_float4 raises its own out-of-range error */
			return DatumGetFloat4(DirectFunctionCall1(numeric_float4, value));
		default:
			ereport(ERROR,
					(errcode(ERRCODE_DATATYPE_MISMATCH),
					 errmsg("cannot cast an array of %s to vector",
							format_type_be(elemtype))));
	}
	return 0;					/* keep the compiler quiet */
}

/*
 * array_to_vector(array, typmod, explicit) for integer[], real[],
 * double precision[] and numeric[] (four SQL signatures, one C function).
 */
Datum
array_to_vector(PG_FUNCTION_ARGS)
{
	ArrayType  *array = PG_GETARG_ARRAYTYPE_P(0);
	int32		typmod = PG_GETARG_INT32(1);
	Oid			elemtype = ARR_ELEMTYPE(array);
	int16		typlen;
	bool		typbyval;
	char		typalign;
	Datum	   *elems;
	int			nelems;
	Vector	   *result;

	if (ARR_NDIM(array) > 1)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("array must be 1-D")));
	if (array_contains_nulls(array))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("array must not contain nulls")));

	/* check the size before deconstructing a possibly huge array */
	nelems = ArrayGetNItems(ARR_NDIM(array), ARR_DIMS(array));
	VectorCheckDim(nelems);
	VectorCheckExpectedDim(typmod, nelems);

	get_typlenbyvalalign(elemtype, &typlen, &typbyval, &typalign);
	deconstruct_array(array, elemtype, typlen, typbyval, typalign,
					  &elems, NULL, &nelems);

	result = InitVector(nelems);
	for (int i = 0; i < nelems; i++)
	{
		result->x[i] = ElementToFloat(elemtype, elems[i]);
		VectorCheckElement(result->x[i]);
	}
	pfree(elems);
	PG_RETURN_VECTOR_P(result);
}

Datum
vector_to_float4(PG_FUNCTION_ARGS)
{
	Vector	   *vec = PG_GETARG_VECTOR_P(0);
	Datum	   *datums = palloc(sizeof(Datum) * vec->dim);

	for (int i = 0; i < vec->dim; i++)
		datums[i] = Float4GetDatum(vec->x[i]);
	PG_RETURN_ARRAYTYPE_P(construct_array(datums, vec->dim, FLOAT4OID,
										  sizeof(float4), true, TYPALIGN_INT));
}

Datum
vector_to_float8(PG_FUNCTION_ARGS)
{
	Vector	   *vec = PG_GETARG_VECTOR_P(0);
	Datum	   *datums = palloc(sizeof(Datum) * vec->dim);

	for (int i = 0; i < vec->dim; i++)
		datums[i] = Float8GetDatum((double) vec->x[i]);
	PG_RETURN_ARRAYTYPE_P(construct_array(datums, vec->dim, FLOAT8OID,
										  sizeof(float8), FLOAT8PASSBYVAL,
										  TYPALIGN_DOUBLE));
}
