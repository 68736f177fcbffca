#!/usr/bin/python3
"""PyTorch peer of bench_attention's MultiheadAttention rows: torch.nn.MultiheadAttention(256, 4,
batch_first=True), self-attention on x (1, T, 256), forward + backward with a random upstream gradient,
need_weights=True ("mha_naive") and need_weights=False ("mha_flash"; in torch 1.13 training this is the
same math path without returning the weights). Measured exactly as the SDPA peer mha_scaling.py
(fresh child process per row, glibc mmap threshold 64K, clear_refs=5, VmHWM - VmRSS; timing from its
_bench_common). Usage: peer_mha.py T [T ...]; PEERS_DIR points at the peers folder.
"""
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
PEERS = os.environ.get("PEERS_DIR", os.path.join(HERE, "..", "..", "shared", "bench", "peers"))
E, H = 256, 4


def child(T, which):
    sys.path.insert(0, PEERS)
    import mha_scaling  # noqa: F401  (status_kb)
    from _bench_common import emit, setup_torch, time_fn

    torch = setup_torch(0)
    mha = torch.nn.MultiheadAttention(E, H, batch_first=True)
    x = torch.randn(1, T, E, requires_grad=True)
    g = torch.randn(1, T, E)
    need = which == "mha_naive"

    def step():
        x.grad = None
        mha.zero_grad(set_to_none=True)
        o, _ = mha(x, x, x, need_weights=need)
        o.backward(g)
        return o

    o = step()
    del o
    x.grad = None
    mha.zero_grad(set_to_none=True)
    base = mha_scaling.status_kb("VmRSS")
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    o = step()
    hwm = mha_scaling.status_kb("VmHWM")
    del o
    stats = time_fn(step)
    emit("mha_scaling", which, stats, B=1, heads=H, embed_dim=E, seq_len=T, op="nn.MultiheadAttention",
         vmhwm_delta_MB=round((hwm - base) / 1024.0, 2), unit="ms/fwd+bwd",
         mem_method="fresh proc, glibc mmap_threshold=64K, clear_refs=5, VmHWM-VmRSS")


def main():
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="65536", MALLOC_TRIM_THRESHOLD_="0", PEERS_DIR=PEERS)
    for T in [int(a) for a in sys.argv[1:]] or [128, 256, 512, 1024, 2048]:
        for which in ("mha_naive", "mha_flash"):
            r = subprocess.run([sys.executable, os.path.abspath(__file__), "--child", str(T), which], env=env,
                               stdout=subprocess.PIPE, text=True)
            sys.stdout.write(r.stdout)
            sys.stdout.flush()


if __name__ == "__main__":
    if len(sys.argv) > 3 and sys.argv[1] == "--child":
        child(int(sys.argv[2]), sys.argv[3])
    else:
        main()
