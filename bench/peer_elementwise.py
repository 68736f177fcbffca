#!/usr/bin/python3
"""PyTorch peer of bench_core's elementwise rows: add, mul, tanh, exp, sigmoid, relu forward on 1M float32
elements, ns per element (new output tensor per call, as heed allocates one). Rows for 1 and for
BENCH_THREADS (2) intra-op threads: heed's elementwise kernels are single-threaded. Timing as the peers:
5 warm-up calls, then >= BENCH_ITERS (20) calls and >= 0.4 s; median (the peers' _bench_common.py,
imported from PEERS_DIR).
"""
import os
import sys
import time

sys.path.insert(0, os.environ.get("PEERS_DIR", os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                             "..", "..", "shared", "bench", "peers")))
from _bench_common import setup_torch, measure, emit, ITERS, THREADS  # noqa: E402

torch = setup_torch(0)
N = 1 << 20


def main():
    x = torch.randn(N)
    z = torch.randn(N)
    ops = (("add", lambda: x + z), ("mul", lambda: x * z), ("tanh", lambda: torch.tanh(x)),
           ("exp", lambda: torch.exp(x)), ("sigmoid", lambda: torch.sigmoid(x)), ("relu", lambda: torch.relu(x)))
    for threads in sorted({1, THREADS}):
        torch.set_num_threads(threads)
        for name, fn in ops:
            for _ in range(5):
                fn()

            def collect():
                ts = []
                t_start = time.perf_counter()
                while len(ts) < 5000 and (len(ts) < ITERS or time.perf_counter() - t_start < 0.4):
                    t0 = time.perf_counter()
                    fn()
                    ts.append((time.perf_counter() - t0) * 1e3)
                return ts

            st = measure(collect)
            st["ns_per_element_median"] = round(st["median_ms"] * 1e6 / N, 3)
            st["ns_per_element_best"] = round(st["min_ms"] * 1e6 / N, 3)
            emit("elementwise", name, st, numel=N, unit="ms/call")
    torch.set_num_threads(THREADS)


if __name__ == "__main__":
    main()
