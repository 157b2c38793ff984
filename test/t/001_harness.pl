# Checks that the TAP harness itself works: a cluster made by
# PostgreSQL::Test::Cluster loads genai from the temporary installation.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('main');
$node->init;
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION genai');
is($node->safe_psql('postgres', q{SELECT '[3,4]'::vector <-> '[0,0]'}),
	'5', 'genai loads and computes a distance');
$node->stop;
done_testing();
