# With shared_preload_libraries = 'genai': usage rows survive ROLLBACK and
# failed calls, remote calls work in read-only transactions, per-role
# token budgets refuse calls past the limit, provider statistics count
# calls, errors and retries, and the per-database writer exits when idle
# so DROP DATABASE is not blocked.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use GenaiFakeEndpoint;

my $fake = GenaiFakeEndpoint->new(args => [ '--retry-after', '0' ]);
my $url = $fake->url;

my $node = PostgreSQL::Test::Cluster->new('endpoints_preload');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'genai'
genai.http_retry_delay = 10ms
});
$node->start;
$node->safe_psql('postgres', qq{
CREATE EXTENSION genai;
CREATE SERVER fake FOREIGN DATA WRAPPER genai OPTIONS (kind 'openai', base_url '$url/v1',
  embedding_model 'fe', chat_model 'fc');
CREATE ROLE bob LOGIN;
GRANT USAGE ON FOREIGN SERVER fake TO bob;
ALTER ROLE bob SET genai.token_budget = 12;
});

sub ledger_has
{
	my ($cond, $what) = @_;
	ok($node->poll_query_until('postgres', "SELECT count(*) > 0 FROM usage_ledger WHERE $cond"), $what);
}

# a call whose transaction rolls back is still recorded
$node->safe_psql('postgres', q{BEGIN; SELECT embed('rolled back', provider => 'fake'); ROLLBACK;});
ledger_has(q{provider = 'fake' AND outcome = 'ok' AND inputs = 1 AND requests = 1},
	'the row of a rolled-back call is written by the worker');

# a failed call is recorded with its SQLSTATE, retries included
my ($out, $err) = ('', '');
$node->psql('postgres', q{SELECT embed('FAULT:503 x', provider => 'fake')}, stderr => \$err);
like($err, qr/returned HTTP status 503/, 'the failing call fails');
ledger_has(q{outcome = '08006' AND retries = 3 AND requests = 1},
	'the failed call is recorded with SQLSTATE 08006 and its retries');

# read-only transactions may call remote providers: the queue records them
is($node->safe_psql('postgres', q{BEGIN READ ONLY; SELECT embed('read only', provider => 'fake') IS NOT NULL; COMMIT;}),
	't', 'remote call in a read-only transaction');
ledger_has(q{provider = 'fake' AND input_tokens = 3 AND outcome = 'ok' AND ts > now() - interval '1 minute'},
	'read-only call recorded');

# statistics
$node->poll_query_until('postgres', q{SELECT calls = 3 FROM provider_stats WHERE provider = 'fake'})
  or diag($node->safe_psql('postgres', 'SELECT * FROM provider_stats'));
is($node->safe_psql('postgres', q{SELECT calls, errors, retries FROM provider_stats WHERE provider = 'fake'}),
	'3|1|3', 'provider_stats: calls, errors, retries');
$node->psql('postgres', q{SELECT * FROM provider_stats}, stderr => \$err, extra_params => [ '-U', 'bob' ]);
like($err, qr/permission denied/, 'provider_stats is for pg_read_all_stats');

# budgets: bob may spend 12 tokens a day.  "abcdefgh" is reserved as 1
# token (cl100k_base) and charged as the 2 the endpoint reports using, so
# six calls fit (used 10, + 1 reserved <= 12) and the seventh does not.
is($node->safe_psql('postgres', q{SELECT token_count('abcdefgh')}), '1', 'test text is 1 cl100k token');
my $ok = 0;
my $last_err = '';
for my $i (1 .. 8)
{
	($out, $err) = ('', '');
	$node->psql('postgres', q{SELECT embed('abcdefgh', provider => 'fake') IS NOT NULL},
		stdout => \$out, stderr => \$err, extra_params => [ '-U', 'bob', '-v', 'VERBOSITY=verbose' ]);
	if ($out eq 't') { $ok++; } else { $last_err = $err; last; }
}
is($ok, 6, 'a budget of 12 tokens allows six 2-token calls');
like($last_err, qr/ERROR:  53400: token budget of role "bob" exceeded\nDETAIL:  The role has used or reserved 12 of its 12 tokens today/,
	'the seventh is refused with 53400');
$node->psql('postgres', q{SET genai.token_budget = 1000}, stderr => \$err, extra_params => [ '-U', 'bob' ]);
like($err, qr/permission denied to set parameter "genai.token_budget"/, 'a role cannot raise its own budget');
is($node->safe_psql('postgres', q{SELECT embed('abcdefgh', provider => 'fake') IS NOT NULL}),
	't', 'other roles are not affected');

# the writer of a database exits when idle, so DROP DATABASE works
$node->safe_psql('postgres', 'CREATE DATABASE scratch');
$node->safe_psql('scratch', qq{CREATE EXTENSION genai;
  CREATE SERVER fake FOREIGN DATA WRAPPER genai OPTIONS (kind 'openai', base_url '$url/v1', embedding_model 'fe');
  SELECT embed('scratch', provider => 'fake');});
ok($node->poll_query_until('scratch', q{SELECT count(*) = 1 FROM usage_ledger}), 'row written in the second database');
ok($node->poll_query_until('postgres', q{SELECT count(*) = 0 FROM pg_stat_activity WHERE backend_type = 'genai usage writer'}),
	'idle writers exit');
$node->safe_psql('postgres', 'DROP DATABASE scratch');
pass('DROP DATABASE is not blocked');

ok(!$node->log_contains('was terminated by signal'), 'no backend crashed');
$node->stop;
$fake->stop;
done_testing();
