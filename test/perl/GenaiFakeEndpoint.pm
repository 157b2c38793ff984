# GenaiFakeEndpoint: starts and stops test/fake_endpoint.py for TAP tests
# and benchmarks, on 127.0.0.1 and a free port it picks itself.
#
#   my $fake = GenaiFakeEndpoint->new(args => ['--key', 'sk-...']);
#   $fake->url;          # http://127.0.0.1:PORT
#   $fake->stats;        # hashref of its counters (GET /stats)
#   $fake->reset;        # zero the counters
#   $fake->stop;         # also done when the object goes away
#
# With '--tls-cert'/'--tls-key' in args it serves HTTPS; stats and reset
# then use a second, plain HTTP control port (HTTP::Tiny has no TLS here).
package GenaiFakeEndpoint;

use strict;
use warnings;
use HTTP::Tiny;
use IPC::Run;
use JSON::PP;
use File::Temp;
use Time::HiRes qw(usleep);

sub new
{
	my ($class, %opt) = @_;
	my $src = $ENV{GENAI_SRC} or die "GENAI_SRC is not set";
	my $dir = File::Temp::tempdir(CLEANUP => 1);
	my $portfile = "$dir/port";
	my $tls = grep { $_ eq '--tls-cert' } @{ $opt{args} || [] };
	my @cmd = ('python3', "$src/test/fake_endpoint.py", '--port-file', $portfile,
		($tls ? ('--control-port-file', "$dir/cport") : ()), @{ $opt{args} || [] });
	my ($out, $err) = ('', '');
	my $h = IPC::Run::start(\@cmd, '<', \undef, '>', \$out, '2>', \$err);
	for (1 .. 300)
	{
		last if -s $portfile;
		usleep(50_000);
	}
	die "fake endpoint did not start: $err" unless -s $portfile;
	open(my $fh, '<', $portfile) or die "could not read $portfile: $!";
	my $port = <$fh>;
	close $fh;
	chomp $port;
	my $cport = $port;
	if ($tls)
	{
		for (1 .. 100)
		{
			last if -s "$dir/cport";
			usleep(50_000);
		}
		open($fh, '<', "$dir/cport") or die "no control port: $err";
		$cport = <$fh>;
		close $fh;
		chomp $cport;
	}
	return bless { h => $h, port => $port, cport => $cport, err => \$err }, $class;
}

sub port { return $_[0]->{port}; }
sub url { return "http://127.0.0.1:$_[0]->{port}"; }
sub control_url { return "http://127.0.0.1:$_[0]->{cport}"; }

sub stats
{
	my ($self) = @_;
	my $r = HTTP::Tiny->new(timeout => 10)->get($self->control_url . '/stats');
	die "fake endpoint /stats failed: $r->{status}" unless $r->{success};
	return decode_json($r->{content});
}

sub reset
{
	my ($self) = @_;
	my $r = HTTP::Tiny->new(timeout => 10)->post($self->control_url . '/reset');
	die "fake endpoint /reset failed: $r->{status}" unless $r->{success};
	return;
}

# the fake's embedding of a text, as genai prints a vector
sub vector_text
{
	my ($text, $dims) = @_;
	$dims //= 8;
	my $bytes = $text;
	utf8::encode($bytes);
	my $len = length($bytes);
	my $first = $len ? ord(substr($bytes, 0, 1)) : 0;
	return '[' . join(',', map { (($len * ($_ + 1)) + $first) % 101 } 0 .. $dims - 1) . ']';
}

sub stop
{
	my ($self) = @_;
	return unless $self->{h};
	$self->{h}->kill_kill;
	delete $self->{h};
	return;
}

sub DESTROY { $_[0]->stop; }

1;
