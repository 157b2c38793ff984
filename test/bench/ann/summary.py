#!/usr/bin/env python3
"""Markdown summary of one side-by-side run (run.sh): genai vs pgvector per dataset.

Arguments: the run's result files (<stamp>_<ext>_<dataset>.json and
<stamp>_<ext>_<dataset>_vacuum.json; others are ignored).  QPS at a recall
level is interpolated between the two sweep points that bracket it (linear in
recall, geometric in QPS and in server CPU per query); a side that never
reaches the level is marked "not reached" and the ratio is left out.  QPS is
wall-clock best-of-passes on a shared host; server CPU ms per query (the
backend's own on-CPU time) is the steadier of the two, so both ratios are given.
"""
import json, math, os, re, sys
from collections import defaultdict

# pgvector is the baseline; every genai side present is compared with it
GENAI_SIDES = ("genai", "genai_fp16")
SIDES = ("pgvector",) + GENAI_SIDES


def interp(sweep, target, key):
    pts = sorted(((r["recall"], r[key]) for r in sweep if r.get(key)), key=lambda p: p[0])
    for (r0, v0), (r1, v1) in zip(pts, pts[1:]):
        if r0 <= target <= r1:
            if r1 == r0:
                return v0
            t = (target - r0) / (r1 - r0)
            return math.exp(math.log(v0) + t * (math.log(v1) - math.log(v0)))
    if pts and pts[0][0] >= target:    # even the narrowest search reaches it
        return pts[0][1]
    return None


def fmt(x, nd=1):
    return "n/a" if x is None else f"{x:.{nd}f}"


def ratio(a, b, nd=2):
    return "n/a" if a is None or b is None or b == 0 else f"{a / b:.{nd}f}x"


def main():
    runs = defaultdict(dict)
    vac = defaultdict(dict)
    for p in sys.argv[1:]:
        b = os.path.basename(p)
        m = re.match(r"\d{8}T\d{4}_(pgvector|genai_tkey|genai_fp16|genai)_(.+?)(_vacuum|_vacbuild)?\.json$", b)
        if not m:
            continue
        with open(p) as f:
            d = json.load(f)
        if m.group(3) == "_vacuum":
            vac[m.group(2)][m.group(1)] = d
        elif not m.group(3):
            runs[m.group(2)][m.group(1)] = d
    out = []
    for ds in sorted(set(runs) | set(vac)):
        r = runs.get(ds, {})
        any_run = next(iter(r.values()), None)
        if any_run:
            dd = any_run["dataset"]
            out.append(f"## {ds} ({dd['n']} x {dd['dim']}, {any_run['metric']}, k={any_run['k']}, "
                       f"{any_run['nq_used']} queries)\n")
            vers = ", ".join(f"{s} {r[s].get('extension_version')}" for s in SIDES if s in r)
            out.append(f"Versions: {vers}; started {min(x['started'] for x in r.values())}.\n")
        gs = [s for s in GENAI_SIDES if s in r or s in vac.get(ds, {})]
        # build, size, insert, vacuum: one column per side, one ratio column per genai side
        if "pgvector" in r and "build" in r["pgvector"] and all("build" in r.get(s, {}) for s in gs):
            out.append("| | pgvector | " + " | ".join(f"{s} | {s} / pgvector" for s in gs) + " | target |")
            out.append("|---|---|" + "---|---|" * len(gs) + "---|")

            # ratios are always side / pgvector: times, sizes and CPU want low, rows/s high
            def row(name, get, target, src=r):
                vp = get(src["pgvector"])
                cells = [f"{get(src[s])} | {ratio(get(src[s]), vp)}" for s in gs]
                out.append(f"| {name} | {vp} | " + " | ".join(cells) + f" | {target} |")
            bw = r["pgvector"]["build"]["workers_setting"]
            row(f"build wall (s, workers={bw})", lambda x: x["build"]["build_s"], "<= 0.5x")
            row("build leader CPU (s)", lambda x: x["build"].get("leader_cpu_s"), "")
            row("index size (MB)", lambda x: round(x["build"]["index_bytes"] / 2**20, 1), "<= 0.6x")
            if all("insert" in r[s] for s in ("pgvector",) + tuple(gs)):
                ip = r["pgvector"]["insert"]
                row(f"insert (rows/s, {ip['batch_rows_per_tx']} rows/tx, {ip['rows']} rows)",
                    lambda x: x["insert"]["indexed_rows_per_s"], ">= 2x")
                row("insert server CPU (ms/row)",
                    lambda x: x["insert"]["indexed_server_cpu_ms_per_row"], "<= 0.5x")
            v = vac.get(ds, {})
            if "pgvector" in v and all(s in v for s in gs):
                row(f"VACUUM after deleting {v['pgvector']['rows_deleted']} rows (s)",
                    lambda x: x["vacuum_s"], "<= 0.5x", v)
                row("VACUUM leader CPU (s)", lambda x: x.get("vacuum_leader_cpu_s"), "", v)
                for ef in v["pgvector"]["recall_before"]:
                    cells = []
                    for s in ("pgvector",) + tuple(gs):
                        rb, ra = v[s]["recall_before"][ef]["recall"], v[s]["recall_after"][ef]["recall"]
                        cells.append(f"{rb} -> {ra} (drop {rb - ra:+.4f})")
                    out.append(f"| recall@10 ef={ef} before -> after VACUUM | {cells[0]} | "
                               + "".join(f"{c} | | " for c in cells[1:]) + "drop <= 0.01 |")
                out.append(f"| index size after VACUUM (MB) | {v['pgvector']['index_bytes_after'] / 2**20:.1f} | "
                           + "".join(f"{v[s]['index_bytes_after'] / 2**20:.1f} | | " for s in gs) + "|")
                out.append("| hnsw_check after VACUUM | | "
                           + "".join(f"{len(v[s].get('hnsw_check', []))} problem(s) | | " for s in gs) + "|")
            out.append("")
        # sweep: every side's recall, QPS and CPU per ef_search, then ratios to pgvector
        sw = [s for s in SIDES if s in r and r[s].get("sweep")]
        if "pgvector" in sw and len(sw) > 1:
            sp = r["pgvector"]["sweep"]
            out.append("| ef_search | " + " | ".join(f"{s} recall | {s} QPS | {s} CPU ms/q" for s in sw) + " | "
                       + " | ".join(f"{s} QPS ratio | {s} CPU ratio" for s in sw[1:]) + " |")
            out.append("|---|" + "---|---|---|" * len(sw) + "---|---|" * (len(sw) - 1))
            byef = {s: {x["ef"]: x for x in r[s]["sweep"]} for s in sw}
            for x in sp:
                ys = [byef[s].get(x["ef"]) for s in sw]
                if None in ys:
                    continue
                used = all(y["index_used"] for y in ys)
                out.append(f"| {x['ef']} | " + " | ".join(f"{y['recall']:.4f} | {y['qps']} | {y['server_cpu_ms_per_q']}"
                                                         for y in ys) + " | "
                           + " | ".join(f"{ratio(y['qps'], x['qps'])} | "
                                        f"{ratio(x['server_cpu_ms_per_q'], y['server_cpu_ms_per_q'])}"
                                        for y in ys[1:]) + " |" + ("" if used else " index NOT used |"))
            out.append("")
            out.append("| recall@10 | pgvector QPS | pgvector CPU ms/q | "
                       + " | ".join(f"{s} QPS | {s} CPU ms/q | QPS ratio (>= 2x) | CPU ratio" for s in sw[1:]) + " |")
            out.append("|---|---|---|" + "---|---|---|---|" * (len(sw) - 1))
            nr = lambda v: "not reached" if v is None else f"{v:.1f}"
            nc = lambda v: "not reached" if v is None else f"{v:.4f}"
            for target in (0.90, 0.95, 0.99):
                qp, cp = interp(sp, target, "qps"), interp(sp, target, "server_cpu_ms_per_q")
                cells = []
                for s in sw[1:]:
                    qg = interp(r[s]["sweep"], target, "qps")
                    cg = interp(r[s]["sweep"], target, "server_cpu_ms_per_q")
                    cells.append(f"{nr(qg)} | {nc(cg)} | {ratio(qg, qp)} | {ratio(cp, cg)}")
                out.append(f"| {target} | {nr(qp)} | {nc(cp)} | " + " | ".join(cells) + " |")
            d40 = {s: next((x["recall"] for x in r[s]["sweep"] if x["ef"] == 40), None) for s in sw}
            if None not in d40.values():
                out.append("\nRecall at the default ef_search = 40: " + ", ".join(
                    f"{s} {d40[s]:.4f}" + ("" if s == "pgvector" else f" ({d40[s] - d40['pgvector']:+.4f})")
                    for s in sw) + " (target >= -0.005).\n")
        # filter / rls
        for kind in ("filter", "rls"):
            if not all(s in r and r[s].get(kind) for s in ("pgvector", "genai")):
                continue
            out.append(f"| {kind} | seqscan | ef | tenant (rows) | side | mode | recall | complete (10 rows) | "
                       f"rows/q | QPS | CPU ms/q | plan |")
            out.append("|---|---|---|---|---|---|---|---|---|---|---|---|")
            rows = []
            for s in SIDES + ("genai_tkey",):
                if s not in r or not r[s].get(kind):
                    continue
                tsize = {"large": r[s]["dataset"]["tenant_large_rows"], "small": r[s]["dataset"]["tenant_small_rows"]}
                for x in r[s][kind]:
                    rows.append(((x["forced_index"], x["ef"] or 0, x["tenant"], s), x, tsize))
            rows.sort(key=lambda t: t[0])
            for (forced, ef, tenant, s), x, tsize in rows:
                out.append(f"| {kind} | {'off' if forced else 'on'} | {x['ef'] or ''} | {tenant} ({tsize[tenant]}) | "
                           f"{s} | {x['mode']} | {x['recall']:.4f} | {100 * (1 - x['short_frac']):.1f}% | "
                           f"{x['rows_mean']} | {x['qps']} | {x['server_cpu_ms_per_q']} | {x['plan']} |")
            out.append("")
            # the comparison: genai at its defaults vs pgvector relaxed_order, planner's choice, ef=40
            g0 = next(iter(r["genai"]["profile"]["filter_modes"]))
            pick = lambda s, mode, t: next((x for x in r[s][kind] if x["mode"] == mode and x["tenant"] == t
                                            and not x["forced_index"] and x["ef"] == 40), None)
            for t, side in [(t, side) for side in ("genai", "genai_fp16", "genai_tkey") for t in ("large", "small")]:
                g = pick(side, g0, t) if side in r and r[side].get(kind) else None
                p = pick("pgvector", "relaxed", t)
                if g and p:
                    out.append(f"- {kind}, {t} tenant, planner's choice, ef_search 40: {side} ({g0}) recall "
                               f"{g['recall']:.4f}, complete {100 * (1 - g['short_frac']):.1f}%, {g['qps']} QPS; "
                               f"pgvector relaxed_order recall {p['recall']:.4f}, complete "
                               f"{100 * (1 - p['short_frac']):.1f}%, {p['qps']} QPS; QPS ratio "
                               f"{ratio(g['qps'], p['qps'])}, CPU ratio "
                               f"{ratio(p['server_cpu_ms_per_q'], g['server_cpu_ms_per_q'])}")
            out.append("")
    print("\n".join(out))


if __name__ == "__main__":
    main()
