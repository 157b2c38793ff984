# hnsw on a streaming standby: the build, inserts, deletes and VACUUM replay
# (generic WAL, checked with wal_consistency_checking) and the standby's
# index scans return the same ids as the primary's, for an fp32 index and
# an sq8 one (lower-bound scans, rechecked by the executor).
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $primary = PostgreSQL::Test::Cluster->new('hnsw_primary');
$primary->init(allows_streaming => 1);
$primary->append_conf('postgresql.conf', "wal_consistency_checking = 'generic'\nautovacuum = off\n");
$primary->start;
$primary->backup('b');
my $standby = PostgreSQL::Test::Cluster->new('hnsw_standby');
$standby->init_from_backup($primary, 'b', has_streaming => 1);
$standby->append_conf('postgresql.conf', "wal_consistency_checking = 'generic'\n");
$standby->start;

$primary->safe_psql('postgres', q{
CREATE EXTENSION genai;
CREATE TABLE docs (id int, v vector(8));
INSERT INTO docs SELECT i, ('[' || array_to_string(array(SELECT random() FROM generate_series(1, 8) WHERE i > 0), ',') || ']')::vector
	FROM generate_series(1, 3000) i;
CREATE INDEX docs_v ON docs USING hnsw (v vector_cosine_ops) WITH (storage = fp32);
CREATE INDEX docs_v8 ON docs USING hnsw (v vector_l2_ops) WITH (storage = sq8);
INSERT INTO docs SELECT i, ('[' || array_to_string(array(SELECT random() FROM generate_series(1, 8) WHERE i > 0), ',') || ']')::vector
	FROM generate_series(3001, 3500) i;
DELETE FROM docs WHERE id % 5 = 0;
VACUUM docs;
CREATE UNLOGGED TABLE scratch (v vector(2));
CREATE INDEX ON scratch USING hnsw (v vector_l2_ops);
});
$primary->wait_for_catchup($standby);

my $query = q{
SET enable_seqscan = off;
SELECT string_agg(x::text, ',') FROM (
	SELECT q.id, (SELECT array_agg(d.id) FROM (SELECT id FROM docs ORDER BY v <=> q.v LIMIT 10) d) AS ids
	FROM docs q WHERE q.id % 97 = 1) s, unnest(s.ids) AS u(x);
};
my $p = $primary->safe_psql('postgres', $query);
my $s = $standby->safe_psql('postgres', $query);
ok(length($p) > 0, 'primary returns rows');
is($s, $p, 'standby returns the same ids as the primary');
is($standby->safe_psql('postgres', q{SELECT count(*) FROM hnsw_check('docs_v')}), '0',
	'verifier is clean on the standby');
my $query8 = q{
SET enable_seqscan = off;
SELECT string_agg(x::text, ',') FROM (
	SELECT q.id, (SELECT array_agg(d.id) FROM (SELECT id FROM docs ORDER BY v <-> q.v LIMIT 10) d) AS ids
	FROM docs q WHERE q.id % 97 = 1) s, unnest(s.ids) AS u(x);
};
my $p8 = $primary->safe_psql('postgres', $query8);
ok(length($p8) > 0, 'primary returns rows (sq8)');
is($standby->safe_psql('postgres', $query8), $p8, 'standby returns the same ids as the primary (sq8)');
is($standby->safe_psql('postgres', q{SELECT count(*) FROM hnsw_check('docs_v8')}), '0',
	'verifier is clean on the standby (sq8)');
is($standby->safe_psql('postgres', q{SET enable_seqscan = off; SELECT count(*) FROM (SELECT 1 FROM docs ORDER BY v <=> '[1,1,1,1,1,1,1,1]' LIMIT 100000) s}),
	$primary->safe_psql('postgres', 'SELECT count(*) FROM docs'), 'standby index has every row');

# promote: the standby's copy of the index takes inserts
$standby->promote;
$standby->safe_psql('postgres', q{INSERT INTO docs VALUES (99999, '[9,9,9,9,9,9,9,1]')});
is($standby->safe_psql('postgres', q{SET enable_seqscan = off; SELECT id FROM docs ORDER BY v <=> '[9,9,9,9,9,9,9,1]' LIMIT 1}),
	'99999', 'promoted standby inserts into the index');
is($standby->safe_psql('postgres', q{SELECT count(*) FROM hnsw_check('docs_v')}), '0',
	'verifier is clean after promotion');

$standby->stop;
$primary->stop;
done_testing();
