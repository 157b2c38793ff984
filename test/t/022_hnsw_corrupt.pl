# hnsw verifier: a link overwritten on disk is reported by hnsw_check, and
# so is a key directory summary that lost the keys of its page's nodes.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('hnsw_corrupt');
$node->init;
$node->start;
$node->safe_psql('postgres', q{
CREATE EXTENSION genai;
CREATE TABLE t (id int, v vector(3));
INSERT INTO t SELECT i, ('[' || i || ',' || (i % 10) || ',1]')::vector FROM generate_series(1, 200) i;
CREATE INDEX t_v ON t USING hnsw (v vector_l2_ops);
CREATE TABLE tk (id int, k int, v vector(3));
INSERT INTO tk SELECT i, i % 7, ('[' || i || ',' || (i % 10) || ',1]')::vector FROM generate_series(1, 200) i;
CREATE INDEX tk_vk ON tk USING hnsw (v vector_l2_ops, k);
});
is($node->safe_psql('postgres', q{SELECT count(*) FROM hnsw_check('tk_vk')}), '0', 'healthy key index');
my $kpath = $node->safe_psql('postgres', q{SELECT pg_relation_filepath('tk_vk')});
# the build writes the key directory page last
my $kdir = $node->safe_psql('postgres', q{SELECT pg_relation_size('tk_vk') / 8192 - 1});
is($node->safe_psql('postgres', q{SELECT count(*) FROM hnsw_check('t_v')}), '0', 'healthy index');
my $path = $node->safe_psql('postgres', q{SELECT pg_relation_filepath('t_v')});
$node->stop;

# block 1 holds the first node slots; the first slot's level-0 links start
# after the page header (24 bytes) and the slot header (16 bytes)
my $file = $node->data_dir . '/' . $path;
open(my $fh, '+<', $file) or die "open $file: $!";
binmode $fh;
sysseek($fh, 8192 + 24 + 16, 0) or die;
syswrite($fh, pack('L', 0x7FFFFFF0), 4) == 4 or die;
close $fh;

# clear the directory summaries of blocks 0-7 (32 bytes each, after the
# page header)
my $kfile = $node->data_dir . '/' . $kpath;
open($fh, '+<', $kfile) or die "open $kfile: $!";
binmode $fh;
sysseek($fh, 8192 * $kdir + 24, 0) or die;
syswrite($fh, "\0" x 256, 256) == 256 or die;
close $fh;

$node->start;
my $report = $node->safe_psql('postgres', q{SELECT string_agg(c, E'\n') FROM hnsw_check('t_v') c});
like($report, qr/link 2147483632 points past the end of the index/, 'corrupted link is reported');
$report = $node->safe_psql('postgres', q{SELECT string_agg(c, E'\n') FROM hnsw_check('tk_vk') c});
like($report, qr/block 1: key directory summary lacks the keys of node \d+/,
	'cleared key directory summary is reported');
$node->stop;
done_testing();
