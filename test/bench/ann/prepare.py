#!/usr/bin/env python3
"""Lay out a real dataset from GENAI_SHARED/datasets in the shared harness's format.

The harness (run.py) reads what its gen.py writes: base.npy, query.npy,
insert.npy (float32), tenant.npy, insert_tenant.npy (int32), gt_<m>.npy and
gt_<m>_t<T>.npy (0-based row ids, top-100) and meta.json.  This script makes
the same files from
  fashion-mnist-784-euclidean  (uint8 pixels as float32, metric l2)
  glove6b-100-angular          (metric cosine; base.npy is not stored in shared/,
                                pass --glove-base with the file rebuilt as that
                                dataset's README shows)
Queries: the first --nq of the official queries, with the dataset's own ground
truth.  Rows for the harness's insert phase: the next --insert-n queries (they
are not in the base set).  Tenants: ids 1..100 with Zipf-like sizes drawn the
way gen.py draws them (seeded), the tenant nearest 10% and nearest 1% of the
rows are the "large" and "small" ones, and their exact per-tenant top-100 is
computed with gen.py's exact_topk (imported from the harness, not copied).
"""
import argparse, gzip, hashlib, json, os, sys, time
import numpy as np


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("dataset", choices=["fashion-mnist-784-euclidean", "glove6b-100-angular"])
    ap.add_argument("--shared", default=os.environ.get("GENAI_SHARED", "/work/shared"))
    ap.add_argument("--out", required=True)
    ap.add_argument("--glove-base", default=os.environ.get("GLOVE_BASE", "/work/bench-data/glove-src/base.npy"))
    ap.add_argument("--nq", type=int, default=1000)
    ap.add_argument("--insert-n", type=int, default=9000)
    ap.add_argument("--tenants", type=int, default=100)
    ap.add_argument("--zipf", type=float, default=1.0)
    ap.add_argument("--seed", type=int, default=42)
    a = ap.parse_args()
    sys.path.insert(0, os.path.join(a.shared, "bench", "ann"))
    from gen import exact_topk

    t0 = time.time()
    src = os.path.join(a.shared, "datasets", a.dataset)
    ld = lambda n: np.load(gzip.open(os.path.join(src, n + ".npy.gz")))
    if a.dataset.startswith("glove"):
        if not os.path.exists(a.glove_base):
            raise SystemExit(f"{a.glove_base} missing: rebuild glove's base.npy as {src}/README.md shows")
        base = np.load(a.glove_base).astype(np.float32)
        metric, gname = "cosine", "cos"
    else:
        base = ld("base").astype(np.float32)
        metric, gname = "l2", "l2"
    allq = ld("query").astype(np.float32)
    query = allq[: a.nq]
    ins = allq[a.nq: a.nq + a.insert_n]
    gt = ld("gt")[: a.nq].astype(np.int32)

    # tenants as gen.py draws them (same seed offset, same Zipf law)
    n = len(base)
    rng = np.random.default_rng(a.seed + 4)
    p = np.arange(1, a.tenants + 1) ** -a.zipf
    p /= p.sum()
    tenant = (rng.choice(a.tenants, size=n, p=p) + 1).astype(np.int32)
    ins_tenant = (rng.choice(a.tenants, size=len(ins), p=p) + 1).astype(np.int32)
    counts = np.bincount(tenant, minlength=a.tenants + 1)[1:]
    large = int(np.argmin(np.abs(counts / n - 0.10)) + 1)
    small = int(np.argmin(np.abs(counts / n - 0.01)) + 1)

    files = {"base.npy": base, "query.npy": query, "insert.npy": ins, "tenant.npy": tenant,
             "insert_tenant.npy": ins_tenant, f"gt_{gname}.npy": gt}
    for t in (large, small):
        rows = np.flatnonzero(tenant == t)
        sub = exact_topk(base[rows], query, 100, metric)
        files[f"gt_{gname}_t{t}.npy"] = rows[sub].astype(np.int32)
    # sanity: our exact search agrees with the shipped ground truth on the top 10
    check = exact_topk(base, query[:50], 10, metric)
    agree = float(np.mean([len(set(x) & set(y[:10])) / 10 for x, y in zip(check, gt[:50])]))

    os.makedirs(a.out, exist_ok=True)
    digests = {}
    for name, arr in files.items():
        np.save(os.path.join(a.out, name), arr)
        digests[name] = hashlib.sha256(np.ascontiguousarray(arr).tobytes()).hexdigest()[:16]
    meta = {"generator": "genai test/bench/ann/prepare.py from shared/datasets/" + a.dataset,
            "args": {k: v for k, v in vars(a).items() if k not in ("shared", "out", "glove_base")},
            "n": n, "nq": len(query), "dim": base.shape[1], "insert_n": len(ins), "k": 100,
            "metric": metric, "unit_norm": False, "gt_top10_agreement_with_shipped": agree,
            "tenant_large": large, "tenant_large_rows": int(counts[large - 1]),
            "tenant_small": small, "tenant_small_rows": int(counts[small - 1]),
            "stats": {}, "sha256_16": digests, "seconds": round(time.time() - t0, 1)}
    with open(os.path.join(a.out, "meta.json"), "w") as f:
        json.dump(meta, f, indent=1)
    print(json.dumps({k: meta[k] for k in ("n", "nq", "dim", "metric", "tenant_large", "tenant_large_rows",
                                            "tenant_small", "tenant_small_rows",
                                            "gt_top10_agreement_with_shipped", "seconds")}))


if __name__ == "__main__":
    main()
