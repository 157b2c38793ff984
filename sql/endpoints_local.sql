-- The built-in local provider, provider configuration and its checks,
-- and the usage ledger.  No network: remote providers are tested by TAP
-- tests against test/fake_endpoint.py.
CREATE EXTENSION IF NOT EXISTS genai;

-- embeddings: default dimension, unit norm, deterministic
SELECT vector_dims(embed('hello world')) AS dims,
       round(vector_norm(embed('hello world'))::numeric, 5) AS norm;
SELECT embed('hello world')::text = embed('hello world')::text AS same;
SELECT embed('Hello, World!')::text = embed('hello world')::text AS case_and_punctuation_ignored;
SELECT embed('The cat sat on the mat', dimensions => 8);
SELECT embed('x', dimensions => 1);
-- texts sharing words are closer than unrelated ones
SELECT (embed('annual leave days per year') <=> embed('How many days of annual leave?'))
     < (embed('salary bands and pay reviews') <=> embed('How many days of annual leave?')) AS closer;
-- a text without words still gets a unit vector
SELECT round(vector_norm(embed('', dimensions => 16))::numeric, 5) AS empty_norm;
SELECT embed(NULL::text) IS NULL AS null_in_null_out;
SELECT embed('x', dimensions => 0);
SELECT embed('x', dimensions => 16001);
SELECT embed('x', model => 'text-embedding-3-small');
SELECT embed('x', provider => 'no_such_provider');
SET genai.default_provider = '';
SELECT embed('x');
RESET genai.default_provider;

-- arrays: order kept, NULLs stay NULL, same vectors as one by one
SELECT e[1]::text = embed('alpha')::text AND e[3]::text = embed('gamma')::text AND e[2] IS NULL AS batched_equals_single,
       cardinality(e) AS n
FROM (SELECT embed(ARRAY['alpha', NULL, 'gamma'])) AS t(e);
SELECT embed('{}'::text[]) AS empty;
SELECT embed(NULL::text[]) IS NULL AS null_array;
SELECT embed('{{a,b},{c,d}}'::text[]);

-- extractive completion: the best matching context sentence, with its citation
SELECT llm_complete(E'Answer from the context and cite it.\n' ||
                    E'[1] Employees get 25 days of annual leave per year. Leave needs a manager''s approval.\n' ||
                    E'[2] Salaries are reviewed every April.\n' ||
                    E'[3] Laptops must use full-disk encryption.\n' ||
                    E'Question: How many days of annual leave do I get?');
-- context in the system prompt, question as the prompt
SELECT llm_complete('When are salaries reviewed?',
                    system_prompt => E'[1] Employees get 25 days of annual leave.\n[2] Salaries are reviewed every April.');
-- nothing relevant
SELECT llm_complete(E'[1] Laptops must use full-disk encryption.\nQuestion: Who won the football match?');
SELECT llm_complete(E'[1] Employees get twenty five days of annual leave per year.\nQuestion: annual leave?', max_tokens => 4);
SELECT llm_complete(NULL::text) IS NULL AS null_prompt;
SELECT llm_complete('x', temperature => 3);
SELECT llm_complete('x', max_tokens => 0);
SELECT llm_complete('x', model => 'gpt-4o');
-- the full form returns an OpenAI-shaped response, labelled as a stand-in
SELECT r->'choices'->0->'message'->>'content' AS answer, r->>'model' AS model,
       r->>'provider' AS provider, r->'stand_in' AS stand_in
FROM llm_complete('[{"role":"system","content":"Paris is the capital of France. Berlin is in Germany."},
                    {"role":"user","content":"What is the capital of France?"}]'::jsonb) AS r;
SELECT llm_complete('{"role":"user"}'::jsonb);
SELECT llm_complete('[]'::jsonb);
SELECT llm_complete('[{"content":"hi"}]'::jsonb);
SELECT llm_complete('[{"role":"system","content":"hi"}]'::jsonb);
SELECT llm_complete('[{"role":"user","content":"hi"}]'::jsonb, options => '[1]');

-- provider configuration: the validator
CREATE SERVER endpoints_bad1 FOREIGN DATA WRAPPER genai;
CREATE SERVER endpoints_bad2 FOREIGN DATA WRAPPER genai OPTIONS (kind 'gemini');
CREATE SERVER endpoints_bad3 FOREIGN DATA WRAPPER genai OPTIONS (kind 'openai');
CREATE SERVER endpoints_bad4 FOREIGN DATA WRAPPER genai OPTIONS (kind 'openai', base_url 'file:///etc/passwd');
CREATE SERVER endpoints_bad5 FOREIGN DATA WRAPPER genai OPTIONS (kind 'openai', base_url 'http://user:pw@host/v1');
CREATE SERVER endpoints_bad6 FOREIGN DATA WRAPPER genai OPTIONS (kind 'openai', base_url 'http://h/v1', api_key 'sk-secret');
CREATE SERVER endpoints_bad7 FOREIGN DATA WRAPPER genai OPTIONS (kind 'openai', base_url 'http://h/v1', headers 'x');
CREATE SERVER endpoints_bad8 FOREIGN DATA WRAPPER genai OPTIONS (kind 'local', base_url 'http://h/v1');
CREATE SERVER endpoints_bad9 FOREIGN DATA WRAPPER genai OPTIONS (kind 'openai', base_url 'http://h/v1', max_batch_inputs '0');
CREATE SERVER endpoints_bad10 FOREIGN DATA WRAPPER genai OPTIONS (kind 'openai', base_url 'http://h/v1', api_key_file 'relative/key');
CREATE SERVER endpoints_bad11 FOREIGN DATA WRAPPER genai OPTIONS (kind 'openai', base_url 'http://h/v1', tokenizer 'nope');
CREATE SERVER endpoints_bad12 FOREIGN DATA WRAPPER genai OPTIONS (kind 'openai', base_url 'http://h/v1', max_concurrency '0');
CREATE SERVER endpoints_bad13 FOREIGN DATA WRAPPER genai OPTIONS (kind 'openai', base_url 'http://h/v1', requests_per_minute 'fast');
CREATE SERVER endpoints_bad14 FOREIGN DATA WRAPPER genai OPTIONS (kind 'openai', base_url 'http://h/v1', proxy 'socks5://127.0.0.1:1080');
CREATE SERVER endpoints_bad15 FOREIGN DATA WRAPPER genai OPTIONS (kind 'openai', base_url 'http://h/v1', proxy 'http://user:pw@proxy:3128');
-- limits without shared_preload_libraries: accepted, with a warning, and not enforced
CREATE SERVER endpoints_lim FOREIGN DATA WRAPPER genai
  OPTIONS (kind 'openai', base_url 'http://127.0.0.1:9/v1', embedding_model 'm', max_concurrency '2', requests_per_minute '60');
SET genai.http_max_retries = 0;
\set VERBOSITY terse
SELECT embed('x', provider => 'endpoints_lim');
SELECT embed('x', provider => 'endpoints_lim');
\set VERBOSITY default
RESET genai.http_max_retries;
DROP SERVER endpoints_lim;
CREATE SERVER endpoints_p FOREIGN DATA WRAPPER genai
  OPTIONS (kind 'openai', base_url 'http://127.0.0.1:9/v1', embedding_model 'm', api_key_env 'ENDPOINTS_NO_SUCH_VAR');
CREATE USER MAPPING FOR PUBLIC SERVER endpoints_p OPTIONS (base_url 'http://evil/');
CREATE USER MAPPING FOR PUBLIC SERVER endpoints_p OPTIONS (api_key '');
ALTER FOREIGN DATA WRAPPER genai OPTIONS (kind 'openai');
SELECT name, kind, base_url, embedding_model, usable FROM providers ORDER BY name;
-- the key source is checked before anything is sent
SELECT embed('x', provider => 'endpoints_p');

-- roles: USAGE decides, and the ledger shows each role its own rows
CREATE ROLE regress_endpoints_user;
GRANT USAGE ON SCHEMA public TO regress_endpoints_user;
SET ROLE regress_endpoints_user;
SELECT embed('x', provider => 'endpoints_p');
SELECT vector_dims(embed('mine'));
SELECT rolname, provider, operation, model, requests, inputs, outcome FROM usage_ledger;
INSERT INTO usage_ledger (roleid, rolname, provider, kind, operation, requests, inputs, latency_ms, retries, outcome)
  VALUES (1, 'x', 'x', 'x', 'x', 0, 0, 0, 0, 'forged');
DELETE FROM usage_ledger;
CREATE SERVER endpoints_mine FOREIGN DATA WRAPPER genai OPTIONS (kind 'local');
CREATE USER MAPPING FOR CURRENT_USER SERVER local OPTIONS (base_url 'http://evil/');
RESET ROLE;
SELECT count(*) > 1 AS superuser_sees_all, count(DISTINCT rolname) AS roles FROM usage_ledger;
REVOKE USAGE ON FOREIGN SERVER local FROM PUBLIC;
SET ROLE regress_endpoints_user;
SELECT embed('x');
RESET ROLE;
GRANT USAGE ON FOREIGN SERVER local TO PUBLIC;

-- read-only transactions: local calls run unrecorded, remote calls are refused
BEGIN READ ONLY;
SELECT vector_dims(embed('read only'));
SELECT embed('x', provider => 'endpoints_p');
ROLLBACK;

DROP SERVER endpoints_p CASCADE;
REVOKE USAGE ON SCHEMA public FROM regress_endpoints_user;
DROP ROLE regress_endpoints_user;
TRUNCATE usage_ledger;
-- leave the database as found (later files create the extension themselves)
DROP EXTENSION genai;
