#!/usr/bin/env bash
# test/bench/tokenizer_bench.sh -- tokenizer throughput, first-call latency
# and per-backend memory, against native tiktoken side by side.
#
#   test/bench/tokenizer_bench.sh [PASSES]
#
# Builds genai into a private install, starts a UTF8 cluster, and loads
# $GENAI_SHARED/tokenizer/bench/corpus.txt as one row (STORAGE EXTERNAL, so
# no decompression is timed) and as rows of at most 1 KiB cut at character
# boundaries.  Every timed statement runs in a fresh backend (a new psql
# connection), so nothing cached from an earlier pass helps; the server's
# own statement time (psql \timing) is used, best of PASSES (default 5).
# Native tiktoken (npm tiktoken-rs-node-linux-x64-gnu@1.0.6) runs in node
# between our passes, so both see the same machine load: quote the ratios.
# Also: the core alone (tokenizer_core speed, including 1 MiB runs of one
# character), the first o200k_base call against a trivial genai call in
# fresh backends, and the memory of a backend that loaded o200k_base.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../pgenv.sh"
passes=${1:-5}
GENAI_SHARED=${GENAI_SHARED:-$(cd "$GENAI_SRC/.." && pwd)/shared}
corpus=$GENAI_SHARED/tokenizer/bench/corpus.txt
[ -f "$corpus" ] || genai_die "no corpus at $corpus"

genai_build
genai_workdir tokbench
genai_temp_install "$GENAI_WORK"
cp "$corpus" "$GENAI_WORK/corpus.txt"
# COPY input: the whole text, and 1 KiB pieces
perl -e '
	local $/; open(my $f, "<:raw", $ARGV[0]) or die; my $t = <$f>;
	sub esc { my $s = shift; $s =~ s/\\/\\\\/g; $s =~ s/\n/\\n/g; $s =~ s/\r/\\r/g; $s =~ s/\t/\\t/g; $s }
	open(my $w, ">:raw", "$ARGV[1]/whole.copy") or die; print $w esc($t), "\n";
	open(my $r, ">:raw", "$ARGV[1]/rows.copy") or die;
	my ($i, $n) = (0, length $t);
	while ($i < $n) {
		my $e = $i + 1024 < $n ? $i + 1024 : $n;
		$e-- while $e < $n && (ord(substr($t, $e, 1)) & 0xC0) == 0x80;
		print $r esc(substr($t, $i, $e - $i)), "\n"; $i = $e;
	}' "$corpus" "$GENAI_WORK"
genai_chown_work

pgdata=$GENAI_WORK/data
port=$((20000 + RANDOM % 20000))
genai_as_pg "$GENAI_BIN/initdb" -D "$pgdata" -E UTF8 --locale=C -A trust >/dev/null
genai_as_pg "$GENAI_BIN/pg_ctl" -D "$pgdata" -l "$GENAI_WORK/server.log" -w \
	-o "-p $port -k $GENAI_WORK -c shared_buffers=256MB" start >/dev/null
psql_() { genai_as_pg "$GENAI_BIN/psql" -X -q -h "$GENAI_WORK" -p "$port" -d postgres "$@"; }
psql_ -c 'CREATE EXTENSION genai' \
	-c 'CREATE TABLE whole (t text); ALTER TABLE whole ALTER t SET STORAGE EXTERNAL' \
	-c 'CREATE TABLE rows (t text)' \
	-c "COPY whole FROM '$GENAI_WORK/whole.copy'" -c "COPY rows FROM '$GENAI_WORK/rows.copy'" \
	-c 'VACUUM ANALYZE whole, rows'
bytes=$(stat -c %s "$corpus")

# best statement time (ms) of a query over $passes fresh backends
best_ms() {
	local q=$1 best="" ms i
	for i in $(seq "$passes"); do
		ms=$(psql_ -c '\timing on' -c "$q" | sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p' | tail -1)
		best=$(echo "$ms $best" | awk '{ if ($2 == "" || $1 < $2) print $1; else print $2 }')
	done
	echo "$best"
}
mbs() { awk -v b="$bytes" -v ms="$1" 'BEGIN { printf "%.1f", b / 1e6 / (ms / 1000) }'; }

# native tiktoken, if npm can install it
tk=""
if command -v node >/dev/null && command -v npm >/dev/null; then
	mkdir -p "$GENAI_WORK/node" && (cd "$GENAI_WORK/node" && npm init -y >/dev/null &&
		npm install --silent --no-audit --no-fund tiktoken-rs-node-linux-x64-gnu@1.0.6 >/dev/null 2>&1) &&
		tk=$GENAI_WORK/node/node_modules
fi
tiktoken_mbs() {	# encoding mode(whole|rows)
	[ -n "$tk" ] || { echo "n/a"; return; }
	NODE_PATH=$tk node -e '
		const fs = require("fs"), { getEncoding } = require("tiktoken-rs-node-linux-x64-gnu");
		const t = fs.readFileSync(process.argv[1], "utf8"), bytes = Buffer.byteLength(t);
		const e = getEncoding(process.argv[2]); let pieces = [t];
		if (process.argv[3] === "rows") {
			const b = Buffer.from(t, "utf8"); pieces = []; let i = 0;
			while (i < b.length) { let j = Math.min(i + 1024, b.length);
				while (j < b.length && (b[j] & 0xC0) === 0x80) j--;
				pieces.push(b.subarray(i, j).toString("utf8")); i = j; }
		}
		let best = 1e9;
		for (let p = 0; p < +process.argv[4]; p++) {
			const t0 = process.hrtime.bigint(); let n = 0;
			for (const s of pieces) n += e.encode(s).length;
			const dt = Number(process.hrtime.bigint() - t0) / 1e9; if (dt < best) best = dt;
		}
		console.log((bytes / 1e6 / best).toFixed(1));' "$corpus" "$1" "$2" "$passes"
}

echo "corpus: $bytes bytes; best of $passes passes, fresh backend per pass"
printf '%-12s %-28s %10s %10s %8s\n' encoding measure genai tiktoken ratio
for enc in cl100k_base o200k_base; do
	for what in "count whole|SELECT token_count(t, '$enc') FROM whole|whole" \
		"count 1KiB rows|SELECT sum(token_count(t, '$enc')) FROM rows|rows" \
		"encode whole|SELECT cardinality(tokenize(t, '$enc')) FROM whole|whole" \
		"encode 1KiB rows|SELECT sum(cardinality(tokenize(t, '$enc'))) FROM rows|rows"; do
		IFS='|' read -r label q mode <<<"$what"
		ours=$(mbs "$(best_ms "$q")")
		theirs=$(tiktoken_mbs "$enc" "$mode")
		printf '%-12s %-28s %10s %10s %8s\n' "$enc" "$label (MB/s)" "$ours" "$theirs" \
			"$(awk -v a="$ours" -v b="$theirs" 'BEGIN { if (b + 0 > 0) printf "%.2fx", a / b; else print "-" }')"
	done
done
echo "SQL overhead: sum(length(t)) over the 1 KiB rows: $(mbs "$(best_ms 'SELECT sum(length(t)) FROM rows')") MB/s"

# first call in a fresh backend: o200k_base vs a trivial genai function
first_ms() {
	local q=$1 all="" i
	for i in $(seq 9); do
		all="$all $(psql_ -c '\timing on' -c "$q" | sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p' | tail -1)"
	done
	echo "$all" | tr ' ' '\n' | sed '/^$/d' | sort -n | sed -n 5p
}
triv=$(first_ms "SELECT vector_dims('[1,2]')")
o200=$(first_ms "SELECT token_count('x', 'o200k_base')")
cl100=$(first_ms "SELECT token_count('x', 'cl100k_base')")
echo "first call in a fresh backend (median of 9): trivial genai call $triv ms," \
	"o200k_base $o200 ms (+$(awk -v a="$o200" -v b="$triv" 'BEGIN { printf "%.1f", a - b }') ms)," \
	"cl100k_base $cl100 ms (+$(awk -v a="$cl100" -v b="$triv" 'BEGIN { printf "%.1f", a - b }') ms)"

# memory of a backend that loaded o200k_base, against one that did not
mem() {
	psql_ -At -c "$1" -c "SELECT pg_read_file('/proc/self/smaps_rollup')" |
		awk '/^(Rss|Pss|Shared_Clean|Private_Clean|Private_Dirty|Anonymous):/ { printf "%s %s kB  ", $1, $2 } END { print "" }'
}
echo "backend after a trivial genai call:      $(mem "SELECT vector_dims('[1,2]')")"
echo "backend after token_count(o200k_base):   $(mem "SELECT token_count('x', 'o200k_base')")"
echo "backend after o200k over the 10 MB text: $(mem "SELECT token_count(t, 'o200k_base') FROM whole")"

# the core alone, and 1 MiB runs of one character
make -s -C "$GENAI_SRC" PG_CONFIG="$(genai_pg_config)" >/dev/null
cc -O2 -I"$GENAI_SRC/src/tokenizer" -o "$GENAI_WORK/tokenizer_core" "$here/tokenizer_core.c" \
	"$GENAI_SRC"/src/tokenizer/bpe.c "$GENAI_SRC"/src/tokenizer/bpesplit.c "$GENAI_SRC"/src/tokenizer/bpeunicode.c
for enc in cl100k_base o200k_base; do
	echo "core alone, $enc:"
	"$GENAI_WORK/tokenizer_core" speed "$GENAI_SRC/src/tokenizer/vocab/genai_$enc.bpe" "$enc" "$corpus" "$passes" | sed 's/^/  /'
done
genai_as_pg "$GENAI_BIN/pg_ctl" -D "$pgdata" -m fast stop >/dev/null
