"""Side-by-side table of one training step, heed versus PyTorch, from the JSON lines of a bench/run_*.sh run.

Usage: summarize_steps.py OUT.jsonl VARIANT [VARIANT ...]

Rows carry "round", "variant", "impl" ("heed" or a PyTorch name), "median_ms" and optionally "foreign_cpu"
(other processes' share of the CPUs while timing). Per variant it pairs heed's and PyTorch's row of each
round and prints the medians over rounds and the median of the per-round ratios heed/PyTorch (< 1: heed
faster), then each round's ratio with its foreign CPU share on both sides.
"""
import json
import statistics
import sys


def main():
    rows = [json.loads(line) for line in open(sys.argv[1]) if line.startswith("{")]
    variants = sys.argv[2:]
    width = max([7] + [len(v) for v in variants])
    print(f"{'variant':{width}} {'heed ms':>9} {'torch ms':>9} {'heed/torch':>11}  per round (foreign cpu heed/torch)")
    for v in variants:
        pairs = []
        for r in sorted({x["round"] for x in rows}):
            h = [x for x in rows if x["round"] == r and x.get("variant") == v and x.get("impl") == "heed"]
            t = [x for x in rows if x["round"] == r and x.get("variant") == v and x.get("impl") != "heed"]
            if h and t:
                pairs.append((h[0], t[0]))
        if not pairs:
            print(f"{v:{width}} (no paired rows)")
            continue
        hm = statistics.median(h["median_ms"] for h, _ in pairs)
        tm = statistics.median(t["median_ms"] for _, t in pairs)
        ratios = [h["median_ms"] / t["median_ms"] for h, t in pairs]
        detail = ", ".join(f"{q:.3f} ({h.get('foreign_cpu', 0):.2f}/{t.get('foreign_cpu', 0):.2f})"
                           for q, (h, t) in zip(ratios, pairs))
        print(f"{v:{width}} {hm:9.2f} {tm:9.2f} {statistics.median(ratios):11.3f}  {detail}")


if __name__ == "__main__":
    main()
