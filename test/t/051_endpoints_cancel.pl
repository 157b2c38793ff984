# Interrupts during a stalled transfer: query cancel, statement_timeout
# and pg_terminate_backend act at once (the tests assert a loose bound;
# test/bench/embed_bench.pl reports the real latency), the wait shows as
# wait event "Extension", and the backend is usable afterwards.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use Time::HiRes qw(gettimeofday tv_interval);
use GenaiFakeEndpoint;

my $fake = GenaiFakeEndpoint->new();
my $url = $fake->url;

my $node = PostgreSQL::Test::Cluster->new('endpoints_cancel');
$node->init;
$node->start;
$node->safe_psql('postgres', qq{
CREATE EXTENSION genai;
CREATE SERVER fake FOREIGN DATA WRAPPER genai OPTIONS (kind 'openai', base_url '$url/v1',
  embedding_model 'fe', chat_model 'fc');
});

# Starts $sql in its own psql; returns (harness, \$stderr).
sub start_bg
{
	my ($sql) = @_;
	my ($out, $err) = ('', '');
	my $h = IPC::Run::start(
		[ $node->installed_command('psql'), '-X', '-d', $node->connstr('postgres'),
		  '-v', 'VERBOSITY=verbose', '-c', $sql ],
		'>', \$out, '2>', \$err);
	return ($h, \$err);
}

# the pid of the backend waiting in a stalled call marked with $tag
sub wait_for_stall
{
	my ($tag) = @_;
	$node->poll_query_until('postgres', qq{
	  SELECT count(*) = 1 FROM pg_stat_activity
	  WHERE query LIKE '%$tag%' AND pid <> pg_backend_pid()
	    AND wait_event_type = 'Extension' AND state = 'active'})
	  or die "the call did not start waiting";
	return $node->safe_psql('postgres', qq{
	  SELECT pid FROM pg_stat_activity WHERE query LIKE '%$tag%' AND pid <> pg_backend_pid()});
}

# --- query cancel, no byte received ---
my ($h, $err) = start_bg(q{SELECT embed('FAULT:stall=30000 cancel1', provider => 'fake')});
my $pid = wait_for_stall('cancel1');
pass('a stalled call waits with wait event type "Extension"');
my $t0 = [gettimeofday];
kill 'INT', $pid;
$h->finish;
my $secs = tv_interval($t0);
like($$err, qr/ERROR:  57014: canceling statement due to user request/, 'cancel: 57014');
ok($secs < 1.0, "cancel of a stalled request took effect in $secs s");
note("cancel latency (signal to psql exit): $secs s");

# --- query cancel while bytes trickle in ---
($h, $err) = start_bg(q{SELECT embed('FAULT:drip cancel2', provider => 'fake')});
$pid = wait_for_stall('cancel2');
sleep 1;
$t0 = [gettimeofday];
kill 'INT', $pid;
$h->finish;
$secs = tv_interval($t0);
like($$err, qr/ERROR:  57014: canceling statement due to user request/, 'cancel mid-transfer: 57014');
ok($secs < 1.0, "cancel mid-transfer took effect in $secs s");

# --- statement_timeout, during the request and during a retry backoff ---
my ($out, $stderr) = ('', '');
$t0 = [gettimeofday];
$node->psql('postgres', q{SET statement_timeout = '500ms'; SELECT embed('FAULT:stall=30000 st', provider => 'fake')},
	stderr => \$stderr, extra_params => [ '-v', 'VERBOSITY=verbose' ]);
$secs = tv_interval($t0);
like($stderr, qr/ERROR:  57014: canceling statement due to statement timeout/, 'statement_timeout: 57014');
ok($secs >= 0.45 && $secs < 2.0, "statement_timeout of 500 ms ended the call after $secs s");

$stderr = '';
$t0 = [gettimeofday];
$node->psql('postgres', q{SET statement_timeout = '700ms'; SET genai.http_retry_delay = '400ms';
  SELECT embed('FAULT:500 backoff', provider => 'fake')},
	stderr => \$stderr, extra_params => [ '-v', 'VERBOSITY=verbose' ]);
$secs = tv_interval($t0);
like($stderr, qr/ERROR:  (57014: canceling statement due to statement timeout|08006: provider "fake" returned HTTP status 500)/,
	'retries stop at the statement deadline');
ok($secs < 2.0, "retry backoff bounded by statement_timeout ($secs s)");

# --- pg_terminate_backend ---
($h, $err) = start_bg(q{SELECT embed('FAULT:stall=30000 term', provider => 'fake')});
$pid = wait_for_stall('term');
$t0 = [gettimeofday];
$node->safe_psql('postgres', "SELECT pg_terminate_backend($pid)");
$h->finish;
$secs = tv_interval($t0);
like($$err, qr/FATAL:  57P01: terminating connection due to administrator command/, 'terminate: 57P01');
ok($secs < 2.0, "terminate took effect in $secs s");

# --- the server is fine, and a backend that was cancelled keeps working ---
is($node->safe_psql('postgres', q{
  SET statement_timeout = '200ms';
  DO $$ BEGIN PERFORM embed('FAULT:stall=5000 again', provider => 'fake');
        EXCEPTION WHEN query_canceled THEN NULL; END $$;
  RESET statement_timeout;
  SELECT embed('after cancel', provider => 'fake')}),
	GenaiFakeEndpoint::vector_text('after cancel'), 'a backend calls again after a cancelled call');
ok(!$node->log_contains('was terminated by signal'), 'no backend crashed');

$node->stop;
$fake->stop;
done_testing();
