#!/usr/bin/python3
"""PyTorch side of `npm run bench`: the same UNet workloads timed with PyTorch on the CPU, and the machine's
float32 matrix-multiply peak (NumPy/OpenBLAS and torch, 2048×2048).

Usage: /usr/bin/python3 src/python/bench_torch.py [--threads 2]

Reads requests as JSON lines on stdin and answers each with one line `@@bench {json}` on stdout (the benchmark
coordinator interleaves engines so that no two run at once):
  {"op": "time", "workload": {"model", "batch", "kind": "forward"|"step"|"train"}, "config": {...UNet config...},
   "timing": {"minTimeS", "minReps", "maxReps", "singleRunAboveS", "warmupS"}}  ->  {"times": [ms...], "warmupMs", "warmupRuns", "maxRssBytes"}
   (maxRssBytes: this process's peak resident memory so far; the coordinator runs a training step in a fresh one)
  {"op": "peak"}  ->  {"numpy_gflops", "torch_gflops", "n", "torch_conv_gflops", "blas"}
  {"op": "quit"}
"""
import argparse
import json
import os
import resource
import sys
import time

ap = argparse.ArgumentParser()
ap.add_argument("--threads", type=int, default=2)
a = ap.parse_args()
for v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[v] = str(a.threads)

import numpy as np  # noqa: E402
import torch  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from unet_torch import UNet  # noqa: E402

torch.set_num_threads(a.threads)
torch.manual_seed(0)

# Ho et al.'s CIFAR-10 schedule (linear, T = 1000) for the sampling step at t = 500 with the fixed large variance.
T = 1000
betas = np.linspace(1e-4, 0.02, T, dtype=np.float64)
ac = np.cumprod(1 - betas)
acp = np.append(1.0, ac[:-1])
COEF = {
    "recip": np.sqrt(1 / ac), "recipm1": np.sqrt(1 / ac - 1),
    "c1": betas * np.sqrt(acp) / (1 - ac), "c2": (1 - acp) * np.sqrt(1 - betas) / (1 - ac),
    "logvar": np.log(np.append(betas[1] * (1 - ac[0]) / (1 - ac[1]), betas[1:])),
}
models = {}


def model_for(name, cfg):
    if name not in models:
        m = UNet(**{k: tuple(v) if isinstance(v, list) else v for k, v in cfg.items()})
        m.eval()
        models[name] = m
    return models[name]


def workload_fn(w, cfg):
    if w["kind"] == "train":
        from train_step_bench import make_train_step  # the training code's step: forward, L_simple, backward, clip, Adam, EMA
        return make_train_step(cfg, w["batch"])
    m = model_for(w["model"], cfg)
    x = torch.randn(w["batch"], cfg["in_channels"], cfg["resolution"], cfg["resolution"])
    t = torch.full((w["batch"],), 500, dtype=torch.int64)
    if w["kind"] == "forward":
        def f():
            with torch.no_grad():
                return m(x, t)
        return f
    g = {k: float(v[500]) for k, v in COEF.items()}
    noise = torch.randn_like(x)

    def step():
        with torch.no_grad():
            eps = m(x, t)
            x0 = torch.clamp(g["recip"] * x - g["recipm1"] * eps, -1, 1)
            mean = g["c1"] * x0 + g["c2"] * x
            return mean + float(np.exp(0.5 * g["logvar"])) * noise
    return step


def timed(fn, o):
    t0 = time.perf_counter()
    fn()
    warm = (time.perf_counter() - t0) * 1000
    if warm > o["singleRunAboveS"] * 1000:
        return {"times": [warm], "warmupMs": warm, "warmupRuns": 0}
    runs = 1
    while time.perf_counter() - t0 < o.get("warmupS", 0):
        fn()
        runs += 1
    times = []
    start = time.perf_counter()
    while len(times) < o["minReps"] or (len(times) < o["maxReps"] and time.perf_counter() - start < o["minTimeS"]):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return {"times": times, "warmupMs": warm, "warmupRuns": runs}


def peak(n=2048, reps=5):
    """Matrix-multiply throughput: NumPy and torch matmul (whatever BLAS they link: Debian's default libblas.so.3
    is the unoptimised reference BLAS unless libopenblas0 is installed), and a 3×3 convolution 256→256 on
    8×32×32 through torch's oneDNN (AVX2 FMA), the practical peak of this machine's cores."""
    x = np.random.default_rng(0).standard_normal((n, n), dtype=np.float32)
    xt = torch.from_numpy(x)
    conv = torch.nn.Conv2d(256, 256, 3, padding=1)
    img = torch.randn(8, 256, 32, 32)

    def best(f):
        f()
        r = []
        for _ in range(reps):
            t0 = time.perf_counter()
            f()
            r.append(time.perf_counter() - t0)
        return min(r)
    with torch.no_grad():
        conv_s = best(lambda: conv(img))
    return {"numpy_gflops": 2 * n ** 3 / best(lambda: x @ x) / 1e9, "torch_gflops": 2 * n ** 3 / best(lambda: xt @ xt) / 1e9, "n": n,
            "torch_conv_gflops": 2 * 8 * 32 * 32 * 9 * 256 * 256 / conv_s / 1e9, "blas": torch.__config__.show().split("BLAS_INFO=")[1].split(",")[0]}


def reply(obj):
    sys.stdout.write("@@bench " + json.dumps(obj) + "\n")
    sys.stdout.flush()


reply({"ready": True, "torch": torch.__version__, "numpy": np.__version__, "threads": a.threads})
for line in sys.stdin:
    if not line.strip():
        continue
    r = json.loads(line)
    try:
        if r["op"] == "time":
            result = timed(workload_fn(r["workload"], r["config"]), r["timing"])
            result["maxRssBytes"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: kilobytes
            reply({"ok": True, "result": result})
        elif r["op"] == "peak":
            reply({"ok": True, "result": peak()})
        elif r["op"] == "quit":
            reply({"ok": True, "result": None})
            break
        else:
            reply({"ok": False, "error": f"unknown op {r['op']}"})
    except Exception as e:  # noqa: BLE001 - report any failure to the coordinator
        reply({"ok": False, "error": f"{type(e).__name__}: {e}"})
