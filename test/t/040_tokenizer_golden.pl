# The tokenizer against tiktoken: every line of the golden files
# ($GENAI_SHARED/tokenizer/golden, all four encodings) must give exactly the
# reference ids, token_count must equal their number, and detokenize must
# give the text back.  Texts reach the server through COPY, never as SQL
# literals.
use strict;
use warnings;
use JSON::PP;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $golden = ($ENV{GENAI_SHARED} // '/work/shared') . '/tokenizer/golden';
plan skip_all => "no golden files in $golden" unless -f "$golden/cl100k_base.jsonl";

my $node = PostgreSQL::Test::Cluster->new('golden');
$node->init;
$node->start;
$node->safe_psql('postgres',
	q{CREATE DATABASE tok ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0});
$node->safe_psql('tok', q{CREATE EXTENSION genai;
	CREATE TABLE golden (enc text, line int, t text, ids text)});

# COPY text format: escape backslash, newline, carriage return and tab
sub copy_escape
{
	my $s = shift;
	$s =~ s/\\/\\\\/g;
	$s =~ s/\n/\\n/g;
	$s =~ s/\r/\\r/g;
	$s =~ s/\t/\\t/g;
	return $s;
}

my %expected;
my $copyfile = "$PostgreSQL::Test::Utils::tmp_check/golden.copy";
open(my $out, '>:raw', $copyfile) or die "$copyfile: $!";
for my $enc (qw(cl100k_base o200k_base p50k_base r50k_base))
{
	open(my $in, '<:raw', "$golden/$enc.jsonl") or die "$golden/$enc.jsonl: $!";
	local $/ = "\n";
	my $line = 0;
	while (my $json = <$in>)
	{
		chomp $json;
		next if $json eq '';
		$line++;
		my $obj = JSON::PP->new->utf8->decode($json);
		my $ids = '{' . join(',', @{ $obj->{ids} }) . '}';
		$expected{"$enc $line"} = $ids;
		my $text = $obj->{text};
		utf8::encode($text);
		print $out join("\t", $enc, $line, copy_escape($text), $ids), "\n";
	}
	close($in);
}
close($out);
$node->safe_psql('tok', "COPY golden FROM '$copyfile'");

for my $enc (qw(cl100k_base o200k_base p50k_base r50k_base))
{
	my $res = $node->safe_psql('tok', qq{
		SELECT line || ' ' || tokenize(t, enc)::text
		FROM golden WHERE enc = '$enc' ORDER BY line});
	my ($lines, $bad, $first) = (0, 0, '');
	for my $row (split /\n/, $res)
	{
		my ($line, $ids) = split / /, $row, 2;
		$lines++;
		next if $ids eq $expected{"$enc $line"};
		$bad++;
		$first ||= "line $line";
	}
	is($bad, 0, "$enc: $lines golden lines give tiktoken's ids" . ($bad ? " (first bad: $first)" : ''));
	is($node->safe_psql('tok', qq{
		SELECT count(*) FROM golden WHERE enc = '$enc'
		AND token_count(t, enc) <> cardinality(ids::int[])}),
		'0', "$enc: token_count equals the number of ids");
	is($node->safe_psql('tok', qq{
		SELECT count(*) FROM golden WHERE enc = '$enc'
		AND detokenize(ids::int[], enc) <> t}),
		'0', "$enc: detokenize gives the text back");
	is($node->safe_psql('tok', qq{
		SELECT count(*) FROM golden WHERE enc = '$enc'
		AND (truncate_tokens(t, 50, enc) <> left(t, length(truncate_tokens(t, 50, enc)))
			 OR token_count(truncate_tokens(t, 50, enc), enc) > 50
			 OR (token_count(t, enc) <= 50 AND truncate_tokens(t, 50, enc) <> t))}),
		'0', "$enc: truncate_tokens gives a prefix within the budget");
}

$node->stop;
done_testing();
