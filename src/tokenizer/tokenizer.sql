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

-- Offsets are 0-based and end-exclusive, in characters and in bytes of the
-- database encoding: content = substr(text, start_char + 1,
-- end_char - start_char).  A chunk's overlap with the previous one is its
-- part before the previous chunk's end.
CREATE FUNCTION chunk(text, max_tokens integer, overlap_tokens integer DEFAULT 0,
					  encoding text DEFAULT 'cl100k_base')
	RETURNS TABLE (seq integer, content text, token_count integer,
				   start_byte integer, end_byte integer,
				   start_char integer, end_char integer)
	AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE ROWS 10;
COMMENT ON FUNCTION chunk(text, integer, integer, text) IS
	'the text cut into chunks of at most max_tokens tokens, preferring paragraph, sentence and word boundaries';
