# With shared_preload_libraries = 'genai': a provider's max_concurrency
# caps the requests in flight across all backends (checked by the fake
# endpoint itself), a call waiting for a slot answers statement_timeout,
# cancel and termination at once, a backend terminated mid-request gives
# its slot back (and a crash restart starts from zero), requests_per_minute
# spaces requests, and concurrent calls against a small genai.token_budget
# never spend past it.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use Time::HiRes qw(gettimeofday tv_interval usleep);
use GenaiFakeEndpoint;

my $fake = GenaiFakeEndpoint->new(args => [ '--retry-after', '0' ]);
my $url = $fake->url;

my $node = PostgreSQL::Test::Cluster->new('endpoints_limits');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'genai'
genai.http_retry_delay = 10ms
max_connections = 40
restart_after_crash = on
});
$node->start;
$node->safe_psql('postgres', qq{
CREATE EXTENSION genai;
CREATE SERVER lim FOREIGN DATA WRAPPER genai OPTIONS (kind 'openai', base_url '$url/v1',
  embedding_model 'fe', max_concurrency '2');
CREATE SERVER rate FOREIGN DATA WRAPPER genai OPTIONS (kind 'openai', base_url '$url/v1',
  embedding_model 'fe', requests_per_minute '120', max_batch_inputs '1');
CREATE SERVER free FOREIGN DATA WRAPPER genai OPTIONS (kind 'openai', base_url '$url/v1',
  embedding_model 'fe');
});

# Starts $sql (or each statement of an array ref, one after the other
# whatever their outcome) in its own psql; returns (harness, \$stdout, \$stderr).
sub start_bg
{
	my ($sql, @extra) = @_;
	my ($out, $err) = ('', '');
	my @c = map { ('-c', $_) } (ref $sql ? @$sql : ($sql));
	my $h = IPC::Run::start(
		[ $node->installed_command('psql'), '-X', '-At', '-d', $node->connstr('postgres'),
		  '-v', 'VERBOSITY=verbose', @extra, @c ],
		'>', \$out, '2>', \$err);
	return ($h, \$out, \$err);
}

sub stat_of
{
	my ($provider, $cols) = @_;
	return $node->safe_psql('postgres', "SELECT $cols FROM provider_stats WHERE provider = '$provider'");
}

# --- max_concurrency 2, six backends at once, each request taking 400 ms ---
$fake->reset;
my @runs;
my $t0 = [gettimeofday];
push @runs, [ start_bg("SELECT embed('FAULT:delay=400 conc$_', provider => 'lim') IS NOT NULL") ]
  for 1 .. 6;
my $all_ok = 1;
for my $r (@runs)
{
	$r->[0]->finish;
	$all_ok = 0 unless ${ $r->[1] } eq "t\n";
	diag(${ $r->[2] }) if ${ $r->[2] } ne '';
}
my $secs = tv_interval($t0);
ok($all_ok, 'six concurrent calls under max_concurrency 2 all succeed');
my $st = $fake->stats;
is($st->{requests}, 6, 'the endpoint got six requests');
is($st->{max_in_flight}, 2, 'never more than 2 requests in flight at the endpoint');
ok($secs >= 1.1, "six 400 ms requests two at a time took $secs s (>= 1.2 s expected)");
is(stat_of('lim', 'max_concurrency, in_flight, max_in_flight, slot_waits >= 3, wait_ms > 0'), '2|0|2|t|t',
	'provider_stats: the limit, no slot held after, at most 2, waits counted');

# without a limit the same calls overlap (the check above can fail)
$fake->reset;
@runs = ();
push @runs, [ start_bg("SELECT embed('FAULT:delay=400 free$_', provider => 'free') IS NOT NULL") ]
  for 1 .. 4;
$_->[0]->finish for @runs;
ok($fake->stats->{max_in_flight} > 2, 'without max_concurrency more than 2 are in flight ('
	  . $fake->stats->{max_in_flight} . ')');

# --- a call waiting for a slot: statement_timeout, cancel, terminate ---
$fake->reset;
# (long requests, so a loaded machine cannot end them before the checks)
my @holders = map { [ start_bg("SELECT embed('FAULT:delay=20000 hold$_', provider => 'lim') IS NOT NULL") ] } 1 .. 2;
ok($node->poll_query_until('postgres', q{SELECT in_flight = 2 FROM provider_stats WHERE provider = 'lim'}),
	'two calls hold both slots');

my ($out, $err) = ('', '');
$t0 = [gettimeofday];
$node->psql('postgres', q{SET statement_timeout = '300ms'; SELECT embed('waiter', provider => 'lim')},
	stderr => \$err, extra_params => [ '-v', 'VERBOSITY=verbose' ]);
$secs = tv_interval($t0);
like($err, qr/ERROR:  57014: canceling statement due to statement timeout/,
	'a call waiting for a slot ends with statement_timeout (57014)');
ok($secs < 1.3, "statement_timeout of 300 ms ended the wait after $secs s");

my ($wh, $wout, $werr) = start_bg(q{SELECT embed('waiter2', provider => 'lim')});
$node->poll_query_until('postgres', q{
  SELECT count(*) = 1 FROM pg_stat_activity
  WHERE query LIKE '%waiter2%' AND pid <> pg_backend_pid() AND wait_event_type = 'Extension'})
  or die 'the waiter did not start waiting';
my $wpid = $node->safe_psql('postgres',
	q{SELECT pid FROM pg_stat_activity WHERE query LIKE '%waiter2%' AND pid <> pg_backend_pid()});
$t0 = [gettimeofday];
kill 'INT', $wpid;
$wh->finish;
$secs = tv_interval($t0);
like($$werr, qr/ERROR:  57014: canceling statement due to user request/, 'cancel of a waiting call: 57014');
ok($secs < 1.0, "cancel of a waiting call took effect in $secs s");

# terminate one holder mid-request: its slot comes back (before_shmem_exit)
my $hpid = $node->safe_psql('postgres',
	q{SELECT pid FROM pg_stat_activity WHERE query LIKE '%hold1%' AND pid <> pg_backend_pid()});
$node->safe_psql('postgres', "SELECT pg_terminate_backend($hpid)");
$holders[0][0]->finish;
like(${ $holders[0][2] }, qr/FATAL:  57P01/, 'a holder is terminated mid-request');
is(stat_of('lim', 'in_flight'), '1', 'the terminated backend released its slot');
is($node->safe_psql('postgres', q{SET statement_timeout = '3s'; SELECT embed('after terminate', provider => 'lim') IS NOT NULL}),
	't', 'a new call gets the freed slot while the other holder still runs');
$hpid = $node->safe_psql('postgres',
	q{SELECT pid FROM pg_stat_activity WHERE query LIKE '%hold2%' AND pid <> pg_backend_pid()});
$node->safe_psql('postgres', "SELECT pg_cancel_backend($hpid)");
$holders[1][0]->finish;
like(${ $holders[1][2] }, qr/ERROR:  57014: canceling statement due to user request/,
	'the other holder is cancelled mid-request');
is(stat_of('lim', 'in_flight'), '0', 'all slots free again');

# --- requests_per_minute 120: a bucket of 2, one more every 500 ms ---
$fake->reset;
$t0 = [gettimeofday];
is($node->safe_psql('postgres', q{SELECT array_length(embed(ARRAY['r1','r2','r3','r4','r5','r6'], provider => 'rate'), 1)}),
	'6', 'six one-text requests under requests_per_minute 120');
$secs = tv_interval($t0);
$st = $fake->stats;
is($st->{requests}, 6, 'six requests sent');
my @arr = @{ $st->{arrivals} };
my $span = $arr[-1] - $arr[0];
ok($span >= 1.5 && $secs < 8, "requests spread over $span s (2 at once, then 4 at 0.5 s: >= 1.5 s expected)");
note('arrivals: ' . join(' ', @arr));
is(stat_of('rate', 'requests_per_minute, rate_waits'), '120|4', 'provider_stats: four requests waited for the rate limit');

# a changed limit applies at once (a fresh bucket)
$node->safe_psql('postgres', q{ALTER SERVER rate OPTIONS (SET requests_per_minute '6000')});
$t0 = [gettimeofday];
$node->safe_psql('postgres', q{SELECT embed(ARRAY['q1','q2','q3','q4','q5','q6'], provider => 'rate')});
$secs = tv_interval($t0);
ok($secs < 1.5, "with requests_per_minute 6000 the same call takes $secs s");

# --- token budget under concurrency ---
# A text whose reservation (cl100k_base count) equals what the fake
# endpoint charges (ceil(bytes / 4)): then a call fits exactly when
# used + reserved + cost <= budget, and the total spent can never pass
# the budget, however the calls interleave.
my $pad = $node->safe_psql('postgres', q{
  SELECT k FROM generate_series(0, 60) k
  WHERE token_count('FAULT:delay=30 budget ' || repeat('x', k)) = (octet_length('FAULT:delay=30 budget ' || repeat('x', k)) + 3) / 4
  ORDER BY k LIMIT 1});
isnt($pad, '', 'found a text whose estimate equals its charge');
my $text = 'FAULT:delay=30 budget ' . ('x' x $pad);
my $cost = $node->safe_psql('postgres', "SELECT token_count('$text')");
my $budget = 10 * $cost + int($cost / 2);    # room for 10 calls, not 11
$node->safe_psql('postgres', qq{
CREATE ROLE carol LOGIN;
GRANT USAGE ON FOREIGN SERVER free TO carol;
ALTER ROLE carol SET genai.token_budget = $budget;
});
my $script = [ map { "SELECT embed('$text', provider => 'free') IS NOT NULL" } 1 .. 4 ];
@runs = ();
push @runs, [ start_bg($script, '-U', 'carol') ] for 1 .. 8;
my ($ok, $refused, $other) = (0, 0, '');
for my $r (@runs)
{
	$r->[0]->finish;
	$ok += () = ${ $r->[1] } =~ /^t$/mg;
	$refused += () = ${ $r->[2] } =~ /^ERROR:  53400: token budget of role "carol" exceeded$/mg;
	$other .= join('', grep { !/53400/ } (${ $r->[2] } =~ /^(ERROR:.*\n)/mg));
}
is($ok, 10, "8 backends x 4 calls against a budget of $budget: exactly 10 calls of $cost tokens succeed");
is($refused, 22, 'the other 22 are refused with SQLSTATE 53400');
is($other, '', 'no other errors');
ok($node->poll_query_until('postgres', q{SELECT count(*) = 10 FROM usage_ledger WHERE rolname = 'carol'}),
	'ten ledger rows for carol');
my $spent = $node->safe_psql('postgres', q{SELECT sum(input_tokens) FROM usage_ledger WHERE rolname = 'carol'});
ok($spent <= $budget, "carol spent $spent of $budget tokens: never more than the budget");

ok(!$node->log_contains('was terminated by signal'), 'no backend crashed');

# --- a backend killed mid-request: the crash restart starts counts at zero ---
my ($kh, $kout, $kerr) = start_bg(q{SELECT embed('FAULT:delay=5000 killed', provider => 'lim')});
ok($node->poll_query_until('postgres', q{SELECT in_flight = 1 FROM provider_stats WHERE provider = 'lim'}),
	'a call holds a slot');
my $kpid = $node->safe_psql('postgres',
	q{SELECT pid FROM pg_stat_activity WHERE query LIKE '%killed%' AND pid <> pg_backend_pid()});
kill 'KILL', $kpid;
$kh->finish;
ok($node->poll_query_until('postgres', q{SELECT true}), 'the server restarted after the crash');
is($node->safe_psql('postgres', q{SELECT embed('after crash', provider => 'lim') IS NOT NULL}), 't',
	'calls work after the crash restart');
is(stat_of('lim', 'in_flight, max_in_flight'), '0|1', 'no slot leaked across the crash restart');
$node->stop;
$fake->stop;
done_testing();
