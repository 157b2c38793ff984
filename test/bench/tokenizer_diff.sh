#!/usr/bin/env bash
# test/bench/tokenizer_diff.sh -- differential test of the BPE core against
# the native Rust tiktoken (npm tiktoken-rs-node-linux-x64-gnu@1.0.6).
#
#   test/bench/tokenizer_diff.sh [COUNT [SEED]]
#
# For each encoding, COUNT random and mutated texts (default 20000; see
# tokenizer_diff.js) are encoded by tiktoken in node and by our core
# (tokenizer_core compare), and every disagreement is printed.  Needs node
# and npm; the package is installed into a scratch directory (or taken from
# TIKTOKEN_NODE_MODULES).  Exit status 1 if any text disagrees.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)
count=${1:-20000}
seed=${2:-$(date +%s)}
work=$(mktemp -d "${TMPDIR:-/tmp}/genai-tokdiff.XXXXXX")
trap 'rm -rf "$work"' EXIT

make -s -C "$src" PG_CONFIG="${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}" \
	$(for e in cl100k_base o200k_base p50k_base r50k_base; do echo src/tokenizer/vocab/genai_$e.bpe; done)
${CC:-cc} -O2 -I"$src/src/tokenizer" -o "$work/tokenizer_core" "$here/tokenizer_core.c" \
	"$src/src/tokenizer/bpe.c" "$src/src/tokenizer/bpesplit.c" "$src/src/tokenizer/bpeunicode.c"

modules=${TIKTOKEN_NODE_MODULES:-}
if [ -z "$modules" ]; then
	(cd "$work" && npm init -y >/dev/null &&
		npm install --silent --no-audit --no-fund tiktoken-rs-node-linux-x64-gnu@1.0.6 >/dev/null)
	modules=$work/node_modules
fi

corpora=""
for f in "${GENAI_SHARED:-$src/../shared}/tokenizer/bench/corpus.txt"; do
	[ -f "$f" ] && corpora="$corpora $f"
done

echo "seed $seed, $count texts per encoding"
status=0
for enc in cl100k_base o200k_base p50k_base r50k_base; do
	NODE_PATH=$modules node "$here/tokenizer_diff.js" "$enc" "$count" "$seed" "$work/$enc.rec" $corpora
	printf '%-12s ' "$enc"
	"$work/tokenizer_core" compare "$src/src/tokenizer/vocab/genai_$enc.bpe" "$enc" "$work/$enc.rec" || status=1
done
exit $status
