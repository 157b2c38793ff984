-- RAG: registration of sources, retrieve(), hybrid retrieval, build_prompt(),
-- rag(), the audit trail, the embedding cache and the backfill procedure.
-- See src/rag/README for the design and the security argument.

-- Which columns of a table retrieval reads.  Readable by everyone, since it
-- holds names, not data; a row can be written only by the owner of the
-- table it describes (RLS below), normally through rag_register(), which
-- also validates it.  Dumped with the database.
CREATE TABLE rag_source (
	source           regclass PRIMARY KEY,
	id_column        name NOT NULL,
	content_column   name NOT NULL,
	embedding_column name NOT NULL,
	metadata_columns name[] NOT NULL DEFAULT '{}',
	tsvector_column  name,
	ts_config        regconfig NOT NULL DEFAULT 'pg_catalog.english',
	distance         text NOT NULL DEFAULT 'cosine'
		CHECK (distance IN ('cosine', 'l2', 'ip', 'l1')),
	provider         text,
	model            text,
	dimensions       integer
);
SELECT pg_catalog.pg_extension_config_dump('rag_source', '');
ALTER TABLE rag_source ENABLE ROW LEVEL SECURITY;
CREATE POLICY rag_source_read ON rag_source FOR SELECT USING (true);
CREATE POLICY rag_source_write ON rag_source FOR ALL
	USING (pg_catalog.pg_has_role(CURRENT_USER,
			   (SELECT c.relowner FROM pg_catalog.pg_class c WHERE c.oid OPERATOR(pg_catalog.=) source),
			   'USAGE'))
	WITH CHECK (pg_catalog.pg_has_role(CURRENT_USER,
			   (SELECT c.relowner FROM pg_catalog.pg_class c WHERE c.oid OPERATOR(pg_catalog.=) source),
			   'USAGE'));
GRANT SELECT, INSERT, UPDATE, DELETE ON rag_source TO PUBLIC;

-- The audit trail: one row per retrieve()/rag() call, written by the
-- extension as its owner.  Callers read their own rows (RLS), members of
-- pg_read_all_data and superusers read all, nobody but the owner writes.
CREATE TABLE rag_audit (
	id                bigserial PRIMARY KEY,
	at                timestamptz NOT NULL DEFAULT pg_catalog.now(),
	roleid            oid NOT NULL,
	role_name         name NOT NULL,
	call              text NOT NULL,
	source            oid,
	source_name       text,
	retrieved_ids     text[],
	provider          text,
	model             text,
	prompt_tokens     integer,
	completion_tokens integer,
	latency_ms        double precision,
	status            text NOT NULL,
	question          text
);
CREATE INDEX rag_audit_at ON rag_audit (at);
SELECT pg_catalog.pg_extension_config_dump('rag_audit', '');
SELECT pg_catalog.pg_extension_config_dump('rag_audit_id_seq', '');
ALTER TABLE rag_audit ENABLE ROW LEVEL SECURITY;
-- By role name, not oid: the rows are dumped with the database and must
-- stay readable by their roles after a restore into another cluster, where
-- the same roles have other oids.
CREATE POLICY rag_audit_read ON rag_audit FOR SELECT
	USING (role_name OPERATOR(pg_catalog.=) CURRENT_USER
		   OR pg_catalog.pg_has_role(CURRENT_USER, 'pg_read_all_data', 'MEMBER'));
GRANT SELECT ON rag_audit TO PUBLIC;

-- Embedding cache, keyed by role (so no role learns what another
-- embedded), provider, model, dimensions and the SHA-256 of the text.
-- Only the extension reads and writes it; not dumped.
CREATE UNLOGGED TABLE rag_embedding_cache (
	roleid     oid NOT NULL,
	provider   text NOT NULL,
	model      text NOT NULL,
	dimensions integer NOT NULL,
	text_hash  bytea NOT NULL,
	embedding  vector NOT NULL,
	created_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
	PRIMARY KEY (roleid, provider, model, dimensions, text_hash)
);
REVOKE ALL ON rag_embedding_cache FROM PUBLIC;

-- rag_register: declare how retrieval reads a table.  Only the table's
-- owner may register it (the policy on rag_source enforces it too).  The
-- search path is pinned and every name below is qualified.
CREATE FUNCTION rag_register(
	source           regclass,
	id_column        name DEFAULT 'id',
	content_column   name DEFAULT 'content',
	embedding_column name DEFAULT 'embedding',
	metadata_columns name[] DEFAULT '{}',
	tsvector_column  name DEFAULT NULL,
	ts_config        regconfig DEFAULT 'pg_catalog.english',
	distance         text DEFAULT 'cosine',
	provider         text DEFAULT NULL,
	model            text DEFAULT NULL,
	dimensions       integer DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	col  name;
	typ  regtype;
	kind "char";
BEGIN
	SELECT c.relkind INTO kind FROM pg_class c WHERE c.oid = source;
	IF kind IS NULL OR kind NOT IN ('r', 'p', 'v', 'm', 'f') THEN
		RAISE EXCEPTION 'cannot register "%" as a retrieval source', source
			USING ERRCODE = 'wrong_object_type',
				  DETAIL = 'Only tables, views, materialized views and foreign tables can be sources.';
	END IF;
	IF NOT pg_has_role(current_user, (SELECT c.relowner FROM pg_class c WHERE c.oid = source), 'USAGE') THEN
		RAISE EXCEPTION 'must be owner of relation %', source
			USING ERRCODE = 'insufficient_privilege';
	END IF;
	FOREACH col IN ARRAY ARRAY[id_column, content_column, embedding_column] || metadata_columns
						 || CASE WHEN tsvector_column IS NULL THEN '{}'::name[] ELSE ARRAY[tsvector_column] END
	LOOP
		SELECT a.atttypid INTO typ FROM pg_attribute a
		 WHERE a.attrelid = source AND a.attname = col AND a.attnum > 0 AND NOT a.attisdropped;
		IF typ IS NULL THEN
			RAISE EXCEPTION 'column "%" of relation "%" does not exist', col, source
				USING ERRCODE = 'undefined_column';
		END IF;
		IF col = embedding_column AND typ <> '@extschema@.vector'::regtype THEN
			RAISE EXCEPTION 'column "%" of relation "%" is not of type vector', col, source
				USING ERRCODE = 'datatype_mismatch';
		END IF;
		IF col = tsvector_column AND typ <> 'pg_catalog.tsvector'::regtype THEN
			RAISE EXCEPTION 'column "%" of relation "%" is not of type tsvector', col, source
				USING ERRCODE = 'datatype_mismatch';
		END IF;
	END LOOP;
	IF distance IS NULL OR distance NOT IN ('cosine', 'l2', 'ip', 'l1') THEN
		RAISE EXCEPTION 'unrecognized distance "%"', distance
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Use cosine, l2, ip or l1.';
	END IF;
	IF dimensions IS NOT NULL AND dimensions < 1 THEN
		RAISE EXCEPTION 'dimensions must be positive'
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	INSERT INTO @extschema@.rag_source AS s
		VALUES (source, id_column, content_column, embedding_column, metadata_columns,
				tsvector_column, ts_config, distance, provider, model, dimensions)
	ON CONFLICT ON CONSTRAINT rag_source_pkey DO UPDATE
		SET id_column = EXCLUDED.id_column, content_column = EXCLUDED.content_column,
			embedding_column = EXCLUDED.embedding_column,
			metadata_columns = EXCLUDED.metadata_columns,
			tsvector_column = EXCLUDED.tsvector_column, ts_config = EXCLUDED.ts_config,
			distance = EXCLUDED.distance, provider = EXCLUDED.provider,
			model = EXCLUDED.model, dimensions = EXCLUDED.dimensions;
END
$$;

-- Full text under RLS.  The built-in @@ is not leakproof, so the planner
-- will not evaluate it (nor use a GIN index for it) before a row-level
-- security policy has filtered the rows.  ts_match_vq raises no error that
-- depends on the row's data, so the extension declares a LEAKPROOF alias
-- of it and a GIN operator class that uses the built-in tsvector support
-- functions with that operator: an index built with rag_tsvector_ops serves
-- "tsv OPERATOR(@extschema@.@@) query" below any policy.  See README.
CREATE FUNCTION rag_ts_match(tsvector, tsquery) RETURNS boolean
	LANGUAGE internal IMMUTABLE STRICT PARALLEL SAFE LEAKPROOF AS 'ts_match_vq';
-- Its estimator reads the column's statistics only for callers who may see
-- every row (src/rag/ragtext.c).
CREATE FUNCTION rag_tsmatchsel(internal, oid, internal, integer) RETURNS double precision
	AS 'MODULE_PATHNAME' LANGUAGE C STABLE STRICT PARALLEL SAFE;
CREATE OPERATOR @@ (
	LEFTARG = tsvector, RIGHTARG = tsquery, PROCEDURE = rag_ts_match,
	RESTRICT = rag_tsmatchsel, JOIN = tsmatchjoinsel
);
CREATE OPERATOR CLASS rag_tsvector_ops FOR TYPE tsvector USING gin AS
	OPERATOR 1 @extschema@.@@ (tsvector, tsquery),
	FUNCTION 1 pg_catalog.gin_cmp_tslexeme(text, text),
	FUNCTION 2 pg_catalog.gin_extract_tsvector(tsvector, internal, internal),
	FUNCTION 3 pg_catalog.gin_extract_tsquery(tsvector, internal, int2, internal, internal, internal, internal),
	FUNCTION 4 pg_catalog.gin_tsquery_consistent(internal, int2, tsvector, int4, internal, internal, internal, internal),
	FUNCTION 5 pg_catalog.gin_cmp_prefix(text, text, int2, internal),
	FUNCTION 6 pg_catalog.gin_tsquery_triconsistent(internal, int2, tsvector, int4, internal, internal, internal),
	STORAGE text;

-- retrieve: the k nearest rows of a registered source that the caller may
-- see.  SECURITY INVOKER (the default): RLS and privileges apply.
CREATE FUNCTION retrieve(question vector, source regclass, k integer DEFAULT 5)
RETURNS TABLE (id text, content text, score double precision, metadata jsonb)
	AS 'MODULE_PATHNAME', 'rag_retrieve_vector'
	LANGUAGE C VOLATILE STRICT PARALLEL UNSAFE ROWS 5;
CREATE FUNCTION retrieve(question text, source regclass, k integer DEFAULT 5)
RETURNS TABLE (id text, content text, score double precision, metadata jsonb)
	AS 'MODULE_PATHNAME', 'rag_retrieve_text'
	LANGUAGE C VOLATILE STRICT PARALLEL UNSAFE ROWS 5;

-- retrieve_hybrid: vector and full-text ranks fused by reciprocal rank
-- fusion.  question_vector skips embedding the question.
CREATE FUNCTION retrieve_hybrid(
	question        text,
	source          regclass,
	k               integer DEFAULT 5,
	vector_weight   double precision DEFAULT 1,
	text_weight     double precision DEFAULT 1,
	rrf_k           integer DEFAULT 60,
	candidates      integer DEFAULT NULL,
	question_vector vector DEFAULT NULL)
RETURNS TABLE (id text, content text, score double precision, metadata jsonb,
			   vector_rank integer, text_rank integer)
	AS 'MODULE_PATHNAME', 'rag_retrieve_hybrid'
	LANGUAGE C VOLATILE PARALLEL UNSAFE ROWS 5;

-- rag_audit_purge: delete audit rows older than genai.rag_audit_retention_days.
CREATE FUNCTION rag_audit_purge() RETURNS bigint
	AS 'MODULE_PATHNAME', 'rag_audit_purge' LANGUAGE C VOLATILE;
REVOKE ALL ON FUNCTION rag_audit_purge() FROM PUBLIC;

-- Forget the registration of a dropped relation.  SECURITY DEFINER: the
-- dropping role may not own rag_source; it deletes only rows whose
-- relation no longer exists.
CREATE FUNCTION rag_source_forget_dropped() RETURNS event_trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	DELETE FROM @extschema@.rag_source s
	 WHERE NOT EXISTS (SELECT 1 FROM pg_class c WHERE c.oid = s.source);
END
$$;
CREATE EVENT TRIGGER rag_source_forget_dropped ON sql_drop
	WHEN TAG IN ('DROP TABLE', 'DROP VIEW', 'DROP MATERIALIZED VIEW', 'DROP FOREIGN TABLE',
				 'DROP SCHEMA', 'DROP OWNED')
	EXECUTE FUNCTION rag_source_forget_dropped();

-- build_prompt: instructions, numbered context with citations and the
-- question, fitted under context_window - answer_reserve tokens (chat
-- framing included).  context is a jsonb array of retrieve() rows or of
-- strings, in rank order.
CREATE FUNCTION build_prompt(
	question        text,
	context         jsonb,
	context_window  integer DEFAULT 8192,
	answer_reserve  integer DEFAULT 512,
	encoding        text DEFAULT 'cl100k_base',
	system_prompt   text DEFAULT NULL,
	min_tail_tokens integer DEFAULT 32)
RETURNS jsonb
	AS 'MODULE_PATHNAME', 'rag_build_prompt'
	LANGUAGE C STABLE PARALLEL UNSAFE;

-- rag: embed -> retrieve -> build_prompt -> llm_complete, as the caller.
CREATE FUNCTION rag(
	question       text,
	source         regclass,
	k              integer DEFAULT 5,
	hybrid         boolean DEFAULT false,
	model          text DEFAULT NULL,
	provider       text DEFAULT NULL,
	context_window integer DEFAULT 8192,
	answer_reserve integer DEFAULT 512,
	temperature    double precision DEFAULT 0,
	encoding       text DEFAULT 'cl100k_base',
	system_prompt  text DEFAULT NULL)
RETURNS jsonb
	AS 'MODULE_PATHNAME', 'rag_answer'
	LANGUAGE C VOLATILE PARALLEL UNSAFE;

-- rag_backfill: embed the rows of a registered source whose embedding is
-- NULL, batch_size rows per embed() request, committing after each batch,
-- so an interrupted run loses at most one batch and a re-run resumes where
-- it stopped.  No row lock is held while waiting on the provider: a batch
-- is read, embedded, then written with a compare on ctid and content, and
-- a row changed meanwhile is left for the next batch.  Runs as the caller
-- (RLS applies to its UPDATE).  max_batches stops early (NULL: all).
-- CALL it outside a transaction block.
CREATE PROCEDURE rag_backfill(source regclass, batch_size integer DEFAULT 100,
							  max_batches integer DEFAULT NULL)
LANGUAGE plpgsql
AS $$
DECLARE
	cfg     @extschema@.rag_source;
	tids    tid[];
	texts   text[];
	vecs    @extschema@.vector[];
	batches integer := 0;
	done    bigint := 0;
	n       bigint;
BEGIN
	IF batch_size IS NULL OR batch_size < 1 OR batch_size > 10000 THEN
		RAISE EXCEPTION 'batch_size must be between 1 and 10000'
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	SELECT * INTO cfg FROM @extschema@.rag_source s WHERE s.source OPERATOR(pg_catalog.=) $1;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'relation "%" is not registered as a retrieval source', $1
			USING ERRCODE = 'undefined_object', HINT = 'Register it with rag_register().';
	END IF;
	LOOP
		EXIT WHEN max_batches IS NOT NULL AND batches OPERATOR(pg_catalog.>=) max_batches;
		EXECUTE pg_catalog.format(
			'SELECT pg_catalog.array_agg(ctid), pg_catalog.array_agg(c) FROM'
			' (SELECT t.ctid, CAST(t.%I AS pg_catalog.text) AS c FROM %s t'
			'  WHERE t.%I IS NULL AND t.%I IS NOT NULL LIMIT $1) b',
			cfg.content_column, cfg.source, cfg.embedding_column, cfg.content_column)
			INTO tids, texts USING batch_size;
		EXIT WHEN tids IS NULL;
		vecs := @extschema@.embed(texts, cfg.model, cfg.provider, cfg.dimensions);
		EXECUTE pg_catalog.format(
			'UPDATE %s t SET %I = u.v FROM ROWS FROM (pg_catalog.unnest($1), pg_catalog.unnest($2),'
			' pg_catalog.unnest($3)) AS u(tid, c, v)'
			' WHERE t.ctid OPERATOR(pg_catalog.=) u.tid AND t.%I IS NULL'
			' AND CAST(t.%I AS pg_catalog.text) OPERATOR(pg_catalog.=) u.c',
			cfg.source, cfg.embedding_column, cfg.embedding_column, cfg.content_column)
			USING tids, texts, vecs;
		GET DIAGNOSTICS n = ROW_COUNT;
		IF n OPERATOR(pg_catalog.=) 0 THEN
			-- every row of the batch changed meanwhile or is not updatable
			-- by this role (an UPDATE policy): stop rather than spin
			RAISE WARNING 'rag_backfill: no row of a batch could be updated; stopping'
				USING HINT = 'Check the UPDATE privilege and policies of the calling role, or run it again.';
			EXIT;
		END IF;
		done := done OPERATOR(pg_catalog.+) n;
		batches := batches OPERATOR(pg_catalog.+) 1;
		COMMIT;
	END LOOP;
	RAISE NOTICE 'rag_backfill: % rows embedded in % batches', done, batches;
END
$$;
