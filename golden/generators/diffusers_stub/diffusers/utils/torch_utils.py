"""`randn_tensor` as diffusers calls it on the CPU, with a hook for the recorder (log each draw, or draw zeros)."""
import torch

HOOK = {"mode": "draw", "log": None}


def randn_tensor(shape, generator=None, device=None, dtype=None, layout=None):
    if HOOK["mode"] == "zeros":
        out = torch.zeros(shape, dtype=dtype)
    else:
        out = torch.randn(shape, generator=generator, dtype=dtype, layout=layout or torch.strided)
    if HOOK["log"] is not None:
        HOOK["log"].append(out.clone())
    return out
