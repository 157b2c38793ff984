# The tokenizer outside the golden files: databases in other encodings,
# SQL_ASCII with bytes that are not UTF-8, megabyte runs of one character
# (linear time, exact round trip), cancellation of a long encode, and
# truncation/chunking of long runs.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);

my $node = PostgreSQL::Test::Cluster->new('tokedge');
$node->init;
$node->start;
for my $db ([ 'u8', 'UTF8' ], [ 'l1', 'LATIN1' ], [ 'sa', 'SQL_ASCII' ])
{
	$node->safe_psql('postgres',
		"CREATE DATABASE $db->[0] ENCODING '$db->[1]' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0");
	$node->safe_psql($db->[0], 'CREATE EXTENSION genai');
}

# --- a LATIN1 database converts to UTF-8 and back ---
# (this script's literals are UTF-8: the client says so, the server converts)
$node->safe_psql('postgres', q{ALTER DATABASE l1 SET client_encoding = 'UTF8'});
# the same characters give the same ids as in a UTF8 database
my $sample = q{SELECT tokenize('Grüße, café: ½ €?', e) FROM unnest(ARRAY['cl100k_base', 'o200k_base', 'r50k_base']) AS e};
# LATIN1 has no euro sign: leave it out there
(my $sample_l1 = $sample) =~ s/ €//;
(my $sample_u8 = $sample) =~ s/ €//;
is($node->safe_psql('l1', $sample_l1), $node->safe_psql('u8', $sample_u8),
	'LATIN1 text tokenizes as its UTF-8 form');
is($node->safe_psql('l1', q{SELECT detokenize(tokenize('Grüße ½')) = 'Grüße ½'}),
	't', 'LATIN1: detokenize converts back');
my ($ret, $out, $err) = $node->psql('l1',
	q{SELECT detokenize(tokenize(convert_from('\xe4b896e7958c', 'UTF8')))});
like($err, qr/has no equivalent in encoding "LATIN1"/,
	'LATIN1: CJK ids cannot come back as LATIN1 text');
is($node->safe_psql('l1', q{
	SELECT bool_and(content = substr(t, start_char + 1, end_char - start_char)
					AND octet_length(content) = end_byte - start_byte
					AND token_count <= 5)
	FROM (SELECT repeat('Grüße aus Köln. Ça va? ', 20) AS t) AS x, chunk(t, 5, 1)}),
	't', 'LATIN1: chunk offsets are in characters and LATIN1 bytes');
is($node->safe_psql('l1', q{SELECT truncate_tokens('Grüße aus Köln', 3)}),
	$node->safe_psql('u8', q{SELECT truncate_tokens('Grüße aus Köln', 3)}),
	'LATIN1: truncate_tokens cuts where UTF8 does');

# --- SQL_ASCII: text is read as UTF-8; other bytes are refused ---
is($node->safe_psql('sa', q{SELECT tokenize('héllo wörld')}),
	$node->safe_psql('u8', q{SELECT tokenize('héllo wörld')}),
	'SQL_ASCII: UTF-8 text tokenizes as in UTF8');
($ret, $out, $err) = $node->psql('sa', q{SELECT token_count(E'abc\\377def')});
like($err, qr/cannot tokenize text that is not valid UTF-8/,
	'SQL_ASCII: bytes that are not UTF-8 are an error, not a crash');
($ret, $out, $err) = $node->psql('u8', q{SELECT detokenize(ARRAY[3574])});
like($err, qr/tokens do not decode to valid UTF-8/,
	'a fragment of a character is refused by detokenize');

# --- one megabyte of one character: exact round trip, linear time ---
# prose: the same size of ordinary text, built from varied words
$node->safe_psql('u8', q{
	CREATE TABLE runs (name text, t text);
	INSERT INTO runs SELECT 'prose', left(string_agg(
		(ARRAY['The', 'quick', 'brown', 'fox', 'jumps', 'over', 'the', 'lazy',
			   'dog.', 'PostgreSQL', 'tokenizes', 'text,', 'and', 'counts', '42',
			   'tokens;', E'then\n', 'résumé', 'naïve'])[1 + (i * 7919) % 19], ' '),
		1048576) FROM generate_series(1, 200000) AS i;
	INSERT INTO runs SELECT c, repeat(c, 1048576 / octet_length(c))
	FROM unnest(ARRAY['a', ' ', E'\n', '1', '!', 'é', '🧑', 'ab']) AS c;});
for my $enc (qw(cl100k_base o200k_base))
{
	is($node->safe_psql('u8', qq{
		SELECT count(*) FROM runs
		WHERE detokenize(tokenize(t, '$enc'), '$enc') <> t
		   OR token_count(t, '$enc') <> cardinality(tokenize(t, '$enc'))}),
		'0', "$enc: 1 MB runs round-trip and count = length of tokenize");

	my %secs;
	for my $name ('prose', 'a', ' ', "\n", '!', '🧑')
	{
		(my $lit = $name) =~ s/'/''/g;
		my $best = 1e9;
		for (1 .. 3)
		{
			my $t0 = time;
			$node->safe_psql('u8', "SELECT token_count(t, '$enc') FROM runs WHERE name = E'"
				  . ($lit eq "\n" ? '\\n' : $lit) . "'");
			my $dt = time - $t0;
			$best = $dt if $dt < $best;
		}
		$secs{$name} = $best;
	}
	my $worst = 0;
	for my $name (grep { $_ ne 'prose' } keys %secs)
	{
		my $ratio = $secs{$name} / $secs{prose};
		$worst = $ratio if $ratio > $worst;
		note sprintf("%s: 1 MB of U+%04X takes %.1f x 1 MB of prose (%.3f s vs %.3f s)",
			$enc, ord($name), $ratio, $secs{$name}, $secs{prose});
	}
	# the target is 10x; the bound here only catches quadratic behaviour
	# (which would be hundreds of times) on a loaded machine
	cmp_ok($worst, '<', 40, "$enc: no 1 MB run is quadratic (worst ratio $worst)");
}

is($node->safe_psql('u8', q{
	SELECT token_count(truncate_tokens(t, 1000)) <= 1000
		AND t LIKE truncate_tokens(t, 1000) || '%'
	FROM runs WHERE name = 'a'}), 't', 'truncate_tokens on a 1 MB run');
is($node->safe_psql('u8', q{
	SELECT bool_and(token_count <= 500) AND string_agg(content, '' ORDER BY seq) = min(t)
	FROM runs, chunk(t, 500) WHERE name = ' '}), 't', 'chunk of a 1 MB run of spaces');

# --- a long encode stops on cancel ---
($ret, $out, $err) = $node->psql('u8', q{
	SET statement_timeout = '200ms';
	SELECT token_count(repeat('a', 200000000))});
like($err, qr/canceling statement due to statement timeout/,
	'statement_timeout cancels a long encode');

$node->stop;
done_testing();
