-- genai demo: nearest-neighbour search with the vector type.
--
-- The vectors below were made for this demo by hand: each axis scores a
-- topic (leave, pay, security, travel).  They are not model embeddings;
-- later stages of the demo embed real text.
\pset footer off
\echo
\echo '== genai demo: which policy answers a question?'
CREATE EXTENSION genai;

CREATE TABLE policy (
	id        int PRIMARY KEY,
	title     text NOT NULL,
	embedding vector(4) NOT NULL   -- leave, pay, security, travel
);

INSERT INTO policy VALUES
	(1, 'Annual leave and public holidays',   '[0.9, 0.1, 0.0, 0.1]'),
	(2, 'Parental leave',                     '[0.8, 0.3, 0.0, 0.0]'),
	(3, 'Salary bands and pay reviews',       '[0.1, 0.9, 0.0, 0.1]'),
	(4, 'Expense claims for business travel', '[0.0, 0.5, 0.1, 0.8]'),
	(5, 'Laptop and password security',       '[0.0, 0.0, 1.0, 0.1]'),
	(6, 'Working abroad',                     '[0.3, 0.2, 0.2, 0.8]');

\echo
\echo 'Question: "How many days off do I get?"  (question vector [1, 0, 0, 0])'
SELECT id, title, round((embedding <=> '[1,0,0,0]')::numeric, 4) AS cosine_distance
FROM policy ORDER BY embedding <=> '[1,0,0,0]' LIMIT 3;

\echo 'Question: "Can I claim my train ticket?"  (question vector [0, 0.4, 0, 0.9])'
SELECT id, title, round((embedding <-> '[0,0.4,0,0.9]')::numeric, 4) AS l2_distance
FROM policy ORDER BY embedding <-> '[0,0.4,0,0.9]' LIMIT 3;
