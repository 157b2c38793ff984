# Remote providers through the fake endpoint (test/fake_endpoint.py): the
# OpenAI, Azure and Ollama wire formats, batching with exact request
# counts, every injected fault (with its SQLSTATE and retry count), the
# usage ledger, connection reuse, and no descriptors leaked by errors.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(gettimeofday tv_interval);
use GenaiFakeEndpoint;

my $key = 'sk-fake-050-' . int(rand(1e9));
my $fake = GenaiFakeEndpoint->new(
	args => [ '--key', $key, '--max-inputs', '5', '--retry-after', '0' ]);
my $url = $fake->url;

# a port nothing listens on
my $closed_port = PostgreSQL::Test::Cluster::get_free_port();

$ENV{GENAI_FAKE_KEY} = $key;
my $node = PostgreSQL::Test::Cluster->new('endpoints_http');
$node->init;
$node->append_conf('postgresql.conf', qq{
genai.http_retry_delay = 10ms
genai.http_max_retries = 2
});
$node->start;

$node->safe_psql('postgres', qq{
CREATE EXTENSION genai;
CREATE SERVER fake FOREIGN DATA WRAPPER genai OPTIONS (kind 'openai', base_url '$url/v1',
  embedding_model 'fe', chat_model 'fc', api_key_env 'GENAI_FAKE_KEY', max_batch_inputs '4');
CREATE SERVER fake_tok FOREIGN DATA WRAPPER genai OPTIONS (kind 'openai', base_url '$url/v1',
  embedding_model 'fe', api_key_env 'GENAI_FAKE_KEY', max_batch_tokens '10', tokenizer 'bytes');
CREATE SERVER fake_cl FOREIGN DATA WRAPPER genai OPTIONS (kind 'openai', base_url '$url/v1',
  embedding_model 'fe', api_key_env 'GENAI_FAKE_KEY', max_batch_tokens '12');
CREATE SERVER fake_big FOREIGN DATA WRAPPER genai OPTIONS (kind 'openai', base_url '$url/v1',
  embedding_model 'fe', api_key_env 'GENAI_FAKE_KEY', max_batch_inputs '100');
CREATE SERVER fake_ollama FOREIGN DATA WRAPPER genai OPTIONS (kind 'ollama', base_url '$url',
  embedding_model 'fe', chat_model 'fc');
CREATE USER MAPPING FOR PUBLIC SERVER fake_ollama OPTIONS (api_key '$key');
CREATE SERVER fake_azure FOREIGN DATA WRAPPER genai OPTIONS (kind 'azure', base_url '$url',
  embedding_model 'dep-embed', chat_model 'dep-chat', api_version '2024-06-01');
CREATE USER MAPPING FOR PUBLIC SERVER fake_azure OPTIONS (api_key '$key');
CREATE SERVER closed FOREIGN DATA WRAPPER genai OPTIONS (kind 'openai',
  base_url 'http://127.0.0.1:$closed_port/v1', embedding_model 'fe');
});

# runs SQL; returns (stdout, stderr with SQLSTATEs, seconds)
sub run_sql
{
	my ($sql) = @_;
	my ($out, $err) = ('', '');
	my $t0 = [gettimeofday];
	$node->psql('postgres', $sql, stdout => \$out, stderr => \$err,
		extra_params => [ '-v', 'VERBOSITY=verbose' ]);
	return ($out, $err, tv_interval($t0));
}

# requests the fake received while running $sql
sub requests_for
{
	my ($sql) = @_;
	my $before = $fake->stats->{requests};
	my ($out, $err, $secs) = run_sql($sql);
	return ($fake->stats->{requests} - $before, $out, $err, $secs);
}

my ($n, $out, $err, $secs);

# --- wire formats ---
is($node->safe_psql('postgres', q{SELECT embed('hello', provider => 'fake')}),
	GenaiFakeEndpoint::vector_text('hello'), 'openai: embedding as the endpoint computed it');
is($node->safe_psql('postgres', q{SELECT embed('hello', provider => 'fake_ollama')}),
	GenaiFakeEndpoint::vector_text('hello'), 'ollama: /api/embed');
is($node->safe_psql('postgres', q{SELECT embed('hello', provider => 'fake_azure', dimensions => 3)}),
	GenaiFakeEndpoint::vector_text('hello', 3), 'azure: deployment URL, api-key header, dimensions');
ok($fake->stats->{by_route}{'/openai/deployments/dep-embed/embeddings'} >= 1, 'azure route used');
is($node->safe_psql('postgres', q{SELECT llm_complete('hi there', provider => 'fake')}),
	'echo: hi there', 'openai: chat completion');
is($node->safe_psql('postgres', q{SELECT llm_complete('one two three', provider => 'fake_ollama', max_tokens => 2)}),
	'echo: one', 'ollama: /api/chat with num_predict');
is($node->safe_psql('postgres', q{SELECT llm_complete('hey', system_prompt => 'be brief', temperature => 0.5, provider => 'fake_azure')}),
	'echo: hey', 'azure: chat completion');
is($node->safe_psql('postgres',
	q{SELECT r->>'echo_temperature' FROM llm_complete('[{"role":"user","content":"x"}]'::jsonb,
	  options => '{"temperature": 0.25}', provider => 'fake') r}),
	'0.25', 'full form passes options and returns the provider response');

# --- batching: exact request counts, order kept (the fake answers in reverse) ---
my @texts = map { "text number $_" . ('x' x $_) } 1 .. 10;
my $arr = 'ARRAY[' . join(',', map { "'$_'" } @texts) . ']';
($n, $out) = requests_for("SELECT e::text FROM unnest(embed($arr, provider => 'fake')) e");
is($n, 3, '10 inputs with max_batch_inputs 4: 3 requests');
is($out, join("\n", map { GenaiFakeEndpoint::vector_text($_) } @texts), 'batched results in input order');

($n, $out) = requests_for(q{SELECT array_length(embed(ARRAY['a', NULL, 'b', 'c', NULL, 'd'], provider => 'fake'), 1),
  (embed(ARRAY['a', NULL, 'b'], provider => 'fake'))[2] IS NULL});
is($n, 2, 'NULL inputs are not sent (4 texts: 1 request, then 1 more)');
is($out, "6|t", 'NULL inputs give NULL outputs');

# max_batch_tokens 10, token bound = bytes: greedy packing
my @lens = (4, 4, 4, 9, 1, 10, 3, 11);
my ($expect, $tok) = (0, 0);
my $count = 0;
foreach my $l (@lens)
{
	if ($count > 0 && $tok + $l <= 10) { $tok += $l; $count++; next; }
	$expect++;
	($tok, $count) = ($l, 1);
}
is($expect, 6, 'greedy packing of the token test yields 6 batches');
my $tarr = 'ARRAY[' . join(',', map { "'" . ('t' x $_) . "'" } @lens) . ']';
($n) = requests_for("SELECT embed($tarr, provider => 'fake_tok')");
is($n, $expect, 'max_batch_tokens packs as many inputs as fit');

# the default tokenizer of an openai provider: exact cl100k_base counts
my @words = ('hello world', 'the quick brown fox jumps over the lazy dog', 'a', 'tokens are counted exactly here',
	'b c d e f', 'internationalization', 'x');
my @counts = split /\n/, $node->safe_psql('postgres',
	'SELECT token_count(t, \'cl100k_base\') FROM unnest(ARRAY[' . join(',', map { "'$_'" } @words) . ']) WITH ORDINALITY u(t, i) ORDER BY i');
($expect, $tok, $count) = (0, 0, 0);
foreach my $c (@counts)
{
	if ($count > 0 && $tok + $c <= 12) { $tok += $c; $count++; next; }
	$expect++;
	($tok, $count) = ($c, 1);
}
($n) = requests_for('SELECT embed(ARRAY[' . join(',', map { "'$_'" } @words) . "], provider => 'fake_cl')");
is($n, $expect, "max_batch_tokens with cl100k_base counts: $expect requests for counts @counts");

($n, $out, $err) = requests_for(
	"SELECT embed(ARRAY['1','2','3','4','5','6','7'], provider => 'fake_big')");
is($n, 1, 'oversize batch: one request, not retried');
like($err, qr/ERROR:  22023: provider "fake_big" returned HTTP status 400.*too many inputs: 7 > 5/s,
	'oversize batch: the provider\'s own message, SQLSTATE 22023');

# --- faults ---
($n, $out, $err, $secs) = requests_for(q{SELECT embed('FAULT:429:ra=1x1 a', provider => 'fake')});
is($n, 2, '429 with Retry-After: retried once');
is($out, GenaiFakeEndpoint::vector_text('FAULT:429:ra=1x1 a'), '429: the retry succeeds');
ok($secs >= 0.9, "Retry-After: 1 honoured (waited $secs s)");

($n, $out) = requests_for(q{SELECT embed('FAULT:500x1 b', provider => 'fake')});
is($n, 2, '500 once: retried once and succeeded');
($n, $out) = requests_for(q{SELECT embed('FAULT:503x2 c', provider => 'fake')});
is($n, 3, '503 twice: two retries');
is($out, GenaiFakeEndpoint::vector_text('FAULT:503x2 c'), '503 twice: third attempt succeeds');

($n, $out, $err) = requests_for(q{SELECT embed('FAULT:503 d', provider => 'fake')});
is($n, 3, '503 always: 1 + genai.http_max_retries requests');
like($err, qr/ERROR:  08006: provider "fake" returned HTTP status 503\nDETAIL:  Provider message: fake 503, slow down \(attempts: 3\)/,
	'503 always: 08006 with the provider message');

($n, $out, $err) = requests_for(q{SET genai.http_max_retries = 0; SELECT embed('FAULT:429 e', provider => 'fake')});
is($n, 1, 'genai.http_max_retries = 0: no retry');
like($err, qr/ERROR:  53000: provider "fake" returned HTTP status 429/, '429: SQLSTATE 53000');

($n, $out, $err) = requests_for(q{SELECT embed('FAULT:malformed', provider => 'fake')});
is($n, 1, 'malformed JSON: not retried');
like($err, qr/ERROR:  08P01: provider "fake" returned an invalid response\nDETAIL:  The response is not a JSON object/,
	'malformed JSON: 08P01');

($n, $out, $err) = requests_for(q{SELECT embed('FAULT:wrongtypes', provider => 'fake')});
like($err, qr/ERROR:  08P01: provider "fake" returned an invalid response/, 'wrong field types (openai): 08P01');
($n, $out, $err) = requests_for(q{SELECT embed('FAULT:wrongtypes', provider => 'fake_ollama')});
like($err, qr/ERROR:  08P01: .*\nDETAIL:  The response has no "embeddings" array/, 'wrong field types (ollama): 08P01');
($n, $out, $err) = requests_for(q{SELECT llm_complete('FAULT:wrongtypes', provider => 'fake')});
like($err, qr/ERROR:  08P01: .*\nDETAIL:  The response has no "choices"/, 'wrong field types (chat): 08P01');
($n, $out, $err) = requests_for(q{SELECT llm_complete('FAULT:wrongtypes', provider => 'fake_ollama')});
like($err, qr/ERROR:  08P01: .*\nDETAIL:  The message's "content" is not a string/, 'wrong content type (ollama chat): 08P01');

($n, $out, $err) = requests_for(q{SELECT embed('FAULT:truncated', provider => 'fake')});
is($n, 3, 'truncated body: retried');
like($err, qr/ERROR:  08006: could not receive a response from provider "fake"\nDETAIL:  transfer closed with 100 bytes remaining/,
	'truncated body: 08006 with curl\'s reason');

($n, $out, $err) = requests_for(q{SET genai.http_max_response_size = '1MB'; SELECT embed('FAULT:huge', provider => 'fake')});
is($n, 1, 'huge body: not retried');
like($err, qr/ERROR:  54000: response of provider "fake" is too large/, 'huge body: 54000');
($n, $out, $err) = requests_for(q{SELECT embed('FAULT:huge', provider => 'fake')});
like($err, qr/ERROR:  08P01: .*"0 embeddings|ERROR:  08P01: .*1 embeddings were asked for and 0 returned/s,
	'huge body under the cap is read and checked');

($n, $out, $err) = requests_for(q{SELECT embed('FAULT:reset', provider => 'fake')});
is($n, 3, 'connection reset: retried');
like($err, qr/ERROR:  08006: could not receive a response from provider "fake"/, 'connection reset: 08006');

($n, $out, $err, $secs) = requests_for(q{SET genai.http_timeout = '1s'; SELECT embed('FAULT:drip', provider => 'fake')});
is($n, 1, 'slow drip: timeouts are not retried');
like($err, qr/ERROR:  08006: request to provider "fake" timed out/, 'slow drip: timed out, 08006');
ok($secs < 5, "slow drip: genai.http_timeout bounds it ($secs s)");

my $redirected = $fake->stats->{redirected};
($n, $out, $err) = requests_for(q{SELECT embed('FAULT:redirect', provider => 'fake')});
like($err, qr/ERROR:  08P01: provider "fake" returned HTTP status 302/, 'redirect: not followed, reported');
is($fake->stats->{redirected}, $redirected, 'redirect target never requested');

($n, $out, $err, $secs) = requests_for(q{SELECT embed('FAULT:delay=300 f', provider => 'fake')});
is($out, GenaiFakeEndpoint::vector_text('FAULT:delay=300 f'), 'delayed answer arrives');

($out, $err) = run_sql(q{SELECT embed('x', provider => 'closed')});
like($err, qr/ERROR:  08001: could not connect to provider "closed"\nDETAIL:  .*\(attempts: 3\)/,
	'connection refused: retried, then 08001');

# --- the ledger: requests, retries and tokens of each call ---
is($node->safe_psql('postgres', q{
  SELECT requests || ' ' || retries || ' ' || input_tokens FROM usage_ledger
  WHERE provider = 'fake' AND operation = 'embed' AND inputs = 10}),
	'3 0 ' . (eval { my $t = 0; $t += int((length($_) + 3) / 4) for @texts; $t }),
	'ledger: 3 requests, tokens from the response usage');
is($node->safe_psql('postgres', q{
  SELECT count(*) FROM usage_ledger WHERE provider = 'fake' AND retries = 2 AND outcome = 'ok'}),
	'1', 'ledger: retries recorded (503 twice)');
is($node->safe_psql('postgres', q{
  SELECT input_tokens > 0 AND output_tokens > 0 FROM usage_ledger
  WHERE provider = 'fake_ollama' AND operation = 'complete'}),
	't', 'ledger: ollama token counts');

# --- connection reuse, and nothing leaked by errors ---
# (every /stats query opens one connection of its own)
my $c0 = $fake->stats->{connections};
$node->safe_psql('postgres', join(';', map { "SELECT embed('reuse $_', provider => 'fake')" } 1 .. 5));
is($fake->stats->{connections} - $c0 - 1, 1, 'five calls in one session: one connection');

my $fds = $node->safe_psql('postgres', q{
CREATE FUNCTION fd_count() RETURNS bigint LANGUAGE sql
  AS $$ SELECT count(*) FROM pg_ls_dir('/proc/' || pg_backend_pid() || '/fd') $$;
SELECT embed('warm up', provider => 'fake');
SELECT fd_count();
SET genai.http_max_response_size = '1MB';
SET genai.http_timeout = '200ms';
DO $$
DECLARE f text;
BEGIN
  FOR i IN 1..5 LOOP
    FOREACH f IN ARRAY ARRAY['FAULT:malformed', 'FAULT:reset', 'FAULT:huge', 'FAULT:drip', 'FAULT:stall=1000', 'FAULT:503'] LOOP
      BEGIN
        PERFORM embed(f || ' ' || i, provider => 'fake');
      EXCEPTION WHEN others THEN NULL;
      END;
    END LOOP;
    BEGIN
      PERFORM embed('x', provider => 'closed');
    EXCEPTION WHEN others THEN NULL;
    END;
  END LOOP;
END $$;
SELECT embed('after', provider => 'fake') IS NOT NULL;
SELECT fd_count();
});
my @fds = split /\n/, $fds;
is($fds[2], 't', 'calls work after 35 failed ones');
is($fds[3], $fds[1], "no descriptor leaked by 35 failed calls ($fds[1] before and after)");

# --- a role without USAGE is refused before anything is sent ---
$node->safe_psql('postgres', 'CREATE ROLE plain LOGIN');
my $before = $fake->stats->{requests};
($out, $err) = ('', '');
$node->psql('postgres', q{SET ROLE plain; SELECT embed('x', provider => 'fake')},
	stderr => \$err, extra_params => [ '-v', 'VERBOSITY=verbose' ]);
like($err, qr/ERROR:  42501: permission denied for provider "fake"/, 'non-granted role refused');
is($fake->stats->{requests}, $before, 'refused call sent nothing');
$node->safe_psql('postgres', 'GRANT USAGE ON FOREIGN SERVER fake TO plain');
is($node->safe_psql('postgres', q{SET ROLE plain; SELECT embed('x', provider => 'fake') IS NOT NULL}),
	't', 'granted role may call');

ok(!$node->log_contains('server process .* was terminated'), 'no backend crashed');
$node->stop;
$fake->stop;
done_testing();
