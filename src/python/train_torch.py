#!/usr/bin/python3
"""The PyTorch comparison run: the same UNet (`unet_torch.py`, initialised as `reference/unet`: PyTorch defaults,
zero last convolutions), the same recipe and the same data as `ddpm-spec train`, for a wall-clock budget.

Recipe (Ho et al. 2020, as `reference/train`): x_t = sqrt(ab_t) x_0 + sqrt(1 - ab_t) eps with t uniform on
{0..T-1}, loss = mean (eps - eps_theta(x_t, t))^2, gradient-norm clipping, Adam (PyTorch's) with the learning rate
of update k = lr * min(1, k / warmup), EMA of the weights after every update. Data: Debian's Fashion-MNIST,
zero-padded (background) to the model's resolution, x = k / 127.5 - 1, shuffled epochs.

Usage:
  /usr/bin/python3 src/python/train_torch.py --config CONFIG.json --out DIR --minutes M [--steps N] [--threads 2]
CONFIG.json is the same file `ddpm-spec train --config` reads (only model.unet, diffusion, optim, batch_size, seed and
log_every are used). DIR receives log.jsonl (the same records as `ddpm-spec train`) and a checkpoint directory
`DIR/checkpoint/` in the format of `reference/unet/checkpoint.ts` (config.json, model.safetensors, ema.safetensors,
PyTorch names and layouts), so `ddpm-spec sample` and `ddpm-spec bpd` evaluate it with the same code as ours.
"""
import argparse
import gzip
import json
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import st  # noqa: E402
from unet_torch import UNet  # noqa: E402

FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"


def ho_betas(name, start, end, T):
    """Ho et al.'s get_beta_schedule for the names this comparison uses."""
    if name == "linear":
        return np.linspace(start, end, T, dtype=np.float64)
    if name == "quad":
        return np.linspace(start ** 0.5, end ** 0.5, T, dtype=np.float64) ** 2
    if name == "const":
        return np.full(T, end, dtype=np.float64)
    raise ValueError(f"train_torch.py: beta_schedule {name!r} is not supported here (linear, quad, const)")


def diffusion_buffers(name, start, end, T):
    ab = np.cumprod(1.0 - ho_betas(name, start, end, T))
    return {"T": T, "sqrt_ab": torch.tensor(np.sqrt(ab), dtype=torch.float32), "sqrt_1mab": torch.tensor(np.sqrt(1.0 - ab), dtype=torch.float32)}


def init_like_reference(model):
    """Ho et al.'s code zero-initialises the last convolution of every residual branch and of the model."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith(("conv2.weight", "conv2.bias", "proj_out.weight", "proj_out.bias")) or name.startswith("conv_out."):
                p.zero_()


class TrainState:
    """Model, Adam, warm-up, clipping and EMA: one `step(x0, buffers)` is one update."""

    def __init__(self, model, lr, warmup, grad_clip, ema_decay, beta1=0.9, beta2=0.999, eps=1e-8):
        self.model = model
        init_like_reference(model)
        self.model.train()
        self.lr, self.warmup, self.grad_clip, self.ema_decay = lr, warmup, grad_clip, ema_decay
        self.opt = torch.optim.Adam(model.parameters(), lr=lr, betas=(beta1, beta2), eps=eps)
        self.ema = {k: v.detach().clone() for k, v in model.state_dict().items()}
        self.updates = 0
        self.last_grad_norm = float("nan")
        self.last_lr = float("nan")

    def step(self, x0, buffers):
        b = x0.shape[0]
        t = torch.randint(0, buffers["T"], (b,))
        noise = torch.randn_like(x0)
        xt = buffers["sqrt_ab"][t].view(b, 1, 1, 1) * x0 + buffers["sqrt_1mab"][t].view(b, 1, 1, 1) * noise
        loss = F.mse_loss(self.model(xt, t), noise)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        params = [p for p in self.model.parameters() if p.grad is not None]
        norm = torch.sqrt(sum((p.grad.detach() ** 2).sum() for p in params))
        if self.grad_clip is not None:
            scale = self.grad_clip / max(float(norm), self.grad_clip)
            for p in params:
                p.grad.mul_(scale)
        self.updates += 1
        lr = self.lr * (min(1.0, self.updates / self.warmup) if self.warmup > 0 else 1.0)
        for g in self.opt.param_groups:
            g["lr"] = lr
        self.opt.step()
        with torch.no_grad():
            for k, v in self.model.state_dict().items():
                self.ema[k].mul_(self.ema_decay).add_(v, alpha=1 - self.ema_decay)
        self.last_grad_norm, self.last_lr = float(norm), lr
        return float(loss)


def load_fashion_mnist(split, resolution, directory=FASHION_MNIST_DIR):
    stem = "train" if split == "train" else "t10k"
    path = os.path.join(directory, f"{stem}-images-idx3-ubyte.gz")
    if not os.path.exists(path):
        sys.exit(f"train_torch.py: {path}: file not found; install Debian's package with `apt-get install dataset-fashion-mnist`")
    with gzip.open(path, "rb") as f:
        raw = f.read()
    magic, n, h, w = np.frombuffer(raw[:16], dtype=">u4")
    if magic != 0x803 or len(raw) != 16 + n * h * w:
        sys.exit(f"train_torch.py: {path}: not an IDX image file (magic {magic:#x}, {len(raw)} bytes)")
    imgs = np.frombuffer(raw[16:], dtype=np.uint8).reshape(n, h, w)
    if resolution < h:
        sys.exit(f"train_torch.py: resolution {resolution} < {h}: only padding is implemented here")
    top, left = (resolution - h) // 2, (resolution - w) // 2
    out = np.zeros((n, 1, resolution, resolution), dtype=np.uint8)
    out[:, 0, top:top + h, left:left + w] = imgs
    return out


def torch_to_ours_config_json(cfg, diffusion, n_params, extra):
    return {
        **extra,
        "format": "ddpm-spec-checkpoint",
        "version": 1,
        "unet": cfg,
        "diffusion": diffusion,
        "weights": "model.safetensors",
        "ema_weights": "ema.safetensors",
        "parameters": n_params,
    }


def save_checkpoint(out, model, ema, unet_cfg, diff_cfg, extra):
    d = os.path.join(out, "checkpoint")
    os.makedirs(d, exist_ok=True)
    meta = {"config": json.dumps(unet_cfg), "format": "pytorch_diffusion.Model state_dict"}
    st.write(os.path.join(d, "model.safetensors"), {k: v.numpy() for k, v in model.state_dict().items()}, meta)
    st.write(os.path.join(d, "ema.safetensors"), {k: v.numpy() for k, v in ema.items()}, {**meta, "weights": "ema"})
    diffusion = {k: diff_cfg[k] for k in ("beta_schedule", "beta_start", "beta_end", "num_diffusion_timesteps", "model_var_type")}
    n_params = sum(p.numel() for p in model.parameters())
    tmp = os.path.join(d, f".config.json.tmp-{os.getpid()}")
    with open(tmp, "w") as f:
        json.dump(torch_to_ours_config_json(unet_cfg, diffusion, n_params, extra), f, indent=2)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, os.path.join(d, "config.json"))
    return d


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--minutes", type=float, required=True)
    ap.add_argument("--steps", type=int, default=10 ** 9)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    with open(a.config) as f:
        cfg = json.load(f)
    unet = cfg["model"]["unet"]
    diff = {"beta_schedule": "linear", "beta_start": 1e-4, "beta_end": 0.02, "num_diffusion_timesteps": 1000, "loss": "simple", "model_var_type": "fixedlarge", **cfg.get("diffusion", {})}
    if diff["loss"] != "simple":
        sys.exit("train_torch.py: only the simple loss is implemented for the comparison")
    optim = {"lr": 2e-4, "warmup": 5000, "grad_clip": 1.0, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8, "ema_decay": 0.9999, **cfg.get("optim", {})}
    batch = cfg.get("batch_size", 128)
    seed = cfg.get("seed", 0)
    log_every = cfg.get("log_every", 100)
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)

    data = load_fashion_mnist("train", unet["resolution"])
    model = UNet(**{k: tuple(v) if isinstance(v, list) else v for k, v in unet.items()})
    state = TrainState(model, optim["lr"], optim["warmup"], optim["grad_clip"], optim["ema_decay"], optim["beta1"], optim["beta2"], optim["eps"])
    buffers = diffusion_buffers(diff["beta_schedule"], diff["beta_start"], diff["beta_end"], diff["num_diffusion_timesteps"])
    os.makedirs(a.out, exist_ok=True)
    log = open(os.path.join(a.out, "log.jsonl"), "w")
    perm, cursor = rng.permutation(len(data)), 0
    start = time.perf_counter()
    acc_loss = acc_norm = 0.0
    acc_n, since = 0, start
    step = 0
    print(f"train_torch.py: {sum(p.numel() for p in model.parameters())} parameters, batch {batch}, {a.threads} threads, budget {a.minutes} min", file=sys.stderr)
    while step < a.steps and time.perf_counter() - start < a.minutes * 60:
        idx = []
        while len(idx) < batch:
            if cursor == len(perm):
                perm, cursor = rng.permutation(len(data)), 0
            take = min(batch - len(idx), len(perm) - cursor)
            idx.extend(perm[cursor:cursor + take])
            cursor += take
        x0 = torch.from_numpy(data[np.array(idx)].astype(np.float32) / 127.5 - 1.0)
        loss = state.step(x0, buffers)
        if not math.isfinite(loss) or not math.isfinite(state.last_grad_norm):
            sys.exit(f"train_torch.py: training stopped at step {step + 1}: the loss is {loss}")
        step += 1
        acc_loss += loss
        acc_norm += state.last_grad_norm
        acc_n += 1
        if step % log_every == 0:
            now = time.perf_counter()
            rec = {"step": step, "loss": acc_loss / acc_n, "grad_norm": acc_norm / acc_n, "lr": state.last_lr, "steps_per_s": acc_n / (now - since), "elapsed_s": now - start}
            log.write(json.dumps(rec) + "\n")
            log.flush()
            print(f"step {step}  loss {rec['loss']:.5f}  {rec['steps_per_s']:.2f} steps/s", file=sys.stderr)
            acc_loss = acc_norm = 0.0
            acc_n, since = 0, now
    elapsed = time.perf_counter() - start
    log.close()
    d = save_checkpoint(a.out, model, state.ema, unet, diff, {"training": {"step": step, "data": "fashion-mnist", "elapsed_s": elapsed, "backend": f"pytorch {torch.__version__} cpu, {a.threads} threads"}})
    print(json.dumps({"steps": step, "elapsed_s": elapsed, "checkpoint": d, "torch": torch.__version__, "threads": a.threads}))


if __name__ == "__main__":
    main()
