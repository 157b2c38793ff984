#!/usr/bin/env bash
# test/bench/rag_recall.sh -- retrieve() on a real-shaped data set under
# row-level security: recall, completeness and overhead, 100k rows
#
#   test/bench/rag_recall.sh           (as root or as the server user)
#
# Not part of the pass/fail suite.  Loads a data set in the ANN harness's
# format (default /work/bench-data/gmm-100k-128, made by
# $GENAI_SHARED/bench/ann/gen.py: 100,000 unit vectors of 128 dimensions
# drawn from 1000 Gaussian clusters, Zipf-sized tenants, exact per-tenant
# top-100 ground truth) into a table with a tenant column, an HNSW index
# (cosine) and the policy tenant = current_setting('bench.tenant'), on a
# server with shared_preload_libraries = 'genai' (so audit rows are queued
# by default), and queries it as an ordinary role.  It prints, side by side
# in one run:
#
#   1. for the data set's ~10% tenant and ~1% tenant, without and then with
#      a btree on tenant (the planner's choice each time): recall@10 of
#      retrieve(vector, 'items', 10) and of the bare query it wraps
#      (SELECT ... ORDER BY embedding <=> q LIMIT 10) against the exact
#      filtered ground truth, and completeness (share of queries that got
#      10 rows), at the default settings;
#   2. the overhead of retrieve() over the bare query for the ~10% tenant:
#      the backend's CPU time per call (from /proc/<pid>/schedstat, the
#      robust figure on a shared machine) and the wall time per call, for
#      the bare query, retrieve() with the queued audit write (default),
#      retrieve() with genai.rag_audit_write = transactional
#      (synchronous_commit on) and retrieve() without the audit trail,
#      one psql session each, BENCH_CALLS calls, BENCH_ROUNDS alternating
#      rounds: the ratio of the sums and the median of the rounds' ratios;
#      plus the audit worker's CPU time per queued row.
#
# Settings (environment):
#   BENCH_DATA      data set directory (default /work/bench-data/gmm-100k-128)
#   BENCH_QUERIES   queries for recall (default 500, at most the set's 1000)
#   BENCH_CALLS     calls per timed pass (default 1000)
#   BENCH_ROUNDS    alternating rounds of timed passes (default 6)
#   BENCH_PORT      server port (default 54340)
#   BENCH_EF_SEARCH hnsw.ef_search for the querying roles (default: unset)
set -eu
. "$(dirname "$0")/../pgenv.sh"

DATA=${BENCH_DATA:-/work/bench-data/gmm-100k-128}
QUERIES=${BENCH_QUERIES:-500}
CALLS=${BENCH_CALLS:-1000}
ROUNDS=${BENCH_ROUNDS:-6}
PORT=${BENCH_PORT:-54340}
EF_SEARCH=${BENCH_EF_SEARCH:-}

for f in base.npy query.npy tenant.npy meta.json; do
	[ -f "$DATA/$f" ] || genai_die "$DATA/$f missing (see \$GENAI_SHARED/bench/ann/README.md)"
done
large=$(sed -n 's/.*"tenant_large": *\([0-9]*\).*/\1/p' "$DATA/meta.json")
small=$(sed -n 's/.*"tenant_small": *\([0-9]*\).*/\1/p' "$DATA/meta.json")
dim=$(sed -n 's/^ *"dim": *\([0-9]*\).*/\1/p' "$DATA/meta.json" | head -1)

genai_build
genai_workdir recall
genai_temp_install "$GENAI_WORK"
genai_chown_work

genai_bench_server "$PORT"

psql_as() { local u=$1; shift; genai_as_pg psql -X -q -h "$GENAI_WORK" -p "$PORT" -U "$u" -d postgres -v ON_ERROR_STOP=1 "$@"; }
psql_su() { psql_as postgres "$@"; }

genai_log "loading $(basename "$DATA") ($dim dimensions); tenants $large (large) and $small (small)"
py=$GENAI_SRC/test/bench/npy_copy.py
python3 "$py" vectors "$DATA/base.npy" "$DATA/tenant.npy" > "$GENAI_WORK/base.tsv"
python3 "$py" vectors "$DATA/query.npy" > "$GENAI_WORK/query.tsv"
python3 "$py" ids "$DATA/gt_cos_t$large.npy" 10 > "$GENAI_WORK/gt_large.tsv"
python3 "$py" ids "$DATA/gt_cos_t$small.npy" 10 > "$GENAI_WORK/gt_small.tsv"
genai_chown_work
psql_su <<SQL
CREATE EXTENSION genai;
CREATE TABLE items (id int PRIMARY KEY, tenant int NOT NULL, body text, embedding vector($dim) NOT NULL);
CREATE TABLE queries (qid int PRIMARY KEY, v vector($dim));
CREATE TABLE gt (tenant int, qid int, ids int[], PRIMARY KEY (tenant, qid));
CREATE TEMP TABLE b (id int, tenant int, embedding vector($dim));
\copy b FROM '$GENAI_WORK/base.tsv'
INSERT INTO items SELECT id, tenant, 'row ' || id, embedding FROM b;
\copy queries FROM '$GENAI_WORK/query.tsv'
CREATE TEMP TABLE g (qid int, ids int[]);
\copy g FROM '$GENAI_WORK/gt_large.tsv'
INSERT INTO gt SELECT $large, qid, ids FROM g;
TRUNCATE g;
\copy g FROM '$GENAI_WORK/gt_small.tsv'
INSERT INTO gt SELECT $small, qid, ids FROM g;
ALTER TABLE items ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant ON items USING (tenant = current_setting('bench.tenant')::int);
SELECT rag_register('items', content_column => 'body');
SQL
for r in bench_user bench_txn bench_noaudit; do
	psql_su -c "CREATE ROLE $r LOGIN" -c "GRANT SELECT ON items, queries, gt TO $r" \
		-c "ALTER ROLE $r SET bench.tenant = '$large'"
	[ -n "$EF_SEARCH" ] && psql_su -c "ALTER ROLE $r SET hnsw.ef_search = $EF_SEARCH"
done
psql_su -c "ALTER ROLE bench_txn SET genai.rag_audit_write = transactional" \
	-c "ALTER ROLE bench_txn SET synchronous_commit = on" \
	-c "ALTER ROLE bench_noaudit SET genai.rag_audit = off"
genai_log "building the hnsw index"
t0=$(date +%s)
psql_su -c "CREATE INDEX items_hnsw ON items USING hnsw (embedding vector_cosine_ops)" \
	-c "VACUUM ANALYZE items" -c "VACUUM ANALYZE queries"
echo "hnsw build: $(($(date +%s) - t0)) s"
psql_as bench_user -At -c "SELECT 'settings: hnsw.ef_search=' || current_setting('hnsw.ef_search')
	|| ' hnsw.iterative_scan=' || current_setting('hnsw.iterative_scan')
	|| ' genai.rag_audit_write=' || current_setting('genai.rag_audit_write')"

recall() {
	local label=$1 tenant=$2
	psql_as bench_user -At <<SQL
SET bench.tenant = '$tenant';
EXPLAIN (COSTS OFF) SELECT id FROM items ORDER BY embedding <=> (SELECT v FROM queries WHERE qid = 0) LIMIT 10;
SELECT format('%-34s retrieve recall %s complete %s%%   bare recall %s complete %s%%',
	'$label',
	round(avg(cardinality(ARRAY(SELECT unnest(g.ids) INTERSECT SELECT unnest(r.ids))) / 10.0), 4),
	round(100.0 * avg((cardinality(r.ids) = 10)::int), 1),
	round(avg(cardinality(ARRAY(SELECT unnest(g.ids) INTERSECT SELECT unnest(b.ids))) / 10.0), 4),
	round(100.0 * avg((cardinality(b.ids) = 10)::int), 1))
FROM queries q JOIN gt g ON g.qid = q.qid AND g.tenant = $tenant,
	LATERAL (SELECT ARRAY(SELECT id::int FROM retrieve(q.v, 'items', 10)) AS ids) r,
	LATERAL (SELECT ARRAY(SELECT id FROM (SELECT id FROM items ORDER BY embedding <=> q.v LIMIT 10) s) AS ids) b
WHERE q.qid < $QUERIES;
SQL
}

echo
echo "== recall@10 and completeness against the exact filtered top 10 ($QUERIES queries, default settings)"
recall "no btree, tenant $large (~10%)" "$large"
recall "no btree, tenant $small (~1%)" "$small"
psql_su -c "CREATE INDEX items_tenant ON items (tenant)" -c "ANALYZE items"
recall "btree on tenant, tenant $large (~10%)" "$large"
recall "btree on tenant, tenant $small (~1%)" "$small"
psql_su -c "DROP INDEX items_tenant" -c "ANALYZE items"

# the timed passes: CALLS statements, query vectors in a fixed random order
awk -v n="$CALLS" -v nq="$QUERIES" 'BEGIN { srand(7); for (i = 0; i < n; i++) print int(rand() * nq) }' \
	> "$GENAI_WORK/qids"
awk '{ printf "SELECT id FROM items ORDER BY embedding <=> (SELECT v FROM queries WHERE qid = %d) LIMIT 10;\n", $1 }' \
	"$GENAI_WORK/qids" > "$GENAI_WORK/bare.sql"
awk '{ printf "SELECT id FROM retrieve((SELECT v FROM queries WHERE qid = %d), \047items\047, 10);\n", $1 }' \
	"$GENAI_WORK/qids" > "$GENAI_WORK/retrieve.sql"
genai_chown_work

# pass NAME ROLE SCRIPT: prints "cpu_ns wall_ns" of the backend for the script
pass() {
	psql_as "$2" -o /dev/null <<SQL
SELECT pg_backend_pid() AS pid \gset
\setenv BPID :pid
\! awk '{ print \$1 }' /proc/\$BPID/schedstat > $GENAI_WORK/cpu0; date +%s%N > $GENAI_WORK/wall0
\i $GENAI_WORK/$3.sql
\! awk '{ print \$1 }' /proc/\$BPID/schedstat > $GENAI_WORK/cpu1; date +%s%N > $GENAI_WORK/wall1
SQL
	echo "$(($(cat "$GENAI_WORK/cpu1") - $(cat "$GENAI_WORK/cpu0"))) $(($(cat "$GENAI_WORK/wall1") - $(cat "$GENAI_WORK/wall0")))"
}
worker_cpu() {
	local pid
	pid=$(psql_su -At -c "SELECT pid FROM pg_stat_activity WHERE backend_type = 'genai usage writer'")
	[ -n "$pid" ] && awk '{ print $1 }' "/proc/$pid/schedstat" || echo 0
}

echo
echo "== overhead, tenant $large: per call, $CALLS calls a pass, $ROUNDS alternating rounds"
names="bare retrieve retrieve_txn retrieve_noaudit"
declare -A cpu wall rcpu
for s in $names; do cpu[$s]=0; wall[$s]=0; rcpu[$s]=""; done
wcpu=0
audit0=$(psql_su -At -c "SELECT count(*) FROM rag_audit")
for round in $(seq 1 "$ROUNDS"); do
	for s in $names; do
		case $s in
			bare) r=$(pass $s bench_user bare) ;;
			retrieve) w0=$(worker_cpu); r=$(pass $s bench_user retrieve) ;;
			retrieve_txn) r=$(pass $s bench_txn retrieve) ;;
			retrieve_noaudit) r=$(pass $s bench_noaudit retrieve) ;;
		esac
		set -- $r
		if [ "$s" = retrieve ]; then
			sleep 1		# let the worker drain the last rows
			w1=$(worker_cpu)
			[ "$w1" -ge "$w0" ] && wcpu=$((wcpu + w1 - w0))
		fi
		printf 'round %d  %-17s cpu %.3f ms/call  wall %.3f ms/call\n' "$round" "$s" \
			"$(awk -v a="$1" -v n="$CALLS" 'BEGIN { print a / n / 1e6 }')" \
			"$(awk -v a="$2" -v n="$CALLS" 'BEGIN { print a / n / 1e6 }')"
		cpu[$s]=$((cpu[$s] + $1))
		wall[$s]=$((wall[$s] + $2))
		[ "$s" = bare ] && bare_cpu=$1
		[ "$s" != bare ] && rcpu[$s]="${rcpu[$s]} $(awk -v a="$1" -v b="$bare_cpu" 'BEGIN { print a / b }')"
	done
done
audit1=$(psql_su -At -c "SELECT count(*) FROM rag_audit")
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a / b }'; }
echo
median() { tr ' ' '\n' | sed '/^$/d' | sort -g | awk '{ v[NR] = $1 } END { printf "%.3f", NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
echo "                        backend CPU (sum, median of rounds)   wall (sum)"
for s in retrieve retrieve_txn retrieve_noaudit; do
	printf '%-24s %6s  %6s                            %6s\n' "$s / bare" "$(ratio "${cpu[$s]}" "${cpu[bare]}")" \
		"$(echo "${rcpu[$s]}" | median)" "$(ratio "${wall[$s]}" "${wall[bare]}")"
done
echo "audit rows written during the passes: $((audit1 - audit0)) (expected $((2 * ROUNDS * CALLS)))"
echo "audit worker CPU per queued row: $(awk -v a="$wcpu" -v n="$((ROUNDS * CALLS))" 'BEGIN { printf "%.4f", a / n / 1e6 }') ms (bare query CPU: $(awk -v a="${cpu[bare]}" -v n="$((ROUNDS * CALLS))" 'BEGIN { printf "%.4f", a / n / 1e6 }') ms)"
