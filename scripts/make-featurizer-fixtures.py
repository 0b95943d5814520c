#!/usr/bin/python3
"""Golden values for test/featurizers: PyTorch's outputs and input gradients of weight-normalised
conv1d, nbi's residual block (weight norm and batch norm), GRUs (one and two layers) and nbi's
ResNet / ResNet-GRU featurizers, for fixed weights and inputs.

Run with Debian's PyTorch (apt-get install -y python3-torch):
    /usr/bin/python3 scripts/make-featurizer-fixtures.py
It writes test/fixtures/featurizers/torch-golden.json. Parameters are written in the layout of
the TypeScript parameter pytrees ({g, v, bias} for weight-normalised convolutions, {weightIh,
weightHh, biasIh, biasHh} per GRU layer, ...), so the mapping from torch's state_dict names is
stated here once. Each case holds x, a fixed output cotangent ct, out = f(x) and
gradX = d sum(out * ct) / dx.

The networks below re-state nbi's architecture (nbi/nn/resnet.py): blocks of two same-padded
convolutions with ReLU (weight norm, or batch norm after each convolution), a 1x1 convolution on
the skip path when channels change, max-pooling by 2 between stages, channels doubling from
hidden_conv up to max_hidden; then either mean over length (no RNN) or a GRU over the pooled
sequence whose last hidden state of the top layer goes through a linear layer.
"""
import json
import os

import torch
import torch.nn as nn
from torch.nn.utils import weight_norm

torch.set_default_dtype(torch.float32)
OUT = os.path.join(os.path.dirname(__file__), "..", "test", "fixtures", "featurizers", "torch-golden.json")


def arr(t):
    t = t.detach().to(torch.float32)
    return {"shape": list(t.shape), "data": [float(v) for v in t.reshape(-1).tolist()]}


def conv_params(conv):
    """A (possibly weight-normalised) Conv1d as {g, v, bias} or {weight, bias}."""
    if hasattr(conv, "weight_g"):
        return {"g": arr(conv.weight_g.reshape(-1)), "v": arr(conv.weight_v), "bias": arr(conv.bias)}
    return {"weight": arr(conv.weight), "bias": arr(conv.bias)}


def perturb_gains(module, gen):
    """torch initialises g = ||v|| (so w = v); move g away from that so the test sees g and v."""
    with torch.no_grad():
        for m in module.modules():
            if hasattr(m, "weight_g"):
                m.weight_g.mul_(0.5 + torch.rand(m.weight_g.shape, generator=gen))


class ResBlock(nn.Module):
    def __init__(self, cin, cout, k, norm):
        super().__init__()
        p = (k - 1) // 2
        if norm == "weight_norm":
            self.c1 = weight_norm(nn.Conv1d(cin, cout, k, padding=p))
            self.c2 = weight_norm(nn.Conv1d(cout, cout, k, padding=p))
            self.bn1 = self.bn2 = None
        else:
            self.c1 = nn.Conv1d(cin, cout, k, padding=p)
            self.c2 = nn.Conv1d(cout, cout, k, padding=p)
            self.bn1 = nn.BatchNorm1d(cout)
            self.bn2 = nn.BatchNorm1d(cout)
        self.skip = nn.Conv1d(cin, cout, 1) if cin != cout else None

    def forward(self, x):
        y = self.c1(x)
        if self.bn1 is not None:
            y = self.bn1(y)
        y = torch.relu(y)
        y = self.c2(y)
        if self.bn2 is not None:
            y = self.bn2(y)
        y = torch.relu(y)
        return y + (self.skip(x) if self.skip is not None else x)

    def params(self):
        p = {"conv1": conv_params(self.c1), "conv2": conv_params(self.c2)}
        if self.bn1 is not None:
            p["bn1"] = {"gamma": arr(self.bn1.weight), "beta": arr(self.bn1.bias)}
            p["bn2"] = {"gamma": arr(self.bn2.weight), "beta": arr(self.bn2.bias)}
        if self.skip is not None:
            p["skip"] = conv_params(self.skip)
        return p


class ResNetFeaturizer(nn.Module):
    def __init__(self, dim_in, dim_out, depth, n_layer, k, cmin, cmax, rnn_layers, norm="weight_norm"):
        super().__init__()
        chans = [min(cmax, cmin * 2**i) for i in range(depth)]
        self.stages = []
        blocks = []
        for s in range(depth):
            for j in range(n_layer):
                cin = (dim_in if s == 0 else chans[s - 1]) if j == 0 else chans[s]
                blocks.append((s > 0 and j == 0, ResBlock(cin, chans[s], k, norm)))
        self.pool_before = [p for p, _ in blocks]
        self.blocks = nn.ModuleList([b for _, b in blocks])
        h = chans[-1]
        self.rnn = nn.GRU(h, h, num_layers=rnn_layers) if rnn_layers > 0 else None
        self.linear = nn.Linear(h, dim_out)

    def forward(self, x):
        for pool, b in zip(self.pool_before, self.blocks):
            if pool:
                x = nn.functional.max_pool1d(x, 2, 2)
            x = b(x)
        if self.rnn is not None:
            y = self.rnn(x.permute(2, 0, 1))[1][-1]
        else:
            y = x.mean(dim=2)
        return self.linear(y)

    def params(self):
        p = {"trunk": {"blocks": [b.params() for b in self.blocks]},
             "head": {"weight": arr(self.linear.weight), "bias": arr(self.linear.bias)}}
        if self.rnn is not None:
            p["gru"] = gru_params(self.rnn)
        return p


def gru_params(rnn):
    return {"layers": [
        {"weightIh": arr(getattr(rnn, f"weight_ih_l{k}")), "weightHh": arr(getattr(rnn, f"weight_hh_l{k}")),
         "biasIh": arr(getattr(rnn, f"bias_ih_l{k}")), "biasHh": arr(getattr(rnn, f"bias_hh_l{k}"))}
        for k in range(rnn.num_layers)]}


class GruLast(nn.Module):
    """x [N, C, L] -> last hidden state of the top layer (nbi's RNN featurizer without its linear)."""
    def __init__(self, dim_in, hidden, layers):
        super().__init__()
        self.rnn = nn.GRU(dim_in, hidden, num_layers=layers)

    def forward(self, x):
        return self.rnn(x.permute(2, 0, 1))[1][-1]


def case(module, params, x_shape, gen, extra=None):
    x = (torch.rand(x_shape, generator=gen) * 2 - 1).requires_grad_(True)
    out = module(x)
    ct = torch.rand(out.shape, generator=gen) * 2 - 1
    (out * ct).sum().backward()
    c = {"params": params, "x": arr(x), "ct": arr(ct), "out": arr(out), "gradX": arr(x.grad)}
    if extra:
        c["config"] = extra
    return c


def main():
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(1)
    cases = {}

    conv = weight_norm(nn.Conv1d(3, 4, 3, padding=1))
    perturb_gains(conv, gen)
    cases["weightNormConv"] = case(conv, conv_params(conv), (2, 3, 7), gen,
                                   {"inChannels": 3, "outChannels": 4, "kernel": 3})

    block = ResBlock(3, 5, 3, "weight_norm")
    perturb_gains(block, gen)
    cases["resBlock"] = case(block, block.params(), (2, 3, 9), gen,
                             {"inChannels": 3, "outChannels": 5, "kernel": 3, "norm": "weight_norm"})

    block = ResBlock(4, 4, 5, "weight_norm")
    perturb_gains(block, gen)
    cases["resBlockIdentitySkip"] = case(block, block.params(), (2, 4, 6), gen,
                                         {"inChannels": 4, "outChannels": 4, "kernel": 5, "norm": "weight_norm"})

    block = ResBlock(2, 3, 3, "batch_norm").train()
    with torch.no_grad():
        block.bn1.weight.uniform_(0.5, 1.5, generator=gen)
        block.bn1.bias.uniform_(-0.5, 0.5, generator=gen)
        block.bn2.weight.uniform_(0.5, 1.5, generator=gen)
        block.bn2.bias.uniform_(-0.5, 0.5, generator=gen)
    cases["resBlockBatchNorm"] = case(block, block.params(), (3, 2, 8), gen,
                                      {"inChannels": 2, "outChannels": 3, "kernel": 3, "norm": "batch_norm"})

    g1 = GruLast(3, 5, 1)
    cases["gru1"] = case(g1, gru_params(g1.rnn), (2, 3, 6), gen, {"dimIn": 3, "dimHidden": 5, "nLayers": 1})
    g2 = GruLast(2, 4, 2)
    cases["gru2"] = case(g2, gru_params(g2.rnn), (3, 2, 7), gen, {"dimIn": 2, "dimHidden": 4, "nLayers": 2})

    cfg = {"dimIn": 2, "dimOut": 6, "depth": 3, "nLayer": 2, "kernel": 3, "dimConvMin": 4, "dimConvMax": 8}
    net = ResNetFeaturizer(2, 6, 3, 2, 3, 4, 8, rnn_layers=2)
    perturb_gains(net, gen)
    cases["resnetGru"] = case(net, net.params(), (2, 2, 13), gen, dict(cfg, nRnn=2))

    net = ResNetFeaturizer(2, 6, 3, 2, 3, 4, 8, rnn_layers=0)
    perturb_gains(net, gen)
    cases["resnet"] = case(net, net.params(), (2, 2, 11), gen, cfg)

    doc = {"generator": "scripts/make-featurizer-fixtures.py", "torch": torch.__version__, "cases": cases}
    with open(OUT, "w") as f:
        json.dump(doc, f, separators=(",", ":"))
    print("wrote", OUT, os.path.getsize(OUT), "bytes")


if __name__ == "__main__":
    main()
