#!/usr/bin/env bash
# test/bench/ann/tenantkey.sh -- filtered and RLS search, side by side in one
# temporary cluster: pgvector (its profile: post-filter, with and without its
# iterative scan), genai with a single-column index (planner's choice, strict
# iterative scan by default) and genai with a tenant-key index
# USING hnsw (emb vector_l2_ops, tenant) (genai_tenantkey.json: the harness
# writes the opclass text into the index column list).  Runs the shared
# harness's load, build, filter and rls phases only.  Not part of the suite.
#
#   PGVECTOR_DESTDIR=/work/pgvector-0.8.6-install test/bench/ann/tenantkey.sh [DATASET]
#
# DATASET: a gen.py directory (default: gmm-100k-128 generated under
# $BENCH_WORK).  BENCH_FILTER_NQ (default 100) queries per measurement,
# BENCH_FILTER_EF (default 40) the ef_search values.
set -eu
. "$(dirname "$0")/../../pgenv.sh"

: "${PGVECTOR_DESTDIR:?set PGVECTOR_DESTDIR to a DESTDIR install of pgvector}"
SHARED=${GENAI_SHARED:-$(cd "$GENAI_SRC/.." && pwd)/shared}
HARNESS=$SHARED/bench/ann
PY=/usr/bin/python3
PORT=${BENCH_PORT:-55498}

genai_ensure_packages python3-numpy python3-psycopg2
genai_build
BENCH_WORK=${BENCH_WORK:-$(mktemp -d "${TMPDIR:-/tmp}/genai-bench.XXXXXX")}
mkdir -p "$BENCH_WORK" && chmod 755 "$BENCH_WORK"
export GENAI_WORK=$BENCH_WORK
genai_temp_install "$BENCH_WORK"
pgc=$(genai_pg_config)
cp "$PGVECTOR_DESTDIR$($pgc --pkglibdir)"/vector.so "$BENCH_WORK/inst$($pgc --pkglibdir)/"
cp "$PGVECTOR_DESTDIR$($pgc --sharedir)"/extension/vector* "$BENCH_WORK/inst$($pgc --sharedir)/extension/"

DATA=${1:-$BENCH_WORK/gmm-100k-128}
[ -d "$DATA" ] || $PY "$HARNESS/gen.py" "$DATA" --n 100000 --dim 128

genai_chown_work
genai_as_pg "$GENAI_BIN/initdb" -D "$BENCH_WORK/data" -A trust >/dev/null
cat >> "$BENCH_WORK/data/postgresql.conf" <<CONF
port = $PORT
unix_socket_directories = '$BENCH_WORK'
listen_addresses = '127.0.0.1'
shared_buffers = 2GB
maintenance_work_mem = 2GB
max_wal_size = 8GB
max_parallel_maintenance_workers = 0
CONF
genai_as_pg "$GENAI_BIN/pg_ctl" -D "$BENCH_WORK/data" -l "$BENCH_WORK/server.log" -w start >/dev/null
trap 'genai_as_pg "$GENAI_BIN/pg_ctl" -D "$BENCH_WORK/data" -m fast stop >/dev/null' EXIT
genai_as_pg "$GENAI_BIN/psql" -X -q -h 127.0.0.1 -p $PORT -d postgres \
	-c "CREATE DATABASE bench_pgvector" -c "CREATE DATABASE bench_genai" \
	-c "CREATE DATABASE bench_genai_tenantkey"

name=$(basename "$DATA")
for ext in pgvector genai genai_tenantkey; do
	case $ext in
		pgvector) profile=$HARNESS/profiles/pgvector.json ;;
		*) profile=$GENAI_SRC/test/bench/ann/$ext.json ;;
	esac
	$PY "$HARNESS/run.py" --dsn "host=127.0.0.1 port=$PORT dbname=bench_$ext user=postgres" \
		--profile "$profile" --data "$DATA" --phases load,build,filter,rls \
		--build m=16,ef_construction=64 --build-workers 0 \
		--filter-ef ${BENCH_FILTER_EF:-40} --filter-nq ${BENCH_FILTER_NQ:-100} \
		--wait-idle 5 --out "$BENCH_WORK/${ext}_$name.json"
done
$PY "$HARNESS/report.py" "$BENCH_WORK"/pgvector_$name.json "$BENCH_WORK"/genai_$name.json \
	"$BENCH_WORK"/genai_tenantkey_$name.json
echo "results in $BENCH_WORK"
