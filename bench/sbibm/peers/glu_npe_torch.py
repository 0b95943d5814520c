"""sbi's NPE, rebuilt in PyTorch from its published defaults, on sbibm's gaussian_linear_uniform.

A peer for `bench:sbibm`'s 10-D Gaussian task that runs here (sbi itself is not installable on this
machine): one round of neural posterior estimation as sbi trains it by default — a masked
autoregressive flow of 5 masked affine autoregressive transforms (MADE with two hidden layers of 50
tanh units, the context added to the first layer; scale = softplus(raw) + 1e-3, unbounded: a
scale bounded by 1 in the density direction cannot narrow the prior to the posterior) with random
permutations between them, θ and x z-scored by the training set, Adam at 5e-4, batches of 50, 10%
held out, stop after 20 epochs without a better validation loss, gradient norm clipped at 5, the best
validation state kept; draws outside the prior's box rejected. Written for this project from that
description (no sbi or nflows code).

For each observation it writes 10,000 accepted draws as float32 .npy (score them with
`npx tsx bench/sbibm/score-draws.ts`) and prints KL(reference ‖ q) against the exact posterior
(a product of normals N(x_i, 0.1) truncated to [−1, 1]), with q renormalised to the box
(log of the acceptance added), the same measure as bench/sbibm/kl.ts.

Usage: OPENBLAS_NUM_THREADS unset; /usr/bin/python3 bench/sbibm/peers/glu_npe_torch.py
  --seed 0 --obs 1,2,...,10 --out DIR [--space theta|probit] [--activation tanh|relu]
  [--batch 50] [--sims 10000]
"""
import argparse, json, math, os, time

import numpy as np
import torch
from scipy.special import ndtr, ndtri

from sbi_training import train_with_patience

D = 10
NOISE_VAR = 0.1

p = argparse.ArgumentParser()
p.add_argument("--seed", type=int, default=0)
p.add_argument("--obs", default="1")
p.add_argument("--out", required=True)
p.add_argument("--space", choices=["theta", "probit"], default="theta")
p.add_argument("--activation", choices=["tanh", "relu"], default="tanh")
p.add_argument("--batch", type=int, default=50)
p.add_argument("--sims", type=int, default=10000)
p.add_argument("--observations", default=os.path.join(os.path.dirname(__file__), "glu_observations.json"))
args = p.parse_args()
torch.set_num_threads(1)
torch.manual_seed(args.seed)
rng = np.random.default_rng(args.seed)
act = torch.tanh if args.activation == "tanh" else torch.relu


def to_space(theta):
    """θ (or its probit image, as this project's default flow space) and log |dspace/dθ| per row."""
    if args.space == "theta":
        return theta, np.zeros(len(theta))
    u = ndtri(np.clip((theta + 1) / 2, 1e-12, 1 - 1e-12))
    return u, (-math.log(2) + 0.5 * u**2 + 0.5 * math.log(2 * math.pi)).sum(1)


def from_space(v):
    return v if args.space == "theta" else 2 * ndtr(v) - 1


theta_np = rng.uniform(-1, 1, (args.sims, D))
x_np = theta_np + rng.normal(0, math.sqrt(NOISE_VAR), (args.sims, D))
theta = torch.tensor(to_space(theta_np)[0], dtype=torch.float32)
x = torch.tensor(x_np, dtype=torch.float32)
order = torch.randperm(args.sims)
n_val = args.sims // 10
val, train = order[:n_val], order[n_val:]
t_mean, t_std = theta[train].mean(0), theta[train].std(0)
x_mean, x_std = x[train].mean(0), x[train].std(0)


class MaskedLinear(torch.nn.Linear):
    def __init__(self, n_in, n_out, mask):
        super().__init__(n_in, n_out)
        self.register_buffer("mask", mask)

    def forward(self, v):
        return torch.nn.functional.linear(v, self.weight * self.mask, self.bias)


class Made(torch.nn.Module):
    """Shift and raw scale of each coordinate from the coordinates before it and the context."""

    def __init__(self, hidden=50):
        super().__init__()
        deg_in = torch.arange(1, D + 1)
        deg_h = torch.arange(hidden) % (D - 1) + 1
        deg_out = deg_in.repeat_interleave(2)
        self.first = MaskedLinear(D, hidden, (deg_h[:, None] >= deg_in[None, :]).float())
        self.context = torch.nn.Linear(D, hidden)
        self.hidden = torch.nn.ModuleList(
            [MaskedLinear(hidden, hidden, (deg_h[:, None] >= deg_h[None, :]).float()) for _ in range(2)]
        )
        self.last = MaskedLinear(hidden, 2 * D, (deg_out[:, None] > deg_h[None, :]).float())

    def forward(self, v, c):
        h = self.first(v) + self.context(c)
        for layer in self.hidden:
            h = layer(act(h))
        out = self.last(h).view(-1, D, 2)
        return out[..., 0], torch.nn.functional.softplus(out[..., 1]) + 1e-3


class Maf(torch.nn.Module):
    def __init__(self, n_transforms=5):
        super().__init__()
        self.mades = torch.nn.ModuleList([Made() for _ in range(n_transforms)])
        self.perms = [torch.randperm(D) for _ in range(n_transforms)]

    def log_prob(self, t, c):
        z = (t - t_mean) / t_std
        cz = (c - x_mean) / x_std
        logdet = -torch.log(t_std).sum().expand(len(t))
        for made, perm in zip(self.mades, self.perms):
            shift, scale = made(z, cz)
            z = (z * scale + shift)[:, perm]
            logdet = logdet + torch.log(scale).sum(1)
        return -0.5 * (z**2).sum(1) - 0.5 * D * math.log(2 * math.pi) + logdet

    @torch.no_grad()
    def sample(self, n, c):
        cz = ((c - x_mean) / x_std).expand(n, D)
        z = torch.randn(n, D)
        for made, perm in reversed(list(zip(self.mades, self.perms))):
            z = z[:, torch.argsort(perm)]
            y = torch.zeros_like(z)
            for k in range(D):
                shift, scale = made(y, cz)
                y[:, k] = (z[:, k] - shift[:, k]) / scale[:, k]
            z = y
        return z * t_std + t_mean


net = Maf()
opt = torch.optim.Adam(net.parameters(), lr=5e-4)
t0 = time.time()
epochs, best = train_with_patience(
    net, opt, train, val, lambda b: -net.log_prob(theta[b], x[b]).mean(), args.batch
)
fit_s = time.time() - t0

observations = json.load(open(args.observations))
os.makedirs(args.out, exist_ok=True)
sd = math.sqrt(NOISE_VAR)
for obs in [int(o) for o in args.obs.split(",")]:
    xo = np.array(observations[str(obs)])
    xo_t = torch.tensor(xo[None, :], dtype=torch.float32)
    draws = from_space(net.sample(40000, xo_t).double().numpy())
    inside = np.all(np.abs(draws) < 1, axis=1)
    acceptance = inside.mean()
    np.save(os.path.join(args.out, f"glu-obs{obs}.npy"), draws[inside][:10000].astype(np.float32))
    # Exact reference draws (inverse CDF of each truncated normal) and the exact log density.
    lo, hi = ndtr((-1 - xo) / sd), ndtr((1 - xo) / sd)
    ref = xo + sd * ndtri(lo + (hi - lo) * rng.uniform(size=(10000, D)))
    log_p = (-0.5 * ((ref - xo) / sd) ** 2 - math.log(sd) - 0.5 * math.log(2 * math.pi)).sum(1) - np.log(hi - lo).sum()
    ref_space, log_jac = to_space(ref)
    with torch.no_grad():
        log_q = net.log_prob(torch.tensor(ref_space, dtype=torch.float32), xo_t.expand(10000, D)).double().numpy()
    kl = np.mean(log_p - (log_q + log_jac)) + math.log(acceptance)
    print(
        f"obs {obs}: KL(ref||q) {kl:.3f} nats, acceptance {acceptance:.3f}; "
        f"{args.space}, {args.activation}, batch {args.batch}, seed {args.seed}: "
        f"{epochs} epochs, best validation {best:.3f}, fit {fit_s:.0f} s",
        flush=True,
    )
