#!/usr/bin/python3
"""PyTorch side of the training-step benchmark (`reference/train/benchWorkload.ts`): one full training step of
Ho et al.'s recipe — forward, L_simple, backward, gradient-norm clipping at 1, Adam (lr 2e-4), EMA (0.9999) — for
the UNet of `unet_torch.py` (the same model as `reference/unet`), timed on the CPU.

Usage: /usr/bin/python3 src/python/train_step_bench.py --spec SPEC.json [--threads 2]
or, from another script: `from train_step_bench import make_train_step`.
SPEC.json: {"models": {name: unet config}, "workloads": [{"model", "batch"}], "min_time_s", "min_reps", "max_reps"}.
Prints one JSON object on stdout: {"torch", "threads", "results": [{"model", "batch", "times_ms"}]}.
"""
import argparse
import json
import os
import sys
import time

if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--spec", required=True)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    for v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[v] = str(a.threads)

import numpy as np  # noqa: E402
import torch  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from train_torch import TrainState, diffusion_buffers  # noqa: E402
from unet_torch import UNet  # noqa: E402



def make_train_step(cfg, batch, seed=0):
    """A callable that runs one full training step of a fresh UNet with configuration `cfg` at batch `batch`
    (random images in [-1, 1]; the time of the draws is included, it is negligible). For `npm run bench`'s
    PyTorch engine: `workload_fn` can return `make_train_step(cfg, w["batch"])` for a workload of kind "train"."""
    torch.manual_seed(seed)
    model = UNet(**{k: tuple(v) if isinstance(v, list) else v for k, v in cfg.items()})
    state = TrainState(model, lr=2e-4, warmup=0, grad_clip=1.0, ema_decay=0.9999)
    buffers = diffusion_buffers("linear", 1e-4, 0.02, 1000)
    shape = (batch, cfg["in_channels"], cfg["resolution"], cfg["resolution"])

    def step():
        loss = state.step(torch.rand(shape) * 2 - 1, buffers)
        if not np.isfinite(loss):
            raise RuntimeError(f"benchmark step: the loss is {loss}")

    return step


def main():
    torch.set_num_threads(a.threads)
    with open(a.spec) as f:
        spec = json.load(f)
    out = {"torch": torch.__version__, "threads": a.threads, "results": []}
    for w in spec["workloads"]:
        step = make_train_step(spec["models"][w["model"]], w["batch"])
        step()  # warm-up
        times = []
        start = time.perf_counter()
        while len(times) < spec.get("min_reps", 2) or (len(times) < spec.get("max_reps", 10) and time.perf_counter() - start < spec.get("min_time_s", 10)):
            t0 = time.perf_counter()
            step()
            times.append((time.perf_counter() - t0) * 1000)
        out["results"].append({**w, "times_ms": times})
        print(f"torch train step {w['model']} b{w['batch']}: {sorted(times)[len(times) // 2]:.0f} ms", file=sys.stderr)
        del step
    print(json.dumps(out))


if __name__ == "__main__":
    main()
