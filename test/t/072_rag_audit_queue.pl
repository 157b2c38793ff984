# The queued audit write (shared_preload_libraries = 'genai'): audit rows of
# retrieve() are written by the background worker as the extension's owner,
# survive the caller's ROLLBACK, leave the caller's transaction read-only
# (no transaction id, so no WAL flush at commit), are written exactly once,
# survive a fast shutdown, and cannot be skipped or forged by the caller;
# a rag() whose completion call fails after retrieval is recorded with the
# SQLSTATE.
# genai.rag_audit_write = transactional brings back the write in the
# caller's transaction; a row too long for a queue slot is written that way
# too, and fails closed in a read-only transaction.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use GenaiFakeEndpoint;

my $fake = GenaiFakeEndpoint->new(args => [ '--retry-after', '0' ]);
my $url = $fake->url;

my $node = PostgreSQL::Test::Cluster->new('rag_audit_queue');
$node->init;
$node->append_conf('postgresql.conf', "shared_preload_libraries = 'genai'\ngenai.http_retry_delay = 10ms\n");
$node->start;

$node->safe_psql('postgres', qq{
CREATE EXTENSION genai;
CREATE ROLE ann LOGIN;
CREATE ROLE bob LOGIN;
CREATE TABLE docs (id int PRIMARY KEY, tenant name, body text, embedding vector(3));
INSERT INTO docs SELECT i, CASE WHEN i % 2 = 0 THEN 'ann' ELSE 'bob' END, 'doc ' || i,
  ARRAY[cos(i), sin(i), 1]::real[]::vector FROM generate_series(1, 100) i;
ALTER TABLE docs ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant ON docs USING (tenant = current_user);
GRANT SELECT ON docs TO ann, bob;
SELECT rag_register('docs', content_column => 'body', dimensions => 3);
CREATE SERVER fake FOREIGN DATA WRAPPER genai OPTIONS (kind 'openai', base_url '$url/v1',
  embedding_model 'fe', chat_model 'fc');
GRANT USAGE ON FOREIGN SERVER fake TO ann, bob;
});

sub audit_count
{
	my ($cond) = @_;
	return $node->safe_psql('postgres', "SELECT count(*) FROM rag_audit WHERE $cond");
}

sub wait_for
{
	my ($cond, $n, $what) = @_;
	ok($node->poll_query_until('postgres', "SELECT count(*) = $n FROM rag_audit WHERE $cond"), $what)
	  or diag($node->safe_psql('postgres', 'SELECT id, role_name, call, status FROM rag_audit'));
}

is($node->safe_psql('postgres', 'SHOW genai.rag_audit_write'), 'queued', 'queued is the default');

# the caller's transaction stays read-only and the row survives ROLLBACK
my $out = $node->safe_psql('postgres', q{
BEGIN;
SELECT string_agg(id, ',' ORDER BY score DESC) FROM retrieve('[1, 0, 1]'::vector, 'docs', 3);
SELECT pg_current_xact_id_if_assigned() IS NULL;
ROLLBACK;}, extra_params => [ '-U', 'ann' ]);
is($out, "44,88,94\nt", 'retrieve returns ann\'s rows and assigns no transaction id');
wait_for(q{role_name = 'ann' AND call = 'retrieve' AND retrieved_ids = '{44,88,94}'}, 1,
	'the worker writes the row of a rolled-back call');
is($node->safe_psql('postgres', q{SELECT at <= now() AND latency_ms >= 0 AND status = 'ok'
  AND source = 'docs'::regclass::oid FROM rag_audit WHERE role_name = 'ann'}),
	't', 'the row has the call\'s time, latency, status and source');

# read-only transactions may retrieve: the queue records them
is($node->safe_psql('postgres', q{BEGIN READ ONLY; SELECT count(*) FROM retrieve('[0, 1, 1]'::vector, 'docs', 4); COMMIT;},
		extra_params => [ '-U', 'bob' ]),
	'4', 'retrieve in a read-only transaction');
wait_for(q{role_name = 'bob'}, 1, 'the read-only call is recorded');

# every call exactly once
$node->safe_psql('postgres', join('', map { "SELECT count(*) FROM retrieve('[1, $_, 1]'::vector, 'docs', 2);\n" } 1 .. 50),
	extra_params => [ '-U', 'ann' ]);
wait_for(q{role_name = 'ann'}, 51, 'fifty more calls, fifty more rows');
sleep(1);
is(audit_count(q{role_name = 'ann'}), '51', 'and no duplicates');

# a rag() whose completion fails after retrieval: the row records the failure
my ($stdout, $stderr) = ('', '');
$node->psql('postgres', q{BEGIN; SELECT rag('FAULT:503 leave?', 'docs', 2, provider => 'fake'); COMMIT;},
	stderr => \$stderr, extra_params => [ '-U', 'ann' ]);
like($stderr, qr/returned HTTP status 503/, 'the completion call fails');
wait_for(q{role_name = 'ann' AND call = 'rag' AND status = 'error 08006' AND provider = 'fake'
  AND cardinality(retrieved_ids) = 2 AND prompt_tokens > 0}, 1,
	'the failed rag() call is recorded with its SQLSTATE and the rows it sent');
is($node->safe_psql('postgres', q{SELECT r->>'provider' FROM rag('leave?', 'docs', 2, provider => 'fake') r},
		extra_params => [ '-U', 'ann' ]),
	'fake', 'rag() through the fake endpoint');
wait_for(q{role_name = 'ann' AND call = 'rag' AND status = 'ok'}, 1, 'and the successful one as ok');
$node->safe_psql('postgres', q{DELETE FROM rag_audit WHERE call = 'rag'});

# the caller can neither skip nor forge rows
for my $sql (
	q{SET genai.rag_audit = off},
	q{SET genai.rag_audit_write = transactional},
	q{INSERT INTO rag_audit (roleid, role_name, call, status) VALUES (1, 'bob', 'retrieve', 'ok')},
	q{UPDATE rag_audit SET retrieved_ids = '{}'},
	q{DELETE FROM rag_audit})
{
	$node->psql('postgres', $sql, stderr => \$stderr, extra_params => [ '-U', 'ann' ]);
	like($stderr, qr/permission denied/, "refused to the caller: $sql");
}
is(audit_count('true'), '52', 'nothing changed');
is($node->safe_psql('postgres', q{SELECT string_agg(DISTINCT role_name, ',') FROM rag_audit},
		extra_params => [ '-U', 'bob' ]),
	'bob', 'a caller reads only its own rows');

# rows still queued at a fast shutdown are written before the server stops
$node->safe_psql('postgres', q{SELECT count(*) FROM retrieve('[1, 1, 0]'::vector, 'docs', 1)},
	extra_params => [ '-U', 'bob' ]);
# (a worker registered but not yet started when the shutdown begins would
# never run: wait until it is there)
ok($node->poll_query_until('postgres',
		q{SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'genai usage writer'}),
	'the writer runs');
$node->stop('fast');
$node->start;
is(audit_count(q{role_name = 'bob'}), '2', 'a row queued just before a fast shutdown is written');

# a row too long for a queue slot is written in the caller's transaction
$node->safe_psql('postgres', q{ALTER SYSTEM SET genai.rag_audit_questions = on; SELECT pg_reload_conf();});
$node->psql('postgres', q{BEGIN READ ONLY; SELECT count(*) FROM retrieve(repeat('long question ', 300), 'docs', 1); COMMIT;},
	stderr => \$stderr, extra_params => [ '-U', 'ann', '-v', 'VERBOSITY=verbose' ]);
like($stderr, qr/ERROR:  25006: cannot run retrieve\(\) in a read-only transaction\nDETAIL:  Its audit row could not be queued/,
	'an unqueueable row fails closed in a read-only transaction');
$out = $node->safe_psql('postgres', q{
BEGIN;
SELECT count(*) FROM retrieve(repeat('long question ', 300), 'docs', 1);
ROLLBACK;
SELECT count(*) FROM retrieve(repeat('long question ', 300), 'docs', 1);},
	extra_params => [ '-U', 'ann' ]);
is($out, "1\n1", 'in a read-write transaction it works');
sleep(1);
is(audit_count(q{length(question) = 4200}), '1',
	'its row, with the whole question, belongs to the caller\'s transaction');

# genai.rag_audit_write = transactional: the caller's transaction, lost on ROLLBACK
$node->safe_psql('postgres', q{ALTER SYSTEM SET genai.rag_audit_write = transactional; SELECT pg_reload_conf();});
$out = $node->safe_psql('postgres', q{
BEGIN;
SELECT count(*) FROM retrieve('[1, 0, 1]'::vector, 'docs', 3);
SELECT pg_current_xact_id_if_assigned() IS NOT NULL;
ROLLBACK;
SELECT count(*) FROM retrieve('[1, 0, 1]'::vector, 'docs', 3);}, extra_params => [ '-U', 'bob' ]);
is($out, "3\nt\n3", 'transactional: the call writes in the caller\'s transaction');
sleep(1);
is(audit_count(q{role_name = 'bob'}), '3', 'transactional: the rolled-back row is gone, the committed one is there');
$node->psql('postgres', q{BEGIN READ ONLY; SELECT count(*) FROM retrieve('[1, 0, 1]'::vector, 'docs', 3); COMMIT;},
	stderr => \$stderr, extra_params => [ '-U', 'bob' ]);
like($stderr, qr/cannot run retrieve\(\) in a read-only transaction/,
	'transactional: read-only transactions are refused');

$node->stop;
done_testing();
