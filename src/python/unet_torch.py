"""Ho et al.'s UNet in PyTorch, written for this project's benchmark (NCHW, the PyTorch port's parameter names).

It mirrors `reference/unet/model.ts` layer for layer so that the benchmark times the same computation in both
frameworks; `python3 src/python/unet_torch.py` checks it against the golden data (`ho_unet_small_io.json`).
"""
import math

import torch
import torch.nn.functional as F
from torch import nn


def timestep_embedding(t, dim):
    half = dim // 2
    freqs = torch.exp(torch.arange(half, dtype=torch.float32) * -(math.log(10000) / (half - 1)))
    arg = t.float()[:, None] * freqs[None, :]
    e = torch.cat([torch.sin(arg), torch.cos(arg)], dim=1)
    return F.pad(e, (0, 1)) if dim % 2 else e


def norm(ch):
    return nn.GroupNorm(32, ch, eps=1e-6)


class ResBlock(nn.Module):
    def __init__(self, cin, cout, temb, dropout):
        super().__init__()
        self.norm1, self.conv1 = norm(cin), nn.Conv2d(cin, cout, 3, padding=1)
        self.temb_proj = nn.Linear(temb, cout)
        self.norm2, self.dropout, self.conv2 = norm(cout), nn.Dropout(dropout), nn.Conv2d(cout, cout, 3, padding=1)
        if cin != cout:
            self.nin_shortcut = nn.Conv2d(cin, cout, 1)

    def forward(self, x, temb_act):
        h = self.conv1(F.silu(self.norm1(x))) + self.temb_proj(temb_act)[:, :, None, None]
        h = self.conv2(self.dropout(F.silu(self.norm2(h))))
        return (self.nin_shortcut(x) if hasattr(self, "nin_shortcut") else x) + h


class AttnBlock(nn.Module):
    def __init__(self, ch):
        super().__init__()
        self.norm = norm(ch)
        self.q, self.k, self.v, self.proj_out = (nn.Conv2d(ch, ch, 1) for _ in range(4))

    def forward(self, x):
        b, c, hh, ww = x.shape
        h = self.norm(x)
        q = self.q(h).reshape(b, c, hh * ww).transpose(1, 2)  # [b, P, c]
        k = self.k(h).reshape(b, c, hh * ww)  # [b, c, P]
        v = self.v(h).reshape(b, c, hh * ww).transpose(1, 2)
        w = torch.softmax(torch.bmm(q, k) * c ** -0.5, dim=2)  # softmax over keys
        a = torch.bmm(w, v).transpose(1, 2).reshape(b, c, hh, ww)
        return x + self.proj_out(a)


class Down(nn.Module):
    def __init__(self, ch, with_conv):
        super().__init__()
        if with_conv:
            self.conv = nn.Conv2d(ch, ch, 3, stride=2)

    def forward(self, x):
        return self.conv(F.pad(x, (0, 1, 0, 1))) if hasattr(self, "conv") else F.avg_pool2d(x, 2)


class Up(nn.Module):
    def __init__(self, ch, with_conv):
        super().__init__()
        if with_conv:
            self.conv = nn.Conv2d(ch, ch, 3, padding=1)

    def forward(self, x):
        x = F.interpolate(x, scale_factor=2.0, mode="nearest")
        return self.conv(x) if hasattr(self, "conv") else x


class UNet(nn.Module):
    """Same constructor arguments and state_dict names as the PyTorch port's `Model`."""

    def __init__(self, *, ch, out_ch, ch_mult, num_res_blocks, attn_resolutions, dropout=0.0, resamp_with_conv=True,
                 in_channels, resolution):
        super().__init__()
        self.ch, self.resolution, L = ch, resolution, len(ch_mult)
        temb = 4 * ch
        self.temb = nn.Module()
        self.temb.dense = nn.ModuleList([nn.Linear(ch, temb), nn.Linear(temb, temb)])
        self.conv_in = nn.Conv2d(in_channels, ch, 3, padding=1)
        in_mult, res, cin = (1,) + tuple(ch_mult), resolution, ch
        self.down = nn.ModuleList()
        for i in range(L):
            lv = nn.Module()
            lv.block, lv.attn = nn.ModuleList(), nn.ModuleList()
            for _ in range(num_res_blocks):
                lv.block.append(ResBlock(cin, ch * ch_mult[i], temb, dropout))
                cin = ch * ch_mult[i]
                if res in attn_resolutions:
                    lv.attn.append(AttnBlock(cin))
            if i != L - 1:
                lv.downsample = Down(cin, resamp_with_conv)
                res //= 2
            self.down.append(lv)
        self.mid = nn.Module()
        self.mid.block_1, self.mid.attn_1, self.mid.block_2 = ResBlock(cin, cin, temb, dropout), AttnBlock(cin), ResBlock(cin, cin, temb, dropout)
        ups = []
        for i in reversed(range(L)):
            lv = nn.Module()
            lv.block, lv.attn = nn.ModuleList(), nn.ModuleList()
            for b in range(num_res_blocks + 1):
                skip = ch * (in_mult[i] if b == num_res_blocks else ch_mult[i])
                lv.block.append(ResBlock(cin + skip, ch * ch_mult[i], temb, dropout))
                cin = ch * ch_mult[i]
                if res in attn_resolutions:
                    lv.attn.append(AttnBlock(cin))
            if i != 0:
                lv.upsample = Up(cin, resamp_with_conv)
                res *= 2
            ups.append(lv)
        self.up = nn.ModuleList(reversed(ups))  # index = level, as the port's state_dict
        self.norm_out, self.conv_out = norm(cin), nn.Conv2d(cin, out_ch, 3, padding=1)

    def forward(self, x, t):
        temb = self.temb.dense[1](F.silu(self.temb.dense[0](timestep_embedding(t, self.ch))))
        ta = F.silu(temb)
        hs = [self.conv_in(x)]
        for lv in self.down:
            for j, blk in enumerate(lv.block):
                h = blk(hs[-1], ta)
                hs.append(lv.attn[j](h) if len(lv.attn) else h)
            if hasattr(lv, "downsample"):
                hs.append(lv.downsample(hs[-1]))
        h = self.mid.block_2(self.mid.attn_1(self.mid.block_1(hs[-1], ta)), ta)
        for lv in reversed(self.up):
            for j, blk in enumerate(lv.block):
                h = blk(torch.cat([h, hs.pop()], dim=1), ta)
                h = lv.attn[j](h) if len(lv.attn) else h
            if hasattr(lv, "upsample"):
                h = lv.upsample(h)
        return self.conv_out(F.silu(self.norm_out(h)))


def _check_against_golden():
    import json
    import os
    import numpy as np
    import st

    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "golden", "upstream")
    sd, meta = st.read(os.path.join(root, "ho_unet_small.safetensors"))
    cfg = json.loads(meta["cfg"])
    m = UNet(**{k: tuple(v) if isinstance(v, list) else v for k, v in cfg.items()})
    m.load_state_dict({k: torch.from_numpy(v) for k, v in sd.items()}, strict=True)
    m.eval()
    with open(os.path.join(root, "ho_unet_small_io.json")) as f:
        io = json.load(f)
    x = torch.tensor(io["inputs"]["x"]["data"], dtype=torch.float32)
    t = torch.tensor(io["inputs"]["t"]["data"], dtype=torch.int64)
    with torch.no_grad():
        y = m(x, t).numpy()
    want = np.array(io["outputs"]["model(x, t_int64)"]["data"], dtype=np.float32)
    print(f"unet_torch vs golden ho_unet_small output: max |diff| = {np.abs(y - want).max():.3e}")
    return np.abs(y - want).max() < 1e-5


if __name__ == "__main__":
    import sys
    sys.exit(0 if _check_against_golden() else 1)
