#!/usr/bin/env python3
"""Serve pesser/pytorch_diffusion (the PyTorch port of Ho et al.'s code) over the `ddpm-spec check --impl` protocol.

    npx ddpm-spec check --impl "/usr/bin/python3 src/conformance/adapters/pytorch_diffusion_adapter.py --repo PATH"

PATH is a checkout of https://github.com/pesser/pytorch_diffusion (the golden data was produced at commit
304bdff2196db604fb66108b0bb2d4a19058b20f). Needs torch (Debian's python3-torch 1.13 works) and numpy; `tqdm`,
which only the checkpoint downloader uses, is stubbed when it is missing.

What pesser's code has, and so what this adapter serves, all through the repository's own functions:

- `schedule` (family "ho"): `diffusion.get_beta_schedule` (Ho's schedules: quad, linear, warmup10, warmup50,
  const, jsd);
- `timestep_embedding` (flavor "ho"): `model.get_timestep_embedding`;
- `p_sample_step` (ε-prediction, fixedlarge / fixedsmall, clipped x̂₀): `diffusion.denoising_step` with the
  buffers `Diffusion.init_diffusion_parameters` computes for the request's betas, and the request's noise in
  place of its `torch.randn_like` draw; t is handed to the model as a float, as `Diffusion.denoise` does;
- `p_mean_variance` for the same settings: `denoising_step` with zero noise gives the mean; its `logvar` buffer
  the log-variance (the variance is exp of it: pesser keeps no variance buffer).

pesser's `fixedsmall` log-variance at t = 0 is log(max(β̃_0, 1e−20)) = −46.05 (Ho's v1 convention), while
improved-diffusion, whose numbers the golden data holds, uses log β̃_1. The two agree wherever that entry does not
matter (a sampling step at t = 0 adds no noise), but p_mean_variance's log-variance at t = 0 differs. The adapter
answers such requests as unsupported, naming the reason, unless `--known-differences` is given, in which case the
report shows the difference.
"""

import argparse
import contextlib
import os
import subprocess
import sys
import types

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ddpm_protocol import Unsupported, serve  # noqa: E402

parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
parser.add_argument("--repo", required=True, help="path of a pesser/pytorch_diffusion checkout")
parser.add_argument("--known-differences", action="store_true",
                    help="also answer requests where pesser's conventions differ from the golden data's (t = 0 fixedsmall log-variance)")
opts = parser.parse_args()
if not os.path.isfile(os.path.join(opts.repo, "pytorch_diffusion", "diffusion.py")):
    sys.exit(f"--repo {opts.repo}: no pytorch_diffusion/diffusion.py there; pass a checkout of pesser/pytorch_diffusion")
sys.path.insert(0, os.path.abspath(opts.repo))
try:
    import tqdm  # noqa: F401
except ImportError:  # used only by the checkpoint downloader
    sys.modules["tqdm"] = types.SimpleNamespace(tqdm=lambda it=None, *a, **k: it)

from pytorch_diffusion import diffusion as pd  # noqa: E402
from pytorch_diffusion import model as pm  # noqa: E402

torch.set_num_threads(1)


def f32(a):
    return torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))


def out(x):
    return x.detach().cpu().numpy()


def schedule(args, inputs):
    if args["family"] != "ho":
        raise Unsupported("pytorch_diffusion has only Ho's schedules (family 'ho')")
    try:
        betas = pd.get_beta_schedule(args["name"], beta_start=args.get("beta_start"), beta_end=args.get("beta_end"),
                                     num_diffusion_timesteps=int(args["T"]))
    except NameError as e:
        # At 304bdff, get_beta_schedule's warmup branches call _warmup_beta, which pytorch_diffusion never defines
        # (it was left behind when Ho's diffusion_utils_2.py was ported).
        raise Unsupported(f"pytorch_diffusion's get_beta_schedule cannot make '{args['name']}': {e} (a gap in the port of Ho's code)") from e
    return {"betas": betas}


def timestep_embedding(args, i):
    if args["flavor"] != "ho":
        raise Unsupported("pytorch_diffusion has only Ho's embedding ([sin | cos], frequencies divided by half - 1)")
    t = i["t"]
    tt = torch.from_numpy(t) if t.dtype.kind in "iu" else f32(t)
    return {"embedding": out(pm.get_timestep_embedding(tt, int(args["dim"])))}


VAR_TYPES = {"FIXED_LARGE": "fixedlarge", "FIXED_SMALL": "fixedsmall"}


def sampler(args, inputs):
    """pesser's buffers for the request's betas: Diffusion.init_diffusion_parameters on these betas."""
    if args.get("model_mean_type", "EPSILON") != "EPSILON":
        raise Unsupported("pytorch_diffusion's denoising_step predicts ε only")
    if args.get("model_var_type", "FIXED_SMALL") not in VAR_TYPES:
        raise Unsupported("pytorch_diffusion has the fixed variances only (fixedlarge, fixedsmall)")
    if not args.get("clip_denoised", True):
        raise Unsupported("pytorch_diffusion's denoising_step always clips x̂₀ to [-1, 1]")
    if args.get("rescale_timesteps") or args.get("timestep_map") is not None:
        raise Unsupported("pytorch_diffusion hands the model the plain timestep (no rescaling, no respacing)")
    betas = np.asarray(inputs["betas"], dtype=np.float64)
    d = pd.Diffusion.__new__(pd.Diffusion)
    real = pd.get_beta_schedule
    pd.get_beta_schedule = lambda *a, **k: betas  # init_diffusion_parameters reads its betas from here
    try:
        d.init_diffusion_parameters(model_var_type=VAR_TYPES[args.get("model_var_type", "FIXED_SMALL")],
                                    beta_schedule="given", beta_start=None, beta_end=None,
                                    num_diffusion_timesteps=len(betas))
    finally:
        pd.get_beta_schedule = real
    return d


def model(args, inputs):
    if args["model"] == "output":
        fixed = f32(inputs["model.output"])
        return lambda x, t: fixed
    W, bias, tw = f32(inputs["model.W"]), f32(inputs["model.bias"]), f32(inputs["model.tw"])

    def m(x, t):
        extra = (1,) * (x.dim() - 2)
        return torch.einsum("oi,bi...->bo...", W, x) + bias.view(1, -1, *extra) + tw.view(1, -1, *extra) * t.float().view(-1, 1, *extra) / 1000

    return m


@contextlib.contextmanager
def given_noise(draw):
    real = torch.randn_like
    torch.randn_like = lambda x, *a, **k: draw.to(dtype=x.dtype)
    try:
        yield
    finally:
        torch.randn_like = real


def step(d, args, i, noise):
    x = f32(i["x"])
    t = torch.from_numpy(np.asarray(i["t"], dtype=np.float64)).float()  # Diffusion.denoise passes float t
    with given_noise(noise), torch.no_grad():
        return pd.denoising_step(x, t, model=model(args, i), logvar=d.logvar,
                                 sqrt_recip_alphas_cumprod=d.sqrt_recip_alphas_cumprod,
                                 sqrt_recipm1_alphas_cumprod=d.sqrt_recipm1_alphas_cumprod,
                                 posterior_mean_coef1=d.posterior_mean_coef1,
                                 posterior_mean_coef2=d.posterior_mean_coef2, return_pred_xstart=True)


def p_sample_step(args, i):
    d = sampler(args, i)
    sample, pred_xstart = step(d, args, i, f32(i["noise"]))
    return {"sample": out(sample), "pred_xstart": out(pred_xstart)}


def p_mean_variance(args, i):
    d = sampler(args, i)
    t = np.asarray(i["t"], dtype=np.int64)
    if args.get("model_var_type") == "FIXED_SMALL" and (t == 0).any() and not opts.known_differences:
        raise Unsupported("pytorch_diffusion's fixedsmall log-variance at t = 0 is log(max(posterior variance, 1e-20)) = -46.05 "
                          "(Ho's v1 convention), the golden data's (improved-diffusion) is log of the posterior variance at t = 1; "
                          "see docs/conformance.md, or pass --known-differences to the adapter to compare anyway")
    x = i["x"]
    mean, pred_xstart = step(d, args, i, torch.zeros(x.shape, dtype=torch.float32))
    logvar = torch.from_numpy(d.logvar).float()[torch.from_numpy(t)].view(-1, *([1] * (x.ndim - 1))).expand(x.shape)
    return {"mean": out(mean), "variance": out(torch.exp(logvar)), "log_variance": out(logvar), "pred_xstart": out(pred_xstart)}


HANDLERS = {f.__name__: f for f in [schedule, timestep_embedding, p_sample_step, p_mean_variance]}


def commit_of(repo):
    with contextlib.suppress(OSError, subprocess.CalledProcessError):
        return subprocess.run(["git", "-C", repo, "rev-parse", "HEAD"], capture_output=True, check=True, text=True).stdout.strip()[:12]
    return "unknown commit"


if __name__ == "__main__":
    serve(f"pesser/pytorch_diffusion ({commit_of(opts.repo)}, torch {torch.__version__}, float32)", HANDLERS,
          notes="schedules (Ho), timestep embedding (Ho), denoising_step as p_sample_step and p_mean_variance (ε, fixed variances, clipped x̂₀)"
          + ("; --known-differences: t = 0 fixedsmall log-variance compared too" if opts.known_differences else ""))
