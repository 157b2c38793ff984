# pg_dump / pg_restore of a database using rag: registrations (rag_source)
# and the audit trail are extension configuration and come back; the
# embedding cache does not; the leakproof GIN index and the event trigger
# come back; retrieval works the same after the restore, under RLS.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('rag_dump');
$node->init;
$node->start;

$node->safe_psql('postgres', q{
CREATE DATABASE src;
CREATE DATABASE dst;
CREATE ROLE ann;
CREATE ROLE bob;
});
$node->safe_psql('src', q{
CREATE EXTENSION genai;
CREATE TABLE docs (id int PRIMARY KEY, tenant name, title text, body text, embedding vector(384),
  tsv tsvector GENERATED ALWAYS AS (to_tsvector('english', body)) STORED);
INSERT INTO docs (id, tenant, title, body)
SELECT i, CASE WHEN i % 2 = 0 THEN 'ann' ELSE 'bob' END, 'doc ' || i,
       'policy number ' || i || ' about ' || (ARRAY['leave', 'travel', 'pay', 'laptops'])[1 + i % 4]
FROM generate_series(1, 200) i;
CREATE INDEX docs_tsv ON docs USING gin (tsv rag_tsvector_ops);
ALTER TABLE docs ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant ON docs USING (tenant = current_user);
GRANT SELECT ON docs TO ann, bob;
SELECT rag_register('docs', content_column => 'body', metadata_columns => '{title}',
                    tsvector_column => 'tsv', provider => 'local');
CALL rag_backfill('docs', 50);
});

my $query = q{SET ROLE ann; SELECT string_agg(id, ',' ORDER BY score DESC, id)
  FROM retrieve_hybrid('travel policy', 'docs', 8)};
my $before = $node->safe_psql('src', $query);
ok($before ne '', 'retrieve_hybrid works before the dump');
$node->safe_psql('src', q{SET ROLE bob; SELECT count(*) FROM retrieve('pay', 'docs', 3)});
is($node->safe_psql('src', 'SELECT count(*) FROM rag_embedding_cache'), '2',
	'two questions cached before the dump');

my $dump = $node->basedir . '/src.dump';
command_ok([ 'pg_dump', '-Fc', '-d', $node->connstr('src'), '-f', $dump ], 'pg_dump');
command_ok([ 'pg_restore', '-d', $node->connstr('dst'), $dump ], 'pg_restore');

is($node->safe_psql('dst', q{SELECT source::text, content_column, metadata_columns::text,
  tsvector_column, provider FROM rag_source}),
	'docs|body|{title}|tsv|local', 'the registration comes back, naming the restored table');
is($node->safe_psql('dst', q{SELECT string_agg(role_name || ':' || call, ',' ORDER BY id) FROM rag_audit}),
	'ann:retrieve_hybrid,bob:retrieve', 'the audit trail comes back');
is($node->safe_psql('dst', q{SET ROLE ann; SELECT string_agg(role_name, ',') FROM rag_audit}),
	'ann', 'restored audit rows stay readable by their role only');
is($node->safe_psql('dst', 'SELECT count(*) FROM rag_embedding_cache'), '0',
	'the embedding cache is not dumped');
is($node->safe_psql('dst', q{SELECT pg_get_indexdef('docs_tsv'::regclass) ~ 'rag_tsvector_ops'}),
	't', 'the GIN index keeps the leakproof operator class');
like($node->safe_psql('dst', q{SET ROLE ann; SET enable_seqscan = off;
  EXPLAIN (COSTS OFF) SELECT id FROM docs WHERE tsv OPERATOR(public.@@) to_tsquery('english', 'travel')}),
	qr/Bitmap Index Scan on docs_tsv/, 'and it is used below the policy after the restore');
is($node->safe_psql('dst', $query), $before, 'retrieve_hybrid returns the same rows after the restore');
is($node->safe_psql('dst', q{SELECT count(*) FROM pg_event_trigger WHERE evtname = 'rag_source_forget_dropped'}),
	'1', 'the event trigger comes back');
$node->safe_psql('dst', 'DROP TABLE docs');
is($node->safe_psql('dst', 'SELECT count(*) FROM rag_source'), '0',
	'dropping the restored table forgets its registration');

$node->stop;
done_testing();
