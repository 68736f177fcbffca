#!/usr/bin/python3
"""Side-by-side table of heed (bench_core) vs PyTorch (peers) from run_core.sh's JSON lines.

Each value is the median over rounds of the per-round medians; "per round" lists the ratio of each round
(heed and PyTorch ran alternately, so a round's ratio compares like with like).
Usage: summarize_core.py RESULTS.jsonl
"""
import json
import statistics
import sys
from collections import defaultdict


def load(path):
    rows = []
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line.startswith("{"):
                rows.append(json.loads(line))
    return rows


def med(xs):
    return statistics.median(xs) if xs else None


def fmt(v, digits=3):
    return "-" if v is None else f"{v:.{digits}f}"


def per_round(rows, pick):
    """{round: value} for the rows matched by pick (first match per round)."""
    out = {}
    for r in rows:
        if pick(r) and r.get("round") not in out:
            out[r.get("round")] = r
    return out


def ratio_list(num, den, field, invert=False):
    rs = []
    for k in sorted(set(num) & set(den), key=str):
        a, b = num[k][field], den[k][field]
        if a and b:
            rs.append(b / a if invert else a / b)
    return rs


def main():
    rows = load(sys.argv[1])
    errors = [r for r in rows if "error" in r]
    print("\n== per-op tape overhead: chain of 100 ops on 1-element tensors, microseconds per op "
          "(lower is better; ratio < 1: heed faster; target: heed < 1 us/op)")
    print(f"{'row':24} {'heed us/op':>11} {'torch us/op':>12} {'heed/torch':>11}  per round")
    for v in ("add_nograd_fwd", "add_grad_fwd", "add_grad_fwd_bwd", "mul_tanh_grad_fwd_bwd"):
        h = per_round(rows, lambda r: r.get("bench") == "per_op_overhead" and r.get("impl") == "heed" and r["variant"] == v)
        t = per_round(rows, lambda r: r.get("bench") == "per_op_overhead" and r.get("impl") != "heed" and r["variant"] == v)
        hv = med([r["median_us_per_op"] for r in h.values()])
        tv = med([r["median_us_per_op"] for r in t.values()])
        rs = ratio_list(h, t, "median_us_per_op")
        print(f"{v:24} {fmt(hv):>11} {fmt(tv):>12} {fmt(med(rs)):>11}  {', '.join(fmt(x) for x in rs)}")

    print("\n== GEMM float32 n x n, GFLOP/s of the median call (higher is better; target: heed >= 0.9 x cblas)")
    print(f"{'n':>5} {'heed.matmul':>12} {'cblas_sgemm':>12} {'torch.mm':>9} {'heed/cblas':>11} {'heed/torch':>11}"
          "  heed/cblas per round | heed/torch per round")
    for n in (256, 512, 1024):
        h = per_round(rows, lambda r: r.get("bench") == "gemm" and r.get("variant") == "heed.matmul" and r.get("n") == n)
        c = per_round(rows, lambda r: r.get("bench") == "gemm" and r.get("variant") == "cblas_sgemm" and r.get("n") == n)
        t = per_round(rows, lambda r: r.get("bench") == "gemm" and r.get("variant") == "torch.mm" and r.get("n") == n)
        hv, cv, tv = (med([r["gflops_median"] for r in d.values()]) for d in (h, c, t))
        rc = ratio_list(h, c, "gflops_median")
        rt = ratio_list(h, t, "gflops_median")
        print(f"{n:>5} {fmt(hv, 1):>12} {fmt(cv, 1):>12} {fmt(tv, 1):>9} {fmt(med(rc)):>11} {fmt(med(rt)):>11}"
              f"  {', '.join(fmt(x) for x in rc)} | {', '.join(fmt(x) for x in rt)}")

    print("\n== elementwise forward, 1M float32, ns per element (lower is better; heed is single-threaded)")
    torch_threads = sorted({r.get("threads") for r in rows if r.get("bench") == "elementwise" and r.get("impl") != "heed"})
    head = "".join(f" {'torch ' + str(th) + 'thr':>11} {'heed/t' + str(th):>8}" for th in torch_threads)
    print(f"{'op':8} {'heed':>8}{head}")
    for v in ("add", "mul", "tanh", "exp", "sigmoid", "relu"):
        h = per_round(rows, lambda r: r.get("bench") == "elementwise" and r.get("impl") == "heed" and r["variant"] == v)
        hv = med([r["ns_per_element_median"] for r in h.values()])
        line = f"{v:8} {fmt(hv):>8}"
        for th in torch_threads:
            t = per_round(rows, lambda r: r.get("bench") == "elementwise" and r.get("impl") != "heed"
                          and r["variant"] == v and r.get("threads") == th)
            tv = med([r["ns_per_element_median"] for r in t.values()])
            line += f" {fmt(tv):>11} {fmt(med(ratio_list(h, t, 'ns_per_element_median'))):>8}"
        print(line)

    foreign = [r.get("foreign_cpu") for r in rows if isinstance(r.get("foreign_cpu"), (int, float))]
    if foreign:
        print(f"\nother processes' CPU share during measurements: median {med(foreign):.3f}, max {max(foreign):.3f}"
              " (near 0 = quiet machine)")
    for r in errors:
        print("ERROR:", json.dumps(r))


if __name__ == "__main__":
    main()
