#!/usr/bin/python3
"""The Python peer of scorediff's U-Net (src/models/unet.cpp), layer for layer.

Module names match scorediff's parameter names, so a scorediff checkpoint (safetensors) loads
directly. Modes:

  unet_peer.py check CKPT INPUT.npy OUTPUT.npy    load the EMA or raw network, evaluate it on the
                                                  inputs (x and log sigma, written by scorediff), print
                                                  the largest difference from scorediff's output
  unet_peer.py bench [--threads N] [--steps S] [--batch B] [--images N] [--profile] [--channels-last]
                     [--autocast]
                                                  training steps/s (EDM denoiser loss, Adam, gradient
                                                  clipping, EMA) and
                                                  sampling images/s (Heun, 35 NFE) of the fashion-mnist
                                                  preset's network; one JSON line. --channels-last keeps
                                                  the network and its inputs in channels-last memory
                                                  format; --autocast runs the network under
                                                  torch.autocast("cpu", dtype=torch.bfloat16), PyTorch's
                                                  own mixed precision on the CPU (convolutions, linear
                                                  layers and batched products in bfloat16)

Run with Debian's /usr/bin/python3 (python3-torch). No code from other projects is used.
"""
import argparse
import contextlib
import json
import math
import struct
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


def norm_groups(channels):
    for g in (32, 16, 8, 4, 2):
        if channels % g == 0 and channels // g >= 4:
            return g
    return 1


class GroupNorm(nn.GroupNorm):
    """GroupNorm in float32: under CPU autocast (PyTorch 1.13) the previous layer's output is bfloat16, and
    group_norm rejects a bfloat16 input with float32 parameters. Normalising in float32 is also what mixed
    precision recipes do."""

    def forward(self, x):
        return super().forward(x.float())


def group_norm(channels):
    return GroupNorm(norm_groups(channels), channels, eps=1e-6)


class ResBlock(nn.Module):
    def __init__(self, cin, cout, emb, dropout):
        super().__init__()
        self.norm1 = group_norm(cin)
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1)
        self.emb = nn.Linear(emb, cout)
        self.norm2 = group_norm(cout)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else None

    def forward(self, x, emb):
        h = self.conv1(F.silu(self.norm1(x)))
        h = h + self.emb(F.silu(emb))[:, :, None, None]
        h = self.conv2(self.dropout(F.silu(self.norm2(h))))
        return (self.skip(x) if self.skip is not None else x) + h


class Attention(nn.Module):
    def __init__(self, channels):
        super().__init__()
        self.norm = group_norm(channels)
        self.qkv = nn.Conv2d(channels, 3 * channels, 1)
        self.proj = nn.Conv2d(channels, channels, 1)

    def forward(self, x):
        B, C, H, W = x.shape
        q, k, v = self.qkv(self.norm(x)).reshape(B, 3, C, H * W).unbind(1)
        w = torch.softmax(torch.bmm(q.transpose(1, 2), k) / math.sqrt(C), -1)
        h = torch.bmm(v, w.transpose(1, 2)).reshape(B, C, H, W)
        return x + self.proj(h)


class Unet(nn.Module):
    def __init__(self, shape=(1, 28, 28), ch=32, mult=(1, 2, 2), res_blocks=1, attention=(7,), dropout=0.1,
                 fourier_features=64):
        super().__init__()
        self.shape = shape
        self.register_buffer("features_W", torch.zeros(fourier_features))
        emb = 4 * ch
        self.emb1 = nn.Linear(2 * fourier_features, emb)
        self.emb2 = nn.Linear(emb, emb)
        self.conv_in = nn.Conv2d(shape[0], ch, 3, padding=1)
        self.down, self.up = [], []
        skips, c, res = [ch], ch, shape[1]
        for l, m in enumerate(mult):
            stage = {"blocks": [], "resample": None}
            for b in range(res_blocks):
                name = f"down{l}_block{b}"
                block = ResBlock(c, ch * m, emb, dropout)
                self.add_module(name, block)
                c = ch * m
                attn = Attention(c) if res in attention else None
                if attn is not None:
                    self.add_module(name + "_attn", attn)
                stage["blocks"].append((block, attn))
                skips.append(c)
            if l + 1 < len(mult):
                stage["resample"] = nn.Conv2d(c, c, 3, stride=2, padding=1)
                self.add_module(f"down{l}_resample", stage["resample"])
                skips.append(c)
                res //= 2
            self.down.append(stage)
        self.mid_block1 = ResBlock(c, c, emb, dropout)
        self.mid_attn = Attention(c)
        self.mid_block2 = ResBlock(c, c, emb, dropout)
        for l in reversed(range(len(mult))):
            stage = {"blocks": [], "resample": None}
            for b in range(res_blocks + 1):
                name = f"up{l}_block{b}"
                block = ResBlock(c + skips.pop(), ch * mult[l], emb, dropout)
                self.add_module(name, block)
                c = ch * mult[l]
                attn = Attention(c) if res in attention else None
                if attn is not None:
                    self.add_module(name + "_attn", attn)
                stage["blocks"].append((block, attn))
            if l > 0:
                stage["resample"] = nn.Conv2d(c, c, 3, padding=1)
                self.add_module(f"up{l}_resample", stage["resample"])
                res *= 2
            self.up.append(stage)
        self.norm_out = group_norm(c)
        self.conv_out = nn.Conv2d(c, shape[0], 3, padding=1)

    def forward(self, x, log_sigma):
        B = x.shape[0]
        angle = (2 * math.pi) * log_sigma.reshape(-1, 1) * self.features_W[None, :]
        emb = self.emb2(F.silu(self.emb1(torch.cat([torch.sin(angle), torch.cos(angle)], 1))))
        h = self.conv_in(x.reshape(B, *self.shape))
        skips = [h]
        for stage in self.down:
            for block, attn in stage["blocks"]:
                h = block(h, emb)
                if attn is not None:
                    h = attn(h)
                skips.append(h)
            if stage["resample"] is not None:
                h = stage["resample"](h)
                skips.append(h)
        h = self.mid_block2(self.mid_attn(self.mid_block1(h, emb)), emb)
        for stage in self.up:
            for block, attn in stage["blocks"]:
                h = block(torch.cat([h, skips.pop()], 1), emb)
                if attn is not None:
                    h = attn(h)
            if stage["resample"] is not None:
                h = stage["resample"](F.interpolate(h, scale_factor=2, mode="nearest"))
        h = self.conv_out(F.silu(self.norm_out(h)))
        return h.reshape(x.shape)


def denoise(net, x, sigma, sigma_data=0.5):
    """EDM's preconditioning (Karras et al. 2022, Table 1), as scorediff's `denoiser` parametrisation."""
    s = sigma.reshape(-1, *([1] * (x.dim() - 1)))
    c_in = 1 / torch.sqrt(s * s + sigma_data ** 2)
    c_skip = sigma_data ** 2 / (s * s + sigma_data ** 2)
    c_out = s * sigma_data * c_in
    return c_skip * x + c_out * net(x * c_in, torch.log(sigma))


def read_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    tensors = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        if info["dtype"] != "F32":
            continue
        a, b = info["data_offsets"]
        tensors[name] = torch.from_numpy(np.frombuffer(data[a:b], dtype="<f4").copy()).reshape(info["shape"])
    return tensors, header.get("__metadata__", {})


def load_network(path, prefix):
    tensors, meta = read_safetensors(path)
    import tomllib
    model = tomllib.loads(meta["config"])["model"]
    data = tomllib.loads(meta["config"])["data"]
    size = tensors[prefix + "conv_in.weight"].shape
    side = data.get("image_size", 0) or 28  # 0: the dataset's own size (28 for MNIST and Fashion-MNIST)
    shape = (size[1], side, side)
    net = Unet(shape, model["channels"], [int(m) for m in model["channel_mult"]], model["res_blocks"],
               [int(a) for a in model["attention"]], model["dropout"], model["fourier_features"])
    state = {}
    for name in net.state_dict():
        source = "features.W" if name == "features_W" else name
        # The EMA holds parameters; buffers (the Fourier frequencies) are the model's.
        state[name] = tensors.get(prefix + source, tensors.get("model.net." + source))
    net.load_state_dict(state)
    return net.eval()


def check(args):
    net = load_network(args.ckpt, args.prefix)
    inputs = np.load(args.input)  # [N, D + 1]: pixels, then log sigma
    expected = np.load(args.output)
    x = torch.from_numpy(inputs[:, :-1]).float()
    with torch.no_grad():
        out = net(x, torch.from_numpy(inputs[:, -1]).float()).numpy()
    diff = float(np.abs(out - expected).max())
    print(json.dumps({"max_abs_diff": diff, "max_abs_output": float(np.abs(expected).max())}))


def bench(args):
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    net = Unet()
    fmt = torch.channels_last if args.channels_last else torch.contiguous_format
    net = net.to(memory_format=fmt)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    ema = [p.detach().clone() for p in net.parameters()]
    data = (torch.rand(args.batch * 8, 1, 28, 28) * 2 - 1).contiguous(memory_format=fmt)

    autocast = (lambda: torch.autocast("cpu", dtype=torch.bfloat16)) if args.autocast else contextlib.nullcontext

    def step(i):
        x = data[(i % 8) * args.batch:(i % 8 + 1) * args.batch]
        sigma = torch.exp(torch.randn(args.batch) * 1.2 - 1.2)
        noisy = x + sigma[:, None, None, None] * torch.randn_like(x)
        weight = (sigma ** 2 + 0.25) / (sigma * 0.5) ** 2
        with autocast():
            out = denoise(net, noisy, sigma)
        loss = 0.5 * (weight[:, None, None, None] * (out.float() - x) ** 2).sum((1, 2, 3)).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        opt.step()
        with torch.no_grad():
            torch._foreach_mul_(ema, 0.999)
            torch._foreach_add_(ema, [p.detach() for p in net.parameters()], alpha=0.001)

    net.train()
    for i in range(3):
        step(i)
    if args.profile:
        from torch.profiler import profile, ProfilerActivity
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            for i in range(5):
                step(i)
        print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=30), file=sys.stderr)
    start = time.perf_counter()
    for i in range(args.steps):
        step(i)
    train = args.steps / (time.perf_counter() - start)

    net.eval()
    sigmas = [(80 ** (1 / 7) + i / 17 * (0.002 ** (1 / 7) - 80 ** (1 / 7))) ** 7 for i in range(18)] + [0.0]
    with torch.inference_mode(), autocast():
        x = (torch.randn(args.images, 1, 28, 28) * sigmas[0]).contiguous(memory_format=fmt)
        start = time.perf_counter()
        for i in range(18):  # Heun: 2 evaluations per step but the last (35 NFE)
            s, t = sigmas[i], sigmas[i + 1]
            d = (x - denoise(net, x, torch.full((args.images,), s)).float()) / s
            y = x + (t - s) * d
            if t > 0:
                d2 = (y - denoise(net, y, torch.full((args.images,), t)).float()) / t
                y = x + (t - s) * 0.5 * (d + d2)
            x = y
        sample = args.images / (time.perf_counter() - start)
    print(json.dumps({"threads": args.threads, "batch": args.batch, "train_steps_per_s": train,
                      "sample_images_per_s": sample, "images": args.images, "autocast": args.autocast,
                      "channels_last": args.channels_last}))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="mode", required=True)
    c = sub.add_parser("check")
    c.add_argument("ckpt")
    c.add_argument("input")
    c.add_argument("output")
    c.add_argument("--prefix", default="ema.net.")
    b = sub.add_parser("bench")
    b.add_argument("--threads", type=int, default=1)
    b.add_argument("--steps", type=int, default=20)
    b.add_argument("--batch", type=int, default=64)
    b.add_argument("--images", type=int, default=64)
    b.add_argument("--profile", action="store_true")
    b.add_argument("--channels-last", action="store_true")
    b.add_argument("--autocast", action="store_true")
    args = p.parse_args()
    check(args) if args.mode == "check" else bench(args)


if __name__ == "__main__":
    main()
