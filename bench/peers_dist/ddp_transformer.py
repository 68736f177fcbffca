#!/usr/bin/python3
"""PyTorch DistributedDataParallel peer of bench/bench_dist.cpp, on the gloo backend.

The token_cls workload of bench_transformer.cpp (and of the PyTorch peer transformer_block.py):
Embedding(1000, 128) + learned positions (1, 64, 128) -> nn.TransformerEncoder(2 x
TransformerEncoderLayer(128, 4 heads, ff 512, dropout 0.1, post-LN, ReLU, batch_first)) ->
Linear(128, 16) per token; cross-entropy; Adam(1e-3); batch 32 x seq 64 per process; train mode.
The model is wrapped in DistributedDataParallel (default buckets: 25 MB, first 1 MB).

Usage: ddp_transformer.py PROCESSES   (starts PROCESSES local ranks as plain subprocesses, one thread
each, rendezvous over TCP on 127.0.0.1; RANK set in the environment = run as that rank)
Timing as bench_dist: BENCH_WARMUP (5) untimed steps, one more, BENCH_ITERS (20) timed steps; then the
same step under model.no_sync() (no gradient averaging). Rank 0 prints one JSON line.
"""
import json
import os
import socket
import statistics
import subprocess
import sys
import time

WARMUP = int(os.environ.get("BENCH_WARMUP", "5"))
ITERS = int(os.environ.get("BENCH_ITERS", "20"))


def worker(rank, world):
    import torch
    import torch.distributed as dist
    import torch.nn as nn

    class TinyTransformer(nn.Module):
        def __init__(self, vocab, n_out, seq, d=128, heads=4, ff=512, layers=2, dropout=0.1):
            super().__init__()
            self.tok = nn.Embedding(vocab, d)
            self.pos = nn.Parameter(torch.randn(1, seq, d) * 0.02)
            layer = nn.TransformerEncoderLayer(d, heads, ff, dropout, batch_first=True)
            self.enc = nn.TransformerEncoder(layer, layers)
            self.head = nn.Linear(d, n_out)

        def forward(self, x):
            h = self.tok(x) + self.pos[:, : x.shape[1]]
            return self.head(self.enc(h))

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method="env://", rank=rank, world_size=world)
    torch.manual_seed(0)
    vocab, n_out, seq, batch = 1000, 16, 64, 32
    model = TinyTransformer(vocab, n_out, seq)
    model.train()
    ddp = nn.parallel.DistributedDataParallel(model)
    opt = torch.optim.Adam(ddp.parameters(), lr=1e-3)
    loss_fn = nn.CrossEntropyLoss()
    g = torch.Generator().manual_seed(100 + rank)
    x = torch.randint(0, vocab, (batch, seq), generator=g)
    y = torch.randint(0, n_out, (batch, seq), generator=g)

    def step():
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(ddp(x).reshape(-1, n_out), y.reshape(-1))
        loss.backward()
        opt.step()

    def timed(sync):
        times = []
        for i in range(WARMUP + 1 + ITERS):
            t0 = time.perf_counter()
            if sync:
                step()
            else:
                with ddp.no_sync():
                    step()
            if i > WARMUP:
                times.append((time.perf_counter() - t0) * 1e3)
        return times

    dist.barrier()
    busy0, own0, wall0 = machine_busy_s(), own_cpu_s(), time.perf_counter()
    times = timed(True)
    wall = time.perf_counter() - wall0
    # Other processes' share of all CPUs meanwhile (the other ranks count too), as bench_dist reports it.
    foreign = max(0.0, ((machine_busy_s() - busy0) - (own_cpu_s() - own0)) / (wall * (os.cpu_count() or 1)))
    dist.barrier()
    nosync = timed(False)
    if rank == 0:
        med = statistics.median(times)
        print(json.dumps({"bench": "dist", "variant": "token_cls", "impl": "pytorch-ddp-gloo", "torch": torch.__version__,
                          "processes": world, "threads": torch.get_num_threads(), "batch_per_process": batch,
                          "seq_len": seq, "params": sum(p.numel() for p in model.parameters()),
                          "median_ms": round(med, 4), "min_ms": round(min(times), 4),
                          "samples_per_s": round(1000.0 * world * batch / med, 2),
                          "nosync_median_ms": round(statistics.median(nosync), 4), "n_timed": len(times),
                          "foreign_cpu": round(foreign, 3)}),
              flush=True)
    dist.destroy_process_group()


def machine_busy_s():
    """Busy CPU-seconds of the whole machine (all CPUs), from /proc/stat."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:8]]
    return (v[0] + v[1] + v[2] + v[5] + v[6]) / os.sysconf("SC_CLK_TCK")


def own_cpu_s():
    t = os.times()
    return t.user + t.system


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


if __name__ == "__main__":
    if "RANK" in os.environ:
        worker(int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"]))
        sys.exit(0)
    world = int(sys.argv[1]) if len(sys.argv) > 1 else 1
    env = dict(os.environ, MASTER_ADDR="127.0.0.1", MASTER_PORT=str(free_port()), WORLD_SIZE=str(world),
               GLOO_SOCKET_IFNAME=os.environ.get("GLOO_SOCKET_IFNAME", "lo"))
    ranks = [subprocess.Popen([sys.executable, os.path.abspath(__file__)], env=dict(env, RANK=str(r)),
                              stdin=subprocess.DEVNULL) for r in range(world)]
    codes = [p.wait() for p in ranks]
    sys.exit(max(codes))
