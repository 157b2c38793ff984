-- chunk(): the guarantees checked over generated texts of several kinds,
-- for several budgets and overlaps, plus small exact cases and errors.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS genai;

CREATE TEMP TABLE texts (id int, t text);
-- prose with sentences and paragraphs
INSERT INTO texts SELECT 1, string_agg(
	CASE WHEN i % 17 = 0 THEN E'.\n\n' WHEN i % 7 = 0 THEN '. ' ELSE ' ' END ||
	(ARRAY['the', 'quick', 'brown', 'fox', 'jumps', 'over', 'lazy', 'dog',
		   'tokenization', 'PostgreSQL', 'don''t', '12345'])[1 + (i * 7919) % 12],
	'' ORDER BY i) FROM generate_series(1, 800) AS i;
-- multibyte: CJK sentences, emoji ZWJ sequences, combining marks, no spaces
INSERT INTO texts SELECT 2, string_agg(
	(ARRAY['日本語の文章です。', '🧑‍🤝‍🧑', 'é', 'ÿÿ', '한국어', 'naïve',
		   E'\u0301\u0301', 'Ελληνικά'])[1 + (i * 31) % 8], '' ORDER BY i)
	FROM generate_series(1, 600) AS i;
-- one long word, and a long run of a single character
INSERT INTO texts VALUES (3, repeat('abcdefghij', 300)), (4, repeat('x', 5000)),
	(5, repeat(' ', 3000)), (6, repeat(E'\r\n', 1000)), (7, 'short'), (8, '');

CREATE TEMP TABLE chunks AS
SELECT id, m, ov, c.*
FROM texts, (VALUES (1), (2), (5), (16), (100)) AS b(m),
	(VALUES (0), (1), (3), (15)) AS o(ov),
	LATERAL chunk(t, m, ov) AS c
WHERE ov < m AND (m >= 5 OR id <> 2);  -- a 4-byte character can need 4 tokens

-- every chunk within budget, and token_count is the chunk's own count
SELECT count(*) AS over_budget FROM chunks
WHERE token_count > m OR token_count <> token_count(content);

-- content matches the offsets
SELECT count(*) AS bad_offsets FROM chunks JOIN texts USING (id)
WHERE content <> substr(t, start_char + 1, end_char - start_char)
	OR octet_length(content) <> end_byte - start_byte
	OR start_byte < 0 OR end_byte > octet_length(t);

-- without their overlap the chunks give back the text, in order
SELECT id, m, ov FROM (
	SELECT id, m, ov, string_agg(substr(content, 1 + coalesce(prev_end, 0) - start_char),
								 '' ORDER BY seq) AS joined
	FROM (SELECT *, lag(end_char) OVER (PARTITION BY id, m, ov ORDER BY seq) AS prev_end
		  FROM chunks) AS x
	GROUP BY id, m, ov) AS y JOIN texts USING (id)
WHERE joined IS DISTINCT FROM t AND t <> ''
ORDER BY 1, 2, 3;

-- each chunk starts at or before the previous chunk's end, and ends after it
SELECT count(*) AS bad_order FROM (
	SELECT *, lag(end_char) OVER w AS prev_end, lag(seq) OVER w AS prev_seq
	FROM chunks WINDOW w AS (PARTITION BY id, m, ov ORDER BY seq)) AS x
WHERE prev_end IS NOT NULL AND (start_char > prev_end OR end_char <= prev_end
	OR seq <> prev_seq + 1);

-- overlaps: the requested number of tokens (counted on their own), except
-- when the previous chunk was shorter than that or the overlap had to be
-- dropped to make room
SELECT ov, count(*) FILTER (WHERE n = ov) AS exact,
	count(*) FILTER (WHERE n < ov) AS fewer, count(*) FILTER (WHERE n > ov) AS more
FROM (SELECT ov, token_count(substr(content, 1, prev_end - start_char)) AS n
	  FROM (SELECT *, lag(end_char) OVER (PARTITION BY id, m, ov ORDER BY seq) AS prev_end
			FROM chunks WHERE id = 1) AS x
	  WHERE prev_end IS NOT NULL) AS y
GROUP BY ov ORDER BY ov;

-- prose cuts at sentence and paragraph ends when the budget allows
SELECT seq, token_count, right(content, 12) AS ends_with
FROM chunk((SELECT t FROM texts WHERE id = 1), 60) LIMIT 6;

-- exact small cases
SELECT * FROM chunk(E'First paragraph here.\n\nSecond one. It has two sentences.', 8);
SELECT * FROM chunk('one two three four five six', 3, 1);
SELECT * FROM chunk('日本語のテキスト', 2, 0, 'o200k_base');
SELECT * FROM chunk('', 10);

-- errors
SELECT * FROM chunk('x', 0);
SELECT * FROM chunk('x', 5, 5);
SELECT * FROM chunk('x', 5, -1);
SELECT * FROM chunk('🧑', 1);
SELECT * FROM chunk('x', 5, 0, 'nope');

DROP TABLE texts, chunks;
DROP EXTENSION genai;
RESET client_min_messages;
