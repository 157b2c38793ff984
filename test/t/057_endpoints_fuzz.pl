# Fuzzing the provider response parsers (embeddings and chat completions,
# OpenAI and Ollama formats) through the real path: libcurl, the http
# layer, UTF-8 checks, the JSON parser and every field check of wire.c,
# embed.c and complete.c.  The fake endpoint answers FAULT:fuzz=K with
# mutated case K of the route (test/fuzz/response_mutator.py); every
# call must end with a result or an ERROR with one of the SQLSTATEs the
# README promises, with a valid UTF-8 message, and no backend may crash.
#
# GENAI_FUZZ_CASES (default 500 per route) and GENAI_FUZZ_SEED (default 1)
# size and seed the run; a longer one:
#   GENAI_FUZZ_CASES=5000 GENAI_FUZZ_SEED=7 test/run tap 057
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use GenaiFakeEndpoint;

my $cases = $ENV{GENAI_FUZZ_CASES} || 500;
my $seed = $ENV{GENAI_FUZZ_SEED} || 1;
my $fake = GenaiFakeEndpoint->new(args => [ '--fuzz-seed', $seed ]);
my $url = $fake->url;

my $node = PostgreSQL::Test::Cluster->new('endpoints_fuzz');
$node->init;
$node->append_conf('postgresql.conf', qq{
log_statement = none
genai.http_max_retries = 0
});
$node->start;
$node->safe_psql('postgres', qq{
CREATE EXTENSION genai;
CREATE SERVER oa FOREIGN DATA WRAPPER genai OPTIONS (kind 'openai', base_url '$url/v1',
  embedding_model 'fe', chat_model 'fc');
CREATE SERVER ol FOREIGN DATA WRAPPER genai OPTIONS (kind 'ollama', base_url '$url',
  embedding_model 'fe', chat_model 'fc');
CREATE TABLE fuzz_out (k int, call text, state text, msg text, detail text);
});

# One session runs every case; each call in its own subtransaction, so an
# ERROR is recorded and the loop goes on.
my $calls = q{
  embed:oa      |PERFORM embed(ARRAY['FAULT:fuzz=' || k, 'two'], provider => 'oa')
  embed:ol      |PERFORM embed(ARRAY['FAULT:fuzz=' || k, 'two', 'three'], provider => 'ol')
  complete:oa   |PERFORM llm_complete(jsonb_build_array(jsonb_build_object('role', 'user', 'content', 'FAULT:fuzz=' || k)), provider => 'oa')
  complete:ol   |PERFORM llm_complete('FAULT:fuzz=' || k, provider => 'ol')
};
my $body = '';
for my $line (grep { /\S/ } split /\n/, $calls)
{
	my ($name, $stmt) = $line =~ /^\s*(\S+)\s*\|(.*)$/;
	$body .= qq{
    BEGIN
      $stmt;
      INSERT INTO fuzz_out VALUES (k, '$name', 'ok', NULL, NULL);
    EXCEPTION WHEN OTHERS THEN
      GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, m = MESSAGE_TEXT, d = PG_EXCEPTION_DETAIL;
      INSERT INTO fuzz_out VALUES (k, '$name', st, m, d);
    END;};
}
my ($out, $err) = ('', '');
my $rc = $node->psql('postgres', qq{
DO \$\$
DECLARE st text; m text; d text;
BEGIN
  FOR k IN 1..$cases LOOP $body
  END LOOP;
END \$\$;}, stdout => \$out, stderr => \$err);
is($rc, 0, "$cases cases per route ran to the end (seed $seed)") or diag($err);

my $total = $node->safe_psql('postgres', 'SELECT count(*) FROM fuzz_out');
is($total, 4 * $cases, 'every call is accounted for');

# SQLSTATEs a caller may see from a provider's response (src/providers/README)
my %expected = (
	'08P01' => 'invalid response',
	'08006' => 'HTTP 5xx',
	'22023' => 'HTTP 400/422',
	'28000' => 'HTTP 401/403',
	'42704' => 'HTTP 404',
	'54000' => 'HTTP 413 or too large',
	'53000' => 'HTTP 429');
my $summary = $node->safe_psql('postgres',
	q{SELECT call, state, count(*) FROM fuzz_out GROUP BY 1, 2 ORDER BY 1, 2});
note("outcomes (call|state|count):\n$summary");
my $unexpected = $node->safe_psql('postgres',
	q{SELECT k || ' ' || call || ' ' || state || ': ' || msg || ' / ' || coalesce(detail, '')
	  FROM fuzz_out WHERE state <> 'ok' AND state NOT IN ('}
	  . join("', '", sort keys %expected) . q{') ORDER BY k, call LIMIT 20});
is($unexpected, '', 'every ERROR has an expected SQLSTATE');

# each kind of call both succeeds and fails somewhere in the run
for my $c (qw(embed:oa embed:ol complete:oa complete:ol))
{
	is($node->safe_psql('postgres', qq{SELECT count(DISTINCT state = 'ok') FROM fuzz_out WHERE call = '$c'}),
		'2', "$c: some cases succeed, some fail");
}
ok($node->safe_psql('postgres', q{SELECT count(*) FROM fuzz_out WHERE state = '08P01'}) > 0,
	'invalid responses are reported as 08P01');

# messages are valid UTF-8 (long provider messages are cut on a character boundary)
my $msgs = $node->safe_psql('postgres',
	q{SELECT string_agg(msg || coalesce(detail, ''), E'\n') FROM fuzz_out WHERE state <> 'ok'});
ok(utf8::decode($msgs), 'error messages are valid UTF-8');

ok(!$node->log_contains('was terminated by signal'), 'no backend crashed');
ok(!$node->log_contains('TRAP:'), 'no assertion failed');
$node->stop;
$fake->stop;
done_testing();
