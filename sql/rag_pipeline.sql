-- rag() end to end with the built-in local provider, the per-role
-- embedding cache, and the resumable backfill.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS genai;
CREATE ROLE rag_p_owner;
CREATE ROLE rag_p_ann;
CREATE ROLE rag_p_bob;
RESET client_min_messages;
GRANT CREATE ON SCHEMA public TO rag_p_owner;

SET ROLE rag_p_owner;
CREATE TABLE rag_p_docs (
	id        int PRIMARY KEY,
	owner     name,              -- NULL: everyone may read it
	title     text,
	body      text,
	embedding vector(256)
);
INSERT INTO rag_p_docs VALUES
	(1, NULL, 'Leave policy', 'Annual leave is 25 days per year. Unused leave expires at the end of March.'),
	(2, NULL, 'Travel policy', 'Train tickets are reimbursed in second class. Flights need approval by a manager.'),
	(3, NULL, 'Security policy', 'Lock your laptop when you leave your desk. Passwords are never shared.'),
	(4, 'rag_p_ann', 'Ann leave balance', 'Ann has 12 days of annual leave left this year.'),
	(5, 'rag_p_bob', 'Bob leave balance', 'Bob has 3 days of annual leave left this year.'),
	(6, 'rag_p_bob', 'Bob salary', 'Bob earns 90000 euros per year.'),
	(7, NULL, 'Empty', NULL);
ALTER TABLE rag_p_docs ENABLE ROW LEVEL SECURITY;
CREATE POLICY rag_p_read ON rag_p_docs FOR SELECT USING (owner IS NULL OR owner = current_user);
CREATE POLICY rag_p_write ON rag_p_docs FOR UPDATE USING (true);
GRANT SELECT ON rag_p_docs TO rag_p_ann, rag_p_bob;
SELECT rag_register('rag_p_docs', content_column => 'body', metadata_columns => '{title}',
					provider => 'local', dimensions => 256);
RESET ROLE;

-- backfill: committed per batch, resumable; a first run stopped after two
-- batches of two leaves the rest for the next run
CALL rag_backfill('rag_p_docs', 2, max_batches => 2);
SELECT count(embedding) AS embedded, count(*) - count(embedding) AS pending FROM rag_p_docs;
CALL rag_backfill('rag_p_docs', 2);
SELECT count(embedding) AS embedded, count(*) - count(embedding) AS pending FROM rag_p_docs;
-- one batched embed request per batch (usage ledger), nothing embedded twice
SELECT operation, inputs FROM usage_ledger WHERE operation = 'embed' ORDER BY id;
-- the stored vectors are the provider's embeddings of the content
SELECT bool_and(embedding = embed(body, provider => 'local', dimensions => 256)) AS same
FROM rag_p_docs WHERE body IS NOT NULL;
-- nothing left: a re-run does nothing
CALL rag_backfill('rag_p_docs', 2);
CALL rag_backfill('rag_p_docs', 0);
CALL rag_backfill('pg_class');
BEGIN;
CALL rag_backfill('rag_p_docs');
ROLLBACK;

-- rag(): the answer, the sources given to the model, what was retrieved, tokens
SET ROLE rag_p_ann;
SELECT r->>'answer' AS answer, r->'citations' AS citations, r->'retrieved_ids' AS retrieved,
	   r->'provider' AS provider
FROM rag('How many days of annual leave do I have left?', 'rag_p_docs', 3) r;
RESET ROLE;
SET ROLE rag_p_bob;
SELECT r->>'answer' AS answer, r->'citations' AS citations, r->'retrieved_ids' AS retrieved
FROM rag('How many days of annual leave do I have left?', 'rag_p_docs', 3) r;
-- token usage is the prompt's exact count and the answer's count
SELECT (r->'usage'->>'prompt_tokens')::int > 0 AS has_prompt_tokens,
	   (r->'usage'->>'completion_tokens')::int = token_count(r->>'answer') AS completion_exact,
	   (r->'usage'->>'total_tokens')::int = (r->'usage'->>'prompt_tokens')::int
			+ (r->'usage'->>'completion_tokens')::int AS total_ok
FROM rag('How much does Bob earn?', 'rag_p_docs', 2) r;
-- hybrid, and a budget that leaves room for one source only
SELECT r->'retrieved_ids' AS retrieved, jsonb_array_length(r->'citations') AS given,
	   r->'omitted' AS omitted
FROM rag('annual leave', 'rag_p_docs', 4, hybrid => true, context_window => 330,
		 answer_reserve => 200) r;
RESET ROLE;

-- the audit trail records each rag() call with its tokens
SELECT role_name, call, retrieved_ids, provider, prompt_tokens > 0 AS prompt_tokens,
	   completion_tokens > 0 AS completion_tokens, status
FROM rag_audit WHERE call = 'rag' ORDER BY id;

-- the embedding cache is per role: Ann's repeated question is a hit, Bob's
-- first asking of the same text is a miss
SET ROLE rag_p_ann;
SELECT r->'embedding_cached' AS cached FROM rag('Who approves flights?', 'rag_p_docs', 1) r;
SELECT r->'embedding_cached' AS cached FROM rag('Who approves flights?', 'rag_p_docs', 1) r;
RESET ROLE;
SET ROLE rag_p_bob;
SELECT r->'embedding_cached' AS cached FROM rag('Who approves flights?', 'rag_p_docs', 1) r;
-- and the cache itself is not readable
SELECT count(*) FROM rag_embedding_cache;
RESET ROLE;
SELECT r.rolname, count(*) FROM rag_embedding_cache c JOIN pg_roles r ON r.oid = c.roleid
WHERE r.rolname LIKE 'rag_p_%' GROUP BY 1 ORDER BY 1;
-- a cached embedding equals a fresh one
SELECT bool_and(c.embedding = embed('Who approves flights?', provider => 'local', dimensions => 256))
FROM rag_embedding_cache c JOIN pg_roles r ON r.oid = c.roleid WHERE r.rolname = 'rag_p_ann'
  AND c.text_hash = sha256(convert_to('Who approves flights?', 'UTF8'));
-- turning the cache off embeds every time
SET genai.rag_embedding_cache = off;
SET ROLE rag_p_ann;
SELECT r->'embedding_cached' AS cached FROM rag('Who approves flights?', 'rag_p_docs', 1) r;
RESET ROLE;
RESET genai.rag_embedding_cache;

-- read-only transactions: the audit row cannot be written, so the call fails
BEGIN READ ONLY;
SELECT count(*) FROM retrieve('Who approves flights?', 'rag_p_docs', 1);
ROLLBACK;

-- bad input
SELECT rag(NULL, 'rag_p_docs');
SELECT rag('q', 'rag_p_docs', 0);
SELECT rag('q', 'rag_p_docs', context_window => 100, answer_reserve => 200);
SELECT rag('q', 'rag_p_docs', provider => 'no_such_provider');

DROP TABLE rag_p_docs;
DELETE FROM rag_audit;
DELETE FROM usage_ledger;
DELETE FROM rag_embedding_cache;
REVOKE CREATE ON SCHEMA public FROM rag_p_owner;
DROP ROLE rag_p_owner, rag_p_ann, rag_p_bob;
DROP EXTENSION genai;
