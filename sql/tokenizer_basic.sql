-- tokenize, token_count, detokenize, detokenize_bytes, truncate_tokens:
-- known ids, model aliases, edge cases and every error.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS genai;

-- tiktoken's classic examples
SELECT tokenize('hello world');
SELECT tokenize('hello world', 'o200k_base');
SELECT tokenize('hello world', 'p50k_base'), tokenize('hello world', 'r50k_base');
SELECT token_count('hello world'), token_count('', 'o200k_base');
SELECT tokenize('');
SELECT detokenize(tokenize('Grüße, 世界! 🧑‍🤝‍🧑'));
SELECT detokenize(ARRAY[]::integer[]);
SELECT detokenize_bytes(tokenize('héllo'));

-- special-token text is ordinary text (encode_ordinary)
SELECT tokenize('<|endoftext|>');
SELECT tokenize('<|endoftext|>', 'o200k_base');
-- but special ids decode
SELECT detokenize(ARRAY[100257]), detokenize(ARRAY[199999], 'o200k_base'),
	detokenize(ARRAY[50256], 'r50k_base');

-- model names
SELECT e, tokenize('hello world', e) FROM (VALUES ('gpt-4o'), ('gpt-4o-mini'),
	('gpt-4.1'), ('o1'), ('o3'), ('o4-mini'), ('gpt-4'), ('gpt-3.5-turbo'),
	('text-embedding-3-small'), ('text-embedding-3-large'),
	('text-embedding-ada-002'), ('text-davinci-003'), ('davinci'),
	('gpt-4o-2024-08-06'), ('gpt2')) AS m(e);

-- contractions, digits, whitespace
SELECT tokenize('I''M you''Re they''LL it''s 1234567 a  b' || E'\r\n\r\n' || 'x   ');
SELECT tokenize('I''M you''Re they''LL it''s 1234567 a  b' || E'\r\n\r\n' || 'x   ', 'o200k_base');

-- truncation
SELECT truncate_tokens('hello world, how are you?', 3);
SELECT truncate_tokens('hello world', 0), truncate_tokens('hello world', 100);
SELECT truncate_tokens('日本語のテキスト', 2) AS cut,
	token_count(truncate_tokens('日本語のテキスト', 2)) AS n;
-- a token that is only part of a character is never cut through
SELECT t, n, truncate_tokens(t, n), token_count(truncate_tokens(t, n))
FROM (VALUES ('🧑‍🤝‍🧑'), ('ÿÿÿÿ')) AS v(t), generate_series(0, 4) AS n
ORDER BY t, n;

-- errors
SELECT tokenize('x', 'cl200k_base');
SELECT token_count('x', '');
SELECT detokenize(ARRAY[100256, 100261]);
SELECT detokenize(ARRAY[-1]);
SELECT detokenize(ARRAY[1, NULL]);
SELECT detokenize(ARRAY[[1],[2]]);
SELECT detokenize(ARRAY[3574]);   -- two bytes of a three-byte character
SELECT detokenize_bytes(ARRAY[3574]);
SELECT detokenize(ARRAY[3574, 222]);  -- completed: U+4E00
SELECT detokenize(ARRAY[222]);    -- a lone continuation byte
SELECT detokenize(ARRAY[188]);    -- byte 0
SELECT truncate_tokens('x', -1);

-- NULLs (STRICT)
SELECT tokenize(NULL), token_count(NULL), detokenize(NULL), truncate_tokens(NULL, 1);

DROP EXTENSION genai;
RESET client_min_messages;
