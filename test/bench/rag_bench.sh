#!/usr/bin/env bash
# test/bench/rag_bench.sh -- retrieval under row-level security, 100k rows
#
#   test/bench/rag_bench.sh            (as root or as the server user)
#
# Not part of the pass/fail suite.  One cluster, one table of BENCH_ROWS
# rows split over 10 tenants by an RLS policy (tenant =
# current_setting('bench.tenant')), an HNSW index on the vectors and a GIN
# index (rag_tsvector_ops) on the text, queried by an ordinary role.  It
# prints, side by side in one run:
#
#   1. retrieve(vector, source, 10) against the bare query it wraps
#      (SELECT ... ORDER BY embedding <=> q LIMIT 10 under the same policy),
#      both through pgbench with the same query vectors: the ratio of
#      latencies is retrieve's overhead, audit row included.  The server
#      preloads genai, so audit rows are queued for the background worker
#      (genai.rag_audit_write = queued, the default); "retrieve_txn" is
#      the transactional write (synchronous_commit as BENCH_SYNC_COMMIT),
#      "retrieve_noaudit" the call without an audit row;
#   2. recall@10 of retrieve() against an exact scan under the same policy;
#   3. the full-text side under RLS with the leakproof operator (GIN index
#      usable) against the built-in @@ (sequential scan), and
#      retrieve_hybrid() latency.
#
# Settings (environment):
#   BENCH_ROWS      rows (default 100000)
#   BENCH_DIM       dimensions (default 64)
#   BENCH_QUERIES   query vectors (default 200)
#   BENCH_SECONDS   seconds per pgbench run (default 15)
#   BENCH_PORT      server port (default 54339)
#   BENCH_EF_SEARCH hnsw.ef_search for the querying role (default 40)
#   BENCH_SYNC_COMMIT synchronous_commit for the querying roles (default on).
#                   A transactional audit row makes every retrieve() a
#                   writing transaction, whose commit waits for a WAL flush
#                   that the bare read-only query never does.
#
# test/bench/rag_recall.sh measures recall and the backend's CPU time per
# call on a realistic data set (gmm-100k-128).
set -eu
. "$(dirname "$0")/../pgenv.sh"

ROWS=${BENCH_ROWS:-100000}
DIM=${BENCH_DIM:-64}
QUERIES=${BENCH_QUERIES:-200}
SECONDS_PER_RUN=${BENCH_SECONDS:-15}
PORT=${BENCH_PORT:-54339}
EF_SEARCH=${BENCH_EF_SEARCH:-40}
SYNC_COMMIT=${BENCH_SYNC_COMMIT:-on}

genai_build
genai_workdir bench
genai_temp_install "$GENAI_WORK"
genai_chown_work

genai_bench_server "$PORT"

psql_su() { genai_as_pg psql -X -q -h "$GENAI_WORK" -p "$PORT" -U postgres -d postgres -v ON_ERROR_STOP=1 "$@"; }
psql_user() { genai_as_pg psql -X -q -h "$GENAI_WORK" -p "$PORT" -U bench_user -d postgres -v ON_ERROR_STOP=1 "$@"; }

genai_log "loading $ROWS rows of $DIM dimensions, 10 tenants"
psql_su <<SQL
CREATE EXTENSION genai;
CREATE ROLE bench_user LOGIN;
SELECT setseed(0.42);
CREATE TABLE items (
	id        int PRIMARY KEY,
	tenant    int NOT NULL,
	body      text NOT NULL,
	embedding vector($DIM) NOT NULL,
	tsv       tsvector GENERATED ALWAYS AS (to_tsvector('simple', body)) STORED
);
-- text: 12 words drawn from 5000 ("w1".."w5000"), so a word is in ~0.24% of rows
INSERT INTO items (id, tenant, body, embedding)
SELECT i, i % 10,
	   (SELECT string_agg('w' || (1 + floor(random() * 5000))::int, ' ') FROM generate_series(1, 12) WHERE i > 0),
	   (SELECT array_agg(random() - 0.5)::real[]::vector FROM generate_series(1, $DIM) WHERE i > 0)
FROM generate_series(1, $ROWS) i;
CREATE TABLE queries (qid int PRIMARY KEY, v vector($DIM), words text);
INSERT INTO queries
SELECT q, (SELECT array_agg(random() - 0.5)::real[]::vector FROM generate_series(1, $DIM) WHERE q > 0),
	   (SELECT string_agg('w' || (1 + floor(random() * 5000))::int, ' ') FROM generate_series(1, 2) WHERE q > 0)
FROM generate_series(1, $QUERIES) q;
ALTER TABLE items ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant ON items USING (tenant = current_setting('bench.tenant')::int);
GRANT SELECT ON items, queries TO bench_user;
ALTER ROLE bench_user SET bench.tenant = '3';
ALTER ROLE bench_user SET hnsw.ef_search = $EF_SEARCH;
ALTER ROLE bench_user SET synchronous_commit = $SYNC_COMMIT;
-- the same role without the audit trail, to show what the audit row costs
CREATE ROLE bench_noaudit LOGIN;
GRANT SELECT ON items, queries TO bench_noaudit;
ALTER ROLE bench_noaudit SET bench.tenant = '3';
ALTER ROLE bench_noaudit SET hnsw.ef_search = $EF_SEARCH;
ALTER ROLE bench_noaudit SET genai.rag_audit = off;
-- the same role with the audit row written in its own transaction
CREATE ROLE bench_txn LOGIN;
GRANT SELECT ON items, queries TO bench_txn;
ALTER ROLE bench_txn SET bench.tenant = '3';
ALTER ROLE bench_txn SET hnsw.ef_search = $EF_SEARCH;
ALTER ROLE bench_txn SET synchronous_commit = $SYNC_COMMIT;
ALTER ROLE bench_txn SET genai.rag_audit_write = transactional;
SELECT rag_register('items', content_column => 'body', tsvector_column => 'tsv',
					ts_config => 'simple');
CREATE INDEX items_tenant ON items (tenant);
SQL
genai_log "building the hnsw and gin indexes"
t0=$(date +%s)
psql_su -c "CREATE INDEX items_hnsw ON items USING hnsw (embedding vector_cosine_ops)"
t1=$(date +%s)
psql_su -c "CREATE INDEX items_gin ON items USING gin (tsv rag_tsvector_ops)" \
	-c "CREATE INDEX items_gin_builtin ON items USING gin (tsv)" -c "VACUUM ANALYZE items" \
	-c "VACUUM ANALYZE queries"
echo "hnsw build: $((t1 - t0)) s"

echo
echo "== plans as bench_user (tenant 3 of 10)"
psql_user <<'SQL'
EXPLAIN (COSTS OFF) SELECT id FROM items ORDER BY embedding <=> (SELECT v FROM queries WHERE qid = 1) LIMIT 10;
EXPLAIN (COSTS OFF) SELECT id FROM items WHERE tsv OPERATOR(public.@@) to_tsquery('simple', 'w17');
EXPLAIN (COSTS OFF) SELECT id FROM items WHERE tsv @@ to_tsquery('simple', 'w17');
SQL

echo
echo "== recall@10 of retrieve() against an exact scan, same policy ($QUERIES queries)"
psql_user <<'SQL'
SET enable_indexscan = off;
CREATE TEMP TABLE exact AS
SELECT q.qid, array(SELECT id FROM items ORDER BY embedding <=> q.v, id LIMIT 10) AS ids
FROM queries q;
RESET enable_indexscan;
SELECT round(avg(cardinality(ARRAY(SELECT unnest(e.ids) INTERSECT
									SELECT r.id::int FROM retrieve(q.v, 'items', 10) r))) / 10.0, 4) AS retrieve_recall,
	   round(avg(cardinality(ARRAY(SELECT unnest(e.ids) INTERSECT
									SELECT i.id FROM (SELECT id FROM items ORDER BY embedding <=> q.v LIMIT 10) i))) / 10.0, 4)
		 AS bare_query_recall,
	   min((SELECT count(*) FROM retrieve(q.v, 'items', 10))) AS min_rows_returned
FROM queries q JOIN exact e USING (qid);
SQL

echo
echo "== the plan retrieve() runs (auto_explain of its nested statement)"
psql_su <<SQL >/dev/null
LOAD 'auto_explain';
SET auto_explain.log_min_duration = 0;
SET auto_explain.log_nested_statements = on;
SET auto_explain.log_analyze = on;
SET auto_explain.log_timing = off;
SET bench.tenant = '3';
SET hnsw.ef_search = $EF_SEARCH;
SET ROLE bench_user;
SELECT count(*) FROM retrieve((SELECT v FROM queries WHERE qid = 1), 'items', 10);
SQL
grep -A12 'SELECT x.tableoid' "$GENAI_WORK/server.log" | head -16 | sed 's/^.*LOG:  //'

cat > "$GENAI_WORK/bare.sql" <<SQL
\set q random(1, $QUERIES)
SELECT id FROM items ORDER BY embedding <=> (SELECT v FROM queries WHERE qid = :q) LIMIT 10;
SQL
cat > "$GENAI_WORK/retrieve.sql" <<SQL
\set q random(1, $QUERIES)
SELECT id FROM retrieve((SELECT v FROM queries WHERE qid = :q), 'items', 10);
SQL
cat > "$GENAI_WORK/text_leakproof.sql" <<SQL
\set q random(1, $QUERIES)
SELECT id FROM items WHERE tsv OPERATOR(public.@@) (SELECT to_tsquery('simple', replace(words, ' ', ' | ')) FROM queries WHERE qid = :q) LIMIT 40;
SQL
cat > "$GENAI_WORK/text_builtin.sql" <<SQL
\set q random(1, $QUERIES)
SELECT id FROM items WHERE tsv @@ (SELECT to_tsquery('simple', replace(words, ' ', ' | ')) FROM queries WHERE qid = :q) LIMIT 40;
SQL
cat > "$GENAI_WORK/hybrid.sql" <<SQL
\set q random(1, $QUERIES)
SELECT id FROM queries, retrieve_hybrid(replace(words, ' ', ' or '), 'items', 10, question_vector => v) WHERE qid = :q;
SQL
genai_chown_work

# latency in ms of one pgbench run: run NAME SCRIPT [USER [PGOPTIONS]]
run() {
	genai_as_pg env PGOPTIONS="${4:-}" pgbench -n -h "$GENAI_WORK" -p "$PORT" -U "${3:-bench_user}" \
		-c 1 -T "$SECONDS_PER_RUN" -f "$GENAI_WORK/$2.sql" postgres 2>/dev/null |
		sed -n 's/^latency average = \([0-9.]*\) ms/\1/p'
}

echo
echo "== latency (ms per query, pgbench, 1 client, ${SECONDS_PER_RUN}s each, alternating)"
names="bare retrieve retrieve_txn retrieve_noaudit text_leakproof text_builtin hybrid"
declare -A sum
for s in $names; do sum[$s]=0; done
for round in 1 2 3; do
	for s in $names; do
		case $s in
			retrieve_txn) ms=$(run $s retrieve bench_txn) ;;
			retrieve_noaudit) ms=$(run $s retrieve bench_noaudit) ;;
			*) ms=$(run $s $s) ;;
		esac
		echo "round $round  $s: $ms"
		sum[$s]=$(awk -v a="${sum[$s]}" -v b="$ms" 'BEGIN { print a + b }')
	done
done
echo
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a / b }'; }
echo "retrieve / bare ORDER BY LIMIT (audit row queued): $(ratio "${sum[retrieve]}" "${sum[bare]}")"
echo "retrieve / bare, audit row in the caller's transaction, synchronous_commit=$SYNC_COMMIT: $(ratio "${sum[retrieve_txn]}" "${sum[bare]}")"
echo "retrieve / bare, without the audit row: $(ratio "${sum[retrieve_noaudit]}" "${sum[bare]}")"
echo "full text under RLS, built-in @@ / leakproof @@ (GIN): $(ratio "${sum[text_builtin]}" "${sum[text_leakproof]}")"
echo "retrieve_hybrid / retrieve: $(ratio "${sum[hybrid]}" "${sum[retrieve]}")"
psql_su -c "SELECT count(*) AS audit_rows FROM rag_audit"
