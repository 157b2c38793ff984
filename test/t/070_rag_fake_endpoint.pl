# rag() end to end against the fake OpenAI-compatible endpoint
# (test/fake_endpoint.py), including its faults.  The fake's chat answer
# echoes the user message, so the answer shows exactly what the model was
# given: the test asserts it holds the asker's rows and never another
# tenant's.  Also: a backfill interrupted by a provider fault resumes, and
# a stalled provider is cancelled by statement_timeout.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use GenaiFakeEndpoint;

my $key = 'sk-fake-070-' . int(rand(1e9));
my $fake = GenaiFakeEndpoint->new(args => [ '--key', $key, '--retry-after', '0' ]);
my $url = $fake->url;

$ENV{GENAI_FAKE_KEY} = $key;
my $node = PostgreSQL::Test::Cluster->new('rag_fake');
$node->init;
$node->append_conf('postgresql.conf', qq{
genai.http_retry_delay = 10ms
genai.http_max_retries = 2
});
$node->start;

$node->safe_psql('postgres', qq{
CREATE EXTENSION genai;
CREATE SERVER fake FOREIGN DATA WRAPPER genai OPTIONS (kind 'openai', base_url '$url/v1',
  embedding_model 'fe', chat_model 'fc', api_key_env 'GENAI_FAKE_KEY', max_batch_inputs '3');
GRANT USAGE ON FOREIGN SERVER fake TO PUBLIC;
CREATE ROLE ann;
CREATE ROLE bob;
CREATE TABLE docs (id int PRIMARY KEY, tenant name, body text, embedding vector(8));
INSERT INTO docs (id, tenant, body) VALUES
  (1, 'ann', 'Ann: leave is 25 days.'),
  (2, 'ann', 'Ann: trains go second class.'),
  (3, 'ann', 'Ann: laptops are locked.'),
  (4, 'bob', 'Bob secret salary 99999.'),
  (5, 'bob', 'Bob secret bonus 12345.'),
  (6, 'bob', 'FAULT:500 poisons a batch'),
  (7, 'bob', 'Bob secret review due.');
ALTER TABLE docs ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant ON docs USING (tenant = current_user);
GRANT SELECT ON docs TO ann, bob;
SELECT rag_register('docs', content_column => 'body', provider => 'fake', dimensions => 8);
});

# runs SQL; returns (stdout, stderr with SQLSTATEs)
sub run_sql
{
	my ($sql) = @_;
	my ($out, $err) = ('', '');
	$node->psql('postgres', $sql, stdout => \$out, stderr => \$err,
		extra_params => [ '-v', 'VERBOSITY=verbose' ]);
	return ($out, $err);
}

# --- backfill through the provider, interrupted by a fault, resumed ---
$fake->reset;
my ($out, $err) = run_sql(q{CALL rag_backfill('docs', 3)});
like($err, qr/ERROR:  08006: provider "fake" returned HTTP status 500/,
	'backfill: a batch the provider rejects stops the run with its error');
is($node->safe_psql('postgres', 'SELECT count(embedding) FROM docs'), '3',
	'backfill: the batch committed before the fault stays');
$node->safe_psql('postgres', q{UPDATE docs SET body = 'Bob secret vacation plan.' WHERE id = 6});
($out, $err) = run_sql(q{CALL rag_backfill('docs', 3)});
like($err, qr/4 rows embedded in 2 batches/, 'backfill: the re-run resumes with the rest');
is($node->safe_psql('postgres', 'SELECT count(*) FROM docs WHERE embedding IS NULL'), '0',
	'backfill: every row embedded');
is($node->safe_psql('postgres', q{SELECT embedding::text FROM docs WHERE id = 1}),
	GenaiFakeEndpoint::vector_text('Ann: leave is 25 days.', 8),
	'backfill: the stored vector is the provider\'s embedding of the row');

# --- rag(): the model sees only the asker's rows ---
$fake->reset;
my $r = $node->safe_psql('postgres', q{SET ROLE ann;
  SELECT r->>'answer' FROM rag('What are the rules?', 'docs', 5) r});
like($r, qr/^echo: Sources:/, 'rag: the answer is the provider\'s (the fake echoes the prompt)');
like($r, qr/Ann: leave is 25 days\./, 'rag: the asker\'s rows reach the model');
unlike($r, qr/Bob|secret|99999|12345/, 'rag: no row of another tenant reaches the model');
like($r, qr/Question: What are the rules\?$/, 'rag: the question closes the prompt');
my $stats = $fake->stats;
is($stats->{by_route}{'/v1/embeddings'}, 1, 'rag: one embedding request');
is($stats->{by_route}{'/v1/chat/completions'}, 1, 'rag: one chat request');

$r = $node->safe_psql('postgres', q{SET ROLE bob;
  SELECT r->>'answer' || ' | ' || (r->'retrieved_ids')::text
  FROM rag('What are the rules?', 'docs', 5, hybrid => true) r});
unlike($r, qr/Ann:/, 'rag hybrid as bob: none of ann\'s rows');
like($r, qr/\| \["\d", "\d", "\d", "\d"\]$/, 'rag hybrid as bob: his four rows retrieved');

# --- faults: retried ones succeed, others fail cleanly, no audit row is forged ---
$fake->reset;
$r = $node->safe_psql('postgres', q{SET ROLE ann;
  SELECT r->>'answer' FROM rag('FAULT:503x1 leave?', 'docs', 2) r});
like($r, qr/^echo: /, 'rag: a 503 on the embedding request is retried, then answered');

# a fault in a retrieved row reaches only the chat request
$node->safe_psql('postgres', q{INSERT INTO docs (id, tenant, body) VALUES (8, 'ann', 'FAULT:500 in the context')});
$node->safe_psql('postgres', q{UPDATE docs SET embedding = (SELECT embedding FROM docs WHERE id = 1) WHERE id = 8});
my $before = $node->safe_psql('postgres', q{SELECT count(*) FROM rag_audit});
($out, $err) = run_sql(q{SET ROLE ann; SELECT rag('What are the rules?', 'docs', 5)});
like($err, qr/ERROR:  08006: provider "fake" returned HTTP status 500/,
	'rag: a failing chat request fails the call with the provider\'s SQLSTATE');
unlike($err, qr/Ann:|Bob|secret/, 'rag: the error carries no row content');
is($node->safe_psql('postgres', q{SELECT count(*) FROM rag_audit}), $before,
	'rag: a failed call leaves no audit row (it rolls back with the statement)');

($out, $err) = run_sql(q{SET ROLE ann; SELECT rag('FAULT:malformed x', 'docs', 2)});
like($err, qr/ERROR:  08P01: /, 'rag: malformed provider JSON is a protocol error');

# the connection is fine afterwards
is($node->safe_psql('postgres', q{SET ROLE ann; SELECT count(*) FROM retrieve('leave', 'docs', 2)}),
	'2', 'retrieve works after provider errors');

# --- a stalled provider: statement_timeout cancels rag() ---
($out, $err) = run_sql(q{SET statement_timeout = '500ms'; SET ROLE ann;
  SELECT rag('FAULT:stall=20000 slow', 'docs', 2)});
like($err, qr/ERROR:  57014: canceling statement due to statement timeout/,
	'rag: statement_timeout cancels a stalled provider call');

# --- the audit trail: one row per successful call, each role its own ---
is($node->safe_psql('postgres', q{SET ROLE ann; SELECT count(*) FROM rag_audit WHERE role_name <> 'ann'}),
	'0', 'audit: ann reads only her rows');
is($node->safe_psql('postgres', q{SELECT string_agg(role_name || ':' || call || ':' || status, ',' ORDER BY id)
  FROM rag_audit WHERE call = 'rag'}),
	'ann:rag:ok,bob:rag:ok,ann:rag:ok', 'audit: the three successful rag() calls');

$node->stop;
$fake->stop;
done_testing();
