#!/usr/bin/env python3
"""A DDPM in numpy with two deliberate, realistic mistakes, to show what `ddpm-spec check` reports.

Arithmetic: float64, except the discretised likelihood, which is computed in float32 as the reference code computes
it (its tails are float32 artefacts that a float64 version cannot reproduce; see golden/upstream/README.md).

    npx ddpm-spec check --impl "/usr/bin/python3 src/conformance/examples/python/wrong_ddpm.py"

The two mistakes (both are conventions found in public code, which is what makes them easy to make):

1. **Unclipped log-variance at t = 0.** The posterior variance β̃_0 is 0, so its log is −∞. improved-diffusion
   (and Ho's v2 code) replace the t = 0 entry of `posterior_log_variance_clipped` by log β̃_1; this file uses
   log(max(β̃_t, 1e−20)) = −46.05 instead (Ho's v1 code and pesser's `fixedsmall`). Everything that reads that
   entry changes: the buffer itself, the posterior's log-variance at t = 0, p(x_{t−1}|x_t)'s log-variance for
   FIXED_SMALL and LEARNED_RANGE at t = 0, and the t = 0 decoder term of the variational bound (bits/dim).
2. **DDIM with the model's ε.** improved-diffusion re-derives ε from the *clipped* x̂₀ before the DDIM update;
   this file uses the model's own ε (for ε-prediction), so DDIM steps differ wherever clipping was active.

`--fixed` turns both off: the same code then passes every check, which shows that the report blames exactly the
two mistakes. `--mutant rescaled-mse-weight` adds a third (RESCALED_MSE without its T/1000 weight on the vb term),
which the loss terms alone catch: this example computes no gradients, and its terms are still checked. Apart from them this is a straightforward implementation of the reference code's maths and can
serve as a template (see docs/conformance.md). Needs numpy only.
"""

import math
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "adapters"))
from ddpm_protocol import Unsupported, serve  # noqa: E402

FIXED = "--fixed" in sys.argv[1:]
MUTANT = sys.argv[sys.argv.index("--mutant") + 1] if "--mutant" in sys.argv[1:] else None
# The reference code compares x with ±0.999 in float32, where 0.999 rounds to 0.99900001287...
EDGE = float(np.float32(0.999))


# ----------------------------------------------------------------------------------------------------------
# schedules and buffers
# ----------------------------------------------------------------------------------------------------------

def schedule(args, inputs):
    family, name, T = args["family"], args["name"], int(args["T"])
    if family == "ho":
        b0, b1 = args.get("beta_start"), args.get("beta_end")
        if name == "quad":
            betas = np.linspace(b0 ** 0.5, b1 ** 0.5, T) ** 2
        elif name == "linear":
            betas = np.linspace(b0, b1, T)
        elif name in ("warmup10", "warmup50"):
            betas = b1 * np.ones(T)
            n = int(T * (0.1 if name == "warmup10" else 0.5))
            betas[:n] = np.linspace(b0, b1, n)
        elif name == "const":
            betas = b1 * np.ones(T)
        elif name == "jsd":
            betas = 1.0 / np.linspace(T, 1, T)
        else:
            raise ValueError(f"unknown Ho schedule {name}")
    elif name == "linear":
        scale = 1000 / T
        betas = np.linspace(scale * 1e-4, scale * 0.02, T)
    elif name == "cosine":
        abar = lambda s: math.cos((s + 0.008) / 1.008 * math.pi / 2) ** 2  # noqa: E731
        cap = args.get("max_beta", 0.999)
        betas = np.array([min(1 - abar((i + 1) / T) / abar(i / T), cap) for i in range(T)])
    else:
        raise ValueError(f"unknown improved schedule {name}")
    return {"betas": betas}


def make_buffers(betas):
    if not (np.all(betas > 0) and np.all(betas <= 1)):
        raise ValueError("betas must lie in (0, 1]")
    alphas = 1.0 - betas
    ac = np.cumprod(alphas)
    ac_prev = np.append(1.0, ac[:-1])
    post_var = betas * (1.0 - ac_prev) / (1.0 - ac)
    if FIXED:
        post_logvar = np.log(np.append(post_var[1], post_var[1:]))
    else:
        post_logvar = np.log(np.maximum(post_var, 1e-20))  # deliberate mistake 1
    return {
        "betas": betas,
        "alphas_cumprod": ac,
        "alphas_cumprod_prev": ac_prev,
        "alphas_cumprod_next": np.append(ac[1:], 0.0),
        "sqrt_alphas_cumprod": np.sqrt(ac),
        "sqrt_one_minus_alphas_cumprod": np.sqrt(1.0 - ac),
        "log_one_minus_alphas_cumprod": np.log(1.0 - ac),
        "sqrt_recip_alphas_cumprod": np.sqrt(1.0 / ac),
        "sqrt_recipm1_alphas_cumprod": np.sqrt(1.0 / ac - 1),
        "posterior_variance": post_var,
        "posterior_log_variance_clipped": post_logvar,
        "posterior_mean_coef1": betas * np.sqrt(ac_prev) / (1.0 - ac),
        "posterior_mean_coef2": (1.0 - ac_prev) * np.sqrt(alphas) / (1.0 - ac),
    }


def buffers(args, inputs):
    return make_buffers(inputs["betas"])


def at(buf, t, like):
    """buf[t] for each example, shaped [B, 1, 1, ...] to broadcast against `like`."""
    return buf[t.astype(np.int64)].reshape((-1,) + (1,) * (like.ndim - 1))


def mean_flat(x):
    return x.reshape(x.shape[0], -1).mean(axis=1)


# ----------------------------------------------------------------------------------------------------------
# forward process and posterior
# ----------------------------------------------------------------------------------------------------------

def q_mean_variance_(B, x0, t):
    mean = at(B["sqrt_alphas_cumprod"], t, x0) * x0
    var = np.broadcast_to(at(1.0 - B["alphas_cumprod"], t, x0), x0.shape)
    logvar = np.broadcast_to(at(B["log_one_minus_alphas_cumprod"], t, x0), x0.shape)
    return mean, var, logvar


def q_sample_(B, x0, t, noise):
    return at(B["sqrt_alphas_cumprod"], t, x0) * x0 + at(B["sqrt_one_minus_alphas_cumprod"], t, x0) * noise


def q_posterior_(B, x0, xt, t):
    mean = at(B["posterior_mean_coef1"], t, xt) * x0 + at(B["posterior_mean_coef2"], t, xt) * xt
    var = np.broadcast_to(at(B["posterior_variance"], t, xt), xt.shape)
    logvar = np.broadcast_to(at(B["posterior_log_variance_clipped"], t, xt), xt.shape)
    return mean, var, logvar


def xstart_from_eps(B, xt, t, eps):
    return at(B["sqrt_recip_alphas_cumprod"], t, xt) * xt - at(B["sqrt_recipm1_alphas_cumprod"], t, xt) * eps


def xstart_from_xprev(B, xt, t, xprev):
    c1, c2 = at(B["posterior_mean_coef1"], t, xt), at(B["posterior_mean_coef2"], t, xt)
    return xprev / c1 - (c2 / c1) * xt


def eps_from_xstart(B, xt, t, x0):
    return (at(B["sqrt_recip_alphas_cumprod"], t, xt) * xt - x0) / at(B["sqrt_recipm1_alphas_cumprod"], t, xt)


def q_sample(args, i):
    return {"x_t": q_sample_(make_buffers(i["betas"]), i["x_start"], i["t"], i["noise"])}


def q_mean_variance(args, i):
    m, v, lv = q_mean_variance_(make_buffers(i["betas"]), i["x_start"], i["t"])
    return {"mean": m, "variance": v, "log_variance": lv}


def q_posterior_mean_variance(args, i):
    m, v, lv = q_posterior_(make_buffers(i["betas"]), i["x_start"], i["x_t"], i["t"])
    return {"mean": m, "variance": v, "log_variance_clipped": lv}


def predict_xstart_from_eps(args, i):
    return {"pred_xstart": xstart_from_eps(make_buffers(i["betas"]), i["x_t"], i["t"], i["eps"])}


def predict_xstart_from_xprev(args, i):
    return {"pred_xstart": xstart_from_xprev(make_buffers(i["betas"]), i["x_t"], i["t"], i["xprev"])}


def predict_eps_from_xstart(args, i):
    return {"eps": eps_from_xstart(make_buffers(i["betas"]), i["x_t"], i["t"], i["pred_xstart"])}


# ----------------------------------------------------------------------------------------------------------
# the model and p(x_{t-1} | x_t)
# ----------------------------------------------------------------------------------------------------------

def model_fn(args, inputs, T, params=None):
    """The model as a function (x, t) -> output; `params` overrides the TinyModel's (W, bias, tw)."""
    if args["model"] == "output":
        out = inputs["model.output"]
        return lambda x, t: out
    W, bias, tw = params if params is not None else (inputs["model.W"], inputs["model.bias"], inputs["model.tw"])
    tmap = args.get("timestep_map")

    def f(x, t):
        tm = np.asarray(tmap, dtype=np.float64)[t.astype(np.int64)] if tmap is not None else t.astype(np.float64)
        if args.get("rescale_timesteps"):
            if tmap is not None and "original_num_timesteps" not in args:
                raise ValueError("rescale_timesteps with a timestep_map needs original_num_timesteps")
            tm = tm * (1000.0 / (args["original_num_timesteps"] if tmap is not None else T))
        extra = (1,) * (x.ndim - 2)
        out = np.einsum("oi,bi...->bo...", W, x)
        return out + bias.reshape((1, -1) + extra) + tw.reshape((1, -1) + extra) * tm.reshape((-1, 1) + extra) / 1000.0

    return f


def p_mean_variance_(args, B, model, x, t, clip):
    out = model(x, t)
    vt = args.get("model_var_type", "FIXED_SMALL")
    mt = args.get("model_mean_type", "EPSILON")
    C = x.shape[1]
    if vt in ("LEARNED", "LEARNED_RANGE"):
        out, v = out[:, :C], out[:, C:]
        if vt == "LEARNED":
            logvar = v
        else:
            lo = at(B["posterior_log_variance_clipped"], t, x)
            hi = at(np.log(B["betas"]), t, x)
            frac = (v + 1) / 2
            logvar = frac * hi + (1 - frac) * lo
        var = np.exp(logvar)
    elif vt == "FIXED_LARGE":
        large = np.append(B["posterior_variance"][1], B["betas"][1:])
        var = np.broadcast_to(at(large, t, x), x.shape)
        logvar = np.broadcast_to(at(np.log(large), t, x), x.shape)
    else:
        var = np.broadcast_to(at(B["posterior_variance"], t, x), x.shape)
        logvar = np.broadcast_to(at(B["posterior_log_variance_clipped"], t, x), x.shape)
    clipx = (lambda a: np.clip(a, -1, 1)) if clip else (lambda a: a)
    if mt == "PREVIOUS_X":
        pred_xstart = clipx(xstart_from_xprev(B, x, t, out))
        mean = out
    else:
        pred_xstart = clipx(out if mt == "START_X" else xstart_from_eps(B, x, t, out))
        mean = q_posterior_(B, pred_xstart, x, t)[0]
    return {"mean": mean, "variance": var, "log_variance": logvar, "pred_xstart": pred_xstart, "model_output": out}


def p_mean_variance(args, i):
    B = make_buffers(i["betas"])
    r = p_mean_variance_(args, B, model_fn(args, i, len(i["betas"])), i["x"], i["t"], args["clip_denoised"])
    del r["model_output"]
    return r


# ----------------------------------------------------------------------------------------------------------
# likelihood terms
# ----------------------------------------------------------------------------------------------------------

def normal_kl_(m1, lv1, m2, lv2):
    return 0.5 * (-1.0 + lv2 - lv1 + np.exp(lv1 - lv2) + (m1 - m2) ** 2 * np.exp(-lv2))


def cdf_(x):
    """The reference code's tanh approximation of the standard normal CDF (in the dtype of x)."""
    return 0.5 * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))


def discretized_ll_(x, means, log_scales):
    """log P(x's bin) in nats, computed in float32 like the reference: in the tails the bin probability is a float32
    difference of nearly equal CDFs, and a float64 version differs there by up to 11 nats (golden README)."""
    f = np.float32
    x, means, log_scales = (np.asarray(a, dtype=f) for a in (x, means, log_scales))
    c = x - means
    inv = np.exp(-log_scales)
    cdf_plus = cdf_(inv * (c + f(1.0 / 255.0))).astype(f)
    cdf_min = cdf_(inv * (c - f(1.0 / 255.0))).astype(f)
    with np.errstate(divide="ignore"):
        log_cdf_plus = np.log(np.maximum(cdf_plus, f(1e-12)))
        log_one_minus_cdf_min = np.log(np.maximum(f(1.0) - cdf_min, f(1e-12)))
        log_delta = np.log(np.maximum(cdf_plus - cdf_min, f(1e-12)))
    return np.where(x < -EDGE, log_cdf_plus, np.where(x > EDGE, log_one_minus_cdf_min, log_delta)).astype(np.float64)


def normal_kl(args, i):
    return {"kl": normal_kl_(i["mean1"], i["logvar1"], i["mean2"], i["logvar2"])}


def approx_standard_normal_cdf(args, i):
    return {"cdf": cdf_(i["x"])}


def discretized_gaussian_log_likelihood(args, i):
    return {"log_probs": discretized_ll_(i["x"], i["means"], i["log_scales"])}


def vb_terms_bits(args, B, model, x0, xt, t, clip):
    """KL(q(x_{t-1}|x_t,x_0) || p(x_{t-1}|x_t)) in bits per dim, or the decoder NLL at t = 0."""
    true_mean, _, true_logvar = q_posterior_(B, x0, xt, t)
    out = p_mean_variance_(args, B, model, xt, t, clip)
    kl = mean_flat(normal_kl_(true_mean, true_logvar, out["mean"], out["log_variance"])) / math.log(2.0)
    nll = -mean_flat(discretized_ll_(x0, out["mean"], 0.5 * out["log_variance"])) / math.log(2.0)
    return np.where(t == 0, nll, kl), out


# ----------------------------------------------------------------------------------------------------------
# training losses and the bits/dim loop
# ----------------------------------------------------------------------------------------------------------

def loss_terms(args, i, params):
    B = make_buffers(i["betas"])
    T = len(i["betas"])
    model = model_fn(args, i, T, params)
    x0, t, noise = i["x_start"], i["t"], i["noise"]
    xt = q_sample_(B, x0, t, noise)
    lt = args["loss_type"]
    vt = args.get("model_var_type", "FIXED_SMALL")
    terms = {}
    if lt in ("KL", "RESCALED_KL"):
        terms["loss"] = vb_terms_bits(args, B, model, x0, xt, t, False)[0] * (T if lt == "RESCALED_KL" else 1)
        return terms
    out = model(xt, t)
    C = x0.shape[1]
    if vt in ("LEARNED", "LEARNED_RANGE"):
        # The variance part is learned through the bound only (the reference detaches the mean part there).
        fixed = out
        weight = T / 1000.0 if lt == "RESCALED_MSE" and MUTANT != "rescaled-mse-weight" else 1
        terms["vb"] = vb_terms_bits(args, B, lambda *_: fixed, x0, xt, t, False)[0] * weight
        out = out[:, :C]
    mt = args.get("model_mean_type", "EPSILON")
    target = {"PREVIOUS_X": q_posterior_(B, x0, xt, t)[0], "START_X": x0, "EPSILON": noise}[mt]
    terms["mse"] = mean_flat((target - out) ** 2)
    terms["loss"] = terms["mse"] + terms["vb"] if "vb" in terms else terms["mse"]
    return terms


def training_losses(args, i):
    if args["model"] != "tiny":
        raise Unsupported("training_losses needs the TinyModel")
    if args.get("grads"):
        # numpy has no automatic differentiation, and central differences in float64 do not reproduce the float32
        # reference where its discretised likelihood saturates (see docs/conformance.md); the torch adapter
        # (src/conformance/adapters/improved_diffusion_adapter.py) shows how to answer gradients with autograd.
        raise Unsupported("this numpy example computes no gradients")
    params = [i["model.W"], i["model.bias"], i["model.tw"]]
    return {f"terms.{k}": v for k, v in loss_terms(args, i, params).items()}


def calc_bpd_loop(args, i):
    B = make_buffers(i["betas"])
    T = len(i["betas"])
    model = model_fn(args, i, T)
    x0 = i["x_start"]
    n = x0.shape[0]
    vb, xmse, mse = np.zeros((n, T)), np.zeros((n, T)), np.zeros((n, T))
    for step, t in enumerate(range(T - 1, -1, -1)):
        tb = np.full(n, t)
        noise = i["noise_per_step_in_loop_order"][step]
        xt = q_sample_(B, x0, tb, noise)
        v, out = vb_terms_bits(args, B, model, x0, xt, tb, args["clip_denoised"])
        vb[:, t] = v
        xmse[:, t] = mean_flat((out["pred_xstart"] - x0) ** 2)
        mse[:, t] = mean_flat((eps_from_xstart(B, xt, tb, out["pred_xstart"]) - noise) ** 2)
    m, _, lv = q_mean_variance_(B, x0, np.full(n, T - 1))
    prior = mean_flat(normal_kl_(m, lv, 0.0, 0.0)) / math.log(2.0)
    return {"total_bpd": vb.sum(axis=1) + prior, "prior_bpd": prior, "vb": vb, "xstart_mse": xmse, "mse": mse}


# ----------------------------------------------------------------------------------------------------------
# timestep embedding, sampling steps, respacing
# ----------------------------------------------------------------------------------------------------------

def timestep_embedding(args, i):
    t = i["t"].astype(np.float64)
    dim, half = int(args["dim"]), int(args["dim"]) // 2
    if args["flavor"] == "ho":
        if half == 1:
            raise ZeroDivisionError("Ho's embedding divides by half - 1 = 0")
        freqs = np.exp(np.arange(half) * -(math.log(10000) / (half - 1))) if half > 0 else np.zeros(0)
        emb = np.concatenate([np.sin(t[:, None] * freqs), np.cos(t[:, None] * freqs)], axis=1)
        if dim % 2 == 1:
            emb = np.pad(emb, ((0, 0), (0, 1)))
    else:
        freqs = np.exp(-math.log(10000) * np.arange(half) / half) if half > 0 else np.zeros(0)
        emb = np.concatenate([np.cos(t[:, None] * freqs), np.sin(t[:, None] * freqs)], axis=1)
        if dim % 2 == 1:
            emb = np.concatenate([emb, np.zeros_like(emb[:, :1])], axis=1)  # dim = 1 stays [N, 0], as improved's
    return {"embedding": emb}


def nonzero(t, like):
    return (t != 0).astype(np.float64).reshape((-1,) + (1,) * (like.ndim - 1))


def p_sample_step(args, i):
    B = make_buffers(i["betas"])
    x, t = i["x"], i["t"]
    out = p_mean_variance_(args, B, model_fn(args, i, len(i["betas"])), x, t, args["clip_denoised"])
    sample = out["mean"] + nonzero(t, x) * np.exp(0.5 * out["log_variance"]) * i["noise"]
    return {"sample": sample, "pred_xstart": out["pred_xstart"]}


def ddim_step(args, i):
    B = make_buffers(i["betas"])
    x, t = i["x"], i["t"]
    out = p_mean_variance_(args, B, model_fn(args, i, len(i["betas"])), x, t, args["clip_denoised"])
    if FIXED or args.get("model_mean_type", "EPSILON") != "EPSILON":
        eps = eps_from_xstart(B, x, t, out["pred_xstart"])
    else:
        eps = out["model_output"]  # deliberate mistake 2: the model's ε, not the one implied by the clipped x̂₀
    ab, ab_prev = at(B["alphas_cumprod"], t, x), at(B["alphas_cumprod_prev"], t, x)
    sigma = args["eta"] * np.sqrt((1 - ab_prev) / (1 - ab)) * np.sqrt(1 - ab / ab_prev)
    mean = out["pred_xstart"] * np.sqrt(ab_prev) + np.sqrt(1 - ab_prev - sigma ** 2) * eps
    return {"sample": mean + nonzero(t, x) * sigma * i["noise"], "pred_xstart": out["pred_xstart"]}


def ddim_reverse_step(args, i):
    B = make_buffers(i["betas"])
    x, t = i["x"], i["t"]
    out = p_mean_variance_(args, B, model_fn(args, i, len(i["betas"])), x, t, args["clip_denoised"])
    eps = eps_from_xstart(B, x, t, out["pred_xstart"])
    ab_next = at(B["alphas_cumprod_next"], t, x)
    return {"sample": out["pred_xstart"] * np.sqrt(ab_next) + np.sqrt(1 - ab_next) * eps, "pred_xstart": out["pred_xstart"]}


def space_timesteps(args, i):
    n, counts = int(args["num_timesteps"]), args["section_counts"]
    if isinstance(counts, str):
        if counts.startswith("ddim"):
            want = int(counts[len("ddim"):])
            for stride in range(1, n):
                if len(range(0, n, stride)) == want:
                    return {"timesteps": np.arange(0, n, stride)}
            raise ValueError(f"cannot create exactly {want} steps with an integer stride")
        counts = [int(c) for c in counts.split(",")]
    size, extra = divmod(n, len(counts))
    kept, start = set(), 0
    for k, count in enumerate(counts):
        section = size + (1 if k < extra else 0)
        if section < count:
            raise ValueError(f"cannot divide section of {section} steps into {count}")
        stride = 1 if count <= 1 else (section - 1) / (count - 1)
        position = 0.0
        for _ in range(count):
            kept.add(start + round(position))
            position += stride
        start += section
    return {"timesteps": np.array(sorted(kept), dtype=np.int64)}


def respace(args, i):
    ac = np.cumprod(1.0 - i["betas"])
    keep = set(int(k) for k in args["use_timesteps"])
    last, betas, tmap = 1.0, [], []
    for k, a in enumerate(ac):
        if k in keep:
            betas.append(1 - a / last)
            last = a
            tmap.append(k)
    return {"betas": np.array(betas), "timestep_map": np.array(tmap, dtype=np.int64)}


HANDLERS = {f.__name__: f for f in [
    schedule, buffers, q_sample, q_mean_variance, q_posterior_mean_variance, predict_xstart_from_eps,
    predict_xstart_from_xprev, predict_eps_from_xstart, p_mean_variance, normal_kl, approx_standard_normal_cdf,
    discretized_gaussian_log_likelihood, training_losses, calc_bpd_loop, timestep_embedding, p_sample_step,
    ddim_step, ddim_reverse_step, space_timesteps, respace,
]}

if __name__ == "__main__":
    serve(
        "wrong_ddpm.py (numpy, float64" + (", mistakes fixed)" if FIXED else ", two deliberate mistakes)"),
        HANDLERS,
        notes=None if FIXED else "deliberately wrong: log-variance at t = 0 not clipped (Ho v1 convention); DDIM uses the model's ε instead of re-deriving it from the clipped x̂₀",
    )
