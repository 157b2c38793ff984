# Text crosses the wire as UTF-8 whatever the database encoding, and on a
# hot standby the local provider works while remote providers are refused
# (their calls could not be recorded there).
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use GenaiFakeEndpoint;

my $fake = GenaiFakeEndpoint->new();
my $url = $fake->url;

my $primary = PostgreSQL::Test::Cluster->new('endpoints_primary');
$primary->init(allows_streaming => 1);
$primary->start;
$primary->safe_psql('postgres', qq{
CREATE DATABASE lat TEMPLATE template0 ENCODING 'LATIN1' LC_COLLATE 'C' LC_CTYPE 'C';
CREATE EXTENSION genai;
CREATE SERVER fake FOREIGN DATA WRAPPER genai OPTIONS (kind 'openai', base_url '$url/v1',
  embedding_model 'fe', chat_model 'fc');
});
$primary->safe_psql('lat', qq{
CREATE EXTENSION genai;
CREATE SERVER fake FOREIGN DATA WRAPPER genai OPTIONS (kind 'openai', base_url '$url/v1',
  embedding_model 'fe', chat_model 'fc');
});

# "café" is 4 characters in LATIN1 and 5 bytes of UTF-8 on the wire
my $cafe = "caf\x{e9}";
is($primary->safe_psql('lat', q{SELECT embed('caf' || chr(233), provider => 'fake')}),
	GenaiFakeEndpoint::vector_text($cafe), 'LATIN1 text is sent as UTF-8');
is($primary->safe_psql('lat', q{SELECT llm_complete('caf' || chr(233), provider => 'fake') = 'echo: caf' || chr(233)}),
	't', 'the UTF-8 answer comes back in LATIN1');
is($primary->safe_psql('lat', q{SELECT embed('caf' || chr(233))::text = embed('caf' || chr(233), dimensions => 384)::text}),
	't', 'local provider works in LATIN1');
is($primary->safe_psql('lat', q{SELECT md5(embed('caf' || chr(233))::text)}),
	$primary->safe_psql('postgres', q{SELECT md5(embed('caf' || chr(233))::text)}),
	'local embeddings are the same in LATIN1 and UTF-8 databases');

# hot standby
$primary->backup('b');
my $standby = PostgreSQL::Test::Cluster->new('endpoints_standby');
$standby->init_from_backup($primary, 'b', has_streaming => 1);
$standby->start;
$primary->wait_for_catchup($standby);

is($standby->safe_psql('postgres', q{SELECT vector_dims(embed('on a standby'))}),
	'384', 'the local provider works on a hot standby');
is($standby->safe_psql('postgres', q{SELECT llm_complete(E'[1] Standbys serve reads.\nQuestion: What do standbys serve?')}),
	'Standbys serve reads. [1]', 'local completion on a hot standby');
my ($out, $err) = ('', '');
my $before = $fake->stats->{requests};
$standby->psql('postgres', q{SELECT embed('x', provider => 'fake')}, stderr => \$err,
	extra_params => [ '-v', 'VERBOSITY=verbose' ]);
like($err, qr/ERROR:  25006: cannot call provider "fake" in a read-only transaction/,
	'remote providers are refused on a standby');
is($fake->stats->{requests}, $before, 'nothing was sent');

$standby->stop;
$primary->stop;
$fake->stop;
done_testing();
