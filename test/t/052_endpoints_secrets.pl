# API keys never surface.  Keys given three ways -- a server-side
# environment variable, a server-side file, and a PUBLIC user mapping
# created with statement logging and pg_stat_statements tracking switched
# off for that statement (the recipe in src/providers/README) -- are used
# for real calls, then looked for, as an ordinary role and as superuser, in
# pg_settings, pg_user_mappings, information_schema, pg_foreign_server,
# error messages (a provider that echoes a wrong key, a connection error),
# EXPLAIN VERBOSE, pg_stat_activity during a call, pg_stat_statements, and
# the whole server log written at log_min_messages = debug5 with
# log_statement = all.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use GenaiFakeEndpoint;

my $tag = int(rand(1e9));
my %keys = (
	env => "sk-env-secret-$tag",
	file => "sk-file-secret-$tag",
	map => "sk-mapping-secret-$tag",
	wrong => "sk-wrong-secret-$tag",
	role => "sk-role-own-$tag");
my $fake = GenaiFakeEndpoint->new(
	args => [ map { ('--key', $keys{$_}) } qw(env file map role) ]);
my $url = $fake->url;
my $closed_port = PostgreSQL::Test::Cluster::get_free_port();

my $keydir = PostgreSQL::Test::Utils::tempdir();
foreach my $k (qw(file wrong))
{
	open(my $fh, '>', "$keydir/$k.key") or die;
	print $fh "$keys{$k}\n";
	close $fh;
}

$ENV{GENAI_SECRET_ENV} = $keys{env};
my $node = PostgreSQL::Test::Cluster->new('endpoints_secrets');
$node->init;
$node->append_conf('postgresql.conf', q{
shared_preload_libraries = 'pg_stat_statements'
pg_stat_statements.track = all
log_min_messages = debug5
log_min_error_statement = debug5
log_statement = all
log_error_verbosity = verbose
});
$node->start;

$node->safe_psql('postgres', qq{
CREATE EXTENSION genai;
CREATE EXTENSION pg_stat_statements;
CREATE SERVER p_env FOREIGN DATA WRAPPER genai OPTIONS (kind 'openai', base_url '$url/v1',
  embedding_model 'fe', chat_model 'fc', api_key_env 'GENAI_SECRET_ENV');
CREATE SERVER p_file FOREIGN DATA WRAPPER genai OPTIONS (kind 'azure', base_url '$url',
  embedding_model 'dep', api_key_file '$keydir/file.key');
CREATE SERVER p_map FOREIGN DATA WRAPPER genai OPTIONS (kind 'ollama', base_url '$url',
  embedding_model 'fe');
CREATE SERVER p_wrong FOREIGN DATA WRAPPER genai OPTIONS (kind 'openai', base_url '$url/v1',
  embedding_model 'fe', api_key_file '$keydir/wrong.key');
CREATE SERVER p_closed FOREIGN DATA WRAPPER genai OPTIONS (kind 'openai',
  base_url 'http://127.0.0.1:$closed_port/v1', embedding_model 'fe', api_key_env 'GENAI_SECRET_ENV');
CREATE ROLE alice LOGIN;
GRANT USAGE ON FOREIGN SERVER p_env, p_file, p_map, p_wrong, p_closed TO alice;
});

# The documented way to give a key through SQL without it being logged:
# separate statements, so the SETs take effect before the mapping's text
# could reach the log (as a statement, or as the STATEMENT line of any
# message) or pg_stat_statements.
$node->safe_psql('postgres', qq{
SET log_statement = 'none';
SET log_min_error_statement = 'panic';
SET pg_stat_statements.track = 'none';
CREATE USER MAPPING FOR PUBLIC SERVER p_map OPTIONS (api_key '$keys{map}');
});

sub as_alice
{
	my ($sql) = @_;
	my ($out, $err) = ('', '');
	$node->psql('postgres', $sql, stdout => \$out, stderr => \$err,
		extra_params => [ '-U', 'alice' ]);
	return $out . "\n" . $err;
}

sub no_key_in
{
	my ($text, $what, @which) = @_;
	@which = qw(env file map wrong) unless @which;
	my @found = grep { index($text, $keys{$_}) >= 0 } @which;
	is(join(',', @found), '', "no API key in $what");
}

# alice brings her own key for p_map: she may see that one, nobody else's
is(as_alice(qq{CREATE USER MAPPING FOR CURRENT_USER SERVER p_env OPTIONS (api_key '$keys{role}')}) =~ /ERROR/ ? 'error' : 'ok',
	'ok', 'a role may add its own key to a provider it may use');

# real calls with each key
like(as_alice(q{SELECT embed('a', provider => 'p_env') IS NOT NULL}), qr/^t$/m, 'own user mapping key works');
$node->safe_psql('postgres', q{DROP USER MAPPING FOR alice SERVER p_env});
my $auth_before = $fake->stats->{auth_ok};
like(as_alice(q{SELECT embed('a', provider => 'p_env') IS NOT NULL}), qr/^t$/m, 'environment key works');
like(as_alice(q{SELECT embed('a', provider => 'p_file') IS NOT NULL}), qr/^t$/m, 'key file works (azure header)');
like(as_alice(q{SELECT embed('a', provider => 'p_map') IS NOT NULL}), qr/^t$/m, 'PUBLIC mapping key works');
is($fake->stats->{auth_ok} - $auth_before, 3, 'the endpoint received the right key each time');

# catalogs and views, as alice and as superuser
foreach my $q (
	'SELECT * FROM pg_settings',
	'SELECT * FROM pg_user_mappings',
	'SELECT * FROM information_schema.user_mapping_options',
	'SELECT * FROM information_schema.user_mappings',
	'SELECT * FROM information_schema.foreign_server_options',
	'SELECT * FROM information_schema.foreign_servers',
	'SELECT * FROM pg_foreign_server',
	'SELECT * FROM providers',
	'SELECT * FROM usage_ledger')
{
	no_key_in(as_alice($q), "$q (ordinary role)");
}
like(as_alice('SELECT * FROM pg_user_mapping'), qr/permission denied/, 'pg_user_mapping is not readable');
no_key_in($node->safe_psql('postgres', 'SELECT * FROM pg_settings'), 'pg_settings (superuser)');

# error messages: a provider that echoes the wrong key, a connection error
my $e = as_alice(q{SELECT embed('a', provider => 'p_wrong')});
like($e, qr/returned HTTP status 401.*Incorrect API key provided: \*\*\*/s, 'the echoed key is scrubbed');
no_key_in($e, 'a 401 error message');
$e = as_alice(q{SET genai.http_max_retries = 0; SELECT embed('a', provider => 'p_closed')});
like($e, qr/could not connect to provider "p_closed"/, 'connection error reported');
no_key_in($e, 'a connection error message');
$e = as_alice(q{SELECT llm_complete('a', provider => 'p_wrong', model => 'x')});
no_key_in($e, 'a chat error message');

# EXPLAIN VERBOSE
no_key_in(as_alice(q{EXPLAIN (VERBOSE, ANALYZE) SELECT embed('a', provider => 'p_env'), embed('b', provider => 'p_map')}),
	'EXPLAIN VERBOSE');

# pg_stat_activity while a call is in flight
my ($out, $err) = ('', '');
my $h = IPC::Run::start(
	[ $node->installed_command('psql'), '-X', '-d', $node->connstr('postgres'), '-U', 'alice',
	  '-c', q{SELECT embed('FAULT:stall=3000 inflight', provider => 'p_file')} ],
	'>', \$out, '2>', \$err);
$node->poll_query_until('postgres', q{
  SELECT count(*) = 1 FROM pg_stat_activity WHERE query LIKE '%inflight%' AND pid <> pg_backend_pid()});
no_key_in($node->safe_psql('postgres', 'SELECT * FROM pg_stat_activity'), 'pg_stat_activity (superuser)');
no_key_in(as_alice('SELECT * FROM pg_stat_activity'), 'pg_stat_activity (ordinary role)');
$h->finish;

# pg_stat_statements
no_key_in($node->safe_psql('postgres', 'SELECT * FROM pg_stat_statements'), 'pg_stat_statements');

# the whole server log, at debug5 with every statement logged
$node->stop;
my $log = slurp_file($node->logfile);
ok(length($log) > 10000 && $log =~ /DEBUG:/, 'the log was written at debug level');
like($log, qr/statement: SELECT embed\('a', provider => 'p_env'\)/, 'the calls were logged');
no_key_in($log, 'the server log', qw(file map wrong));
# PostgreSQL itself prints the postmaster's whole environment at startup
# when log_min_messages <= debug3 (postmaster.c): an api_key_env key is
# exposed there, and nowhere else.  README recommends api_key_file.
my @env_lines = grep { index($_, $keys{env}) >= 0 } split /\n/, $log;
my @elsewhere = grep { !/DEBUG:  (?:00000: )?\tGENAI_SECRET_ENV=/ } @env_lines;
is(scalar(@elsewhere), 0, 'environment key: only in PostgreSQL\'s own debug3 environment dump');

$fake->stop;
done_testing();
