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

SIDES = ("pgvector", "genai")


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
        m = re.match(r"\d{8}T\d{4}_(pgvector|genai_tkey|genai)_(.+?)(_vacuum|_vacbuild)?\.json$", b)
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
        # build
        if all(s in r and "build" in r[s] for s in SIDES):
            bp, bg = r["pgvector"]["build"], r["genai"]["build"]
            out.append("| | pgvector | genai | genai / pgvector | target |")
            out.append("|---|---|---|---|---|")
            out.append(f"| build time (s, workers={bg['workers_setting']}) | {bp['build_s']} | {bg['build_s']} | "
                       f"{ratio(bg['build_s'], bp['build_s'])} | <= 0.5x |")
            out.append(f"| index size (MB) | {bp['index_bytes'] / 2**20:.1f} | {bg['index_bytes'] / 2**20:.1f} | "
                       f"{ratio(bg['index_bytes'], bp['index_bytes'])} | <= 0.6x |")
            if all("insert" in r[s] for s in SIDES):
                ip, ig = r["pgvector"]["insert"], r["genai"]["insert"]
                out.append(f"| insert (rows/s, {ip['batch_rows_per_tx']} rows/tx, {ip['rows']} rows) | "
                           f"{ip['indexed_rows_per_s']} | {ig['indexed_rows_per_s']} | "
                           f"{ratio(ig['indexed_rows_per_s'], ip['indexed_rows_per_s'])} | >= 2x |")
                out.append(f"| insert server CPU (ms/row) | {ip['indexed_server_cpu_ms_per_row']} | "
                           f"{ig['indexed_server_cpu_ms_per_row']} | "
                           f"{ratio(ip['indexed_server_cpu_ms_per_row'], ig['indexed_server_cpu_ms_per_row'])} "
                           f"(pgvector / genai) | |")
            v = vac.get(ds, {})
            if all(s in v for s in SIDES):
                vp, vg = v["pgvector"], v["genai"]
                out.append(f"| VACUUM after deleting {vp['rows_deleted']} rows (s) | {vp['vacuum_s']} | "
                           f"{vg['vacuum_s']} | {ratio(vg['vacuum_s'], vp['vacuum_s'])} | <= 0.5x |")
                for ef in vp["recall_before"]:
                    rb = [vp["recall_before"][ef]["recall"], vg["recall_before"][ef]["recall"]]
                    ra = [vp["recall_after"][ef]["recall"], vg["recall_after"][ef]["recall"]]
                    out.append(f"| recall@10 ef={ef} before -> after VACUUM | {rb[0]} -> {ra[0]} | "
                               f"{rb[1]} -> {ra[1]} | drop {rb[1] - ra[1]:+.4f} (pgvector {rb[0] - ra[0]:+.4f}) "
                               f"| drop <= 0.01 |")
                out.append(f"| index size after VACUUM (MB) | {vp['index_bytes_after'] / 2**20:.1f} | "
                           f"{vg['index_bytes_after'] / 2**20:.1f} | | |")
                if "hnsw_check" in vg:
                    out.append(f"| hnsw_check after VACUUM | | {len(vg['hnsw_check'])} problem(s) | | |")
            out.append("")
        # sweep
        if all(s in r and r[s].get("sweep") for s in SIDES):
            sp, sg = r["pgvector"]["sweep"], r["genai"]["sweep"]
            out.append("| ef_search | pgvector recall | pgvector QPS | pgvector CPU ms/q | genai recall | genai QPS | "
                       "genai CPU ms/q | QPS ratio | CPU ratio |")
            out.append("|---|---|---|---|---|---|---|---|---|")
            byef = {x["ef"]: x for x in sg}
            for x in sp:
                y = byef.get(x["ef"])
                if not y:
                    continue
                out.append(f"| {x['ef']} | {x['recall']:.4f} | {x['qps']} | {x['server_cpu_ms_per_q']} | "
                           f"{y['recall']:.4f} | {y['qps']} | {y['server_cpu_ms_per_q']} | "
                           f"{ratio(y['qps'], x['qps'])} | {ratio(x['server_cpu_ms_per_q'], y['server_cpu_ms_per_q'])} |"
                           + ("" if x["index_used"] and y["index_used"] else " index NOT used |"))
            out.append("")
            out.append("| recall@10 | pgvector QPS | genai QPS | QPS ratio (target >= 2x) | pgvector CPU ms/q | "
                       "genai CPU ms/q | CPU ratio |")
            out.append("|---|---|---|---|---|---|---|")
            for target in (0.90, 0.95, 0.99):
                qp, qg = interp(sp, target, "qps"), interp(sg, target, "qps")
                cp, cg = interp(sp, target, "server_cpu_ms_per_q"), interp(sg, target, "server_cpu_ms_per_q")
                nr = lambda v: "not reached" if v is None else f"{v:.1f}"
                nc = lambda v: "not reached" if v is None else f"{v:.4f}"
                out.append(f"| {target} | {nr(qp)} | {nr(qg)} | {ratio(qg, qp)} | {nc(cp)} | {nc(cg)} | "
                           f"{ratio(cp, cg)} |")
            d40 = [next((x["recall"] for x in s if x["ef"] == 40), None) for s in (sp, sg)]
            if None not in d40:
                out.append(f"\nRecall at the default ef_search = 40: pgvector {d40[0]:.4f}, genai {d40[1]:.4f} "
                           f"(difference {d40[1] - d40[0]:+.4f}; target >= -0.005).\n")
        # filter / rls
        for kind in ("filter", "rls"):
            if not all(s in r and r[s].get(kind) for s in SIDES):
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
            # the issue's comparison: genai at its defaults vs pgvector relaxed_order, planner's choice, ef=40
            g0 = next(iter(r["genai"]["profile"]["filter_modes"]))
            pick = lambda s, mode, t: next((x for x in r[s][kind] if x["mode"] == mode and x["tenant"] == t
                                            and not x["forced_index"] and x["ef"] == 40), None)
            for t, side in [(t, side) for side in ("genai", "genai_tkey") for t in ("large", "small")]:
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
