-- The hnsw index access method, with pgvector's operator class names and
-- numbering, so a pgvector dump's CREATE INDEX ... USING hnsw restores.

CREATE FUNCTION hnswhandler(internal) RETURNS index_am_handler
	AS 'MODULE_PATHNAME' LANGUAGE C;

CREATE ACCESS METHOD hnsw TYPE INDEX HANDLER hnswhandler;

COMMENT ON ACCESS METHOD hnsw IS 'hnsw index access method';

CREATE OPERATOR CLASS vector_l2_ops
	FOR TYPE vector USING hnsw AS
	OPERATOR 1 <-> (vector, vector) FOR ORDER BY float_ops,
	FUNCTION 1 vector_l2_squared_distance(vector, vector);

CREATE OPERATOR CLASS vector_ip_ops
	FOR TYPE vector USING hnsw AS
	OPERATOR 1 <#> (vector, vector) FOR ORDER BY float_ops,
	FUNCTION 1 vector_negative_inner_product(vector, vector);

CREATE OPERATOR CLASS vector_cosine_ops
	FOR TYPE vector USING hnsw AS
	OPERATOR 1 <=> (vector, vector) FOR ORDER BY float_ops,
	FUNCTION 1 vector_negative_inner_product(vector, vector),
	FUNCTION 2 vector_norm(vector);

CREATE OPERATOR CLASS vector_l1_ops
	FOR TYPE vector USING hnsw AS
	OPERATOR 1 <+> (vector, vector) FOR ORDER BY float_ops,
	FUNCTION 1 l1_distance(vector, vector);

-- Verifier: one row per broken invariant, none when the index is healthy.
CREATE FUNCTION hnsw_check(index regclass) RETURNS SETOF text
	AS 'MODULE_PATHNAME' LANGUAGE C STRICT;

-- How an index stores its vectors (fp32, fp16 or sq8), as chosen at build
-- time from the storage option (auto picks by what fits a page).
CREATE FUNCTION hnsw_storage(index regclass) RETURNS text
	AS 'MODULE_PATHNAME' LANGUAGE C STRICT STABLE;

-- Filter keys (src/hnsw/hnswfilter.c): columns after the vector, e.g.
-- USING hnsw (embedding vector_cosine_ops, tenant_id), whose quals
-- (WHERE tenant_id = 5, or a row-level security policy on tenant_id) the
-- scan checks while it walks the graph.  Strategies as btree's: 1 <, 2 <=,
-- 3 =, 4 >=, 5 >.  Integer types share one family with cross-type
-- operators; uuid and text keys are hashed and support only =.
CREATE OPERATOR FAMILY integer_key_ops USING hnsw;

CREATE OPERATOR CLASS int2_key_ops
	DEFAULT FOR TYPE int2 USING hnsw FAMILY integer_key_ops AS
	OPERATOR 1 < (int2, int2),
	OPERATOR 2 <= (int2, int2),
	OPERATOR 3 = (int2, int2),
	OPERATOR 4 >= (int2, int2),
	OPERATOR 5 > (int2, int2);

CREATE OPERATOR CLASS int4_key_ops
	DEFAULT FOR TYPE int4 USING hnsw FAMILY integer_key_ops AS
	OPERATOR 1 < (int4, int4),
	OPERATOR 2 <= (int4, int4),
	OPERATOR 3 = (int4, int4),
	OPERATOR 4 >= (int4, int4),
	OPERATOR 5 > (int4, int4);

CREATE OPERATOR CLASS int8_key_ops
	DEFAULT FOR TYPE int8 USING hnsw FAMILY integer_key_ops AS
	OPERATOR 1 < (int8, int8),
	OPERATOR 2 <= (int8, int8),
	OPERATOR 3 = (int8, int8),
	OPERATOR 4 >= (int8, int8),
	OPERATOR 5 > (int8, int8);

ALTER OPERATOR FAMILY integer_key_ops USING hnsw ADD
	OPERATOR 1 < (int2, int4),
	OPERATOR 2 <= (int2, int4),
	OPERATOR 3 = (int2, int4),
	OPERATOR 4 >= (int2, int4),
	OPERATOR 5 > (int2, int4),
	OPERATOR 1 < (int2, int8),
	OPERATOR 2 <= (int2, int8),
	OPERATOR 3 = (int2, int8),
	OPERATOR 4 >= (int2, int8),
	OPERATOR 5 > (int2, int8),
	OPERATOR 1 < (int4, int2),
	OPERATOR 2 <= (int4, int2),
	OPERATOR 3 = (int4, int2),
	OPERATOR 4 >= (int4, int2),
	OPERATOR 5 > (int4, int2),
	OPERATOR 1 < (int4, int8),
	OPERATOR 2 <= (int4, int8),
	OPERATOR 3 = (int4, int8),
	OPERATOR 4 >= (int4, int8),
	OPERATOR 5 > (int4, int8),
	OPERATOR 1 < (int8, int2),
	OPERATOR 2 <= (int8, int2),
	OPERATOR 3 = (int8, int2),
	OPERATOR 4 >= (int8, int2),
	OPERATOR 5 > (int8, int2),
	OPERATOR 1 < (int8, int4),
	OPERATOR 2 <= (int8, int4),
	OPERATOR 3 = (int8, int4),
	OPERATOR 4 >= (int8, int4),
	OPERATOR 5 > (int8, int4);

CREATE OPERATOR CLASS date_key_ops
	DEFAULT FOR TYPE date USING hnsw AS
	OPERATOR 1 < (date, date),
	OPERATOR 2 <= (date, date),
	OPERATOR 3 = (date, date),
	OPERATOR 4 >= (date, date),
	OPERATOR 5 > (date, date);

CREATE OPERATOR CLASS bool_key_ops
	DEFAULT FOR TYPE bool USING hnsw AS
	OPERATOR 1 < (bool, bool),
	OPERATOR 2 <= (bool, bool),
	OPERATOR 3 = (bool, bool),
	OPERATOR 4 >= (bool, bool),
	OPERATOR 5 > (bool, bool);

CREATE OPERATOR CLASS uuid_key_ops
	DEFAULT FOR TYPE uuid USING hnsw AS
	OPERATOR 3 = (uuid, uuid);

CREATE OPERATOR CLASS text_key_ops
	DEFAULT FOR TYPE text USING hnsw AS
	OPERATOR 3 = (text, text);
