#!/usr/bin/python3
"""The PyTorch side of bench/featurizers.ts: forward+backward per step of nbi's default ResNet-GRU
(weight norm, kernel 3, dimConvMin 32, dimConvMax 256, two GRU layers) at the sizes given on the
command line as BATCH:LENGTH:DEPTH:STEPS, float32, on the CPU or, with NBI_TORCH_DEVICE=cuda, on
the GPU (each timed step ends with torch.cuda.synchronize()). Prints one JSON line per size.
Run by bench/featurizers.ts with 2 threads (torch.set_num_threads(2), OPENBLAS_NUM_THREADS=1).
"""
import json
import os
import sys
import time

import torch
import torch.nn as nn
from torch.nn.utils import weight_norm

torch.set_num_threads(2)
DEVICE = torch.device(os.environ.get("NBI_TORCH_DEVICE", "cpu"))


class Block(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.c1 = weight_norm(nn.Conv1d(cin, cout, 3, padding=1))
        self.c2 = weight_norm(nn.Conv1d(cout, cout, 3, padding=1))
        self.skip = nn.Conv1d(cin, cout, 1) if cin != cout else None

    def forward(self, x):
        y = torch.relu(self.c2(torch.relu(self.c1(x))))
        return y + (self.skip(x) if self.skip is not None else x)


class ResNetGru(nn.Module):
    def __init__(self, dim_in, dim_out, depth, cmin=32, cmax=256, n_layer=2, n_rnn=2):
        super().__init__()
        chans = [min(cmax, cmin * 2**i) for i in range(depth)]
        layers = []
        for s in range(depth):
            if s > 0:
                layers.append(nn.MaxPool1d(2, 2))
            for j in range(n_layer):
                layers.append(Block((dim_in if s == 0 else chans[s - 1]) if j == 0 else chans[s], chans[s]))
        self.trunk = nn.Sequential(*layers)
        self.rnn = nn.GRU(chans[-1], chans[-1], num_layers=n_rnn)
        self.linear = nn.Linear(chans[-1], dim_out)

    def forward(self, x):
        y = self.trunk(x)
        return self.linear(self.rnn(y.permute(2, 0, 1))[1][-1])


def main():
    for spec in sys.argv[1:]:
        batch, length, depth, steps = (int(v) for v in spec.split(":"))
        torch.manual_seed(0)
        net = ResNetGru(1, 32, depth).to(DEVICE)
        x = torch.randn(batch, 1, length).to(DEVICE)

        def step():
            net.zero_grad()
            loss = net(x).square().mean()
            loss.backward()
            if DEVICE.type == "cuda":
                torch.cuda.synchronize()

        step()
        times = []
        for _ in range(steps):
            t0 = time.perf_counter()
            step()
            times.append(time.perf_counter() - t0)
        times.sort()
        print(json.dumps({"batch": batch, "length": length, "depth": depth,
                          "seconds": times[len(times) // 2], "steps": steps,
                          "threads": torch.get_num_threads(), "torch": torch.__version__,
                          "device": torch.cuda.get_device_name(DEVICE) if DEVICE.type == "cuda" else "cpu"}), flush=True)


if __name__ == "__main__":
    main()
