# hnsw crash safety: a backend is killed with SIGKILL while several clients
# insert into an indexed table (the server restarts and replays WAL); then
# the verifier is clean and an index scan returns exactly the committed
# rows.  The whole run uses wal_consistency_checking = generic, so every
# generic WAL record is also checked against the page it produced on redo.
# The first index stores fp32, a second one fp16 (compressed slots,
# lower-bound scans with the executor's recheck), and both go through the
# same; the build tests below use the default storage (fp16).
# Then: a checkpoint in the middle of an index build followed by a crash,
# for a serial and a parallel build.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use Time::HiRes qw(usleep);

my $node = PostgreSQL::Test::Cluster->new('hnsw_crash');
$node->init;
$node->append_conf('postgresql.conf', qq{
wal_consistency_checking = 'generic'
autovacuum = off
restart_after_crash = on
});
$node->start;
$node->safe_psql('postgres', q{
CREATE EXTENSION genai;
CREATE TABLE items (id bigserial PRIMARY KEY, k int, v vector(4));
INSERT INTO items (k, v) SELECT (random() * 5)::int, ('[' || random() || ',' || random() || ',' || random() || ',' || random() || ']')::vector
	FROM generate_series(1, 500);
CREATE INDEX items_v ON items USING hnsw (v vector_l2_ops) WITH (storage = fp32);
CREATE INDEX items_v16 ON items USING hnsw (v vector_cosine_ops) WITH (storage = fp16);
-- with a filter key: inserts also write the key directory
CREATE INDEX items_vk ON items USING hnsw (v vector_l2_ops, k);
});

# concurrent inserts with pgbench, then SIGKILL one of its backends
my $script = $node->basedir . '/insert.sql';
PostgreSQL::Test::Utils::append_to_file($script,
	"INSERT INTO items (k, v) SELECT (random() * 5)::int, ('[' || random() || ',' || random() || ',' || random() || ',' || random() || ']')::vector FROM generate_series(1, 5);\n");
my ($out, $err) = ('', '');
my $pgbench = IPC::Run::start(
	[ 'pgbench', '-n', '-c', '4', '-T', '60', '-f', $script, '-h', $node->host, '-p', $node->port, 'postgres' ],
	'>', \$out, '2>', \$err);

# wait until inserts are flowing, then kill a backend that runs one
my $victim = '';
for (my $i = 0; $i < 300 && $victim eq ''; $i++)
{
	usleep(100_000);
	$victim = $node->safe_psql('postgres',
		q{SELECT pid FROM pg_stat_activity WHERE query LIKE 'INSERT INTO items%' AND state = 'active' LIMIT 1});
}
ok($victim ne '', 'found an inserting backend');
my $before = $node->safe_psql('postgres', 'SELECT count(*) FROM items');
cmp_ok($before, '>', 500, 'inserts committed before the crash');
kill 'KILL', $victim;
$pgbench->finish;

# the postmaster reinitializes and replays WAL
my $up = 0;
for (my $i = 0; $i < 600 && !$up; $i++)
{
	usleep(100_000);
	$up = 1 if $node->psql('postgres', 'SELECT 1') == 0;
}
ok($up, 'server is back after the crash');
like(slurp_file($node->logfile), qr/terminated by signal 9/, 'the backend was killed');

is($node->safe_psql('postgres', q{SELECT string_agg(c, '; ') FROM hnsw_check('items_v') c}), '',
	'verifier is clean after recovery');
is($node->safe_psql('postgres', q{SELECT string_agg(c, '; ') FROM hnsw_check('items_v16') c}), '',
	'verifier is clean after recovery (fp16)');
is($node->safe_psql('postgres', q{SELECT string_agg(c, '; ') FROM hnsw_check('items_vk') c}), '',
	'verifier is clean after recovery (key index, with its directory)');
is($node->safe_psql('postgres', q{
SET enable_seqscan = off;
SET enable_bitmapscan = off;
SELECT count(*) FROM (SELECT id FROM items WHERE k = 3 ORDER BY v <-> '[0.5,0.5,0.5,0.5]' LIMIT 1000000) s;
}), $node->safe_psql('postgres', 'SELECT count(*) FROM items WHERE k = 3'),
	'a key scan returns every committed row of its key');
is($node->safe_psql('postgres', q{
SET enable_seqscan = off;
SELECT count(*) FROM (SELECT id FROM items ORDER BY v <-> '[0.5,0.5,0.5,0.5]' LIMIT 1000000) s;
}), $node->safe_psql('postgres', 'SELECT count(*) FROM items'),
	'an index scan returns every committed row');
is($node->safe_psql('postgres', q{
SET enable_seqscan = off;
SELECT count(*) FROM (SELECT id FROM items ORDER BY v <=> '[0.5,0.1,0.5,0.5]' LIMIT 1000000) s;
}), $node->safe_psql('postgres', 'SELECT count(*) FROM items'),
	'an fp16 index scan returns every committed row');

# VACUUM after recovery removes the crashed inserts' dead entries too
$node->safe_psql('postgres', q{DELETE FROM items WHERE id % 4 = 0; VACUUM items;});
is($node->safe_psql('postgres', q{SELECT string_agg(c, '; ') FROM hnsw_check('items_v') c}), '',
	'verifier is clean after VACUUM');
is($node->safe_psql('postgres', q{SELECT string_agg(c, '; ') FROM hnsw_check('items_v16') c}), '',
	'verifier is clean after VACUUM (fp16)');
is($node->safe_psql('postgres', q{SELECT string_agg(c, '; ') FROM hnsw_check('items_vk') c}), '',
	'verifier is clean after VACUUM (key index)');
$node->restart;

# a checkpoint while an index is being built, then a crash
$node->safe_psql('postgres', q{
CREATE TABLE big (id int, v vector(16));
INSERT INTO big SELECT i, ('[' || array_to_string(array(SELECT random() FROM generate_series(1, 16) WHERE i > 0), ',') || ']')::vector
	FROM generate_series(1, 20000) i;
});
my $build = $node->background_psql('postgres');
$build->query_until(qr/started/, q{
\echo started
CREATE INDEX big_v ON big USING hnsw (v vector_l2_ops) WITH (m = 8, ef_construction = 32);
\echo built
});
usleep(300_000);
$node->safe_psql('postgres', 'CHECKPOINT');
$build->query_until(qr/built/, '');
$build->quit;
$node->stop('immediate');
$node->start;
is($node->safe_psql('postgres', q{SELECT string_agg(c, '; ') FROM hnsw_check('big_v') c}), '',
	'index built across a checkpoint is intact after a crash');
is($node->safe_psql('postgres', q{
SET enable_seqscan = off;
SELECT id FROM big ORDER BY v <-> (SELECT v FROM big WHERE id = 77) LIMIT 1;
}), '77', 'and finds a row');

# the same for a parallel build (two workers and the leader)
$node->safe_psql('postgres', 'ALTER TABLE big SET (parallel_workers = 2)');
$build = $node->background_psql('postgres');
$build->query_until(qr/started/, q{
\echo started
SET max_parallel_maintenance_workers = 2;
CREATE INDEX big_p ON big USING hnsw (v vector_l2_ops) WITH (m = 8, ef_construction = 32);
\echo built
});
usleep(300_000);
$node->safe_psql('postgres', 'CHECKPOINT');
$build->query_until(qr/built/, '');
$build->quit;
$node->stop('immediate');
$node->start;
is($node->safe_psql('postgres', q{SELECT string_agg(c, '; ') FROM hnsw_check('big_p') c}), '',
	'parallel-built index across a checkpoint is intact after a crash');
is($node->safe_psql('postgres', q{
SET enable_seqscan = off;
SELECT id FROM big ORDER BY v <-> (SELECT v FROM big WHERE id = 77) LIMIT 1;
}), '77', 'and finds a row');

$node->stop;
done_testing();
