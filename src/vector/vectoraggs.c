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
 * IDENTIFICATION
 *	  src/vector/vectoraggs.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "libpq/pqformat.h"
#include "utils/float.h"

#include "vector.h"

PG_FUNCTION_INFO_V1(vector_agg_accum);
PG_FUNCTION_INFO_V1(vector_agg_combine);
PG_FUNCTION_INFO_V1(vector_agg_serialize);
PG_FUNCTION_INFO_V1(vector_agg_deserialize);
PG_FUNCTION_INFO_V1(vector_agg_avg);
PG_FUNCTION_INFO_V1(vector_agg_sum);

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
