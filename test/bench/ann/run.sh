#!/bin/bash
# test/bench/ann/run.sh -- genai's hnsw and pgvector 0.8.6's hnsw side by side
#
# Builds genai into a private temp install, copies an already built and
# installed pgvector (PGVECTOR_DESTDIR) into the same install, starts ONE
# cluster with one database per extension (both define the type "vector",
# so they cannot share a database), and runs the shared ANN harness
# (GENAI_SHARED/bench/ann: gen.py, run.py, report.py, run in place, never
# copied here) for both profiles on the same data, one dataset at a time.
# After the harness, vacuum.py deletes 10% of the rows of a freshly built
# index and times VACUUM.  Not a test: it measures, nothing passes or fails.
#
# Usage: test/bench/ann/run.sh [DATASET ...]
#   DATASET: gmm-100k-128 | gmm-100k-768 | gmm-<N>k-<DIM> (made by gen.py when
#   missing) | a directory written by gen.py (then BENCH_DATA is its parent) |
#   fashion-mnist-784-euclidean | glove6b-100-angular (converted
#   from GENAI_SHARED/datasets by prepare.py when missing; glove needs its
#   base.npy rebuilt first, see prepare.py -h).  Default: gmm-100k-128.
#
# Environment (defaults in brackets):
#   PGVECTOR_DESTDIR  DESTDIR pgvector was installed into [/work/pgvector-0.8.6-install]
#   GENAI_SHARED      the shared folder [/work/shared]
#   BENCH_DATA        datasets in harness format [/work/bench-data]
#   BENCH_RESULTS     result JSON and logs [/work/bench-results]
#   BENCH_EXTS        which sides, in order ["pgvector genai"]
#   BENCH_PHASES      harness phases [load,build,sweep,filter,rls,insert]
#   BENCH_PHASES_<ext> phases for one side only (e.g. BENCH_PHASES_genai_tkey)
#   (side "genai_tkey" = genai with the tenant as a filter key in the index:
#   USING hnsw (emb vector_l2_ops, tenant), profile genai_tkey.json;
#   side "genai_fp16" = genai with storage = fp16 named in WITH (...), profile
#   genai_fp16.json, so the figures do not depend on what storage = auto
#   resolves to; e.g. BENCH_EXTS="pgvector genai genai_fp16")
#   BENCH_EF          ef_search list of the sweep [10,20,30,40,60,80,120,160,240,320,480]
#   BENCH_ARGS        more run.py arguments (e.g. "--repeat 3 --nq 500")
#   BENCH_VACUUM      1 = also run vacuum.py (fresh load + build, delete 10%) [1]
#   BENCH_WORKERS     max_parallel_maintenance_workers for both builds [1]
#   BENCH_SHARED_BUFFERS [2GB], BENCH_MWM (maintenance_work_mem) [2GB]
#   BENCH_HOLD        1 = keep the cluster up at the end until Enter (for perf) [0]
#   GENAI_KEEP=1      keep the temp install and cluster directory

set -e
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$here/../../pgenv.sh"
. "$here/common.sh"

PGVECTOR_DESTDIR=${PGVECTOR_DESTDIR:-/work/pgvector-0.8.6-install}
GENAI_SHARED=${GENAI_SHARED:-/work/shared}
HARNESS=$GENAI_SHARED/bench/ann
BENCH_DATA=${BENCH_DATA:-/work/bench-data}
BENCH_RESULTS=${BENCH_RESULTS:-/work/bench-results}
BENCH_EXTS=${BENCH_EXTS:-pgvector genai}
BENCH_PHASES=${BENCH_PHASES:-load,build,sweep,filter,rls,insert}
BENCH_EF=${BENCH_EF:-10,20,30,40,60,80,120,160,240,320,480}
BENCH_VACUUM=${BENCH_VACUUM:-1}
BENCH_WORKERS=${BENCH_WORKERS:-1}
PY=/usr/bin/python3
[ $# -gt 0 ] || set -- gmm-100k-128

pgv_lib=$PGVECTOR_DESTDIR/usr/lib/postgresql/$GENAI_PGVERSION/lib
pgv_ext=$PGVECTOR_DESTDIR/usr/share/postgresql/$GENAI_PGVERSION/extension
[ -f "$pgv_lib/vector.so" ] || genai_die "no vector.so under $pgv_lib (set PGVECTOR_DESTDIR)"
ann_prerequisites

ann_datasets "$@"
set -- "${ANN_DATASETS[@]}"

genai_ensure_packages
genai_build
genai_workdir annbench
genai_temp_install "$GENAI_WORK"
pkglib=$GENAI_WORK/inst$($(genai_pg_config) --pkglibdir)
share=$GENAI_WORK/inst$($(genai_pg_config) --sharedir)
cp "$pgv_lib/vector.so" "$pkglib/"
cp "$pgv_ext"/vector* "$share/extension/"

ann_start_cluster <<EOC
work_mem = 64MB
max_parallel_maintenance_workers = $BENCH_WORKERS
EOC
genai_log "cluster on 127.0.0.1:$port ($GENAI_WORK)"
for ext in $BENCH_EXTS; do
	genai_as_pg "$GENAI_BIN/createdb" -h 127.0.0.1 -p "$port" -U postgres "bench_$ext"
done

dsn() { echo "host=127.0.0.1 port=$port dbname=bench_$1 user=postgres"; }
metric_of() {
	case $1 in *angular*) echo cosine ;; *) echo l2 ;; esac
}
# genai's profile lives beside this script; pgvector's is the harness's own
profile_of() {
	if [ -f "$here/$1.json" ]; then echo "$here/$1.json"
	else echo "$HARNESS/profiles/$1.json"; fi
}

stamp=$(date -u +%Y%m%dT%H%M)
outs=()
for ds in "$@"; do
	metric=$(metric_of "$ds")
	for ext in $BENCH_EXTS; do
		out=$BENCH_RESULTS/${stamp}_${ext}_$ds.json
		eval "phases=\${BENCH_PHASES_$ext:-\$BENCH_PHASES}"
		genai_log "$ext / $ds: $phases"
		# shellcheck disable=SC2086
		$PY "$HARNESS/run.py" --dsn "$(dsn "$ext")" --profile "$(profile_of "$ext")" \
			--data "$BENCH_DATA/$ds" --metric "$metric" --phases "$phases" \
			--build m=16,ef_construction=64 --build-workers "$BENCH_WORKERS" \
			--ef "$BENCH_EF" --label "$ext side by side $stamp" --out "$out" $BENCH_ARGS ||
			genai_log "run.py failed for $ext / $ds (see $GENAI_WORK/server.log)"
		[ -f "$out" ] && outs+=("$out")
		if [ "$BENCH_VACUUM" = 1 ] && [ "$ext" != genai_tkey ]; then
			$PY "$HARNESS/run.py" --dsn "$(dsn "$ext")" --profile "$(profile_of "$ext")" \
				--data "$BENCH_DATA/$ds" --metric "$metric" --phases load,build \
				--build m=16,ef_construction=64 --build-workers "$BENCH_WORKERS" \
				--table ann_vac --out "$BENCH_RESULTS/${stamp}_${ext}_${ds}_vacbuild.json" >/dev/null &&
			$PY "$here/vacuum.py" --dsn "$(dsn "$ext")" --profile "$(profile_of "$ext")" \
				--data "$BENCH_DATA/$ds" --metric "$metric" --table ann_vac \
				--out "$BENCH_RESULTS/${stamp}_${ext}_${ds}_vacuum.json" ||
			genai_log "vacuum.py failed for $ext / $ds"
		fi
	done
done

if grep -E 'PANIC|TRAP|terminated by signal|server process .* was terminated' "$GENAI_WORK/server.log"; then
	genai_log "the server log shows a crash: $GENAI_WORK/server.log"
	cp "$GENAI_WORK/server.log" "$BENCH_RESULTS/${stamp}_server.log"
fi
[ ${#outs[@]} -gt 0 ] && $PY "$HARNESS/report.py" "${outs[@]}"
$PY "$here/summary.py" "$BENCH_RESULTS/${stamp}"_* > "$BENCH_RESULTS/${stamp}_summary.md" &&
	cat "$BENCH_RESULTS/${stamp}_summary.md"
if [ "${BENCH_HOLD:-0}" = 1 ]; then
	genai_log "cluster still up on port $port; press Enter to stop it"
	read -r _
fi
genai_as_pg "$GENAI_BIN/pg_ctl" -D "$GENAI_WORK/data" -m fast stop >/dev/null
