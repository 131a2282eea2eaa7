#!/usr/bin/env python3
"""Serve huggingface/diffusers' `DDPMScheduler` / `DDIMScheduler` over the `ddpm-spec check --impl` protocol.

    npx ddpm-spec check --only diffusers_ --no-laws \
        --impl "/usr/bin/python3 src/conformance/adapters/diffusers_adapter.py"                      # diffusers installed
    npx ddpm-spec check --only diffusers_ --no-laws \
        --impl "/usr/bin/python3 src/conformance/adapters/diffusers_adapter.py --git-dir DIR --commit C"  # offline

With no option it imports the installed `diffusers` package. Offline, `--git-dir` (a clone of huggingface/diffusers)
and `--commit` load the verbatim `scheduling_ddpm.py` / `scheduling_ddim.py` of that commit under the project's
stub package (`golden/generators/diffusers_stub`), as the golden data was recorded. Needs torch and numpy.

This is the template for a diffusers-based implementation: each operation builds the scheduler from the request's
config (diffusers' own option names), calls `set_timesteps` when `num_inference_steps` is given, and calls the
scheduler's own method. Noise the scheduler draws itself (`randn_tensor` in DDPMScheduler.step) is replaced by the
request's noise: DDIM takes it as `variance_noise`; for DDPM, a generator-free `randn_tensor` is patched in the
scheduler module for the duration of the call. `buffers` (the spec's precision option) is ignored: diffusers is
float32. Only glue is written here.
"""

import argparse
import contextlib
import importlib
import os
import sys

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from ddpm_protocol import Unsupported, serve  # noqa: E402

parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
parser.add_argument("--git-dir", help="a huggingface/diffusers clone: load its scheduler files under the project's stub")
parser.add_argument("--commit", help="the diffusers commit to load with --git-dir")
opts = parser.parse_args()
torch.set_num_threads(1)

if opts.git_dir:
    if not opts.commit:
        sys.exit("--git-dir needs --commit")
    sys.path.insert(0, os.path.join(HERE, "..", "..", "..", "golden", "generators"))
    record = importlib.import_module("record_diffusers")
    ddpm_mod, ddim_mod, _hook, _ = record.load_schedulers(argparse.Namespace(src=None, git_dir=opts.git_dir, commit=opts.commit))
    ORIGIN = f"diffusers {opts.commit[:12]} (verbatim scheduler files, project stub)"
else:
    ddpm_mod = importlib.import_module("diffusers.schedulers.scheduling_ddpm")
    ddim_mod = importlib.import_module("diffusers.schedulers.scheduling_ddim")
    ORIGIN = f"diffusers {importlib.import_module('diffusers').__version__}"

NOT_CONFIG = {"num_inference_steps", "buffers", "t", "eta", "use_clipped_model_output"}


def config(args):
    return {k: v for k, v in args.items() if k not in NOT_CONFIG}


def scheduler(cls, args):
    s = cls(**config(args))
    if args.get("num_inference_steps"):
        s.set_timesteps(int(args["num_inference_steps"]))
    return s


def f32(a):
    return torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))


@contextlib.contextmanager
def given_noise(module, noise):
    """Make the module's randn_tensor return `noise` for the duration of the block."""
    original = module.randn_tensor
    module.randn_tensor = lambda shape, **kw: noise.reshape(shape).to(kw.get("dtype") or noise.dtype)
    try:
        yield
    finally:
        module.randn_tensor = original


def out(x):
    return x.detach().cpu().numpy()


def diffusers_buffers(args, i):
    if args.get("beta_schedule") == "sigmoid":
        s = ddpm_mod.DDPMScheduler(**{k: v for k, v in config(args).items() if k != "set_alpha_to_one"})
        return {"betas": out(s.betas), "alphas": out(s.alphas), "alphas_cumprod": out(s.alphas_cumprod), "final_alpha_cumprod": np.float32(1.0)}
    s = ddim_mod.DDIMScheduler(**{k: v for k, v in config(args).items() if k != "variance_type"})
    return {"betas": out(s.betas), "alphas": out(s.alphas), "alphas_cumprod": out(s.alphas_cumprod), "final_alpha_cumprod": out(s.final_alpha_cumprod)}


def ddpm(args):
    return scheduler(ddpm_mod.DDPMScheduler, {k: v for k, v in args.items() if k != "set_alpha_to_one"})


def diffusers_set_timesteps(args, i):
    return {"timesteps": out(ddpm(args).timesteps).astype(np.int64)}


def diffusers_ddpm_variance(args, i):
    v = ddpm(args)._get_variance(int(args["t"]), predicted_variance=f32(i["predicted_variance"]))
    return {"variance": out(v) if isinstance(v, torch.Tensor) else np.float32(v)}


def diffusers_ddpm_step(args, i):
    s = ddpm(args)
    with given_noise(ddpm_mod, f32(i["noise"])):
        r = s.step(f32(i["model_output"]), int(args["t"]), f32(i["sample"]))
    return {"prev_sample": out(r.prev_sample), "pred_original_sample": out(r.pred_original_sample)}


def diffusers_ddim_step(args, i):
    if args.get("beta_schedule") == "sigmoid":
        raise Unsupported("DDIMScheduler has no sigmoid schedule")
    s = scheduler(ddim_mod.DDIMScheduler, {k: v for k, v in args.items() if k != "variance_type"})
    eta = float(args["eta"])
    r = s.step(f32(i["model_output"]), int(args["t"]), f32(i["sample"]), eta=eta,
               use_clipped_model_output=bool(args["use_clipped_model_output"]), variance_noise=f32(i["noise"]) if eta > 0 else None)
    return {"prev_sample": out(r.prev_sample), "pred_original_sample": out(r.pred_original_sample)}


HANDLERS = {f.__name__: f for f in [diffusers_buffers, diffusers_set_timesteps, diffusers_ddpm_variance, diffusers_ddpm_step, diffusers_ddim_step]}

if __name__ == "__main__":
    serve(f"{ORIGIN} DDPMScheduler/DDIMScheduler (torch {torch.__version__}, float32)", HANDLERS,
          notes="adapter src/conformance/adapters/diffusers_adapter.py")
