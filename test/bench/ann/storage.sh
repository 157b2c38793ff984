#!/bin/bash
# test/bench/ann/storage.sh -- genai's hnsw storage kinds (fp32, fp16, sq8)
# side by side in one temporary cluster (set up as run.sh does, genai only),
# then storage.py: serial build time and CPU, index size, and recall@10,
# backend CPU and buffers per query across ef_search, the kinds interleaved
# round by round.  Not a test: it measures.
#
# Usage: test/bench/ann/storage.sh [DATASET ...]   (default gmm-100k-128, l2)
#   DATASET: as run.sh: gmm-<N>k-<DIM> (made by gen.py when missing, with
#   BENCH_GEN_ARGS), fashion-mnist-784-euclidean (prepare.py), or a directory
#   written by gen.py.  A kind whose slot does not fit a page is reported and
#   skipped (fp32 beyond about 2000 dimensions at m = 16).
# Environment: GENAI_SHARED, BENCH_DATA, BENCH_RESULTS as run.sh;
#   BENCH_KINDS [fp32,fp16,sq8]; BENCH_EF [10,20,40,80,160]; BENCH_NQ [500];
#   BENCH_ROUNDS [4]; BENCH_GEN_ARGS (more gen.py arguments, e.g.
#   "--nq 200 --insert-n 100"); BENCH_SHARED_BUFFERS [2GB]; BENCH_MWM [2GB];
#   GENAI_KEEP=1 keeps the cluster directory.
#
# Examples (the figures in src/hnsw/README):
#   test/bench/ann/storage.sh gmm-100k-128 fashion-mnist-784-euclidean
#   BENCH_EF=40,100 BENCH_NQ=200 BENCH_GEN_ARGS="--nq 200 --insert-n 100" \
#       test/bench/ann/storage.sh gmm-20k-128 gmm-20k-768 gmm-20k-3072 gmm-20k-4096
set -e
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$here/../../pgenv.sh"
. "$here/common.sh"

GENAI_SHARED=${GENAI_SHARED:-/work/shared}
HARNESS=$GENAI_SHARED/bench/ann
BENCH_DATA=${BENCH_DATA:-/work/bench-data}
BENCH_RESULTS=${BENCH_RESULTS:-/work/bench-results}
PY=/usr/bin/python3
[ $# -gt 0 ] || set -- gmm-100k-128

ann_prerequisites

ann_datasets "$@"
set -- "${ANN_DATASETS[@]}"

genai_ensure_packages
genai_build
genai_workdir storage
genai_temp_install "$GENAI_WORK"

ann_start_cluster <<EOC
autovacuum = off
EOC
genai_log "cluster on 127.0.0.1:$port ($GENAI_WORK)"
genai_as_pg "$GENAI_BIN/createdb" -h 127.0.0.1 -p "$port" -U postgres bench_storage
dsn="host=127.0.0.1 port=$port dbname=bench_storage user=postgres"

stamp=$(date -u +%Y%m%dT%H%M)
status=0
for ds in "$@"; do
	genai_log "$ds: load"
	$PY "$HARNESS/run.py" --dsn "$dsn" --profile "$here/genai.json" --data "$BENCH_DATA/$ds" \
		--phases load --out "$GENAI_WORK/load_$ds.json" >/dev/null
	genai_log "$ds: storage kinds"
	$PY "$here/storage.py" --dsn "$dsn" --data "$BENCH_DATA/$ds" \
		--kinds "${BENCH_KINDS:-fp32,fp16,sq8}" --ef "${BENCH_EF:-10,20,40,80,160}" \
		--nq "${BENCH_NQ:-500}" --rounds "${BENCH_ROUNDS:-4}" \
		--out "$BENCH_RESULTS/${stamp}_storage_$ds.json" || status=1
	# the next dataset starts from an empty database
	genai_as_pg "$GENAI_BIN/psql" -h 127.0.0.1 -p "$port" -U postgres -d bench_storage -qAt -c \
		"DROP TABLE IF EXISTS ann_bench, ann_fp32, ann_fp16, ann_sq8" >/dev/null
done
if grep -E 'PANIC|TRAP|terminated by signal' "$GENAI_WORK/server.log"; then
	genai_log "the server log shows a crash: $GENAI_WORK/server.log"
	cp "$GENAI_WORK/server.log" "$BENCH_RESULTS/${stamp}_storage_server.log"
	status=1
fi
genai_as_pg "$GENAI_BIN/pg_ctl" -D "$GENAI_WORK/data" -m fast stop >/dev/null
exit $status
