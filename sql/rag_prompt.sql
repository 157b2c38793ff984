-- build_prompt(): token-exact budgets, rank order, the cut last chunk.
-- Every count below is recomputed independently with token_count().
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS genai;
RESET client_min_messages;

CREATE TABLE rag_prompt_ctx AS
SELECT jsonb_agg(jsonb_build_object(
		   'id', 'doc' || i,
		   'content', repeat('Employees accrue ' || i || ' days of leave per year; unused days expire. ', i),
		   'metadata', jsonb_build_object('title', 'Policy ' || i, 'url', 'https://hr/p/' || i))
		 ORDER BY i) AS ctx
FROM generate_series(1, 6) i;

-- the prompt and what is in it
SELECT p->>'prompt' AS prompt, p->'included' AS included, p->'omitted' AS omitted,
	   p->'prompt_tokens' AS prompt_tokens, p->'budget' AS budget
FROM build_prompt('How many days of leave?', (SELECT ctx FROM rag_prompt_ctx), 300, 100) p;

-- the default instructions: answer only from the context, say when unknown
SELECT build_prompt('q', '[]') ->> 'system' AS system;

-- prompt_tokens is exact: system + user + chat framing (3 per message, 3 for
-- the reply, and the role names), for budgets from tiny to roomy
CREATE TABLE rag_prompt_runs AS
SELECT w AS window_size, 64 AS reserve,
	   build_prompt('How many days of leave do I get?', (SELECT ctx FROM rag_prompt_ctx),
					w, 64, min_tail_tokens => 8) AS p
FROM generate_series(160, 1200, 13) w;
SELECT count(*) AS runs,
	   count(*) FILTER (WHERE (p->>'prompt_tokens')::int <= window_size - reserve) AS within_budget,
	   count(*) FILTER (WHERE (p->>'prompt_tokens')::int =
			token_count(p->>'system') + token_count(p->>'prompt')
			+ token_count('system') + token_count('user') + 9) AS exact_count,
	   count(*) FILTER (WHERE (p->>'budget')::int = window_size - reserve) AS budget_ok
FROM rag_prompt_runs;

-- chunks in rank order: the included ids are always a prefix of the input,
-- numbered 1..n, and only the last may be cut
SELECT count(*) AS runs,
	   count(*) FILTER (WHERE ids_in_order) AS in_rank_order,
	   count(*) FILTER (WHERE cut_is_last) AS cut_only_last,
	   count(*) FILTER (WHERE n_cut > 0) AS runs_with_a_cut,
	   count(*) FILTER (WHERE (p->>'omitted')::int + n_incl = 6) AS accounted
FROM rag_prompt_runs,
LATERAL (SELECT count(*) AS n_incl,
				coalesce(bool_and(e->>'id' = 'doc' || o AND (e->>'n')::int = o), true) AS ids_in_order,
				count(*) FILTER (WHERE (e->>'truncated')::boolean) AS n_cut,
				coalesce(bool_and(NOT (e->>'truncated')::boolean OR o = jsonb_array_length(p->'included')), true) AS cut_is_last
		 FROM jsonb_array_elements(p->'included') WITH ORDINALITY AS x(e, o)) s;

-- the cut chunk is a prefix of its text, cut on a token boundary, at least
-- min_tail_tokens long, and the cut fills the budget to within 3 tokens
SELECT count(*) AS cuts,
	   count(*) FILTER (WHERE strpos(ctx->(n - 1)->>'content', passage) = 1) AS prefixes,
	   count(*) FILTER (WHERE length(passage) < length(ctx->(n - 1)->>'content')) AS shorter,
	   count(*) FILTER (WHERE token_count(passage) >= 8) AS at_least_min_tail,
	   count(*) FILTER (WHERE tokenize(passage) =
			(tokenize(ctx->(n - 1)->>'content'))[1:cardinality(tokenize(passage))]) AS token_prefix,
	   count(*) FILTER (WHERE (p->>'budget')::int - (p->>'prompt_tokens')::int <= 3) AS fills_budget
FROM rag_prompt_runs, rag_prompt_ctx,
LATERAL (SELECT (e->>'n')::int AS n FROM jsonb_array_elements(p->'included') e
		 WHERE (e->>'truncated')::boolean) c,
LATERAL (SELECT substring(p->>'prompt' FROM '\[' || n || '\] (.*?)\n\nQuestion:') AS passage) t;

-- min_tail_tokens: a chunk is cut only if that much of it fits
SELECT (p->'included') @> '[{"truncated": true}]' AS cut
FROM build_prompt('How many days of leave do I get?', (SELECT ctx FROM rag_prompt_ctx), 186, 64,
				  min_tail_tokens => 8) p;
SELECT (p->'included') @> '[{"truncated": true}]' AS cut
FROM build_prompt('How many days of leave do I get?', (SELECT ctx FROM rag_prompt_ctx), 186, 64,
				  min_tail_tokens => 2000) p;

-- other encodings count differently, and a custom system prompt is used
SELECT (a->>'prompt_tokens')::int = token_count(a->>'system', 'o200k_base') + token_count(a->>'prompt', 'o200k_base')
		   + token_count('system', 'o200k_base') + token_count('user', 'o200k_base') + 9 AS o200k_exact,
	   a->>'system' AS system
FROM build_prompt('How many days of leave?', (SELECT ctx FROM rag_prompt_ctx), 600, 64,
				  encoding => 'o200k_base', system_prompt => 'Answer briefly.') a;

-- plain strings as context; no context at all
SELECT p->>'prompt' AS prompt, p->'included' AS included
FROM build_prompt('Who approves flights?', '["Flights need approval by a manager.", "Trains do not."]') p;
SELECT p->>'prompt' AS prompt, p->'omitted' AS omitted
FROM build_prompt('Who approves flights?', '[]') p;

-- errors
SELECT build_prompt('How many days of leave?', (SELECT ctx FROM rag_prompt_ctx), 60, 20);
SELECT build_prompt('q', '[]', 100, 100);
SELECT build_prompt('q', '[]', 100, 10, min_tail_tokens => 0);
SELECT build_prompt('q', NULL);
SELECT build_prompt('q', '{"id": 1}');
SELECT build_prompt('q', '[]', encoding => 'no_such_encoding');

DROP TABLE rag_prompt_ctx, rag_prompt_runs;
DROP EXTENSION genai;
