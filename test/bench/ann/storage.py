#!/usr/bin/env python3
"""genai's hnsw storage kinds (fp32, fp16, sq8) side by side.

The table the harness's run.py --phases load wrote (--table, default
ann_bench) is copied once per kind (ann_<kind>), and each copy gets an
index WITH (m, ef_construction, storage = <kind>), built serially
(max_parallel_maintenance_workers = 0): build wall time, the backend's CPU
(/proc/<pid>/schedstat), index size, slots per page, hnsw_storage().

Then the sweep, interleaved so that host load hits every kind alike: for
each ef_search, --rounds rounds, each running the first --nq queries
against every kind, in the order fp32 fp16 sq8 in even rounds and reversed
in odd ones.  Per kind and ef: recall@10 against the harness's ground
truth, the backend's CPU per query (median of the rounds and the best),
and shared buffers touched per query (EXPLAIN (ANALYZE, BUFFERS) of the
first --explain-nq queries).  Not a test: it measures.
"""
import argparse
import json
import os
import statistics
import time

import numpy as np
import psycopg2


def schedstat(pid):
    with open(f"/proc/{pid}/schedstat") as f:
        return int(f.read().split()[0]) / 1e9


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dsn", required=True)
    ap.add_argument("--data", required=True, help="dataset directory (gen.py / prepare.py format)")
    ap.add_argument("--table", default="ann_bench", help="table run.py --phases load filled")
    ap.add_argument("--kinds", default="fp32,fp16,sq8")
    ap.add_argument("--build", default="m = 16, ef_construction = 64")
    ap.add_argument("--ef", default="10,20,40,80,160")
    ap.add_argument("--nq", type=int, default=500)
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--explain-nq", type=int, default=50)
    ap.add_argument("--metric", default="l2", choices=["l2", "cosine"])
    ap.add_argument("--out", required=True)
    a = ap.parse_args()

    op, opclass, gtname = {"l2": ("<->", "vector_l2_ops", "gt_l2.npy"),
                           "cosine": ("<=>", "vector_cosine_ops", "gt_cos.npy")}[a.metric]
    q = np.load(os.path.join(a.data, "query.npy"))[:a.nq]
    gt = np.load(os.path.join(a.data, gtname))[:len(q), :10]
    lits = ["[" + ",".join(repr(float(x)) for x in v) + "]" for v in q]
    kinds = a.kinds.split(",")
    efs = [int(x) for x in a.ef.split(",")]

    conn = psycopg2.connect(a.dsn)
    conn.autocommit = True
    cur = conn.cursor()
    cur.execute("SELECT pg_backend_pid()")
    pid = cur.fetchone()[0]
    res = {"dataset": os.path.basename(os.path.normpath(a.data)), "rows": None, "nq": len(q),
           "build": {}, "sweep": [], "args": {k: v for k, v in vars(a).items() if k != "dsn"}}

    # -- builds, one kind after the other, serial
    cur.execute("SET max_parallel_maintenance_workers = 0")
    for k in kinds:
        t = f"ann_{k}"
        cur.execute(f"DROP TABLE IF EXISTS {t}")
        cur.execute(f"CREATE TABLE {t} AS SELECT id, emb FROM {a.table}")
        cur.execute(f"VACUUM ANALYZE {t}")
        cur.execute("CHECKPOINT")
        c0, t0 = schedstat(pid), time.perf_counter()
        try:
            cur.execute(f"CREATE INDEX {t}_idx ON {t} USING hnsw (emb {opclass}) WITH ({a.build}, storage = {k})")
        except psycopg2.Error as e:     # e.g. fp32 beyond about 2000 dimensions
            res["build"][k] = {"error": e.pgerror.strip().splitlines()[0]}
            print(f"build {k}: {res['build'][k]['error']}", flush=True)
            cur.execute(f"DROP TABLE {t}")
            continue
        wall, cpu = time.perf_counter() - t0, schedstat(pid) - c0
        cur.execute(f"SELECT pg_relation_size('{t}_idx'), hnsw_storage('{t}_idx'), count(*) FROM {t}")
        size, kind, rows = cur.fetchone()
        res["rows"] = rows
        cur.execute(f"SELECT * FROM hnsw_check('{t}_idx')")
        problems = cur.fetchall()
        b = {"storage": kind, "build_s": round(wall, 1), "build_cpu_s": round(cpu, 1), "index_bytes": size,
             "bytes_per_row": round(size / rows), "hnsw_check": len(problems)}
        res["build"][k] = b
        print(f"build {k}: {json.dumps(b)}", flush=True)
        # warm the cache: every kind is measured from shared buffers
        cur.execute("CREATE EXTENSION IF NOT EXISTS pg_prewarm")
        cur.execute(f"SELECT pg_prewarm('{t}'), pg_prewarm('{t}_idx')")
        cur.execute(f"SELECT reltoastrelid::regclass::text FROM pg_class WHERE oid = '{t}'::regclass")
        toast = cur.fetchone()[0]
        if toast and toast != "-":
            cur.execute(f"SELECT pg_prewarm('{toast}')")

    # -- sweep, interleaved
    kinds = [k for k in kinds if "error" not in res["build"][k]]
    for k in kinds:
        cur.execute(f"PREPARE knn_{k}(vector) AS SELECT id FROM ann_{k} ORDER BY emb {op} $1 LIMIT 10")
        cur.execute(f"EXPLAIN EXECUTE knn_{k}(%s)", (lits[0],))
        plan = " ".join(r[0] for r in cur.fetchall())
        if f"ann_{k}_idx" not in plan:
            raise SystemExit(f"the index of ann_{k} is not used: {plan}")
    for ef in efs:
        cur.execute(f"SET hnsw.ef_search = {ef}")
        cpu = {k: [] for k in kinds}
        recall = {}
        for k in kinds:                       # untimed warm-up pass
            for lit in lits[:50]:
                cur.execute(f"EXECUTE knn_{k}(%s)", (lit,))
                cur.fetchall()
        for r in range(a.rounds):
            for k in (kinds if r % 2 == 0 else kinds[::-1]):
                hits = 0
                c0 = schedstat(pid)
                for i, lit in enumerate(lits):
                    cur.execute(f"EXECUTE knn_{k}(%s)", (lit,))
                    hits += len({row[0] for row in cur.fetchall()} & set(gt[i].tolist()))
                cpu[k].append((schedstat(pid) - c0) / len(lits) * 1e3)
                recall[k] = hits / (10 * len(lits))
        for k in kinds:
            bufs = 0
            for lit in lits[:a.explain_nq]:
                cur.execute(f"EXPLAIN (ANALYZE, BUFFERS, TIMING OFF, FORMAT JSON) EXECUTE knn_{k}(%s)", (lit,))
                p = cur.fetchone()[0][0]["Plan"]
                bufs += p.get("Shared Hit Blocks", 0) + p.get("Shared Read Blocks", 0)
            s = {"kind": k, "ef": ef, "recall": round(recall[k], 4),
                 "cpu_ms_median": round(statistics.median(cpu[k]), 4), "cpu_ms_best": round(min(cpu[k]), 4),
                 "cpu_ms_all": [round(x, 4) for x in cpu[k]],
                 "buffers_per_q": round(bufs / max(1, min(a.explain_nq, len(lits))), 1)}
            res["sweep"].append(s)
            print(f"ef={ef:4d} {k:5s} recall={s['recall']:.4f} cpu/q median={s['cpu_ms_median']:.3f} ms "
                  f"best={s['cpu_ms_best']:.3f} ms buffers/q={s['buffers_per_q']}", flush=True)
    with open(a.out, "w") as f:
        json.dump(res, f, indent=1)

    # -- summary table
    print(f"\n{res['dataset']}: {res['rows']} rows, {len(q)} queries, {a.rounds} interleaved rounds")
    print("kind   index MB  B/row  build s  build CPU s")
    for k, b in res["build"].items():
        if "error" in b:
            print(f"{k:5s} {b['error']}")
            continue
        print(f"{k:5s} {b['index_bytes'] / 2**20:9.1f} {b['bytes_per_row']:6d} {b['build_s']:8.1f} {b['build_cpu_s']:12.1f}")
    print("ef    " + "".join(f"{k + ' recall':>13s}{k + ' ms/q':>11s}{'buf':>7s}" for k in kinds))
    for ef in efs:
        row = {s["kind"]: s for s in res["sweep"] if s["ef"] == ef}
        print(f"{ef:<6d}" + "".join(f"{row[k]['recall']:13.4f}{row[k]['cpu_ms_median']:11.3f}"
                                     f"{row[k]['buffers_per_q']:7.0f}" for k in kinds))


if __name__ == "__main__":
    main()
