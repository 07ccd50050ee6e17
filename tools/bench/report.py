#!/usr/bin/env python3
"""Turns OUT/raw.jsonl from tools/bench/run into OUT/results.json and OUT/results.md.

Exits non-zero if the raw file records a failure or misses a result the run asked for, so a
partial table is never presented as a complete one.
"""
import json
import math
import statistics
import sys
from pathlib import Path

DP_MODES = ["floor", "skiff", "skiff-sock", "skiff-p2p", "skiff-legacy", "skiff-p2p-legacy",
            "iptables", "iptables-p2p", "nftables"]
CP_PEERS = ["skiff", "iptables-nft", "iptables-legacy", "nftables"]
NP_PATHS = [("local", "backend on node 1 (DNAT)"), ("remote", "backend on node 2 (DNAT + SNAT)")]


def med(xs):
    return statistics.median(xs) if xs else None


# Two-sided 95 % quantiles of Student's t for 1..30 degrees of freedom (beyond: 1.96).
T975 = [12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179,
        2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064,
        2.060, 2.056, 2.052, 2.048, 2.045, 2.042]


def paired_ratio(ratios):
    """The per-round ratios' geometric mean and its 95 % confidence interval (t on the logs):
    each round pairs a mode with the floor measured next to it, so drift slower than a round
    cancels; the interval says how well the rounds pin the ratio down. None below 2 rounds."""
    xs = [math.log(r) for r in ratios if r and r > 0]
    if len(xs) < 2:
        return None
    m, sd = statistics.mean(xs), statistics.stdev(xs)
    t = T975[len(xs) - 2] if len(xs) - 1 <= len(T975) else 1.96
    h = t * sd / math.sqrt(len(xs))
    return {"mean": math.exp(m), "low": math.exp(m - h), "high": math.exp(m + h),
            "rounds": len(xs)}


def per_round(res, floor_by_rep):
    """Each repetition's rate over its floor's: the floor it took turns with (--paired), else
    the floor measured in the same round."""
    out = []
    for x in res:
        fp = x.get("floor_pair")
        f = fp["conn_per_s"] if fp else floor_by_rep.get(x["rep"])
        if f:
            out.append(x["conn_per_s"] / f)
    return out


def fmt(x, digits=0):
    if x is None:
        return "—"
    return f"{x:,.{digits}f}"


def bpf_totals(res):
    """--bpf-stats: each program's runs and run time over a mode's repetitions, per packet
    and per connection made (warm-up included, as the kernel's counters are); None without."""
    if not res or any(x.get("bpf") is None for x in res):
        return None
    made = sum(x.get("connections_made", 0) for x in res)
    progs = {}
    for x in res:
        for name, v in x["bpf"].items():
            a = progs.setdefault(name, {"runs": 0, "ns": 0})
            a["runs"] += v["runs"]
            a["ns"] += v["ns"]
    for a in progs.values():
        a["ns_per_run"] = a["ns"] / a["runs"] if a["runs"] else None
        a["runs_per_conn"] = a["runs"] / made if made else None
    total = sum(a["ns"] for a in progs.values())
    return {"connections_made": made, "programs": progs,
            "ns_per_conn": total / made if made else None}


def main(out):
    out = Path(out)
    rows = [json.loads(l) for l in (out / "raw.jsonl").read_text().splitlines() if l.strip()]
    meta = next((r for r in rows if r["part"] == "meta"), {})
    end = next((r for r in rows if r["part"] == "meta-end"), {})
    failures = [r["message"] for r in rows if r["part"] == "failure"]

    # ---- datapath
    dp = {}
    skipped = {}
    gen = {}
    for r in rows:
        if r["part"] != "datapath":
            continue
        if r["mode"].startswith("generator-"):
            gen[r["mode"]] = r["result"]
            continue
        key = (r["services"], r["mode"])
        if "skipped" in r:
            skipped[key] = r["skipped"]
            continue
        dp.setdefault(key, []).append(dict(r["result"], rep=r["rep"], bpf=r.get("bpf"),
                                           agent_cpu_s=r.get("agent_cpu_s"),
                                           floor_pair=r.get("floor")))
    sizes = [int(s) for s in str(meta.get("sizes", "")).split(",") if s]
    modes = [m for m in str(meta.get("modes", "")).split(",") if m]
    datapath = []
    if "datapath" not in meta.get("parts", ""):
        sizes = []
    for n in sizes:
        floor = dp.get((n, "floor"), [])
        floor_rate = med([x["conn_per_s"] for x in floor])
        floor_by_rep = {x["rep"]: x["conn_per_s"] for x in floor}
        for m in modes:
            res = dp.get((n, m), [])
            if not res:
                if (n, m) not in skipped:
                    failures.append(f"datapath {m} N={n}: no result")
                datapath.append({"services": n, "mode": m, "skipped": skipped.get((n, m))})
                continue
            rate = med([x["conn_per_s"] for x in res])
            datapath.append({
                "services": n, "mode": m, "reps": len(res),
                "conn_per_s": rate,
                "conn_per_s_all": [x["conn_per_s"] for x in res],
                "ratio_to_floor": rate / floor_rate if floor_rate else None,
                # Each repetition against the floor's repetition of the same round (the modes
                # of one round run back to back): how much of a ratio is the machine drifting.
                "ratio_to_floor_per_rep": per_round(res, floor_by_rep),
                "ratio_paired": None if m == "floor" else paired_ratio(per_round(res,
                                                                                floor_by_rep)),
                "p50_us": med([x["p50_us"] for x in res]),
                "p99_us": med([x["p99_us"] for x in res]),
                "errors": sum(x["errors"] for x in res),
                "client_user_cpu": med([x["client_user_cpu"] for x in res]),
                "client_sys_cpu": med([x["client_sys_cpu"] for x in res]),
                # The Skiff modes' agent: CPU seconds during one measurement (median).
                "agent_cpu_s": med([x["agent_cpu_s"] for x in res
                                    if x.get("agent_cpu_s") is not None]),
                "bpf": bpf_totals(res),
            })

    # ---- nodeport
    np_raw = {}
    for r in rows:
        if r["part"] == "nodeport":
            np_raw.setdefault((r["path"], r["mode"]), []).append(r)
    np_modes = [m for m in str(meta.get("np_modes", "")).split(",") if m]
    nodeport = []
    if "nodeport" in meta.get("parts", ""):
        for path, _ in NP_PATHS:
            floor_rate = med([x["result"]["conn_per_s"] for x in np_raw.get((path, "floor"), [])])
            for m in np_modes:
                res = np_raw.get((path, m), [])
                if len(res) < int(meta.get("reps", 1)):
                    failures.append(f"nodeport {m} {path}: {len(res)} of {meta.get('reps')} "
                                    "results")
                if not res:
                    continue
                rs = [x["result"] for x in res]
                rate = med([x["conn_per_s"] for x in rs])
                conns = sum(x.get("connections", 0) for x in rs)
                nodeport.append({
                    "path": path, "mode": m, "reps": len(rs),
                    "conn_per_s": rate,
                    "conn_per_s_all": [x["conn_per_s"] for x in rs],
                    "ratio_to_floor": rate / floor_rate if floor_rate else None,
                    "p50_us": med([x["p50_us"] for x in rs]),
                    "p99_us": med([x["p99_us"] for x in rs]),
                    "errors": sum(x["errors"] for x in rs),
                    "xdp_packets": sum(x["xdp_packets"] for x in res),
                    "xdp_packets_per_conn": (sum(x["xdp_packets"] for x in res) / conns
                                             if conns else None),
                    "client_user_cpu": med([x["client_user_cpu"] for x in rs]),
                    "client_sys_cpu": med([x["client_sys_cpu"] for x in rs]),
                })

    # ---- control plane
    control = []
    for r in rows:
        if r["part"] == "control":
            control.append(r)
    change = {}
    for r in rows:
        if r["part"] == "change":
            change.setdefault((r["services"], r["peer"]), []).append(r)

    results = {
        "meta": meta, "end": end, "failures": failures, "generator_check": gen,
        "datapath": datapath, "nodeport": nodeport, "control": control,
        "change": [{"services": n, "peer": p,
                    "seconds_median": med([x["seconds"] for x in v if "seconds" in x]),
                    "seconds_all": [x["seconds"] for x in v if "seconds" in x],
                    "source_s_median": med([x["source_s"] for x in v if "source_s" in x]),
                    "program_s_median": med([x["program_s"] for x in v if "program_s" in x]),
                    "store_to_maps_ms_median": med([x["store_to_maps_ms"] for x in v
                                                    if x.get("store_to_maps_ms") is not None]),
                    "store_to_maps_ms_all": [x["store_to_maps_ms"] for x in v
                                             if x.get("store_to_maps_ms") is not None],
                    "error": next((x["error"] for x in v if "error" in x), None),
                    "timeout_s": next((x["timeout_s"] for x in v if "timeout_s" in x), None),
                    "skipped_after": next((x["skipped_after"] for x in v
                                           if "skipped_after" in x), None)}
                   for (n, p), v in sorted(change.items())],
    }
    perpacket = out / "perpacket.txt"
    if perpacket.exists():
        results["perpacket"] = perpacket.read_text()
    (out / "results.json").write_text(json.dumps(results, indent=2) + "\n")

    # ---- markdown
    md = []
    md.append(f"Run {meta.get('started', '?')}, commit {meta.get('commit', '?')}, kernel "
              f"{meta.get('kernel', '?')}, {meta.get('cpus', '?')} CPUs; load average before "
              f"{meta.get('load_before', '?')}, after {end.get('load_after', '?')}; "
              f"{end.get('seconds', '?')} s in all.  ")
    md.append(f"`{meta.get('command', 'tools/bench/run')}` — {meta.get('iptables', '')}, "
              f"{meta.get('nft', '')}.")
    md.append("")
    if failures:
        md.append("**FAILED parts** (the tables below are incomplete):")
        md += [f"- {f}" for f in failures]
        md.append("")
    if datapath:
        md.append(f"### Datapath: short TCP connections through one ClusterIP "
                  f"({meta.get('backends')} backends; "
                  + (f"each mode paired with the floor in alternating 100 ms slices, "
                     f"{meta.get('reps')} × {meta.get('duration_s')} s each, geometric mean of "
                     f"the pairs' ratios" if meta.get("paired") else
                     f"median of {meta.get('reps')} × {meta.get('duration_s')} s")
                  + f"; iptables mode loaded with the "
                  f"{meta.get('dp_iptables', 'nft')} backend)")
        md.append("")
        md.append("| services | " + " | ".join(modes) + " |")
        md.append("|---:|" + "---:|" * len(modes))
        by = {(d["services"], d["mode"]): d for d in datapath}
        for n in sizes:
            cells = []
            for m in modes:
                d = by.get((n, m), {})
                if d.get("conn_per_s") is None:
                    cells.append("skipped" if d.get("skipped") else "—")
                elif m == "floor" or d["ratio_to_floor"] is None:
                    # Without a floor in the run (--modes without floor) the rate itself.
                    cells.append(f"{fmt(d['conn_per_s'])}/s")
                elif meta.get("paired") and d.get("ratio_paired"):
                    cells.append(f"{d['ratio_paired']['mean']:.2f}×")
                else:
                    cells.append(f"{d['ratio_to_floor']:.2f}×")
            md.append(f"| {n:,} | " + " | ".join(cells) + " |")
        md.append("")
        md.append("| services | mode | conn/s (each repetition) | × floor | × floor per round | "
                  "paired × floor (95 % CI) | p50 µs | p99 µs | errors | client CPU user / sys "
                  "| agent CPU |")
        md.append("|---:|---|---:|---:|---:|---:|---:|---:|---:|---|---:|")
        for d in datapath:
            if d.get("conn_per_s") is None:
                md.append(f"| {d['services']:,} | {d['mode']} | "
                          f"{d.get('skipped') or 'no result'} | | | | | | | | |")
                continue
            ratio = "—" if d["ratio_to_floor"] is None else f"{d['ratio_to_floor']:.2f}"
            per = d["ratio_to_floor_per_rep"]
            per_rep = ("—" if d["mode"] == "floor" or not per else
                       f"{min(per):.2f}–{max(per):.2f}")
            pr = d.get("ratio_paired")
            paired = ("—" if not pr else
                      f"{pr['mean']:.3f} ({pr['low']:.3f}–{pr['high']:.3f})")
            md.append(f"| {d['services']:,} | {d['mode']} | {fmt(d['conn_per_s'])} "
                      f"({', '.join(fmt(x) for x in d['conn_per_s_all'])}) | "
                      f"{ratio} | {per_rep} | {paired} | {fmt(d['p50_us'], 1)} | "
                      f"{fmt(d['p99_us'], 1)} | {d['errors']} | "
                      f"{d['client_user_cpu']:.2f} / {d['client_sys_cpu']:.2f} | "
                      f"{'—' if d['agent_cpu_s'] is None else format(d['agent_cpu_s'], '.2f')} |")
        md.append("")
        spreads = []
        for d in datapath:
            xs = d.get("conn_per_s_all") or []
            if d["mode"] == "floor" and len(xs) > 1 and d["conn_per_s"]:
                spreads.append(f"{d['services']:,} services ±"
                               f"{50 * (max(xs) - min(xs)) / d['conn_per_s']:.0f} %")
        if spreads:
            md.append("The floor itself moved between repetitions (half its range around its "
                      "median): " + ", ".join(spreads) + ". A ratio closer to 1.00 than that is "
                      "within the machine's drift; \"× floor per round\" compares each "
                      "repetition with the floor measured in the same round, and \"paired\" is "
                      "the geometric mean of those per-round ratios with its 95 % confidence "
                      "interval (Student's t on their logarithms): drift slower than a round "
                      "cancels, and the interval says whether the rounds pin the ratio down.")
            md.append("")
        with_bpf = [d for d in datapath if d.get("bpf")]
        if with_bpf:
            md.append("BPF run time in live traffic (`--bpf-stats`: kernel.bpf_stats_enabled, "
                      "every program's runs and run time across the measurements, warm-up "
                      "included; the accounting adds two clock reads per run — about 100 ns "
                      "on a paravirtual clock, measured with an almost empty program — so "
                      "these are upper bounds and the rates above are a little low for the "
                      "Skiff modes):")
            md.append("")
            md.append("| services | mode | program: ns per run (runs per connection) | "
                      "BPF ns per connection | share of the floor's time per connection |")
            md.append("|---:|---|---|---:|---:|")
            floors = {d["services"]: d["conn_per_s"] for d in datapath if d["mode"] == "floor"}
            for d in with_bpf:
                b = d["bpf"]
                progs = ", ".join(
                    f"{name} {a['ns_per_run']:.0f} ({a['runs_per_conn']:.1f})"
                    for name, a in sorted(b["programs"].items()) if a["ns_per_run"] is not None)
                per = b["ns_per_conn"]
                fl = floors.get(d["services"])
                share = f"{100 * per * fl / 1e9:.1f} %" if per is not None and fl else "—"
                md.append(f"| {d['services']:,} | {d['mode']} | {progs or 'none ran'} | "
                          f"{fmt(per)} | {share} |")
            md.append("")
        if gen:
            g1 = gen.get("generator-1-client", {})
            g2 = gen.get("generator-2-clients", {})
            md.append("Generator check (direct to the pods, nothing loaded): one client thread "
                      f"{fmt(g1.get('conn_per_s'))}/s (CPU user {g1.get('client_user_cpu', 0):.2f}, "
                      f"sys {g1.get('client_sys_cpu', 0):.2f}), two threads "
                      f"{fmt(g2.get('conn_per_s'))}/s (user {g2.get('client_user_cpu', 0):.2f}, "
                      f"sys {g2.get('client_sys_cpu', 0):.2f}).")
            md.append("")
    if nodeport:
        md.append(f"### NodePort: short TCP connections from outside through node 1's NodePort "
                  f"(median of {meta.get('reps')} × {meta.get('duration_s')} s; floor: the pod "
                  f"IP over the same hops; iptables: kube-proxy's layout, "
                  f"{meta.get('dp_iptables', 'legacy')} backend"
                  + (f"; node 1's agent with `{meta['np_agent_flags']}`"
                     if meta.get("np_agent_flags") else "")
                  + ("; XDP_PASS on node 1's device in every mode" if meta.get("np_xdp_pass")
                     else "") + ")")
        md.append("")
        md.append("| backend | " + " | ".join(np_modes) + " |")
        md.append("|---|" + "---:|" * len(np_modes))
        by = {(d["path"], d["mode"]): d for d in nodeport}
        for path, label in NP_PATHS:
            cells = []
            for m in np_modes:
                d = by.get((path, m))
                if d is None:
                    cells.append("—")
                elif m == "floor":
                    cells.append(f"{fmt(d['conn_per_s'])}/s")
                elif d["ratio_to_floor"] is None:
                    cells.append(f"{fmt(d['conn_per_s'])}/s")
                else:
                    cells.append(f"{d['ratio_to_floor']:.2f}×")
            md.append(f"| {label} | " + " | ".join(cells) + " |")
        md.append("")
        md.append("| backend | mode | conn/s | × floor | p50 µs | p99 µs | errors | "
                  "XDP packets / conn | client CPU user / sys |")
        md.append("|---|---|---:|---:|---:|---:|---:|---:|---|")
        for d in nodeport:
            ratio = "—" if d["ratio_to_floor"] is None else f"{d['ratio_to_floor']:.2f}"
            xpc = "—" if d["xdp_packets_per_conn"] is None else f"{d['xdp_packets_per_conn']:.1f}"
            md.append(f"| {d['path']} | {d['mode']} | {fmt(d['conn_per_s'])} "
                      f"({', '.join(fmt(x) for x in d['conn_per_s_all'])}) | {ratio} | "
                      f"{fmt(d['p50_us'], 1)} | {fmt(d['p99_us'], 1)} | {d['errors']} | {xpc} | "
                      f"{d['client_user_cpu']:.2f} / {d['client_sys_cpu']:.2f} |")
        md.append("")
    if control:
        md.append("### Control plane: N services × "
                  f"{meta.get('endpoints')} endpoints programmed from scratch")
        md.append("")
        md.append("| services | peer | time | of which: source (read, parse, store) | "
                  "of which: maps / rules programmed | agent CPU | peak RSS |")
        md.append("|---:|---|---:|---:|---:|---:|---:|")
        for r in sorted(control, key=lambda r: (r["services"], CP_PEERS.index(r["peer"]))):
            if "error" in r:
                t = f"**FAILED**: {r['error']} (after {r['seconds']:.3f} s)"
            elif "skipped_after" in r:
                t = f"not run (> {r['timeout_s']} s at {r['skipped_after']:,})"
            elif "timeout_s" in r:
                t = f"> {r['timeout_s']} s (killed)"
            else:
                t = f"{r['seconds']:.3f} s"
            rss = f"{r['peak_rss_kb'] / 1024:.0f} MB" if "peak_rss_kb" in r else "—"
            src = f"{r['source_s']:.3f} s" if "source_s" in r else "—"
            prog = f"{r['program_s']:.3f} s" if "program_s" in r else ("—" if "error" in r else t)
            cpu = f"{r['cpu_s']:.3f} s" if "cpu_s" in r else "—"
            md.append(f"| {r['services']:,} | {r['peer']} | {t} | {src} | {prog} | {cpu} | {rss} |")
        md.append("")
    if results["change"]:
        md.append("### One endpoint change")
        md.append("")
        md.append("| services | peer | median | of which: source | of which: maps / rules | "
                  "all | store → maps (agent) |")
        md.append("|---:|---|---:|---:|---:|---|---|")
        for c in results["change"]:
            if c["seconds_median"] is None and c["error"]:
                md.append(f"| {c['services']:,} | {c['peer']} | {c['error']} | | | | |")
                continue
            if c["seconds_median"] is None:
                why = (f"no full load (> {c['timeout_s']} s at {c['skipped_after']:,})"
                       if c["skipped_after"] else f"> {c['timeout_s']} s")
                md.append(f"| {c['services']:,} | {c['peer']} | {why} | | | | |")
                continue
            ms = lambda x: "—" if x is None else f"{x * 1000:.1f} ms"
            src = ms(c["source_s_median"])
            prog = ms(c["program_s_median"]) if c["program_s_median"] is not None else ms(
                c["seconds_median"])
            md.append(f"| {c['services']:,} | {c['peer']} | "
                      f"{c['seconds_median'] * 1000:.1f} ms | {src} | {prog} | "
                      + ", ".join(f"{x * 1000:.1f}" for x in c["seconds_all"]) + " ms | "
                      + (f"median {c['store_to_maps_ms_median']:.3f} ms ("
                         + ", ".join(f"{x:.3f}" for x in c["store_to_maps_ms_all"]) + ")"
                         if c["store_to_maps_ms_median"] is not None else "") + " |")
        md.append("")
    if "perpacket" in results:
        md.append("### Per-packet cost (tools/bench/run-datapath)")
        md.append("")
        md.append("```")
        md.append(results["perpacket"].rstrip())
        md.append("```")
        md.append("")
    (out / "results.md").write_text("\n".join(md))
    print("\n".join(md))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
