#!/usr/bin/env bash
# test/bench/exact_scan.sh -- exact top-10 scan, genai vs pgvector 0.8.6
#
#   test/bench/exact_scan.sh            (as root or as the server user)
#
# Not part of the pass/fail suite: it prints queries per second for each
# extension, side by side in one cluster, and their ratio.
#
# pgvector is not built or vendored here: its installed files are copied
# from PGVECTOR_DESTDIR (default /work/pgvector-0.8.6-install, a DESTDIR
# install of pgvector 0.8.6 built by hand with its default flags) into this
# run's private PostgreSQL install.  The two extensions cannot share a
# database (same type and operator names), so genai lives in database "gen"
# and pgvector in "pgv", in the same cluster, with identical DDL (including
# SET STORAGE), identical data, the same settings, both tables prewarmed
# into shared buffers, and timed runs alternating between the two.
#
# Settings (environment):
#   PGVECTOR_DESTDIR   pgvector install (default /work/pgvector-0.8.6-install)
#   BENCH_ROWS         rows (default 100000)
#   BENCH_DIM          dimensions (default 768)
#   BENCH_WORKERS      max_parallel_workers_per_gather for both (default 0)
#   BENCH_ROUNDS       alternating rounds (default 11)
#   BENCH_QUERIES      queries per side per round (default 10)
#   BENCH_STORAGE      SET STORAGE for the vector column (default PLAIN)
#   BENCH_PORT         server port (default 54329)
#   BENCH_SIMD         genai.simd for the genai side (default auto)
set -eu
. "$(dirname "$0")/../pgenv.sh"

PGVECTOR_DESTDIR=${PGVECTOR_DESTDIR:-/work/pgvector-0.8.6-install}
ROWS=${BENCH_ROWS:-100000}
DIM=${BENCH_DIM:-768}
WORKERS=${BENCH_WORKERS:-0}
ROUNDS=${BENCH_ROUNDS:-11}
QUERIES=${BENCH_QUERIES:-10}
STORAGE=${BENCH_STORAGE:-PLAIN}
PORT=${BENCH_PORT:-54329}
SIMD=${BENCH_SIMD:-auto}

pgc=$(genai_pg_config)
pkglib=$($pgc --pkglibdir)
extdir=$($pgc --sharedir)/extension
[ -f "$PGVECTOR_DESTDIR$pkglib/vector.so" ] ||
	genai_die "no pgvector install in $PGVECTOR_DESTDIR (set PGVECTOR_DESTDIR)"

genai_build
genai_workdir bench
genai_temp_install "$GENAI_WORK"
cp "$PGVECTOR_DESTDIR$pkglib/vector.so" "$GENAI_WORK/inst$pkglib/"
cp "$PGVECTOR_DESTDIR$extdir"/vector.control "$PGVECTOR_DESTDIR$extdir"/vector--*.sql \
	"$GENAI_WORK/inst$extdir/"
genai_chown_work

data=$GENAI_WORK/data
genai_as_pg initdb -D "$data" -A trust -U postgres >/dev/null
cat >> "$data/postgresql.conf" <<CONF
port = $PORT
listen_addresses = ''
unix_socket_directories = '$GENAI_WORK'
shared_buffers = 2GB
work_mem = 64MB
jit = off
max_parallel_workers_per_gather = $WORKERS
max_parallel_workers = 8
max_worker_processes = 8
shared_preload_libraries = 'pg_prewarm'
pg_prewarm.autoprewarm = off
CONF
genai_as_pg pg_ctl -D "$data" -l "$GENAI_WORK/server.log" -w start >/dev/null

sql() {
	local db=$1
	shift
	genai_as_pg psql -X -q -v ON_ERROR_STOP=1 -h "$GENAI_WORK" -p "$PORT" -U postgres -d "$db" "$@"
}

sql postgres -c "CREATE DATABASE gen" -c "CREATE DATABASE pgv"
sql gen -c "CREATE EXTENSION genai" -c "CREATE EXTENSION pg_prewarm"
sql pgv -c "CREATE EXTENSION vector" -c "CREATE EXTENSION pg_prewarm"
genai_log "pgvector $(sql pgv -tAc "SELECT extversion FROM pg_extension WHERE extname = 'vector'") vs genai $(sql gen -tAc "SELECT extversion FROM pg_extension WHERE extname = 'genai'")"

# The query vectors get the same storage: a TOASTed query vector would be
# fetched from the TOAST table again for every row (neither extension
# caches the detoasted argument), which measures TOAST, not the scan.
ddl="CREATE TABLE items (id int PRIMARY KEY, v vector($DIM));
ALTER TABLE items ALTER COLUMN v SET STORAGE $STORAGE;
CREATE TABLE queries (qid int PRIMARY KEY, q vector($DIM));
ALTER TABLE queries ALTER COLUMN q SET STORAGE $STORAGE;"
sql gen -c "$ddl"
sql pgv -c "$ddl"

# Deterministic data, made once in "gen" and copied as text into "pgv"
# (both parse the same shortest-float text to the same float bits).
genai_log "generating $ROWS x $DIM vectors"
gen_rows() {
	local table=$1 n=$2 seed=$3
	sql gen -c "SELECT setseed($seed)" -c "
		INSERT INTO $table
		SELECT i, ('[' || (SELECT string_agg(((random() * 2 - 1)::real)::text, ',')
		                   FROM generate_series(1, $DIM + 0 * i)) || ']')::vector
		FROM generate_series(1, $n) i"
}
gen_rows items "$ROWS" 0.25
gen_rows queries 100 0.75
for t in items queries; do
	sql gen -c "COPY $t TO STDOUT" | sql pgv -c "COPY $t FROM STDIN"
done
for db in gen pgv; do
	sql "$db" -c "VACUUM ANALYZE items" -c "VACUUM ANALYZE queries"
done
genai_log "table size: $(sql gen -tAc "SELECT pg_size_pretty(pg_table_size('items'))") (genai), $(sql pgv -tAc "SELECT pg_size_pretty(pg_table_size('items'))") (pgvector)"

# both extensions must return the same top 10 for every query
q="SELECT string_agg(ids, ' ' ORDER BY qid) FROM (
	SELECT qid, (SELECT string_agg(id::text, ',') FROM
		(SELECT id FROM items ORDER BY v <-> q LIMIT 10) t) AS ids
	FROM queries WHERE qid <= 3) s"
if [ "$(sql gen -tAc "$q")" != "$(sql pgv -tAc "$q")" ]; then
	genai_log "WARNING: genai and pgvector top-10 results differ"
fi

for db in gen pgv; do
	sql "$db" -tAc "SELECT pg_prewarm('items'), pg_prewarm('queries')" >/dev/null
done

# One timed run: one session runs $QUERIES queries (query vectors in a
# fixed order) and prints its wall time and its own CPU time per query in ms.
# CPU time comes from the backend's /proc/self/schedstat (time on a CPU,
# in ns), so time spent waiting for a CPU on a shared machine is left out.
# With parallel workers their CPU time is not included: compare wall times.
cat > "$GENAI_WORK/run.sql" <<SQL
\\set QUIET on
SELECT clock_timestamp() AS w0,
       split_part(pg_read_file('/proc/self/schedstat'), ' ', 1)::bigint AS c0 \\gset
\\o /dev/null
SELECT format('SELECT id FROM items ORDER BY v <-> (SELECT q FROM queries WHERE qid = %s) LIMIT 10', 1 + (i * 37) % 100)
FROM generate_series(1, $QUERIES) i \\gexec
\\o
SELECT round(extract(epoch FROM clock_timestamp() - :'w0') * 1000 / $QUERIES, 3),
       round((split_part(pg_read_file('/proc/self/schedstat'), ' ', 1)::bigint - :c0) / 1e6 / $QUERIES, 3);
SQL
genai_chown_work
genai_log "plan: $(sql gen -tAc "EXPLAIN (COSTS OFF) SELECT id FROM items ORDER BY v <-> (SELECT q FROM queries WHERE qid = 1) LIMIT 10" | tr '\n' ' ' | tr -s ' ')"

# prints "wall_ms cpu_ms" per query
timed_run() {
	local db=$1 opts=""
	[ "$db" = gen ] && opts="-c genai.simd=$SIMD"
	PGOPTIONS="$opts" sql "$db" -tA -F ' ' -f "$GENAI_WORK/run.sql"
}

# a warm-up run each, then alternating timed rounds (order swapped each
# round).  The machine may be shared: each figure is the median of the
# rounds, and CPU time is shown beside wall time.
timed_run gen >/dev/null
timed_run pgv >/dev/null
results=$GENAI_WORK/rounds.txt
: > "$results"
printf '%-6s %22s %22s\n' round "genai wall/cpu ms" "pgvector wall/cpu ms"
for r in $(seq 1 "$ROUNDS"); do
	if [ $((r % 2)) = 1 ]; then
		g=$(timed_run gen); p=$(timed_run pgv)
	else
		p=$(timed_run pgv); g=$(timed_run gen)
	fi
	printf '%-6s %22s %22s\n' "$r" "$g" "$p"
	echo "$g $p" >> "$results"
done

echo
printf 'exact top-10 over %d x %d, %d queries per round, %d rounds, workers per gather %s, storage %s, genai.simd %s (%s)\n' \
	"$ROWS" "$DIM" "$QUERIES" "$ROUNDS" "$WORKERS" "$STORAGE" "$SIMD" \
	"$(sql gen -tAc "SET genai.simd = '$SIMD'; SELECT genai_simd_active()")"
awk '
function median(a, n,    i, j, t) {
	for (i = 2; i <= n; i++)
		for (j = i; j > 1 && a[j - 1] > a[j]; j--) { t = a[j]; a[j] = a[j - 1]; a[j - 1] = t }
	return (n % 2) ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
}
{ n++; gw[n] = $1; gc[n] = $2; pw[n] = $3; pc[n] = $4 }
END {
	mgw = median(gw, n); mgc = median(gc, n); mpw = median(pw, n); mpc = median(pc, n)
	printf "  %-9s %12s %12s\n", "", "wall q/s", "cpu q/s"
	printf "  %-9s %12.2f %12.2f\n", "genai", 1000 / mgw, 1000 / mgc
	printf "  %-9s %12.2f %12.2f\n", "pgvector", 1000 / mpw, 1000 / mpc
	printf "  ratio genai / pgvector (medians): wall %.2fx, cpu %.2fx (target >= 1.2x)\n", mpw / mgw, mpc / mgc
}' "$results"
genai_as_pg pg_ctl -D "$data" -m fast stop >/dev/null
