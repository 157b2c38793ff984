-- The tokenizer: tiktoken-exact byte-pair encodings.  All functions are
-- IMMUTABLE: the encodings and the model-name aliases are fixed for an
-- extension version (src/tokenizer/README).

CREATE FUNCTION tokenize(text, encoding text DEFAULT 'cl100k_base')
	RETURNS integer[]
	AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION tokenize(text, text) IS
	'token ids of the text (tiktoken encode_ordinary)';

CREATE FUNCTION token_count(text, encoding text DEFAULT 'cl100k_base')
	RETURNS integer
	AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION token_count(text, text) IS
	'number of tokens of the text';

CREATE FUNCTION detokenize(integer[], encoding text DEFAULT 'cl100k_base')
	RETURNS text
	AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION detokenize(integer[], text) IS
	'text of the token ids (they must decode to valid UTF-8)';

CREATE FUNCTION detokenize_bytes(integer[], encoding text DEFAULT 'cl100k_base')
	RETURNS bytea
	AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION detokenize_bytes(integer[], text) IS
	'bytes of the token ids';

CREATE FUNCTION truncate_tokens(text, max_tokens integer,
								encoding text DEFAULT 'cl100k_base')
	RETURNS text
	AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION truncate_tokens(text, integer, text) IS
	'longest prefix of the text with at most max_tokens tokens';
