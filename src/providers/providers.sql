-- Providers: model endpoints, one foreign server of the genai wrapper each
-- (src/providers/README explains the choice).  Administrators create them;
-- GRANT USAGE ON FOREIGN SERVER decides which roles may call them.

CREATE FUNCTION genai_fdw_validator(text[], oid) RETURNS void
	AS 'MODULE_PATHNAME' LANGUAGE C STRICT;

CREATE FOREIGN DATA WRAPPER genai VALIDATOR genai_fdw_validator;
COMMENT ON FOREIGN DATA WRAPPER genai IS 'model endpoints (providers) for embed() and llm_complete()';

-- The built-in stand-in: offline, deterministic, in-process.  Usable by
-- everyone; REVOKE USAGE to withdraw it.
CREATE SERVER local FOREIGN DATA WRAPPER genai OPTIONS (kind 'local');
COMMENT ON SERVER local IS 'built-in offline stand-in for a model provider (hashed n-gram embeddings, extractive answers), for demos, tests and air-gapped use';
GRANT USAGE ON FOREIGN SERVER local TO PUBLIC;

-- What each provider is, for every role (options other than credentials
-- are public anyway in pg_foreign_server).
CREATE VIEW providers AS
SELECT s.srvname AS name,
	   o.kind,
	   o.base_url,
	   o.embedding_model,
	   o.chat_model,
	   pg_catalog.has_server_privilege(s.oid, 'USAGE') AS usable
FROM pg_catalog.pg_foreign_server s
	 JOIN pg_catalog.pg_foreign_data_wrapper w ON w.oid = s.srvfdw
	 CROSS JOIN LATERAL (
		SELECT max(option_value) FILTER (WHERE option_name = 'kind') AS kind,
			   max(option_value) FILTER (WHERE option_name = 'base_url') AS base_url,
			   max(option_value) FILTER (WHERE option_name = 'embedding_model') AS embedding_model,
			   max(option_value) FILTER (WHERE option_name = 'chat_model') AS chat_model
		FROM pg_catalog.pg_options_to_table(s.srvoptions)) o
WHERE w.fdwname = 'genai';
GRANT SELECT ON providers TO PUBLIC;

CREATE FUNCTION embed(input text, model text DEFAULT NULL, provider text DEFAULT NULL,
					  dimensions integer DEFAULT NULL) RETURNS vector
	AS 'MODULE_PATHNAME', 'embed_text' LANGUAGE C VOLATILE PARALLEL UNSAFE;
CREATE FUNCTION embed(inputs text[], model text DEFAULT NULL, provider text DEFAULT NULL,
					  dimensions integer DEFAULT NULL) RETURNS vector[]
	AS 'MODULE_PATHNAME', 'embed_array' LANGUAGE C VOLATILE PARALLEL UNSAFE;

CREATE FUNCTION llm_complete(prompt text, model text DEFAULT NULL,
							 system_prompt text DEFAULT NULL,
							 temperature double precision DEFAULT NULL,
							 max_tokens integer DEFAULT NULL,
							 provider text DEFAULT NULL) RETURNS text
	AS 'MODULE_PATHNAME', 'llm_complete_text' LANGUAGE C VOLATILE PARALLEL UNSAFE;
CREATE FUNCTION llm_complete(messages jsonb, model text DEFAULT NULL,
							 options jsonb DEFAULT NULL,
							 provider text DEFAULT NULL) RETURNS jsonb
	AS 'MODULE_PATHNAME', 'llm_complete_messages' LANGUAGE C VOLATILE PARALLEL UNSAFE;

-- The usage ledger: one row per call, written by the extension as its
-- owner.  Roles read their own rows; superusers and members of
-- pg_read_all_stats read all.  Dumped with the data (config table).
CREATE TABLE usage_ledger (
	id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	ts            timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp(),
	roleid        oid NOT NULL,
	rolname       name NOT NULL,
	provider      text NOT NULL,
	kind          text NOT NULL,
	operation     text NOT NULL,
	model         text,
	requests      integer NOT NULL,
	inputs        integer NOT NULL,
	input_tokens  bigint,
	output_tokens bigint,
	latency_ms    double precision NOT NULL,
	retries       integer NOT NULL,
	outcome       text NOT NULL
);
ALTER TABLE usage_ledger ENABLE ROW LEVEL SECURITY;
CREATE POLICY usage_ledger_read ON usage_ledger FOR SELECT
	USING (roleid = (SELECT oid FROM pg_catalog.pg_roles WHERE rolname = current_user)
		   OR pg_catalog.pg_has_role(current_user, 'pg_read_all_stats', 'USAGE'));
REVOKE ALL ON usage_ledger FROM PUBLIC;
GRANT SELECT ON usage_ledger TO PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('usage_ledger', '');
SELECT pg_catalog.pg_extension_config_dump('usage_ledger_id_seq', '');

-- Per-provider statistics since server start, kept in shared memory
-- (shared_preload_libraries = 'genai' only; an ERROR without it).
CREATE FUNCTION genai_provider_stats(OUT serverid oid, OUT calls bigint, OUT errors bigint,
									 OUT requests bigint, OUT retries bigint,
									 OUT input_tokens bigint, OUT output_tokens bigint,
									 OUT mean_latency_ms double precision,
									 OUT max_latency_ms double precision,
									 OUT in_flight integer, OUT max_in_flight integer,
									 OUT slot_waits bigint, OUT rate_waits bigint,
									 OUT wait_ms double precision)
	RETURNS SETOF record
	AS 'MODULE_PATHNAME', 'genai_provider_stats' LANGUAGE C VOLATILE STRICT;
CREATE VIEW provider_stats AS
SELECT s.srvname AS provider, st.calls, st.errors, st.requests, st.retries,
	   st.input_tokens, st.output_tokens, st.mean_latency_ms, st.max_latency_ms,
	   o.max_concurrency, o.requests_per_minute,
	   st.in_flight, st.max_in_flight, st.slot_waits, st.rate_waits, st.wait_ms
FROM genai_provider_stats() st
	 JOIN pg_catalog.pg_foreign_server s ON s.oid = st.serverid
	 CROSS JOIN LATERAL (
		SELECT max(option_value) FILTER (WHERE option_name = 'max_concurrency')::integer AS max_concurrency,
			   max(option_value) FILTER (WHERE option_name = 'requests_per_minute')::integer AS requests_per_minute
		FROM pg_catalog.pg_options_to_table(s.srvoptions)) o;
REVOKE ALL ON FUNCTION genai_provider_stats() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION genai_provider_stats() TO pg_read_all_stats;
REVOKE ALL ON provider_stats FROM PUBLIC;
GRANT SELECT ON provider_stats TO pg_read_all_stats;
