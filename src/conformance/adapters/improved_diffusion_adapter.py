#!/usr/bin/env python3
"""Serve openai/improved-diffusion's `GaussianDiffusion` over the `ddpm-spec check --impl` protocol.

    npx ddpm-spec check --impl "/usr/bin/python3 src/conformance/adapters/improved_diffusion_adapter.py --repo PATH"

PATH is a checkout of https://github.com/openai/improved-diffusion (the golden data was produced at commit
1bc7bbbdc414d83d4abf2ad8cc1446dc36c4e4d5). Needs torch (Debian's python3-torch 1.13 works) and numpy.

Every operation calls the repository's own code, in float32 as it runs by default: `get_named_beta_schedule`,
`betas_for_alpha_bar`, `GaussianDiffusion` (buffers, q_*, _predict_*, p_mean_variance, p_sample, ddim_sample,
ddim_reverse_sample, training_losses with autograd gradients, calc_bpd_loop), `losses.py`, `nn.timestep_embedding`
and `respace` (space_timesteps, SpacedDiffusion). Noise the code draws itself (`th.randn_like` in p_sample,
ddim_sample and calc_bpd_loop) is replaced, for the duration of one call, by the noise in the request. The only
code written here is the glue and the TinyModel (a fixed linear map standing in for the network, as in the
golden data). Nothing from the repository is copied.
"""

import argparse
import contextlib
import math
import os
import sys

import numpy as np
import torch as th

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ddpm_protocol import Unsupported, serve  # noqa: E402

parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
parser.add_argument("--repo", required=True, help="path of an openai/improved-diffusion checkout")
opts = parser.parse_args()
if not os.path.isfile(os.path.join(opts.repo, "improved_diffusion", "gaussian_diffusion.py")):
    sys.exit(f"--repo {opts.repo}: no improved_diffusion/gaussian_diffusion.py there; pass a checkout of openai/improved-diffusion")
sys.path.insert(0, os.path.abspath(opts.repo))

from improved_diffusion import gaussian_diffusion as gd  # noqa: E402
from improved_diffusion import losses, nn, respace  # noqa: E402

th.set_num_threads(1)


def f32(a):
    return th.from_numpy(np.ascontiguousarray(a, dtype=np.float32))


def i64(a):
    return th.from_numpy(np.ascontiguousarray(a, dtype=np.int64))


def out(x):
    return x.detach().cpu().numpy()


def diffusion(args, inputs, loss_type="MSE"):
    """A GaussianDiffusion for the request's betas and types (respaced runs: the map is applied to the model)."""
    return gd.GaussianDiffusion(
        betas=np.asarray(inputs["betas"], dtype=np.float64),
        model_mean_type=gd.ModelMeanType[args.get("model_mean_type", "EPSILON")],
        model_var_type=gd.ModelVarType[args.get("model_var_type", "FIXED_SMALL")],
        loss_type=gd.LossType[loss_type],
        rescale_timesteps=bool(args.get("rescale_timesteps", False)) and args.get("timestep_map") is None,
    )


def model(args, inputs, params=None):
    """The model the request names: the TinyModel or a fixed output; respaced runs wrap it like SpacedDiffusion."""
    if args["model"] == "output":
        fixed = f32(inputs["model.output"])

        def m(x, t):
            return fixed
    else:
        W, bias, tw = params if params is not None else (f32(inputs["model.W"]), f32(inputs["model.bias"]), f32(inputs["model.tw"]))

        def m(x, t):
            extra = (1,) * (x.dim() - 2)
            y = th.einsum("oi,bi...->bo...", W, x)
            return y + bias.view(1, -1, *extra) + tw.view(1, -1, *extra) * t.float().view(-1, 1, *extra) / 1000

    if args.get("timestep_map") is not None:
        original = args.get("original_num_timesteps")
        if args.get("rescale_timesteps") and original is None:
            raise ValueError("rescale_timesteps with a timestep_map needs original_num_timesteps (the T the map indexes into)")
        original = int(original or len(args["timestep_map"]))
        return respace._WrappedModel(m, list(args["timestep_map"]), bool(args.get("rescale_timesteps")), original)
    return m


@contextlib.contextmanager
def given_noise(draws):
    """Make th.randn_like return the given draws, in order, for the duration of the block."""
    queue = list(draws)
    real = th.randn_like

    def fake(x, *a, **k):
        if not queue:
            raise RuntimeError("the reference code drew more noise than the request supplied")
        d = queue.pop(0)
        assert tuple(d.shape) == tuple(x.shape), f"noise shape {tuple(d.shape)} != {tuple(x.shape)}"
        return d.to(dtype=x.dtype)

    th.randn_like = fake
    try:
        yield
    finally:
        th.randn_like = real


def schedule(args, inputs):
    name, T = args["name"], int(args["T"])
    if args["family"] == "ho" and name == "linear":
        # Glue, not improved's code: Ho's linear schedule with explicit endpoints is np.linspace(start, end, T),
        # which is how the golden data built the betas it handed to GaussianDiffusion for its Ho-schedule runs.
        return {"betas": np.linspace(args["beta_start"], args["beta_end"], T, dtype=np.float64)}
    if args["family"] != "improved":
        raise Unsupported("improved-diffusion has only its named schedules (linear scaled by 1000/T, cosine); of Ho's, this adapter makes 'linear' only")
    if name == "cosine" and args.get("max_beta") is not None:
        # improved's own betas_for_alpha_bar with the cosine ᾱ of get_named_beta_schedule and another cap
        alpha_bar = lambda s: math.cos((s + 0.008) / 1.008 * math.pi / 2) ** 2  # noqa: E731
        return {"betas": gd.betas_for_alpha_bar(T, alpha_bar, max_beta=args["max_beta"])}
    return {"betas": gd.get_named_beta_schedule(name, T)}


BUFFERS = ["betas", "alphas_cumprod", "alphas_cumprod_prev", "alphas_cumprod_next", "sqrt_alphas_cumprod",
           "sqrt_one_minus_alphas_cumprod", "log_one_minus_alphas_cumprod", "sqrt_recip_alphas_cumprod",
           "sqrt_recipm1_alphas_cumprod", "posterior_variance", "posterior_log_variance_clipped",
           "posterior_mean_coef1", "posterior_mean_coef2"]


def buffers(args, inputs):
    d = diffusion({}, inputs)
    return {k: getattr(d, k) for k in BUFFERS}


def q_sample(args, i):
    return {"x_t": out(diffusion(args, i).q_sample(f32(i["x_start"]), i64(i["t"]), noise=f32(i["noise"])))}


def q_mean_variance(args, i):
    x0 = f32(i["x_start"])
    m, v, lv = diffusion(args, i).q_mean_variance(x0, i64(i["t"]))
    return {"mean": out(m), "variance": out(v.expand_as(x0)), "log_variance": out(lv.expand_as(x0))}


def q_posterior_mean_variance(args, i):
    xt = f32(i["x_t"])
    m, v, lv = diffusion(args, i).q_posterior_mean_variance(f32(i["x_start"]), xt, i64(i["t"]))
    return {"mean": out(m), "variance": out(v.expand_as(xt)), "log_variance_clipped": out(lv.expand_as(xt))}


def predict_xstart_from_eps(args, i):
    return {"pred_xstart": out(diffusion(args, i)._predict_xstart_from_eps(f32(i["x_t"]), i64(i["t"]), f32(i["eps"])))}


def predict_xstart_from_xprev(args, i):
    return {"pred_xstart": out(diffusion(args, i)._predict_xstart_from_xprev(f32(i["x_t"]), i64(i["t"]), f32(i["xprev"])))}


def predict_eps_from_xstart(args, i):
    return {"eps": out(diffusion(args, i)._predict_eps_from_xstart(f32(i["x_t"]), i64(i["t"]), f32(i["pred_xstart"])))}


def p_mean_variance(args, i):
    x = f32(i["x"])
    r = diffusion(args, i).p_mean_variance(model(args, i), x, i64(i["t"]), clip_denoised=args["clip_denoised"])
    return {k: out(r[k].expand_as(x)) for k in ("mean", "variance", "log_variance", "pred_xstart")}


def normal_kl(args, i):
    return {"kl": out(losses.normal_kl(f32(i["mean1"]), f32(i["logvar1"]), f32(i["mean2"]), f32(i["logvar2"])))}


def approx_standard_normal_cdf(args, i):
    return {"cdf": out(losses.approx_standard_normal_cdf(f32(i["x"])))}


def discretized_gaussian_log_likelihood(args, i):
    lp = losses.discretized_gaussian_log_likelihood(f32(i["x"]), means=f32(i["means"]), log_scales=f32(i["log_scales"]))
    return {"log_probs": out(lp)}


def training_losses(args, i):
    W, bias, tw = (f32(i[k]).requires_grad_(True) for k in ("model.W", "model.bias", "model.tw"))
    d = diffusion(args, i, loss_type=args["loss_type"])
    terms = d.training_losses(model(args, i, (W, bias, tw)), f32(i["x_start"]), i64(i["t"]), noise=f32(i["noise"]))
    result = {f"terms.{k}": out(v) for k, v in terms.items()}
    if args.get("grads"):
        for k, v in terms.items():
            gs = th.autograd.grad(v.sum(), [W, bias, tw], retain_graph=True, allow_unused=True)
            for name, p, g in zip(("W", "bias", "tw"), (W, bias, tw), gs):
                result[f"grads.{k}.{name}"] = out(g) if g is not None else np.zeros(tuple(p.shape), dtype=np.float32)
    return result


def calc_bpd_loop(args, i):
    noise = f32(i["noise_per_step_in_loop_order"])
    with given_noise(list(noise)):
        r = diffusion(args, i).calc_bpd_loop(model(args, i), f32(i["x_start"]), clip_denoised=args["clip_denoised"])
    # calc_bpd_loop stacks one column per loop step (t = T-1 first); the operation answers column t for timestep t.
    return {k: out(v.flip(1) if v.dim() == 2 else v) for k, v in r.items()}


def timestep_embedding(args, i):
    if args["flavor"] != "improved":
        raise Unsupported("improved-diffusion has only its own embedding ([cos | sin], frequencies divided by half)")
    t = i["t"]
    tt = i64(t) if t.dtype.kind in "iu" else f32(t)
    return {"embedding": out(nn.timestep_embedding(tt, int(args["dim"])))}


def p_sample_step(args, i):
    with given_noise([f32(i["noise"])]):
        r = diffusion(args, i).p_sample(model(args, i), f32(i["x"]), i64(i["t"]), clip_denoised=args["clip_denoised"])
    return {"sample": out(r["sample"]), "pred_xstart": out(r["pred_xstart"])}


def ddim_step(args, i):
    with given_noise([f32(i["noise"])]):
        r = diffusion(args, i).ddim_sample(model(args, i), f32(i["x"]), i64(i["t"]), clip_denoised=args["clip_denoised"], eta=float(args["eta"]))
    return {"sample": out(r["sample"]), "pred_xstart": out(r["pred_xstart"])}


def ddim_reverse_step(args, i):
    r = diffusion(args, i).ddim_reverse_sample(model(args, i), f32(i["x"]), i64(i["t"]), clip_denoised=args["clip_denoised"])
    return {"sample": out(r["sample"]), "pred_xstart": out(r["pred_xstart"])}


def space_timesteps(args, i):
    return {"timesteps": np.array(sorted(respace.space_timesteps(int(args["num_timesteps"]), args["section_counts"])), dtype=np.int64)}


def respace_(args, i):
    d = respace.SpacedDiffusion(
        use_timesteps=[int(k) for k in args["use_timesteps"]],
        betas=np.asarray(i["betas"], dtype=np.float64),
        model_mean_type=gd.ModelMeanType.EPSILON,
        model_var_type=gd.ModelVarType.FIXED_SMALL,
        loss_type=gd.LossType.MSE,
    )
    return {"betas": d.betas, "timestep_map": np.array(d.timestep_map, dtype=np.int64)}


HANDLERS = {f.__name__: f for f in [
    schedule, buffers, q_sample, q_mean_variance, q_posterior_mean_variance, predict_xstart_from_eps,
    predict_xstart_from_xprev, predict_eps_from_xstart, p_mean_variance, normal_kl, approx_standard_normal_cdf,
    discretized_gaussian_log_likelihood, training_losses, calc_bpd_loop, timestep_embedding, p_sample_step,
    ddim_step, ddim_reverse_step, space_timesteps,
]}
HANDLERS["respace"] = respace_


def commit_of(repo):
    """The checked-out commit (first 12 hex digits), or "unknown commit" when `repo` is not a git work tree."""
    import subprocess
    with contextlib.suppress(OSError, subprocess.CalledProcessError):
        return subprocess.run(["git", "-C", repo, "rev-parse", "HEAD"], capture_output=True, check=True, text=True).stdout.strip()[:12]
    return "unknown commit"


if __name__ == "__main__":
    serve(f"openai/improved-diffusion GaussianDiffusion ({commit_of(opts.repo)}, torch {th.__version__}, float32)", HANDLERS,
          notes=f"adapter src/conformance/adapters/improved_diffusion_adapter.py on {os.path.abspath(opts.repo)}")
