#!/usr/bin/python3
"""The floor under a U-Net training step and sampling step on this CPU: the fashion-mnist preset's 43
convolutions alone, each timed in isolation at its own input shape (batch 64), forward and forward + backward,
in bfloat16 and float32, NCHW and channels-last. The shapes come from the Python twin (bench/peers/unet_peer.py),
which has scorediff's layers.

  MALLOC_MMAP_THRESHOLD_=1073741824 OMP_NUM_THREADS=1 /usr/bin/python3 bench/unet_conv_bound.py [THREADS]
"""
import os
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "peers"))
import unet_peer  # noqa: E402


def main():
    torch.set_num_threads(int(sys.argv[1]) if len(sys.argv) > 1 else 1)
    net, shapes = unet_peer.Unet(), []

    def hook(m, inputs, output):
        shapes.append((tuple(inputs[0].shape), m.in_channels, m.out_channels, m.kernel_size[0], m.stride[0]))

    for m in net.modules():
        if isinstance(m, torch.nn.Conv2d):
            m.register_forward_hook(hook)
    net(torch.randn(64, 784), torch.zeros(64))
    for name, fmt in [("NCHW", torch.contiguous_format), ("channels-last", torch.channels_last)]:
        for dtype in [torch.bfloat16, torch.float32]:
            forward = both = 0.0
            for shape, cin, cout, k, stride in shapes:
                conv = torch.nn.Conv2d(cin, cout, k, stride=stride, padding=k // 2).to(dtype).to(memory_format=fmt)
                x = torch.randn(shape).to(dtype).contiguous(memory_format=fmt).requires_grad_()
                for _ in range(2):
                    y = conv(x)
                    y.backward(torch.ones_like(y))
                g, reps = torch.ones_like(y), 5
                start = time.perf_counter()
                for _ in range(reps):
                    conv(x)
                forward += (time.perf_counter() - start) / reps
                start = time.perf_counter()
                for _ in range(reps):
                    conv(x).backward(g)
                both += (time.perf_counter() - start) / reps
            print(f"{len(shapes)} convolutions, {name}, {str(dtype).removeprefix('torch.')}: forward {forward * 1e3:.0f} ms, "
                  f"forward + backward {both * 1e3:.0f} ms per batch of 64")


if __name__ == "__main__":
    main()
