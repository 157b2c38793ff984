# pg_dump / pg_restore of a genai database's own objects round-trips
# exactly: tables with vector columns (with and without typmod, NULLs,
# extreme and subnormal values, random float bit patterns), a view using
# the distance operators, a typmod'd vector in an expression, hnsw indexes
# with the default storage (auto, resolved again on restore) and with an
# explicit storage = fp32 (kept).  Plain format
# through psql and custom format through pg_restore, both into fresh
# databases with genai installed by the dump itself.
use strict;
use warnings;
use File::Temp qw(tempdir);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $tmp = tempdir(CLEANUP => 1);
my $node = PostgreSQL::Test::Cluster->new('roundtrip');
$node->init;
$node->start;

$node->safe_psql('postgres', 'CREATE DATABASE src');
$node->safe_psql('src', q{
CREATE EXTENSION genai;
CREATE TABLE emb (id bigserial PRIMARY KEY, label text, v vector(4), w vector);
ALTER TABLE emb ALTER COLUMN v SET STORAGE PLAIN;
-- values whose text form must round-trip to the same float bits
INSERT INTO emb (label, v, w) VALUES
	('plain', '[1,2,3,4]', '[1]'),
	('extremes', '[3.4028235e+38,-3.4028235e+38,1.4e-45,-1.1754944e-38]', '[0,-0]'),
	('nulls', NULL, NULL),
	('shortest', '[0.1,0.2,0.3,1e-07]', '[0.33333334,0.6666667,1.0000001]');
-- random floats across the whole exponent range
SELECT setseed(0.42);
INSERT INTO emb (label, v, w)
SELECT 'random ' || i,
       ARRAY(SELECT ((random() * 2 - 1) * 10 ^ (random() * 74 - 37))::real
             FROM generate_series(1, 4 + 0 * i))::vector(4),
       ARRAY(SELECT (random() * 2 - 1)::real FROM generate_series(1, 1 + i % 20))::vector
FROM generate_series(1, 200) i;
CREATE TABLE wide (id int, e vector(1536));
INSERT INTO wide
SELECT i, ARRAY(SELECT (random() - 0.5)::real FROM generate_series(1, 1536 + 0 * i))::vector(1536)
FROM generate_series(1, 20) i;
CREATE INDEX wide_auto ON wide USING hnsw (e vector_l2_ops);
CREATE INDEX wide_fp32 ON wide USING hnsw (e vector_cosine_ops) WITH (storage = fp32);
CREATE VIEW near AS
SELECT id, label, v <-> '[1,2,3,4]' AS l2, v <#> '[1,2,3,4]' AS nip,
       v <=> '[1,2,3,4]' AS cos, v <+> '[1,2,3,4]' AS l1,
       ('[1,1,1,1]'::vector(4) + v) AS shifted
FROM emb WHERE v IS NOT NULL
ORDER BY v <-> '[1,2,3,4]', id LIMIT 10;
});

# what must survive: types with typmods, data as text and as bits, the
# view's definition and results
my %checks = (
	columns => q{SELECT attrelid::regclass, attname, format_type(atttypid, atttypmod), attstorage
	             FROM pg_attribute WHERE attrelid IN ('emb'::regclass, 'wide'::regclass)
	             AND attnum > 0 AND NOT attisdropped ORDER BY 1, attnum},
	emb_text => q{SELECT id, label, v, w FROM emb ORDER BY id},
	emb_bits => q{SELECT md5(string_agg(coalesce(vector_send(v)::text, 'null') || coalesce(vector_send(w)::text, 'null'), ',' ORDER BY id)) FROM emb},
	wide_bits => q{SELECT md5(string_agg(vector_send(e)::text, ',' ORDER BY id)) FROM wide},
	view_def => q{SELECT pg_get_viewdef('near'::regclass)},
	view_rows => q{SET genai.simd = 'scalar'; SELECT * FROM near},
	sequence => q{SELECT last_value FROM emb_id_seq},
	hnsw_storage => q{SELECT relname, hnsw_storage(oid), reloptions FROM pg_class
	                  WHERE relname IN ('wide_auto', 'wide_fp32') ORDER BY 1},
	hnsw_scans => q{SET enable_seqscan = off;
	                SELECT string_agg(id::text, ',') FROM (SELECT id FROM wide
	                    ORDER BY e <-> (SELECT e FROM wide WHERE id = 3) LIMIT 5) a
	                UNION ALL
	                SELECT string_agg(id::text, ',') FROM (SELECT id FROM wide
	                    ORDER BY e <=> (SELECT e FROM wide WHERE id = 3) LIMIT 5) b},
);
my %want = map { $_ => $node->safe_psql('src', $checks{$_}) } keys %checks;
ok($want{emb_text} =~ /3\.4028235e\+38/ && $want{view_rows} ne '', 'source database has the test data');
is($want{hnsw_storage}, "wide_auto|fp16|\nwide_fp32|fp32|{storage=fp32}",
	'auto resolves to fp16, storage = fp32 is kept');

$node->command_ok([ 'pg_dump', '-Fc', '-f', "$tmp/src.custom", $node->connstr('src') ],
	'pg_dump, custom format');
$node->command_ok([ 'pg_dump', '-Fp', '-f', "$tmp/src.sql", $node->connstr('src') ],
	'pg_dump, plain format');

$node->safe_psql('postgres', 'CREATE DATABASE from_custom');
$node->command_ok(
	[ 'pg_restore', '--exit-on-error', '-d', $node->connstr('from_custom'), "$tmp/src.custom" ],
	'pg_restore of the custom dump');
$node->safe_psql('postgres', 'CREATE DATABASE from_plain');
my ($rc, $out, $err) = $node->psql('from_plain', undef,
	extra_params => [ '-v', 'ON_ERROR_STOP=1', '-f', "$tmp/src.sql" ]);
is($rc, 0, 'psql restores the plain dump');
is($err, '', 'plain dump restores without errors or warnings');

for my $db (qw(from_custom from_plain))
{
	for my $c (sort keys %checks)
	{
		is($node->safe_psql($db, $checks{$c}), $want{$c}, "$db: $c identical");
	}
	# the restored database dumps to the same text again (minus the header)
	my ($again) = run_command([ 'pg_dump', '-Fp', $node->connstr($db) ]);
	my $first = slurp_file("$tmp/src.sql");
	for ($again, $first)
	{
		s/^\\(un)?restrict .*$//mg;
		s/\s+\z//;
	}
	is($again, $first, "$db: dumps to the same SQL as the source");
}

$node->stop;
done_testing();
