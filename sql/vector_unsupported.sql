-- pgvector objects genai does not implement fail with clear errors
-- (src/vector/README, "Not supported"): ivfflat indexes refuse to build
-- with FEATURE_NOT_SUPPORTED and a hint; halfvec, sparsevec and pgvector's
-- bit functions get PostgreSQL's own "does not exist" errors.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS genai;
RESET client_min_messages;

CREATE TABLE unsup (id int, v vector(3));
INSERT INTO unsup VALUES (1, '[1,2,3]'), (2, '[4,5,6]');

-- ivfflat, as a pgvector dump writes it, and with the default opclass
CREATE INDEX unsup_ivf ON unsup USING ivfflat (v vector_l2_ops) WITH (lists = '100');
CREATE INDEX ON unsup USING ivfflat (v);
CREATE INDEX ON unsup USING ivfflat (v vector_cosine_ops);
\set VERBOSITY sqlstate
CREATE INDEX ON unsup USING ivfflat (v vector_ip_ops) WITH (lists = 1);
\set VERBOSITY default
-- also on an empty table, and nothing is left behind
CREATE TABLE unsup_empty (v vector(3));
CREATE INDEX ON unsup_empty USING ivfflat (v);
SELECT count(*) FROM pg_index WHERE indrelid IN ('unsup'::regclass, 'unsup_empty'::regclass);
-- pgvector's bit opclasses do not exist
CREATE TABLE unsup_bits (b bit(3));
CREATE INDEX ON unsup_bits USING ivfflat (b bit_hamming_ops);

-- other pgvector types and functions
CREATE TABLE unsup_half (v halfvec(3));
CREATE TABLE unsup_sparse (v sparsevec(3));
SELECT '[1,2,3]'::halfvec;
SELECT hamming_distance(B'101', B'111');
SELECT jaccard_distance(B'101', B'111');

-- the table itself still works
SELECT id FROM unsup ORDER BY v <-> '[4,5,5]' LIMIT 1;

DROP TABLE unsup, unsup_empty, unsup_bits;
