#!/usr/bin/python3
"""Load our exported UNet weights into the PyTorch port's `Model` and reproduce our outputs.

Usage (from the repository root, with Debian's python3-torch):

    /usr/bin/python3 src/python/pesser_roundtrip.py PATH/TO/pytorch_diffusion [--config small|cifar10] [--workdir DIR] [--checkpoint DIR]

PATH/TO/pytorch_diffusion is a checkout of pesser/pytorch_diffusion (the commit in golden/upstream/README.md);
only its `pytorch_diffusion/model.py` is imported (by file, so its package's download helpers and their
dependencies are not needed).

Without --checkpoint, the script first runs `node --import tsx src/python/roundtrip_export.ts WORKDIR`, which
exports a checkpoint with random weights (config.json + model.safetensors) and our outputs on fixed inputs
(io.safetensors). It then builds `Model(**config)`, loads model.safetensors with `load_state_dict(strict=True)`
(every name and shape must match, nothing extra), runs the same inputs in eval mode and compares: exit code 0
when every element agrees within rtol 1e-4 + atol 1e-4 (the golden README's tolerance for a float32 port).
"""
import argparse
import importlib.util
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import st  # noqa: E402

RTOL = 1e-4
ATOL = 1e-4


def load_port_model_module(checkout):
    path = os.path.join(checkout, "pytorch_diffusion", "model.py")
    if not os.path.isfile(path):
        sys.exit(f"pesser_roundtrip: {path} not found; pass the root of a pesser/pytorch_diffusion checkout")
    spec = importlib.util.spec_from_file_location("pesser_model", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("checkout", help="root of a pesser/pytorch_diffusion checkout")
    ap.add_argument("--checkpoint", help="an exported checkpoint directory with io.safetensors (skip the export)")
    ap.add_argument("--workdir", help="where to export (default: a temporary directory)")
    ap.add_argument("--config", choices=["small", "cifar10"], default="small",
                    help="model to export: every feature at 16x16 (default) or Ho et al.'s CIFAR-10 configuration")
    a = ap.parse_args()
    torch.set_num_threads(2)
    mod = load_port_model_module(a.checkout)

    ck = a.checkpoint
    if ck is None:
        ck = a.workdir or tempfile.mkdtemp(prefix="ddpm-roundtrip-")
        repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        r = subprocess.run(["node", "--import", "tsx", "src/python/roundtrip_export.ts", ck, a.config], cwd=repo, capture_output=True, text=True)
        if r.returncode != 0:
            sys.exit(f"pesser_roundtrip: the TypeScript export failed:\n{r.stderr}")
        info = json.loads(r.stdout.strip().splitlines()[-1])
        print(f"exported by ddpm-spec on tfjs/{info['backend']}: {info['parameters']:,} parameters -> {ck}")

    with open(os.path.join(ck, "config.json")) as f:
        cfg = json.load(f)
    unet = cfg["unet"]
    # The port concatenates tuples: (1,) + ch_mult.
    model = mod.Model(**{k: tuple(v) if isinstance(v, list) else v for k, v in unet.items()})
    sd, meta = st.read(os.path.join(ck, cfg["weights"]))
    model.load_state_dict({k: torch.from_numpy(v) for k, v in sd.items()}, strict=True)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"loaded {len(sd)} tensors into pytorch_diffusion.model.Model({', '.join(f'{k}={v}' for k, v in unet.items())})")
    print(f"load_state_dict(strict=True): all names and shapes match; {n_params:,} parameters (config.json says {cfg['parameters']:,})")
    model.eval()

    io, io_meta = st.read(os.path.join(ck, "io.safetensors"))
    with torch.no_grad():
        y = model(torch.from_numpy(io["x"]), torch.from_numpy(io["t"])).numpy()
    ours = io["out"]
    diff = np.abs(y - ours)
    bound = ATOL + RTOL * np.abs(y)
    worst = np.unravel_index(np.argmax(diff - bound), diff.shape)
    ok = bool(np.all(diff <= bound))
    print(f"inputs x {list(io['x'].shape)} (NCHW), t = {io['t'].tolist()}; our output computed on tfjs/{io_meta.get('backend', '?')}")
    print(f"max |PyTorch - ours| = {diff.max():.3e}, max relative = {(diff / np.maximum(np.abs(y), 1e-12)).max():.3e}, "
          f"mean |diff| = {diff.mean():.3e}, output scale (max |y|) = {np.abs(y).max():.3f}")
    print(f"worst element {list(map(int, worst))}: PyTorch {y[worst]:.7f}, ours {ours[worst]:.7f}")
    print(f"{'PASS' if ok else 'FAIL'}: every element within atol {ATOL} + rtol {RTOL}·|PyTorch|" if ok else
          f"FAIL: {int(np.sum(diff > bound))} of {diff.size} elements outside atol {ATOL} + rtol {RTOL}·|PyTorch|")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
