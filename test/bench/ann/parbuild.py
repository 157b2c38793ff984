#!/usr/bin/env python3
"""Serial vs parallel hnsw builds, genai and pgvector side by side.

For each extension (one database each, the table loaded by the harness's
run.py --phases load) and each worker count, in one run: DROP INDEX,
CHECKPOINT, SET max_parallel_maintenance_workers, CREATE INDEX; it records
wall time, the leader's CPU (/proc/<backend>/schedstat) and the workers'
CPU (the postmaster's cutime + cstime: reaped children, so run it with
autovacuum off and nothing else on the cluster), the index size, and
recall@10 of the first --nq queries at each --ef against the harness's
ground truth.  Not a test: it measures.
"""
import argparse
import json
import os
import time

import numpy as np
import psycopg2

TICK = os.sysconf("SC_CLK_TCK")


def schedstat(pid):
    with open(f"/proc/{pid}/schedstat") as f:
        return int(f.read().split()[0]) / 1e9


def children_cpu(pid):
    with open(f"/proc/{pid}/stat") as f:
        x = f.read().rsplit(")", 1)[1].split()
    # fields after the command: state ppid ... cutime is field 16, cstime 17
    return (int(x[13]) + int(x[14])) / TICK


def ppid(pid):
    with open(f"/proc/{pid}/stat") as f:
        return int(f.read().rsplit(")", 1)[1].split()[1])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dsn", action="append", required=True, help="NAME=DSN, one per extension")
    ap.add_argument("--data", required=True)
    ap.add_argument("--table", default="ann_bench")
    ap.add_argument("--workers", default="0,2")
    ap.add_argument("--build", default="m = 16, ef_construction = 64")
    ap.add_argument("--nq", type=int, default=200)
    ap.add_argument("--ef", default="20,40")
    ap.add_argument("--out", required=True)
    a = ap.parse_args()

    q = np.load(os.path.join(a.data, "query.npy"))[:a.nq]
    gt = np.load(os.path.join(a.data, "gt_l2.npy"))[:a.nq, :10]
    lits = ["[" + ",".join(repr(float(x)) for x in v) + "]" for v in q]
    results = []
    conns = {}
    for spec in a.dsn:
        name, dsn = spec.split("=", 1)
        c = psycopg2.connect(dsn)
        c.autocommit = True
        conns[name] = c
    for w in [int(x) for x in a.workers.split(",")]:
        for name, c in conns.items():
            cur = c.cursor()
            cur.execute("SELECT pg_backend_pid()")
            pid = cur.fetchone()[0]
            pm = ppid(pid)
            idx = f"{a.table}_par_idx"
            cur.execute(f"DROP INDEX IF EXISTS {idx}")
            cur.execute(f"SET max_parallel_maintenance_workers = {w}")
            cur.execute("CHECKPOINT")
            l0, c0, t0 = schedstat(pid), children_cpu(pm), time.perf_counter()
            cur.execute(f"CREATE INDEX {idx} ON {a.table} USING hnsw (emb vector_l2_ops) WITH ({a.build})")
            wall = time.perf_counter() - t0
            leader, workers = schedstat(pid) - l0, children_cpu(pm) - c0
            cur.execute(f"SELECT pg_relation_size('{idx}')")
            size = cur.fetchone()[0]
            r = {"ext": name, "workers": w, "build_s": round(wall, 1), "leader_cpu_s": round(leader, 1),
                 "workers_cpu_s": round(workers, 1), "total_cpu_s": round(leader + workers, 1),
                 "index_bytes": size}
            cur.execute("SET enable_seqscan = off")
            for ef in [int(x) for x in a.ef.split(",")]:
                cur.execute(f"SET hnsw.ef_search = {ef}")
                hits = 0
                for i, lit in enumerate(lits):
                    cur.execute(f"SELECT id FROM {a.table} ORDER BY emb <-> %s::vector LIMIT 10", (lit,))
                    got = {row[0] for row in cur.fetchall()}
                    hits += len(got & set(gt[i].tolist()))
                r[f"recall_ef{ef}"] = round(hits / (10 * len(lits)), 4)
            print(json.dumps(r), flush=True)
            results.append(r)
    with open(a.out, "w") as f:
        json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
