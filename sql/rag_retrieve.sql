-- retrieve() and retrieve_hybrid(): registration, ranking, reciprocal rank
-- fusion, the audit trail, and bad input.  The leakage suite is rag_leak.
CREATE EXTENSION IF NOT EXISTS genai;
SET client_min_messages = warning;
CREATE ROLE rag_owner;
CREATE ROLE rag_ann;
CREATE ROLE rag_bob;
RESET client_min_messages;
GRANT CREATE ON SCHEMA public TO rag_owner;

SET ROLE rag_owner;
CREATE TABLE rag_docs (
	doc_id    int PRIMARY KEY,
	tenant    text NOT NULL,
	title     text,
	url       text,
	body      text,
	embedding vector(3),
	tsv       tsvector GENERATED ALWAYS AS (to_tsvector('english', coalesce(body, ''))) STORED
);
INSERT INTO rag_docs VALUES
	(1, 'rag_ann', 'Leave policy', 'https://hr/leave', 'Annual leave is 25 days per year.', '[1, 0, 0]'),
	(2, 'rag_ann', 'Travel policy', 'https://hr/travel', 'Train tickets are reimbursed in second class.', '[0, 1, 0]'),
	(3, 'rag_ann', 'Security', NULL, 'Lock your laptop when you leave your desk.', '[0.6, 0, 0.8]'),
	(4, 'rag_bob', 'Bob leave balance', NULL, 'Bob has 3 days of annual leave left.', '[0.99, 0.01, 0]'),
	(5, 'rag_bob', 'Bob salary', NULL, 'Bob earns 90000 per year.', '[0, 0, 1]'),
	(6, 'rag_ann', 'Draft', NULL, 'Not embedded yet: leave rules draft.', NULL);
CREATE INDEX rag_docs_tsv ON rag_docs USING gin (tsv rag_tsvector_ops);
ALTER TABLE rag_docs ENABLE ROW LEVEL SECURITY;
CREATE POLICY rag_docs_tenant ON rag_docs USING (tenant = current_user);
GRANT SELECT ON rag_docs TO rag_ann, rag_bob;

-- registration: checked, and only by the owner
SELECT rag_register('rag_docs', id_column => 'nope');
SELECT rag_register('rag_docs', id_column => 'doc_id', embedding_column => 'body');
SELECT rag_register('rag_docs', id_column => 'doc_id', content_column => 'body',
					tsvector_column => 'title');
SELECT rag_register('rag_docs', id_column => 'doc_id', content_column => 'body',
					distance => 'hamming');
SELECT rag_register('rag_docs', id_column => 'doc_id', content_column => 'body',
					metadata_columns => '{title,url}', tsvector_column => 'tsv');
SELECT source, id_column, content_column, embedding_column, metadata_columns,
	   tsvector_column, ts_config, distance FROM rag_source;
RESET ROLE;
SET ROLE rag_bob;
SELECT rag_register('rag_docs', id_column => 'doc_id');
UPDATE rag_source SET content_column = 'tenant';
DELETE FROM rag_source;
INSERT INTO rag_source (source, id_column, content_column, embedding_column)
	VALUES ('rag_docs', 'a', 'b', 'c');
RESET ROLE;

-- vector retrieval: each role sees only its own rows, nearest first
SET ROLE rag_ann;
SELECT id, content, round(score::numeric, 4) AS score, metadata
FROM retrieve('[1, 0, 0]'::vector, 'rag_docs', 3);
SELECT id FROM retrieve('[1, 0, 0]'::vector, 'rag_docs', 10);
RESET ROLE;
SET ROLE rag_bob;
SELECT id, content, round(score::numeric, 4) AS score, metadata
FROM retrieve('[1, 0, 0]'::vector, 'rag_docs', 3);
RESET ROLE;

-- a prepared statement forced onto a generic plan, reused across roles:
-- retrieve plans its own query per call, so each role gets its own rows
SET plan_cache_mode = force_generic_plan;
PREPARE rag_q(vector) AS SELECT string_agg(id, ',' ORDER BY score DESC) FROM retrieve($1, 'rag_docs', 5);
SET ROLE rag_ann;
EXECUTE rag_q('[1, 0, 0]');
SET ROLE rag_bob;
EXECUTE rag_q('[1, 0, 0]');
SET ROLE rag_ann;
EXECUTE rag_q('[1, 0, 0]');
RESET ROLE;
DEALLOCATE rag_q;
RESET plan_cache_mode;

-- retrieve keeps the parsed vector query of a source for the session and
-- plans it per call: a policy change, a revoked privilege and a new
-- registration all show at the next call in the same session
SET ROLE rag_ann;
SELECT string_agg(id, ',' ORDER BY score DESC) FROM retrieve('[1, 0, 0]'::vector, 'rag_docs', 5);
RESET ROLE;
ALTER POLICY rag_docs_tenant ON rag_docs USING (tenant = current_user OR doc_id = 5);
SET ROLE rag_ann;
SELECT string_agg(id, ',' ORDER BY score DESC) FROM retrieve('[1, 0, 0]'::vector, 'rag_docs', 5);
RESET ROLE;
ALTER POLICY rag_docs_tenant ON rag_docs USING (tenant = current_user);
REVOKE SELECT ON rag_docs FROM rag_ann;
SET ROLE rag_ann;
\set VERBOSITY terse
SELECT count(*) FROM retrieve('[1, 0, 0]'::vector, 'rag_docs', 5);
\set VERBOSITY default
RESET ROLE;
GRANT SELECT ON rag_docs TO rag_ann;
SET ROLE rag_owner;
SELECT rag_register('rag_docs', id_column => 'doc_id', content_column => 'title',
					metadata_columns => '{title,url}', tsvector_column => 'tsv');
SET ROLE rag_ann;
SELECT id, content FROM retrieve('[1, 0, 0]'::vector, 'rag_docs', 1);
SET ROLE rag_owner;
SELECT rag_register('rag_docs', id_column => 'doc_id', content_column => 'body',
					metadata_columns => '{title,url}', tsvector_column => 'tsv');
RESET ROLE;

-- hybrid: both sides ranked, fused by reciprocal rank (k = 60)
SET ROLE rag_ann;
SELECT id, round(score::numeric, 6) AS score, vector_rank, text_rank
FROM retrieve_hybrid('leave days', 'rag_docs', 5, question_vector => '[0, 1, 0]');
-- expected: 1 = 1/61 + 1/61 (vector 2, text 1), ...
SELECT round((1.0/62 + 1.0/61)::numeric, 6) AS doc1, round((1.0/61)::numeric, 6) AS doc2;
-- text only, and weights
SELECT id, round(score::numeric, 6) AS score, vector_rank, text_rank
FROM retrieve_hybrid('leave', 'rag_docs', 5, vector_weight => 0);
SELECT id, round(score::numeric, 6) AS score, vector_rank, text_rank
FROM retrieve_hybrid('leave days', 'rag_docs', 2, vector_weight => 1, text_weight => 3,
					 rrf_k => 0, question_vector => '[0, 1, 0]');
-- a question of stop words only matches no text
SELECT id, vector_rank, text_rank
FROM retrieve_hybrid('the and of', 'rag_docs', 2, question_vector => '[0, 1, 0]');
RESET ROLE;
SET ROLE rag_bob;
SELECT id, round(score::numeric, 6) AS score, vector_rank, text_rank
FROM retrieve_hybrid('leave days', 'rag_docs', 5, question_vector => '[0, 1, 0]');
RESET ROLE;

-- the audit trail: one row per call, each role reads only its own
SET ROLE rag_ann;
SELECT role_name, call, source_name, retrieved_ids, status, question IS NULL AS no_question
FROM rag_audit ORDER BY id;
INSERT INTO rag_audit (roleid, role_name, call, status) VALUES (1, 'x', 'forged', 'ok');
UPDATE rag_audit SET status = 'forged';
DELETE FROM rag_audit;
SET genai.rag_audit = off;
SET genai.rag_audit_questions = on;
SELECT rag_audit_purge();
RESET ROLE;
SET ROLE rag_bob;
SELECT role_name, call, retrieved_ids FROM rag_audit ORDER BY id;
RESET ROLE;
SELECT role_name, call, retrieved_ids, latency_ms >= 0 AS timed FROM rag_audit ORDER BY id;
-- question text is stored only when a superuser turns it on
SET genai.rag_audit_questions = on;
SET ROLE rag_bob;
SELECT count(*) FROM retrieve_hybrid('earns', 'rag_docs', 1, vector_weight => 0);
RESET ROLE;
SELECT role_name, question FROM rag_audit ORDER BY id DESC LIMIT 1;
RESET genai.rag_audit_questions;
-- retention
SET genai.rag_audit_retention_days = 1;
UPDATE rag_audit SET at = at - interval '2 days' WHERE role_name = 'rag_ann';
SELECT rag_audit_purge();
SELECT role_name, count(*) FROM rag_audit GROUP BY 1 ORDER BY 1;
RESET genai.rag_audit_retention_days;

-- bad input
SET ROLE rag_ann;
SELECT * FROM retrieve('[1, 0, 0]'::vector, 'rag_docs', 0);
SELECT * FROM retrieve('[1, 0, 0]'::vector, 'rag_docs', 1001);
SELECT * FROM retrieve('[1, 0]'::vector, 'rag_docs', 1);
SELECT * FROM retrieve('[1, 0, 0]'::vector, 'pg_class', 1);
SELECT * FROM retrieve_hybrid('x', 'rag_docs', 3, -1, 1, question_vector => '[1,0,0]');
SELECT * FROM retrieve_hybrid('x', 'rag_docs', 3, 0, 0);
SELECT * FROM retrieve_hybrid('x', 'rag_docs', 3, rrf_k => -1, question_vector => '[1,0,0]');
SELECT * FROM retrieve_hybrid('x', 'rag_docs', 3, candidates => 2, question_vector => '[1,0,0]');
SELECT * FROM retrieve_hybrid(NULL, 'rag_docs', 3);
SELECT * FROM retrieve(NULL::vector, 'rag_docs', 3);
RESET ROLE;

-- a role without SELECT on the table gets the table's permission error
CREATE ROLE rag_nobody;
SET ROLE rag_nobody;
SELECT * FROM retrieve('[1, 0, 0]'::vector, 'rag_docs', 1);
RESET ROLE;

-- distances other than cosine
SET ROLE rag_owner;
SELECT rag_register('rag_docs', id_column => 'doc_id', content_column => 'body', distance => 'l2');
RESET ROLE;
SET ROLE rag_bob;
SELECT id, round(score::numeric, 4) AS score FROM retrieve('[1, 0, 0]'::vector, 'rag_docs', 2);
RESET ROLE;

-- names that need quoting, including one that reads like SQL, are quoted
CREATE TABLE "Rag Odd; DROP TABLE rag_docs; --" (
	"Doc Id" int PRIMARY KEY,
	"Body ""Text""" text,
	"E m b" vector(2),
	"Title');--" text
);
INSERT INTO "Rag Odd; DROP TABLE rag_docs; --" VALUES (1, 'first', '[1, 0]', 't1'), (2, 'second', '[0, 1]', 't2');
SELECT rag_register('"Rag Odd; DROP TABLE rag_docs; --"', id_column => 'Doc Id',
					content_column => 'Body "Text"', embedding_column => 'E m b',
					metadata_columns => ARRAY['Title'');--']::name[]);
SELECT * FROM retrieve('[0, 1]'::vector, '"Rag Odd; DROP TABLE rag_docs; --"', 2);
SELECT id, text_rank FROM retrieve_hybrid('first', '"Rag Odd; DROP TABLE rag_docs; --"', 2,
										  question_vector => '[0, 1]');
SELECT count(*) FROM rag_docs;
DROP TABLE "Rag Odd; DROP TABLE rag_docs; --";

DROP TABLE rag_docs;
SELECT count(*) FROM rag_source;
DELETE FROM rag_audit;
REVOKE CREATE ON SCHEMA public FROM rag_owner;
DROP ROLE rag_owner, rag_ann, rag_bob, rag_nobody;
DROP EXTENSION genai;
