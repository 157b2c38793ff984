# TLS and proxies.  The fake endpoint serves HTTPS with a server
# certificate for "localhost" signed by a CA made here with the openssl
# command: verification is on by default (an untrusted certificate fails
# with an error naming the provider and never the key), the provider's
# ca_bundle makes it trusted, and a host name the certificate does not
# name fails.  A forward proxy (the fake endpoint in --proxy mode) sees
# requests of providers whose "proxy" option names it -- plain HTTP by
# absolute URI, HTTPS through CONNECT -- and nothing of the others, even
# when the server's environment sets http_proxy and friends.  Ordinary
# roles cannot set or change a provider's proxy.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use File::Temp;
use GenaiFakeEndpoint;

my $dir = File::Temp::tempdir(CLEANUP => 1);
sub openssl
{
	my @cmd = ('openssl', @_);
	my ($out, $err) = ('', '');
	IPC::Run::run(\@cmd, '<', \undef, '>', \$out, '2>', \$err)
	  or die "openssl @_ failed: $err";
	return;
}
openssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2',
	'-keyout', "$dir/ca.key", '-out', "$dir/ca.crt", '-subj', '/CN=genai test CA',
	'-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign');
openssl('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', "$dir/server.key",
	'-out', "$dir/server.csr", '-subj', '/CN=localhost');
open(my $fh, '>', "$dir/server.ext") or die;
print $fh "subjectAltName=DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n";
close $fh;
openssl('x509', '-req', '-in', "$dir/server.csr", '-CA', "$dir/ca.crt", '-CAkey', "$dir/ca.key",
	'-CAcreateserial', '-days', '2', '-out', "$dir/server.crt", '-extfile', "$dir/server.ext");
pass('made a test CA and a server certificate for localhost');

my $key = 'sk-tls-secret-4471';
my $tls = GenaiFakeEndpoint->new(
	args => [ '--tls-cert', "$dir/server.crt", '--tls-key', "$dir/server.key", '--key', $key ]);
my $tport = $tls->port;
open($fh, '>', "$dir/key") or die;
print $fh "$key\n";
close $fh;
my $plain = GenaiFakeEndpoint->new();
my $purl = $plain->url;
my $proxy = GenaiFakeEndpoint->new(args => ['--proxy']);
my $proxy_url = $proxy->url;

my $node = PostgreSQL::Test::Cluster->new('endpoints_tls');
$node->init;
# proxy variables in the server's environment must be ignored
{
	local $ENV{http_proxy} = $proxy_url;
	local $ENV{https_proxy} = $proxy_url;
	local $ENV{HTTPS_PROXY} = $proxy_url;
	local $ENV{ALL_PROXY} = $proxy_url;
	local $ENV{all_proxy} = $proxy_url;
	$node->start;
}
$node->safe_psql('postgres', qq{
CREATE EXTENSION genai;
CREATE SERVER tls_default FOREIGN DATA WRAPPER genai OPTIONS (kind 'openai',
  base_url 'https://localhost:$tport/v1', embedding_model 'fe');
CREATE SERVER tls_ca FOREIGN DATA WRAPPER genai OPTIONS (kind 'openai',
  base_url 'https://localhost:$tport/v1', embedding_model 'fe', ca_bundle '$dir/ca.crt');
CREATE SERVER tls_wrong_name FOREIGN DATA WRAPPER genai OPTIONS (kind 'openai',
  base_url 'https://127.0.0.1:$tport/v1', embedding_model 'fe', ca_bundle '$dir/ca.crt');
CREATE SERVER tls_proxied FOREIGN DATA WRAPPER genai OPTIONS (kind 'openai',
  base_url 'https://localhost:$tport/v1', embedding_model 'fe', ca_bundle '$dir/ca.crt',
  proxy '$proxy_url');
CREATE SERVER plain FOREIGN DATA WRAPPER genai OPTIONS (kind 'openai',
  base_url '$purl/v1', embedding_model 'fe');
CREATE SERVER plain_proxied FOREIGN DATA WRAPPER genai OPTIONS (kind 'openai',
  base_url '$purl/v1', embedding_model 'fe', proxy '$proxy_url');
ALTER SERVER tls_default OPTIONS (ADD api_key_file '$dir/key');
ALTER SERVER tls_ca OPTIONS (ADD api_key_file '$dir/key');
ALTER SERVER tls_wrong_name OPTIONS (ADD api_key_file '$dir/key');
ALTER SERVER tls_proxied OPTIONS (ADD api_key_file '$dir/key');
});

sub call
{
	my ($provider, $text) = @_;
	my ($out, $err) = ('', '');
	$node->psql('postgres', "SET genai.http_max_retries = 0; SELECT embed('$text', provider => '$provider')",
		stdout => \$out, stderr => \$err, extra_params => [ '-v', 'VERBOSITY=verbose' ]);
	return ($out, $err);
}

# --- verification on by default ---
my ($out, $err) = call('tls_default', 'untrusted');
like($err, qr/ERROR:  08001: could not connect to provider "tls_default"\nDETAIL:  SSL certificate problem: [^\n]*certificate/,
	'an untrusted certificate fails (08001), naming the provider and the reason');
unlike($err, qr/\Q$key\E/, 'the error does not show the key');
is($tls->stats->{requests}, 0, 'nothing was sent to the untrusted endpoint');

# --- ca_bundle makes it trusted ---
($out, $err) = call('tls_ca', 'trusted');
is($out, GenaiFakeEndpoint::vector_text('trusted'), 'with ca_bundle the HTTPS call succeeds');
is($tls->stats->{auth_ok}, 1, 'the key arrived over TLS');

# --- a host name the certificate does not name ---
($out, $err) = call('tls_wrong_name', 'mismatch');
like($err, qr/ERROR:  08001: could not connect to provider "tls_wrong_name"\nDETAIL:  [^\n]*(subject name|host ?name)[^\n]*127\.0\.0\.1/,
	'a host name mismatch fails (08001)');
unlike($err, qr/\Q$key\E/, 'the error does not show the key');

# --- proxies: only where the provider names one ---
$proxy->reset;
($out, $err) = call('plain', 'direct');
is($out, GenaiFakeEndpoint::vector_text('direct'), 'a provider without proxy works');
($out, $err) = call('tls_ca', 'direct tls');
is($out, GenaiFakeEndpoint::vector_text('direct tls'), 'an HTTPS provider without proxy works');
my $ps = $proxy->stats;
is($ps->{proxied} + $ps->{connects}, 0,
	'the proxy in the server environment (http_proxy, https_proxy, ALL_PROXY) was not used');

($out, $err) = call('plain_proxied', 'via proxy');
is($out, GenaiFakeEndpoint::vector_text('via proxy'), 'an HTTP call through the proxy succeeds');
$ps = $proxy->stats;
is($ps->{proxied}, 1, 'the proxy forwarded one request');
like($ps->{targets}[0], qr{^\Q$purl\E/v1/embeddings$}, 'by absolute URI to the provider');

($out, $err) = call('tls_proxied', 'via tunnel');
is($out, GenaiFakeEndpoint::vector_text('via tunnel'), 'an HTTPS call through the proxy succeeds');
$ps = $proxy->stats;
is($ps->{connects}, 1, 'through a CONNECT tunnel');
is($ps->{targets}[1], "localhost:$tport", 'to the provider\'s host and port');

# --- ordinary roles cannot aim traffic elsewhere ---
$node->safe_psql('postgres', q{
CREATE ROLE mallory LOGIN;
GRANT USAGE ON FOREIGN SERVER plain TO mallory;
});
my @as_mallory = (extra_params => [ '-U', 'mallory' ]);
$node->psql('postgres', q{ALTER SERVER plain OPTIONS (ADD proxy 'http://127.0.0.1:1')},
	stderr => \$err, @as_mallory);
like($err, qr/must be owner of foreign server plain/, 'a granted role cannot add a proxy to a provider');
$node->psql('postgres', q{CREATE USER MAPPING FOR mallory SERVER plain OPTIONS (proxy 'http://127.0.0.1:1')},
	stderr => \$err, @as_mallory);
like($err, qr/unrecognized user mapping option "proxy"/, 'nor through its own user mapping');
$node->psql('postgres', q{CREATE SERVER mine FOREIGN DATA WRAPPER genai OPTIONS (kind 'openai', base_url 'http://127.0.0.1:1/v1', proxy 'http://127.0.0.1:1')},
	stderr => \$err, @as_mallory);
like($err, qr/permission denied for foreign-data wrapper genai/, 'nor create a provider of its own');
$node->psql('postgres', q{ALTER SERVER plain OPTIONS (ADD proxy 'socks5h://127.0.0.1:1080')}, stderr => \$err);
like($err, qr/invalid value for option "proxy"\nDETAIL:  Only http:\/\/ and https:\/\/ URLs are allowed/,
	'only http and https proxies are accepted');

ok(!$node->log_contains('was terminated by signal'), 'no backend crashed');
ok(!$node->log_contains($key), 'the key (from api_key_file) is not in the server log');
$node->stop;
$_->stop for ($tls, $plain, $proxy);
done_testing();
