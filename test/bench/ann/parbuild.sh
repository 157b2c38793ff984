#!/bin/bash
# test/bench/ann/parbuild.sh -- serial vs parallel hnsw builds, genai and
# pgvector 0.8.6 side by side in one temporary cluster (set up as run.sh
# does), then parbuild.py: build wall time, leader and worker CPU, index
# size, recall@10 per worker count.  Not a test: it measures.
#
# Usage: test/bench/ann/parbuild.sh [DATASET]   (default gmm-100k-128, l2)
# Environment: PGVECTOR_DESTDIR, GENAI_SHARED, BENCH_DATA, BENCH_RESULTS as
# run.sh; BENCH_WORKERS_LIST [0,2]; BENCH_MWM [2GB]; BENCH_NQ [200];
# BENCH_EF [20,40]; GENAI_KEEP=1 keeps the cluster directory.
set -e
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$here/../../pgenv.sh"
. "$here/common.sh"

PGVECTOR_DESTDIR=${PGVECTOR_DESTDIR:-/work/pgvector-0.8.6-install}
GENAI_SHARED=${GENAI_SHARED:-/work/shared}
HARNESS=$GENAI_SHARED/bench/ann
BENCH_DATA=${BENCH_DATA:-/work/bench-data}
BENCH_RESULTS=${BENCH_RESULTS:-/work/bench-results}
ds=${1:-gmm-100k-128}
PY=/usr/bin/python3
[ -f "$BENCH_DATA/$ds/meta.json" ] || genai_die "no dataset $BENCH_DATA/$ds (run.sh makes it)"
pgv_lib=$PGVECTOR_DESTDIR/usr/lib/postgresql/$GENAI_PGVERSION/lib
pgv_ext=$PGVECTOR_DESTDIR/usr/share/postgresql/$GENAI_PGVERSION/extension
[ -f "$pgv_lib/vector.so" ] || genai_die "no vector.so under $pgv_lib (set PGVECTOR_DESTDIR)"
ann_prerequisites

genai_ensure_packages
genai_build
genai_workdir parbuild
genai_temp_install "$GENAI_WORK"
cp "$pgv_lib/vector.so" "$GENAI_WORK/inst$($(genai_pg_config) --pkglibdir)/"
cp "$pgv_ext"/vector* "$GENAI_WORK/inst$($(genai_pg_config) --sharedir)/extension/"

ann_start_cluster <<EOC
autovacuum = off
EOC
# this trap replaces genai_workdir's, so it removes the directory itself
trap 'genai_as_pg "$GENAI_BIN/pg_ctl" -D "$GENAI_WORK/data" -m fast stop >/dev/null
	[ "${GENAI_KEEP:-0}" = 1 ] || rm -rf "$GENAI_WORK"' EXIT
dsn() { echo "host=127.0.0.1 port=$port dbname=bench_$1 user=postgres"; }
profile_of() {
	if [ -f "$here/$1.json" ]; then echo "$here/$1.json"
	else echo "$HARNESS/profiles/$1.json"; fi
}
stamp=$(date -u +%Y%m%dT%H%M)
for ext in pgvector genai; do
	genai_as_pg "$GENAI_BIN/createdb" -h 127.0.0.1 -p "$port" -U postgres "bench_$ext"
	genai_log "loading $ds for $ext"
	$PY "$HARNESS/run.py" --dsn "$(dsn $ext)" --profile "$(profile_of $ext)" \
		--data "$BENCH_DATA/$ds" --phases load --out "$GENAI_WORK/load_$ext.json" >/dev/null
done
$PY "$here/parbuild.py" --dsn "pgvector=$(dsn pgvector)" --dsn "genai=$(dsn genai)" \
	--data "$BENCH_DATA/$ds" --workers "${BENCH_WORKERS_LIST:-0,2}" \
	--nq "${BENCH_NQ:-200}" --ef "${BENCH_EF:-20,40}" \
	--out "$BENCH_RESULTS/${stamp}_parbuild_$ds.json"
