"""Record golden data from diffusers' own DDPMScheduler and DDIMScheduler.

The package cannot be imported offline, so the two scheduler files of a pinned diffusers commit are copied,
unchanged, into a temporary package made of our stub (`diffusers_stub/`: config/output base classes and
`randn_tensor` only) and imported from there. Everything the schedulers compute comes from their own code.

Usage (Debian's interpreter, which has python3-torch):

    /usr/bin/python3 golden/generators/record_diffusers.py --git-dir DIFFUSERS_GIT_DIR \
        --commit 58eb52c0803ea9af3abec60841c2a093bdf1f951 --out golden/upstream

or `--src DIR` with a directory holding `scheduling_ddpm.py` and `scheduling_ddim.py`. Writes
`diffusers_*.json` and `diffusers_tests_noise.safetensors` into `--out` (temporary name, then rename) and prints
their SHA-256 for `manifest.json`.

Index convention: diffusers' timesteps are 0-based, `t_code ∈ {0, …, T−1}`, and `alphas_cumprod[t_code]` is the
paper's ᾱ_{t_code+1}. Every tensor is recorded as diffusers holds it (float32 unless marked).
"""
import argparse
import hashlib
import importlib
import json
import os
import platform
import shutil
import struct
import subprocess
import sys
import tempfile

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
FILES = ("scheduling_ddpm.py", "scheduling_ddim.py")
SEED = 20261204


# --------------------------------------------------------------------------------------------- loading
def load_schedulers(args):
    """Build a temporary package: our stub plus the verbatim scheduler files; import both schedulers."""
    tmp = tempfile.mkdtemp(prefix="diffusers-verbatim-")
    shutil.copytree(os.path.join(HERE, "diffusers_stub", "diffusers"), os.path.join(tmp, "diffusers"))
    sources = {}
    for name in FILES:
        if args.src:
            with open(os.path.join(args.src, name), "rb") as f:
                text = f.read()
        else:
            text = subprocess.check_output(
                ["git", "--git-dir", args.git_dir, "show", f"{args.commit}:src/diffusers/schedulers/{name}"]
            )
        sources[name] = hashlib.sha256(text).hexdigest()
        with open(os.path.join(tmp, "diffusers", "schedulers", name), "wb") as f:
            f.write(text)
    sys.path.insert(0, tmp)
    ddpm = importlib.import_module("diffusers.schedulers.scheduling_ddpm")
    ddim = importlib.import_module("diffusers.schedulers.scheduling_ddim")
    hook = importlib.import_module("diffusers.utils.torch_utils").HOOK
    return ddpm, ddim, hook, sources


# --------------------------------------------------------------------------------------------- encoding
def tensor(x, dtype=None):
    a = x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
    dt = dtype or str(a.dtype)
    flat = [float(v) if dt.startswith("float") else int(v) for v in a.reshape(-1).tolist()]
    for i, v in enumerate(flat):
        if isinstance(v, float) and not np.isfinite(v):
            flat[i] = "nan" if np.isnan(v) else ("inf" if v > 0 else "-inf")

    def nest(data, shape):
        if not shape:
            return data[0]
        step = len(data) // shape[0] if shape[0] else 0
        return [nest(data[i * step : (i + 1) * step], shape[1:]) for i in range(shape[0])]

    return {"dtype": dt, "shape": list(a.shape), "data": nest(flat, list(a.shape))}


def write_json(path, obj):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(obj, f, separators=(",", ":"), allow_nan=False)
    os.replace(tmp, path)


def write_safetensors(path, tensors, metadata):
    header, offset, blobs = {"__metadata__": metadata}, 0, []
    for name, a in tensors.items():
        b = np.ascontiguousarray(a, dtype="<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(a.shape), "data_offsets": [offset, offset + len(b)]}
        offset += len(b)
        blobs.append(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))
    os.replace(tmp, path)


# --------------------------------------------------------------------------------------------- stand-in model
MODEL_FORMULA = (
    "diffusers' dummy_model: out = sample * t / (t + 1) in float32 (t the integer timestep); for variance types "
    "learned / learned_range the second half of the channels is var = 0.5 * tanh(sample) + scale (scale 0.6 for "
    "learned, a positive variance; 0 for learned_range, v in [-0.5, 0.5])"
)


def model(sample, t, variance_type=None):
    tf = torch.tensor(int(t), dtype=sample.dtype)
    out = sample * tf / (tf + 1)
    if variance_type in ("learned", "learned_range"):
        extra = 0.5 * torch.tanh(sample) + (0.6 if variance_type == "learned" else 0.0)
        out = torch.cat([out, extra], dim=1)
    return out


# --------------------------------------------------------------------------------------------- records
def record_set_timesteps(ddpm, ddim):
    cases = []
    for T, ns in ((1000, [1, 2, 3, 5, 7, 10, 20, 50, 61, 100, 103, 250, 333, 500, 999, 1000]), (20, list(range(1, 21)))):
        for spacing, offsets in (("leading", [0, 1]), ("trailing", [0]), ("linspace", [0])):
            for off in offsets:
                for n in ns:
                    s = ddpm.DDPMScheduler(num_train_timesteps=T, timestep_spacing=spacing, steps_offset=off)
                    s.set_timesteps(n)
                    ts = s.timesteps.clone()
                    prev = [int(s.previous_timestep(int(t))) for t in ts]
                    d = ddim.DDIMScheduler(num_train_timesteps=T, timestep_spacing=spacing, steps_offset=off)
                    d.set_timesteps(n)
                    same = torch.equal(d.timesteps, ts)
                    ddim_prev = [int(t) - T // n for t in d.timesteps]
                    cases.append(
                        {
                            "T": T,
                            "timestep_spacing": spacing,
                            "steps_offset": off,
                            "n": n,
                            "timesteps": tensor(ts, "int64"),
                            "ddpm_previous_timestep": tensor(np.array(prev, dtype=np.int64), "int64"),
                            "ddim_equal_to_ddpm": bool(same),
                            "ddim_prev_timestep": tensor(np.array(ddim_prev, dtype=np.int64), "int64"),
                        }
                    )
    return {
        "meta": meta("DDPMScheduler.set_timesteps / previous_timestep; DDIMScheduler.set_timesteps and its step's "
                     "prev_timestep = t - T // n (computed here from that formula, which step uses inline)"),
        "cases": cases,
    }


VARIANCE_TYPES = ["fixed_small", "fixed_small_log", "fixed_large", "fixed_large_log", "learned", "learned_range"]


def record_variance(ddpm, ddim):
    g = torch.Generator().manual_seed(SEED)
    pv = torch.rand((5,), generator=g) * 2 - 1  # a predicted v in [-1, 1) (learned_range); log σ² for learned
    cases = []
    for sched, T, n in (("linear", 1000, None), ("linear", 1000, 10), ("squaredcos_cap_v2", 1000, None), ("linear", 10, None)):
        for vt in VARIANCE_TYPES:
            s = ddpm.DDPMScheduler(num_train_timesteps=T, beta_schedule=sched, variance_type=vt)
            if n:
                s.set_timesteps(n)
            ts = [int(t) for t in s.timesteps] if n else [0, 1, T // 2, T - 1]
            ts = sorted(set(ts[-2:] + ts[:1] + [ts[len(ts) // 2]]))
            for t in ts:
                v = s._get_variance(t, predicted_variance=pv.clone() if vt.startswith("learned") else None)
                cases.append(
                    {
                        "beta_schedule": sched,
                        "T": T,
                        "n": n,
                        "variance_type": vt,
                        "t": t,
                        "previous_timestep": int(s.previous_timestep(t)),
                        "predicted_variance": tensor(pv) if vt.startswith("learned") else None,
                        "variance": tensor(v if isinstance(v, torch.Tensor) else torch.tensor(v)),
                    }
                )
    ddim_cases = []
    for sta in (True, False):
        s = ddim.DDIMScheduler(set_alpha_to_one=sta, beta_start=0.01)
        for t, tp in ((0, 0), (0, -100), (420, 400), (980, 960), (487, 486), (999, 998), (99, -1)):
            ddim_cases.append({"set_alpha_to_one": sta, "beta_start": 0.01, "t": t, "prev_t": tp,
                               "variance": tensor(s._get_variance(t, tp))})
    return {"meta": meta("DDPMScheduler._get_variance(t, predicted_variance) (default beta_start/beta_end); "
                         "DDIMScheduler._get_variance(timestep, prev_timestep)"),
            "ddpm": cases, "ddim": ddim_cases}


def record_buffers(ddpm, ddim):
    cases = []
    for cls_name, mod, scheds in (("DDPMScheduler", ddpm, ["linear", "scaled_linear", "squaredcos_cap_v2", "sigmoid"]),
                                  ("DDIMScheduler", ddim, ["linear", "scaled_linear", "squaredcos_cap_v2"])):
        for sched in scheds:
            for zsnr in (False, True):
                kw = {"beta_schedule": sched, "rescale_betas_zero_snr": zsnr}
                if sched == "scaled_linear":
                    kw.update(beta_start=0.00085, beta_end=0.012)  # Stable Diffusion's values
                s = getattr(mod, cls_name)(**kw)
                c = {"scheduler": cls_name, "config": {**vars(s.config)}, "betas": tensor(s.betas),
                     "alphas": tensor(s.alphas), "alphas_cumprod": tensor(s.alphas_cumprod)}
                c["config"].pop("trained_betas", None)
                if cls_name == "DDIMScheduler":
                    c["final_alpha_cumprod"] = tensor(s.final_alpha_cumprod)
                cases.append(c)
    return {"meta": meta("DDPMScheduler / DDIMScheduler __init__ buffers (float32 torch tensors), T = 1000"),
            "cases": cases}


LOOP_SHAPE = (2, 3, 4, 4)

DDPM_LOOPS = [
    ("eps fixed_small clip, noise", {}, 10, "draw"),
    ("eps fixed_small clip, no noise", {}, 10, "zeros"),
    ("v_prediction fixed_small", {"prediction_type": "v_prediction"}, 10, "draw"),
    ("sample fixed_large clip_sample_range=2", {"prediction_type": "sample", "variance_type": "fixed_large",
                                               "clip_sample_range": 2.0}, 10, "draw"),
    ("thresholding ratio 0.9 max 1.5", {"thresholding": True, "dynamic_thresholding_ratio": 0.9,
                                        "sample_max_value": 1.5}, 10, "draw"),
    ("zero-SNR v trailing", {"rescale_betas_zero_snr": True, "prediction_type": "v_prediction",
                             "timestep_spacing": "trailing", "clip_sample": False}, 10, "draw"),
    ("learned_range", {"variance_type": "learned_range"}, 10, "draw"),
    ("learned", {"variance_type": "learned"}, 10, "draw"),
    ("fixed_small_log", {"variance_type": "fixed_small_log"}, 10, "draw"),
    ("fixed_large_log", {"variance_type": "fixed_large_log"}, 10, "draw"),
    ("scaled_linear linspace", {"beta_schedule": "scaled_linear", "beta_start": 0.00085, "beta_end": 0.012,
                                "timestep_spacing": "linspace", "clip_sample": False}, 10, "draw"),
    ("squaredcos_cap_v2 leading offset 1", {"beta_schedule": "squaredcos_cap_v2", "steps_offset": 1}, 10, "draw"),
    ("sigmoid trailing", {"beta_schedule": "sigmoid", "timestep_spacing": "trailing"}, 10, "draw"),
    ("full chain T=50 eps", {"num_train_timesteps": 50}, None, "draw"),
]

DDIM_LOOPS = [
    ("eta 0 set_alpha_to_one", {}, 10, 0.0, False),
    ("eta 0 no set_alpha_to_one beta_start 0.01", {"set_alpha_to_one": False, "beta_start": 0.01}, 10, 0.0, False),
    ("eta 1 noise", {}, 10, 1.0, False),
    ("eta 0.5 use_clipped_model_output", {}, 10, 0.5, True),
    ("eta 0.5 sample prediction linspace", {"prediction_type": "sample", "timestep_spacing": "linspace"}, 10, 0.5, False),
    ("eta 0 v_prediction", {"prediction_type": "v_prediction"}, 10, 0.0, False),
    ("zero-SNR v trailing eta 0", {"rescale_betas_zero_snr": True, "prediction_type": "v_prediction",
                                   "timestep_spacing": "trailing", "clip_sample": False}, 10, 0.0, False),
    ("thresholding ratio 0.9 max 1.5, clipped output", {"thresholding": True, "dynamic_thresholding_ratio": 0.9,
                                                        "sample_max_value": 1.5}, 10, 0.0, True),
    ("scaled_linear offset 1 no clip", {"beta_schedule": "scaled_linear", "beta_start": 0.00085, "beta_end": 0.012,
                                        "steps_offset": 1, "clip_sample": False}, 10, 0.0, False),
    ("squaredcos_cap_v2 clip range 0.5", {"beta_schedule": "squaredcos_cap_v2", "clip_sample_range": 0.5}, 10, 1.0, False),
]


def run_loop(scheduler, xT, steps, variance_type, hook, noise_mode, ddim_args=None, seed=0):
    gen = torch.Generator().manual_seed(seed)
    sample, rec = xT.clone(), {k: [] for k in ("t", "model_output", "noise", "prev_sample", "pred_original_sample")}
    for t in steps:
        out = model(sample, t, variance_type)
        hook["log"], hook["mode"] = [], noise_mode
        if ddim_args is None:
            r = scheduler.step(out, t, sample, generator=gen)
        else:
            r = scheduler.step(out, t, sample, eta=ddim_args[0], use_clipped_model_output=ddim_args[1], generator=gen)
        drawn = hook["log"]
        hook["log"], hook["mode"] = None, "draw"
        rec["t"].append(int(t))
        rec["model_output"].append(out)
        rec["noise"].append(drawn[0] if drawn else torch.zeros_like(sample))
        rec["prev_sample"].append(r.prev_sample)
        rec["pred_original_sample"].append(r.pred_original_sample)
        sample = r.prev_sample
    return {
        "timesteps": tensor(np.array(rec["t"], dtype=np.int64), "int64"),
        "model_output": tensor(torch.stack(rec["model_output"])),
        "noise": tensor(torch.stack(rec["noise"])),
        "prev_sample": tensor(torch.stack(rec["prev_sample"])),
        "pred_original_sample": tensor(torch.stack(rec["pred_original_sample"])),
    }


def record_loops(ddpm, ddim, hook):
    g = torch.Generator().manual_seed(SEED + 1)
    xT = torch.randn(LOOP_SHAPE, generator=g)
    cases = []
    for i, (name, cfg, n, mode) in enumerate(DDPM_LOOPS):
        s = ddpm.DDPMScheduler(**cfg)
        if n:
            s.set_timesteps(n)
        steps = [int(t) for t in s.timesteps]
        c = {"scheduler": "DDPMScheduler", "name": name, "config": {k: v for k, v in vars(s.config).items() if k != "trained_betas"},
             "num_inference_steps": n, "noise_mode": mode, "generator_seed": i}
        c.update(run_loop(s, xT, steps, s.config.variance_type, hook, mode, seed=i))
        cases.append(c)
    for i, (name, cfg, n, eta, clipped) in enumerate(DDIM_LOOPS):
        s = ddim.DDIMScheduler(**cfg)
        s.set_timesteps(n)
        steps = [int(t) for t in s.timesteps]
        c = {"scheduler": "DDIMScheduler", "name": name, "config": {k: v for k, v in vars(s.config).items() if k != "trained_betas"},
             "num_inference_steps": n, "eta": eta, "use_clipped_model_output": clipped, "generator_seed": 100 + i}
        c.update(run_loop(s, xT, steps, None, hook, "draw", ddim_args=(eta, clipped), seed=100 + i))
        cases.append(c)
    return {"meta": meta("DDPMScheduler.step / DDIMScheduler.step loops; noise[i] is what randn_tensor drew at step i "
                         "(zeros where nothing was drawn: the step to t = 0 of DDPM, every DDIM step with eta = 0)"),
            "model": MODEL_FORMULA, "x_T": tensor(xT), "cases": cases}


# ----- diffusers' own scheduler tests (tests/schedulers/test_scheduler_ddpm.py, test_scheduler_ddim.py)
def dummy_sample_deter(flip=False):
    n = 4 * 3 * 8 * 8
    s = torch.arange(n)
    if flip:
        s = s.flip(-1)
    return (s.reshape(3, 8, 8, 4) / n).permute(3, 0, 1, 2)


def test_model(sample, t):
    if isinstance(t, torch.Tensor):
        t = t.reshape(-1, *(1,) * (len(sample.shape) - 1)).to(sample.device, dtype=sample.dtype)
    return sample * t / (t + 1)


def record_tests(ddpm, ddim, hook):
    base = {"num_train_timesteps": 1000, "beta_start": 0.0001, "beta_end": 0.02, "beta_schedule": "linear", "clip_sample": True}
    out, noise = {}, {}

    def ddpm_full(name, **kw):
        s = ddpm.DDPMScheduler(**{**base, "variance_type": "fixed_small", **kw})
        sample, gen, log = dummy_sample_deter(), torch.manual_seed(0), []
        for t in reversed(range(len(range(s.config.num_train_timesteps)))):
            hook["log"] = []
            sample = s.step(test_model(sample, t), t, sample, generator=gen).prev_sample
            log += hook["log"]
        hook["log"] = None
        noise[name] = torch.stack(log).numpy()
        out[name] = {"sum_abs": float(sample.abs().sum()), "mean_abs": float(sample.abs().mean()), "final": tensor(sample)}

    ddpm_full("ddpm.test_full_loop_no_noise")
    ddpm_full("ddpm.test_full_loop_with_v_prediction", prediction_type="v_prediction")

    s = ddpm.DDPMScheduler(**{**base, "variance_type": "fixed_small"})
    gen = torch.manual_seed(0)
    timesteps = s.timesteps[(1000 - 2) * s.order:]
    sample = s.add_noise(dummy_sample_deter(), dummy_sample_deter(flip=True), timesteps[:1])
    added = sample.clone()
    hook["log"] = []
    for t in timesteps:
        sample = s.step(test_model(sample, t), t, sample, generator=gen).prev_sample
    noise["ddpm.test_full_loop_with_noise"] = torch.stack(hook["log"]).numpy()
    hook["log"] = None
    out["ddpm.test_full_loop_with_noise"] = {"sum_abs": float(sample.abs().sum()), "mean_abs": float(sample.abs().mean()),
                                            "after_add_noise": tensor(added), "final": tensor(sample)}

    def ddim_full(name, t_start=None, **kw):
        s = ddim.DDIMScheduler(**{**base, **kw})
        s.set_timesteps(10)
        sample, ts = dummy_sample_deter(), s.timesteps
        if t_start is not None:
            ts = s.timesteps[t_start * s.order:]
            sample = s.add_noise(sample, dummy_sample_deter(flip=True), ts[:1])
        for t in ts:
            sample = s.step(test_model(sample, t), t, sample, 0.0).prev_sample
        out[name] = {"sum_abs": float(sample.abs().sum()), "mean_abs": float(sample.abs().mean()), "final": tensor(sample)}

    ddim_full("ddim.test_full_loop_no_noise")
    ddim_full("ddim.test_full_loop_with_v_prediction", prediction_type="v_prediction")
    ddim_full("ddim.test_full_loop_with_set_alpha_to_one", set_alpha_to_one=True, beta_start=0.01)
    ddim_full("ddim.test_full_loop_with_no_set_alpha_to_one", set_alpha_to_one=False, beta_start=0.01)
    ddim_full("ddim.test_full_loop_with_noise", t_start=8)
    return out, noise


def meta(function):
    return {"repo": "huggingface/diffusers", "commit": ARGS.commit, "files": {f"src/diffusers/schedulers/{k}": v for k, v in SOURCES.items()},
            "function": function, "loaded_by": "golden/generators/record_diffusers.py with golden/generators/diffusers_stub",
            "index": "t is diffusers' 0-based timestep; alphas_cumprod[t] is the paper's alpha-bar at t + 1",
            "env": {"python": platform.python_version(), "torch": torch.__version__, "numpy": np.__version__}}


def main():
    global ARGS, SOURCES
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--git-dir", help="a diffusers git directory (bare or not)")
    p.add_argument("--commit", required=True, help="the diffusers commit the files come from")
    p.add_argument("--src", help="a directory holding scheduling_ddpm.py and scheduling_ddim.py instead of --git-dir")
    p.add_argument("--out", default="golden/upstream")
    ARGS = p.parse_args()
    if not ARGS.git_dir and not ARGS.src:
        p.error("--git-dir or --src is required")
    torch.set_num_threads(1)
    ddpm, ddim, hook, SOURCES = load_schedulers(ARGS)
    written = {}
    for name, rec in (("diffusers_set_timesteps.json", record_set_timesteps(ddpm, ddim)),
                      ("diffusers_variance.json", record_variance(ddpm, ddim)),
                      ("diffusers_buffers.json", record_buffers(ddpm, ddim)),
                      ("diffusers_loops.json", record_loops(ddpm, ddim, hook))):
        write_json(os.path.join(ARGS.out, name), rec)
        written[name] = True
    results, noise = record_tests(ddpm, ddim, hook)
    write_json(os.path.join(ARGS.out, "diffusers_tests.json"),
               {"meta": meta("the full loops of tests/schedulers/test_scheduler_ddpm.py and test_scheduler_ddim.py, "
                             "rerun with their fixtures (dummy_model, dummy_sample_deter, dummy_noise_deter)"),
                "noise_file": "diffusers_tests_noise.safetensors", "results": results})
    # Both 1000-step DDPM tests draw the same stream (torch.manual_seed(0), same shapes): stored once.
    a, b = noise.pop("ddpm.test_full_loop_no_noise"), noise.pop("ddpm.test_full_loop_with_v_prediction")
    assert np.array_equal(a, b), "the two 1000-step DDPM tests drew different noise"
    noise["ddpm.test_full_loop_no_noise+with_v_prediction"] = a
    write_safetensors(os.path.join(ARGS.out, "diffusers_tests_noise.safetensors"), noise,
                      {"note": "randn_tensor draws of the DDPM test loops under torch.manual_seed(0), in loop order "
                               "[steps, 4, 3, 8, 8]; the step to t = 0 draws nothing"})
    for name in sorted(os.listdir(ARGS.out)):
        if name.startswith("diffusers_") and not name.startswith("diffusers_get_"):
            with open(os.path.join(ARGS.out, name), "rb") as f:
                data = f.read()
            print(f"{name}\t{len(data)}\t{hashlib.sha256(data).hexdigest()}")
    for k, v in results.items():
        print(f"{k}: sum {v['sum_abs']:.4f} mean {v['mean_abs']:.6f}")


if __name__ == "__main__":
    main()
