-- genai demo: an HR assistant that answers each employee from what that
-- employee may see.
--
-- Company policies are readable by everyone; an employee's record (salary,
-- leave balance) by that employee, their manager and HR.  Row-level security
-- says so, and genai's retrieval runs as the asking role, so the model is
-- never given a row the asker could not SELECT.  The same questions are
-- asked as Alice (engineer), Maria (Alice's manager) and Harry (HR).
--
-- It runs offline with genai's built-in "local" provider: deterministic
-- hashed n-gram embeddings and an extractive answerer that quotes the best
-- matching context sentences with their [n] citations.  It is a stand-in,
-- not a language model.  To use a real endpoint, replace the one statement
-- marked PROVIDER below (README, "The HR assistant demo").
\set ON_ERROR_STOP 1
\set QUIET on
\pset footer off
\pset format wrapped
\pset columns 120
SET client_min_messages = warning;
\echo
\echo '== genai demo: an HR assistant that answers from what each person may see'
CREATE EXTENSION genai;

-- PROVIDER: the model endpoint for embeddings and answers.
CREATE SERVER demo_llm FOREIGN DATA WRAPPER genai OPTIONS (kind 'local');

-- ---------------------------------------------------------------------
-- The company: people, who reports to whom, and an HR group
-- ---------------------------------------------------------------------
CREATE ROLE hr_admin;
CREATE ROLE alice;		-- engineer, reports to Maria
CREATE ROLE bob;		-- engineer, reports to Maria
CREATE ROLE carol;		-- sales, reports to Sam
CREATE ROLE maria;		-- engineering manager
CREATE ROLE sam;		-- sales manager
CREATE ROLE harry IN ROLE hr_admin;	-- HR administrator
GRANT USAGE ON FOREIGN SERVER demo_llm TO PUBLIC;

CREATE TABLE employees (
	login      name PRIMARY KEY,
	full_name  text NOT NULL,
	department text NOT NULL,
	manager    name REFERENCES employees
);
INSERT INTO employees VALUES
	('maria', 'Maria Lopez', 'Engineering', NULL),
	('sam', 'Sam Okafor', 'Sales', NULL),
	('harry', 'Harry Chen', 'People', NULL),
	('alice', 'Alice Martin', 'Engineering', 'maria'),
	('bob', 'Bob Novak', 'Engineering', 'maria'),
	('carol', 'Carol Diaz', 'Sales', 'sam');
GRANT SELECT ON employees TO PUBLIC;

-- One table of documents: policies (employee IS NULL) and personal records.
CREATE TABLE hr_documents (
	id        serial PRIMARY KEY,
	employee  name REFERENCES employees,	-- NULL: a company policy
	title     text NOT NULL,
	body      text NOT NULL,
	embedding vector,
	tsv       tsvector GENERATED ALWAYS AS (to_tsvector('english', title || '. ' || body)) STORED
);
INSERT INTO hr_documents (employee, title, body) VALUES
	(NULL, 'Annual leave policy',
	 'Every employee receives 25 days of paid annual leave per calendar year. Up to 5 unused days carry over to the next year and expire at the end of March. Leave is requested in the HR portal at least two weeks ahead.'),
	(NULL, 'Parental leave policy',
	 'Parents receive 16 weeks of fully paid parental leave after a birth or adoption. Parental leave can be split into up to three blocks within the first two years.'),
	(NULL, 'Sick leave policy',
	 'Employees who are ill report sick to their manager before 10:00. A doctor''s note is needed from the fourth day of sick leave.'),
	(NULL, 'Salary review policy',
	 'Salaries are reviewed once a year in April. Salary bands are published on the intranet; individual salaries are confidential between the employee, their manager and HR.'),
	(NULL, 'Travel and expenses policy',
	 'Train travel is reimbursed in second class. Flights need the approval of your manager. Expense claims are submitted within 30 days with receipts.'),
	(NULL, 'Remote work policy',
	 'Employees may work remotely up to three days per week. Working from another country requires HR approval in advance.'),
	('alice', 'Employee record: Alice Martin',
	 'Alice Martin is a Senior Engineer. Alice''s annual salary is 84,000 EUR. Alice has 12 days of annual leave left this year.'),
	('bob', 'Employee record: Bob Novak',
	 'Bob Novak is an Engineer. Bob''s annual salary is 71,500 EUR. Bob has 3 days of annual leave left this year. Bob takes a parental leave block from June.'),
	('carol', 'Employee record: Carol Diaz',
	 'Carol Diaz is an Account Executive. Carol''s annual salary is 66,000 EUR plus commission. Carol has 19 days of annual leave left this year.'),
	('maria', 'Employee record: Maria Lopez',
	 'Maria Lopez is the Engineering Manager. Maria''s annual salary is 112,000 EUR. Maria has 8 days of annual leave left this year.');

-- Who may read what: policies everyone; a record its employee, the
-- employee's manager, and HR.
ALTER TABLE hr_documents ENABLE ROW LEVEL SECURITY;
CREATE POLICY hr_read ON hr_documents FOR SELECT USING (
	employee IS NULL
	OR employee = current_user
	OR EXISTS (SELECT 1 FROM employees e WHERE e.login = employee AND e.manager = current_user)
	OR pg_has_role(current_user, 'hr_admin', 'MEMBER'));
GRANT SELECT ON hr_documents TO PUBLIC;

-- Tell genai how to read the table, embed every row (in batches, committed
-- as it goes), and index the text side so hybrid search stays indexed under
-- the policy.
SELECT rag_register('hr_documents', content_column => 'body', metadata_columns => '{title}',
					tsvector_column => 'tsv', provider => 'demo_llm') \g /dev/null
CALL rag_backfill('hr_documents', 4);
CREATE INDEX hr_documents_tsv ON hr_documents USING gin (tsv rag_tsvector_ops);
RESET client_min_messages;

\echo
\echo '== What each person may read (plain SELECT, same policy genai relies on)'
CREATE TABLE demo_seen (asked_as name, readable_records text);
GRANT INSERT ON demo_seen TO PUBLIC;
SET ROLE alice;
INSERT INTO demo_seen SELECT current_user, string_agg(title, ', ' ORDER BY id) FROM hr_documents WHERE employee IS NOT NULL;
SET ROLE maria;
INSERT INTO demo_seen SELECT current_user, string_agg(title, ', ' ORDER BY id) FROM hr_documents WHERE employee IS NOT NULL;
SET ROLE harry;
INSERT INTO demo_seen SELECT current_user, string_agg(title, ', ' ORDER BY id) FROM hr_documents WHERE employee IS NOT NULL;
RESET ROLE;
SELECT * FROM demo_seen;

-- ask(question): rag() as the current role, with the sources it was given
CREATE TABLE demo_answers (seq serial, question text, asked_as name, answer text, sources text);
GRANT INSERT ON demo_answers TO PUBLIC;
GRANT USAGE ON SEQUENCE demo_answers_seq_seq TO PUBLIC;
CREATE FUNCTION ask(question text) RETURNS void LANGUAGE sql AS $$
	INSERT INTO demo_answers (question, asked_as, answer, sources)
	SELECT question, current_user, r->>'answer',
		   (SELECT string_agg(format('[%s] %s', c->>'n', c->>'title'), E'\n' ORDER BY (c->>'n')::int)
			FROM jsonb_array_elements(r->'citations') c)
	FROM rag(question, 'hr_documents', k => 3, hybrid => true, provider => 'demo_llm') r;
$$;

\set q1 'How many days of annual leave do I have left?'
\set q2 'What is Bob''s salary?'
\set q3 'What is Carol''s salary?'
SET ROLE alice;
SELECT ask(:'q1'), ask(:'q2'), ask(:'q3') \g /dev/null
SET ROLE maria;
SELECT ask(:'q1'), ask(:'q2'), ask(:'q3') \g /dev/null
SET ROLE harry;
SELECT ask(:'q1'), ask(:'q2'), ask(:'q3') \g /dev/null
RESET ROLE;

\x on
\pset columns 100
\echo
\echo '== Q1:' :'q1'
SELECT asked_as, answer, sources FROM demo_answers WHERE question = :'q1' ORDER BY seq;
\echo '== Q2:' :'q2'
SELECT asked_as, answer, sources FROM demo_answers WHERE question = :'q2' ORDER BY seq;
\echo '== Q3:' :'q3'
SELECT asked_as, answer, sources FROM demo_answers WHERE question = :'q3' ORDER BY seq;

\x off
\echo '== The check: no answer was given a record its asker may not read'
SELECT a.role_name AS asked_as,
	   count(*) AS sources_given,
	   count(*) FILTER (WHERE d.employee IS NOT NULL) AS personal_records_given,
	   count(*) FILTER (WHERE d.employee IS NOT NULL AND d.employee <> a.role_name
						AND NOT EXISTS (SELECT 1 FROM employees e
										WHERE e.login = d.employee AND e.manager = a.role_name)
						AND NOT pg_has_role(a.role_name, 'hr_admin', 'MEMBER')) AS not_allowed
FROM rag_audit a, unnest(a.retrieved_ids) i JOIN hr_documents d ON d.id = i::int
WHERE a.call = 'rag'
GROUP BY a.role_name ORDER BY min(a.id);

\echo '== The audit trail (each role reads only its own rows; this is the superuser view)'
SELECT role_name, call, retrieved_ids, provider, prompt_tokens, completion_tokens,
	   round(latency_ms::numeric, 1) AS ms, status
FROM rag_audit ORDER BY id;
