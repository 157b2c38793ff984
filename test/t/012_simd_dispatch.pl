# Kernel dispatch on a CPU without some instruction sets, simulated with
# GENAI_SIMD_DISABLE (src/vector/vectorcpu.c), which hides paths from CPU
# detection.  Checks that auto falls back, that forcing a missing path is
# refused with FEATURE_NOT_SUPPORTED (never executed), that the remaining
# paths still agree with the scalar reference, and that a server whose
# configuration names a missing path still starts, with a warning, even
# with genai preloaded.  CPU-independent: on a CPU that already lacks a
# path, hiding it changes nothing and the same assertions hold.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('simd');
$node->init;
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION genai');
my @all = split /,/, $node->safe_psql('postgres', "SELECT array_to_string(genai_simd_paths(), ',')");
ok(grep({ $_ eq 'scalar' } @all), 'scalar is always a path');
is($node->safe_psql('postgres', 'SELECT genai_simd_active()'), $all[-1], 'auto picks the widest path');

# restart with some paths hidden from detection
sub restart_hiding
{
	my ($hide) = @_;
	local $ENV{GENAI_SIMD_DISABLE} = $hide;
	$node->restart;
}

for my $hide ('avx512', 'avx2,avx512', 'avx2')
{
	restart_hiding($hide);
	my %hidden = map { $_ => 1 } split /,/, $hide;
	my @left = grep { !$hidden{$_} } @all;
	is($node->safe_psql('postgres', "SELECT array_to_string(genai_simd_paths(), ',')"),
		join(',', @left), "hiding $hide: the other paths remain");
	is($node->safe_psql('postgres', 'SELECT genai_simd_active()'),
		$left[-1], "hiding $hide: auto falls back to $left[-1]");
	for my $path (sort keys %hidden)
	{
		# genai loaded in the session: SET is checked at once
		my ($rc, $out, $err) = $node->psql('postgres',
			"\\set VERBOSITY verbose\nSELECT genai_simd_active();\nSET genai.simd = '$path'");
		like($err, qr/ERROR:  0A000: this CPU cannot run the "$path" distance kernels/,
			"hiding $hide: forcing $path is refused with FEATURE_NOT_SUPPORTED");
		# set before genai is loaded (a placeholder): refused when it loads
		($rc, $out, $err) = $node->psql('postgres',
			"SET genai.simd = '$path';\nSELECT genai_simd_active();");
		is($out, $left[-1], "hiding $hide: $path set before loading is not used");
		like($err, qr/WARNING:  this CPU cannot run the "$path" distance kernels/,
			"hiding $hide: $path set before loading is refused with a warning");
		($rc, $out, $err) = $node->psql('postgres',
			"\\set VERBOSITY verbose\nSELECT * FROM genai_kernel_selfcheck('$path', 10, 1)");
		like($err, qr/ERROR:  0A000: this CPU cannot run the "$path" distance kernels/,
			"hiding $hide: the $path self-check is refused");
	}
	is($node->safe_psql('postgres', q{
		SELECT bool_and(c.passed) FROM unnest(genai_simd_paths()) p,
		       genai_kernel_selfcheck(p, 300, 5) c}),
		't', "hiding $hide: the remaining paths agree with scalar");
}

# a configuration naming a hidden path: warns, keeps auto, never crashes;
# both when genai is loaded on first use and when it is preloaded
$node->append_conf('postgresql.conf', "genai.simd = 'avx512'");
restart_hiding('avx512');
my ($rc, $out, $err) = $node->psql('postgres', 'SELECT genai_simd_active()');
is($rc, 0, 'a configured hidden path does not break loading genai');
is($out, $all[-1] eq 'avx512' ? $all[-2] : $all[-1], 'the configured hidden path is not used');

$node->append_conf('postgresql.conf', "shared_preload_libraries = 'genai'");
my $log_offset = -s $node->logfile;
restart_hiding('avx512');
ok($node->log_contains('this CPU cannot run the "avx512" distance kernels', $log_offset),
	'preloaded: the server log explains the refused setting');
is($node->safe_psql('postgres', 'SELECT genai_simd_active()'),
	$all[-1] eq 'avx512' ? $all[-2] : $all[-1], 'preloaded: the server runs on the best remaining path');
is($node->safe_psql('postgres', q{SELECT '[3,4]'::vector <-> '[0,0]'}), '5', 'preloaded: distances work');

$node->stop;
done_testing();
