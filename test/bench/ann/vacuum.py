#!/usr/bin/env python3
"""VACUUM after deleting 10% of the rows of an hnsw-indexed table.

Expects the table that the shared harness's "load,build" phases made (id int4,
tenant int4, emb; index <table>_emb_idx), freshly built.  Measures recall@k at
a few ef_search values, deletes a fixed pseudo-random 10% of the rows (seeded,
so both extensions lose the same rows), times a plain VACUUM of the table
(heap and index), then measures recall again against the ground truth with the
deleted rows removed (the dataset's top-100 lists are deep enough for that),
and records the index size before and after and, when the profile's extension
has one, the verifier's report.  Writes one JSON file and prints one line.
"""
import argparse, json, os, time
import numpy as np
import psycopg2


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dsn", required=True)
    ap.add_argument("--profile", required=True)
    ap.add_argument("--data", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--metric", default="l2", choices=["l2", "cosine", "ip"])
    ap.add_argument("--table", default="ann_vac")
    ap.add_argument("--ef", default="40,80")
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--nq", type=int, default=1000)
    ap.add_argument("--fraction", type=float, default=0.10)
    ap.add_argument("--seed", type=int, default=7)
    a = ap.parse_args()
    with open(a.profile) as f:
        prof = json.load(f)
    ld = lambda n: np.load(os.path.join(a.data, n))
    base_n = len(ld("tenant.npy"))
    query = ld("query.npy")[: a.nq]
    gt = ld("gt_l2.npy" if a.metric == "l2" else "gt_cos.npy")[: len(query)]
    op = prof["metrics"][a.metric]["operator"]
    fmt = prof["literal"].replace("{}", ",".join(["%.9g"] * query.shape[1]))
    lits = [fmt % tuple(v.tolist()) for v in query]
    idx = a.table + "_emb_idx"

    conn = psycopg2.connect(a.dsn)
    conn.autocommit = True
    cur = conn.cursor()

    def sql(s, args=None):
        cur.execute(s, args)
        return cur.fetchall() if cur.description else None

    for s in prof.get("setup_sql", []):
        sql(s)
    pid = sql("SELECT pg_backend_pid()")[0][0]

    def cpu():
        try:
            with open(f"/proc/{pid}/schedstat") as f:
                return int(f.read().split()[0]) / 1e9
        except OSError:
            return None

    sql(f"PREPARE q({prof['type']}) AS SELECT id FROM {a.table} ORDER BY emb {op} $1 LIMIT {a.k}")

    def recall(truth):
        out = {}
        for ef in [int(x) for x in a.ef.split(",")]:
            sql(prof["search_width_sql"].format(ef=ef))
            hits = short = 0
            t0 = time.perf_counter()
            for lit, g in zip(lits, truth):
                ids = [r[0] for r in sql("EXECUTE q(%s)", (lit,))]
                hits += len(set(ids) & set(g[: a.k]))
                short += len(ids) < a.k
            out[str(ef)] = {"recall": round(hits / (a.k * len(lits)), 4), "short_frac": short / len(lits),
                            "qps": round(len(lits) / (time.perf_counter() - t0), 1)}
        return out

    res = {"table": a.table, "fraction": a.fraction, "seed": a.seed, "k": a.k, "nq": len(lits),
           "extension": prof["name"], "dataset_dir": os.path.basename(os.path.normpath(a.data)),
           "rows_before": sql(f"SELECT count(*) FROM {a.table}")[0][0],
           "index_bytes_before": sql(f"SELECT pg_relation_size('{idx}')")[0][0]}
    try:
        sql("CREATE EXTENSION IF NOT EXISTS pg_prewarm")
        sql(f"SELECT pg_prewarm('{a.table}'), pg_prewarm('{idx}')")
    except psycopg2.Error:
        pass
    res["recall_before"] = recall(gt)

    rng = np.random.default_rng(a.seed)
    dead = np.sort(rng.choice(base_n, size=int(base_n * a.fraction), replace=False)).astype(np.int32)
    sql(f"DELETE FROM {a.table} WHERE id = ANY(%s)", (dead.tolist(),))
    res["rows_deleted"] = len(dead)
    sql("CHECKPOINT")
    c0, t0 = cpu(), time.perf_counter()
    sql(f"VACUUM {a.table}")
    res["vacuum_s"] = round(time.perf_counter() - t0, 2)
    res["vacuum_leader_cpu_s"] = None if c0 is None else round(cpu() - c0, 2)
    res["index_bytes_after"] = sql(f"SELECT pg_relation_size('{idx}')")[0][0]

    # ground truth without the deleted rows: the first k survivors of the top-100 lists
    gone = np.zeros(base_n, bool)
    gone[dead] = True
    truth = []
    for g in gt:
        alive = g[~gone[g]]
        if len(alive) < a.k:
            raise SystemExit("ground truth too shallow for this deletion fraction")
        truth.append(alive[: a.k])
    res["recall_after"] = recall(truth)
    if prof["name"] == "genai":
        try:
            res["hnsw_check"] = [r[0] for r in sql(f"SELECT * FROM hnsw_check('{idx}')")]
        except psycopg2.Error as e:
            res["hnsw_check"] = ["error: " + str(e).strip()]
    sql(f"DROP TABLE {a.table}")
    with open(a.out, "w") as f:
        json.dump(res, f, indent=1)
    ef0 = a.ef.split(",")[0]
    print(f"vacuum {prof['name']} {res['dataset_dir']}: deleted {len(dead)} rows, VACUUM {res['vacuum_s']} s, "
          f"index {res['index_bytes_before']} -> {res['index_bytes_after']} B, recall@{a.k} ef={ef0} "
          f"{res['recall_before'][ef0]['recall']} -> {res['recall_after'][ef0]['recall']}"
          + (f", hnsw_check: {len(res['hnsw_check'])} problem(s)" if "hnsw_check" in res else ""), flush=True)


if __name__ == "__main__":
    main()
