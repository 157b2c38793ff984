/*-------------------------------------------------------------------------
 *
 * vectoraggs.c
 *	  The avg(vector) and sum(vector) aggregates.
 *
 * Both share one transition state: a row count and a running sum per
 * dimension in double precision, kept in the aggregate's memory context
 * and updated in place.  pgvector keeps a float8[] for avg and builds a
 * new array for every row, and sums in float4 for sum; here a row costs
 * one pass of additions, and the float8 sum neither overflows nor drops
 * small addends while adding.  The final functions round to float4 and
 * raise "value out of range: overflow" if a sum does not fit.
 *
 * The state is "internal", so parallel and partial aggregation need the
 * combine, serialize and deserialize functions below.  The serialized
 * form is int64 count, int32 dim, then dim float8 sums.
 *
 * pgvector's own support functions over a float8[] state (count, then one
 * sum per dimension) exist too, under pgvector's names and signatures:
 * vector_accum, vector_avg and vector_combine.  Our aggregates do not use
 * them; a dumped user-defined aggregate built on them restores and works.
 *
 * IDENTIFICATION
 *	  src/vector/vectoraggs.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "catalog/pg_type.h"
#include "libpq/pqformat.h"
#include "utils/array.h"
#include "utils/float.h"

#include "vector.h"

PG_FUNCTION_INFO_V1(vector_agg_accum);
PG_FUNCTION_INFO_V1(vector_agg_combine);
PG_FUNCTION_INFO_V1(vector_agg_serialize);
PG_FUNCTION_INFO_V1(vector_agg_deserialize);
PG_FUNCTION_INFO_V1(vector_agg_avg);
PG_FUNCTION_INFO_V1(vector_agg_sum);
PG_FUNCTION_INFO_V1(vector_accum);
PG_FUNCTION_INFO_V1(vector_avg);
PG_FUNCTION_INFO_V1(vector_combine);

typedef struct VectorAggStateData
{
	int64		count;			/* rows added */
	int			dim;			/* dimensions of every row */
	double		sum[FLEXIBLE_ARRAY_MEMBER];
} VectorAggStateData;

typedef VectorAggStateData *VectorAggState;

static MemoryContext
AggContext(FunctionCallInfo fcinfo)
{
	MemoryContext aggcontext;

	if (!AggCheckCallContext(fcinfo, &aggcontext))
		elog(ERROR, "vector aggregate function called in non-aggregate context");
	return aggcontext;
}

static VectorAggState
NewState(MemoryContext cxt, int dim)
{
	VectorAggState state;

	state = MemoryContextAllocZero(cxt, offsetof(VectorAggStateData, sum) +
								   sizeof(double) * dim);
	state->dim = dim;
	return state;
}

static void
CheckStateDims(VectorAggState state, int dim)
{
	if (state->dim != dim)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("expected %d dimensions, not %d", state->dim, dim)));
}

/* vector_agg_accum(internal, vector): add one row; NULL rows are skipped */
Datum
vector_agg_accum(PG_FUNCTION_ARGS)
{
	MemoryContext aggcontext = AggContext(fcinfo);
	VectorAggState state = PG_ARGISNULL(0) ? NULL : (VectorAggState) PG_GETARG_POINTER(0);
	Vector	   *v;

	if (PG_ARGISNULL(1))
	{
		if (state == NULL)
			PG_RETURN_NULL();
		PG_RETURN_POINTER(state);
	}

	v = PG_GETARG_VECTOR_P(1);
	if (state == NULL)
		state = NewState(aggcontext, v->dim);
	else
		CheckStateDims(state, v->dim);

	for (int i = 0; i < v->dim; i++)
		state->sum[i] += (double) v->x[i];
	state->count++;

	PG_FREE_IF_COPY(v, 1);
	PG_RETURN_POINTER(state);
}

/* vector_agg_combine(internal, internal): merge two partial states */
Datum
vector_agg_combine(PG_FUNCTION_ARGS)
{
	MemoryContext aggcontext = AggContext(fcinfo);
	VectorAggState s1 = PG_ARGISNULL(0) ? NULL : (VectorAggState) PG_GETARG_POINTER(0);
	VectorAggState s2 = PG_ARGISNULL(1) ? NULL : (VectorAggState) PG_GETARG_POINTER(1);

	if (s2 == NULL)
	{
		if (s1 == NULL)
			PG_RETURN_NULL();
		PG_RETURN_POINTER(s1);
	}
	if (s1 == NULL)
	{
		/* the result must live in our context, not s2's */
		s1 = NewState(aggcontext, s2->dim);
		memcpy(s1->sum, s2->sum, sizeof(double) * s2->dim);
		s1->count = s2->count;
		PG_RETURN_POINTER(s1);
	}

	CheckStateDims(s1, s2->dim);
	for (int i = 0; i < s1->dim; i++)
		s1->sum[i] += s2->sum[i];
	s1->count += s2->count;
	PG_RETURN_POINTER(s1);
}

Datum
vector_agg_serialize(PG_FUNCTION_ARGS)
{
	VectorAggState state = (VectorAggState) PG_GETARG_POINTER(0);
	StringInfoData buf;

	pq_begintypsend(&buf);
	pq_sendint64(&buf, state->count);
	pq_sendint32(&buf, state->dim);
	for (int i = 0; i < state->dim; i++)
		pq_sendfloat8(&buf, state->sum[i]);
	PG_RETURN_BYTEA_P(pq_endtypsend(&buf));
}

Datum
vector_agg_deserialize(PG_FUNCTION_ARGS)
{
	MemoryContext aggcontext = AggContext(fcinfo);
	bytea	   *bytes = PG_GETARG_BYTEA_PP(0);
	StringInfoData buf;
	VectorAggState state;
	int64		count;
	int			dim;

	/* a read-only StringInfo over the bytea, as numeric_deserialize does */
	buf.data = VARDATA_ANY(bytes);
	buf.len = VARSIZE_ANY_EXHDR(bytes);
	buf.maxlen = buf.len;
	buf.cursor = 0;

	count = pq_getmsgint64(&buf);
	dim = pq_getmsgint(&buf, 4);
	if (count < 1 || dim < 1 || dim > VECTOR_MAX_DIM ||
		buf.len - buf.cursor != (int) sizeof(double) * dim)
		elog(ERROR, "invalid vector aggregate state");

	state = NewState(aggcontext, dim);
	state->count = count;
	for (int i = 0; i < dim; i++)
		state->sum[i] = pq_getmsgfloat8(&buf);
	pq_getmsgend(&buf);
	PG_RETURN_POINTER(state);
}

/* Round the sums, each divided by divisor, to a new vector. */
static Vector *
StateToVector(VectorAggState state, double divisor)
{
	Vector	   *result = InitVector(state->dim);

	for (int i = 0; i < state->dim; i++)
	{
		result->x[i] = (float) (state->sum[i] / divisor);
		if (isinf(result->x[i]))
			float_overflow_error();
	}
	return result;
}

Datum
vector_agg_avg(PG_FUNCTION_ARGS)
{
	VectorAggState state;

	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	state = (VectorAggState) PG_GETARG_POINTER(0);
	PG_RETURN_VECTOR_P(StateToVector(state, (double) state->count));
}

Datum
vector_agg_sum(PG_FUNCTION_ARGS)
{
	VectorAggState state;

	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	state = (VectorAggState) PG_GETARG_POINTER(0);
	PG_RETURN_VECTOR_P(StateToVector(state, 1.0));
}

/*
 * pgvector-compatible support functions over a float8[] state
 * {count, sum_1, ..., sum_dim}; '{0}' is the empty state.
 */

/* The state's values after checking its shape; *len counts them. */
static float8 *
ArrayStateValues(ArrayType *state, int *len)
{
	if (ARR_NDIM(state) != 1 || ARR_ELEMTYPE(state) != FLOAT8OID ||
		ARR_DIMS(state)[0] < 1 || array_contains_nulls(state))
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("invalid vector aggregate state"),
				 errdetail("The state must be a one-dimensional double precision array without NULLs: a count, then one sum per dimension.")));
	*len = ARR_DIMS(state)[0];
	VectorCheckDim(Max(*len - 1, 1));
	return (float8 *) ARR_DATA_PTR(state);
}

static ArrayType *
ArrayStateBuild(const float8 *values, int len)
{
	Datum	   *datums = palloc(sizeof(Datum) * len);

	for (int i = 0; i < len; i++)
	{
		if (isinf(values[i]))
			float_overflow_error();
		datums[i] = Float8GetDatum(values[i]);
	}
	return construct_array(datums, len, FLOAT8OID, sizeof(float8),
						   FLOAT8PASSBYVAL, TYPALIGN_DOUBLE);
}

Datum
vector_accum(PG_FUNCTION_ARGS)
{
	ArrayType  *state = PG_GETARG_ARRAYTYPE_P(0);
	Vector	   *v = PG_GETARG_VECTOR_P(1);
	int			len;
	float8	   *in = ArrayStateValues(state, &len);
	bool		fresh = (len == 1);
	float8	   *out;

	/* a state without sums takes its dimensions from the first row */
	if (!fresh && len - 1 != v->dim)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("expected %d dimensions, not %d", len - 1, v->dim)));

	out = palloc(sizeof(float8) * (v->dim + 1));
	out[0] = in[0] + 1;
	for (int i = 0; i < v->dim; i++)
		out[i + 1] = (fresh ? 0.0 : in[i + 1]) + (double) v->x[i];
	PG_RETURN_ARRAYTYPE_P(ArrayStateBuild(out, v->dim + 1));
}

Datum
vector_combine(PG_FUNCTION_ARGS)
{
	ArrayType  *s1 = PG_GETARG_ARRAYTYPE_P(0);
	ArrayType  *s2 = PG_GETARG_ARRAYTYPE_P(1);
	int			len1;
	int			len2;
	float8	   *v1 = ArrayStateValues(s1, &len1);
	float8	   *v2 = ArrayStateValues(s2, &len2);
	float8	   *out;

	/* a state that saw no rows adds nothing */
	if (v2[0] == 0)
		PG_RETURN_ARRAYTYPE_P(ArrayStateBuild(v1, len1));
	if (v1[0] == 0)
		PG_RETURN_ARRAYTYPE_P(ArrayStateBuild(v2, len2));
	if (len1 != len2)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("different vector dimensions %d and %d", len1 - 1, len2 - 1)));

	out = palloc(sizeof(float8) * len1);
	for (int i = 0; i < len1; i++)
		out[i] = v1[i] + v2[i];
	PG_RETURN_ARRAYTYPE_P(ArrayStateBuild(out, len1));
}

Datum
vector_avg(PG_FUNCTION_ARGS)
{
	ArrayType  *state = PG_GETARG_ARRAYTYPE_P(0);
	int			len;
	float8	   *values = ArrayStateValues(state, &len);
	Vector	   *result;

	if (values[0] == 0)
		PG_RETURN_NULL();
	VectorCheckDim(len - 1);
	result = InitVector(len - 1);
	for (int i = 0; i < result->dim; i++)
	{
		result->x[i] = (float) (values[i + 1] / values[0]);
		if (isinf(result->x[i]))
			float_overflow_error();
	}
	PG_RETURN_VECTOR_P(result);
}
