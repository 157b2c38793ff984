#!/usr/bin/env bash
# test/bench/embed_bench.sh -- embed() through the fake endpoint, compared
# with a plain HTTP client sending the same requests to the same endpoint.
#
#   test/bench/embed_bench.sh            (N=10000 texts, B=100 per request)
#   N=20000 B=256 REPEAT=5 test/bench/embed_bench.sh
#
# Prints, for one run on this machine (quote only the ratios):
#   1. batched throughput: embed(text[]) of N short texts in batches of B
#      vs. the direct client (Python http.client, keep-alive, same bodies,
#      same batch size, concurrency 1), best of REPEAT;
#   2. single-call overhead: 500 calls of embed(text) in one session vs.
#      500 direct single-input requests;
#   3. statement_timeout latency during a stalled transfer (overshoot past
#      the timeout, 10 tries);
#   4. the local provider's throughput, for reference;
#   5. the cost of provider limits (max_concurrency, requests_per_minute):
#      the server restarted with shared_preload_libraries = 'genai', the
#      single-call and batched runs against a provider without limits and
#      one with limits that never bind, in ABBA order, median of REPEAT.
# Not part of the pass/fail suite.
set -u
. "$(dirname "$0")/../pgenv.sh"
N=${N:-10000}
B=${B:-100}
REPEAT=${REPEAT:-3}
DIMS=${DIMS:-384}

genai_ensure_packages
genai_build
genai_workdir bench
genai_temp_install "$GENAI_WORK"
cp "$GENAI_SRC/test/fake_endpoint.py" "$GENAI_SRC/test/bench/embed_direct.py" "$GENAI_WORK/"
genai_chown_work

genai_as_pg initdb -D "$GENAI_WORK/data" -A trust -U postgres >/dev/null || genai_die "initdb failed"
genai_as_pg pg_ctl -D "$GENAI_WORK/data" -l "$GENAI_WORK/server.log" -w \
	-o "-c listen_addresses='' -k $GENAI_WORK -c port=5497 -c shared_buffers=256MB" start >/dev/null ||
	genai_die "server did not start"
python3 "$GENAI_WORK/fake_endpoint.py" --port-file "$GENAI_WORK/port" --dims "$DIMS" &
FAKE=$!
trap 'kill $FAKE 2>/dev/null; genai_as_pg pg_ctl -D "$GENAI_WORK/data" -m immediate stop >/dev/null 2>&1; genai_cleanup' EXIT
for _ in $(seq 100); do [ -s "$GENAI_WORK/port" ] && break; sleep 0.1; done
PORT=$(cat "$GENAI_WORK/port")

psql_() { genai_as_pg psql -X -q -h "$GENAI_WORK" -p 5497 -U postgres -d postgres -v ON_ERROR_STOP=1 "$@"; }
# milliseconds of the last "Time:" line psql prints for a statement
timed() { psql_ -c '\timing on' -c "$1" | sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p' | tail -1; }

psql_ -c "CREATE EXTENSION genai" -c "CREATE SERVER fake FOREIGN DATA WRAPPER genai
  OPTIONS (kind 'openai', base_url 'http://127.0.0.1:$PORT/v1', embedding_model 'fe',
  max_batch_inputs '$B')" -c "CREATE TABLE texts AS SELECT i, 'short text number ' || i || ' about topic ' || (i % 97) AS t
  FROM generate_series(1, $N) i" >/dev/null || genai_die "setup failed"

best() { sort -n | head -1; }

echo "== batched: $N texts, $B per request, best of $REPEAT"
g=$(for _ in $(seq "$REPEAT"); do
	timed "SELECT count(*) FROM unnest((SELECT embed(array_agg(t ORDER BY i), provider => 'fake') FROM texts))"
done | best)
d=$(for _ in $(seq "$REPEAT"); do
	python3 "$GENAI_WORK/embed_direct.py" batch "$PORT" "$N" "$B"
done | best)
echo "genai embed(text[]):  $g ms"
echo "direct client:        $d ms"
awk -v g="$g" -v d="$d" 'BEGIN { printf "genai throughput = %.1f%% of the direct client'"'"'s\n", 100 * d / g }'

echo "== single calls: 500 x embed(text), one session"
g=$(timed "DO \$\$ BEGIN FOR i IN 1..500 LOOP PERFORM embed('short text ' || i, provider => 'fake'); END LOOP; END \$\$")
d=$(python3 "$GENAI_WORK/embed_direct.py" single "$PORT" 500)
echo "genai:  $g ms ($(awk -v g="$g" 'BEGIN { printf "%.3f", g / 500 }') ms per call)"
echo "direct: $d ms ($(awk -v d="$d" 'BEGIN { printf "%.3f", d / 500 }') ms per call)"
awk -v g="$g" -v d="$d" 'BEGIN { printf "overhead per call = %.3f ms\n", (g - d) / 500 }'

echo "== statement_timeout = 200 ms during a stalled request (10 tries)"
for _ in $(seq 10); do
	t=$(psql_ -c "SET statement_timeout = 200" -c '\timing on' \
		-c "SELECT embed('FAULT:stall=5000', provider => 'fake')" 2>/dev/null | sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p' | tail -1)
	[ -z "$t" ] && t=$(psql_ -c "SET statement_timeout = 200" -c '\timing on' \
		-c "SELECT embed('FAULT:stall=5000', provider => 'fake')" 2>&1 | sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p' | tail -1)
	echo "$t"
done | sort -n | awk '{ a[NR] = $1 - 200 } END { printf "overshoot past 200 ms: min %.1f ms, median %.1f ms, max %.1f ms\n", a[1], a[int((NR + 1) / 2)], a[NR] }'

echo "== local provider: $N texts"
g=$(timed "SELECT count(*) FROM unnest((SELECT embed(array_agg(t ORDER BY i)) FROM texts))")
echo "local embed(text[]): $g ms ($(awk -v g="$g" -v n="$N" 'BEGIN { printf "%.0f", n / g * 1000 }') texts/s)"

echo "== provider limits: shared_preload_libraries = 'genai', limits that never bind"
genai_as_pg pg_ctl -D "$GENAI_WORK/data" -l "$GENAI_WORK/server.log" -w -m fast restart \
	-o "-c listen_addresses='' -k $GENAI_WORK -c port=5497 -c shared_buffers=256MB -c shared_preload_libraries=genai" \
	>/dev/null || genai_die "restart with preload failed"
psql_ -c "CREATE SERVER fake_lim FOREIGN DATA WRAPPER genai
  OPTIONS (kind 'openai', base_url 'http://127.0.0.1:$PORT/v1', embedding_model 'fe',
  max_batch_inputs '$B', max_concurrency '64', requests_per_minute '100000000')" >/dev/null
single() { timed "DO \$\$ BEGIN FOR i IN 1..500 LOOP PERFORM embed('short text ' || i, provider => '$1'); END LOOP; END \$\$"; }
batched() { timed "SELECT count(*) FROM unnest((SELECT embed(array_agg(t ORDER BY i), provider => '$1') FROM texts))"; }
: > "$GENAI_WORK/lim.txt"
# ABBA order: the usage writer inserting the previous run's rows, caches
# and the machine's load must not favour one side
for r in $(seq "$REPEAT"); do
	if [ $((r % 2)) -eq 1 ]; then order="fake fake_lim"; else order="fake_lim fake"; fi
	for p in $order; do
		k=$([ "$p" = fake ] && echo u || echo l)
		echo "s$k $(single "$p")" >> "$GENAI_WORK/lim.txt"
	done
	for p in $order; do
		k=$([ "$p" = fake ] && echo u || echo l)
		echo "b$k $(batched "$p")" >> "$GENAI_WORK/lim.txt"
	done
done
# the median of the rounds
b() { awk -v k="$1" '$1 == k { print $2 }' "$GENAI_WORK/lim.txt" | sort -n |
	awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
su=$(b su); sl=$(b sl); bu=$(b bu); bl=$(b bl)
echo "500 single calls:  no limits $su ms, with limits $sl ms"
echo "batched ($N texts): no limits $bu ms, with limits $bl ms"
awk -v su="$su" -v sl="$sl" -v bu="$bu" -v bl="$bl" 'BEGIN {
	printf "with limits / without: single calls %.3f, batched %.3f; %.1f us per request\n",
		sl / su, bl / bu, (sl - su) / 500 * 1000 }'
