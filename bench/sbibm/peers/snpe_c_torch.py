"""sbi's SNPE-C (APT) as sbibm ran it for the paper, rebuilt in PyTorch, on gaussian_mixture and
gaussian_linear_uniform.

The peer for issue 13's raw-surrogate target (sbi's published SNPE-C C2ST at 10^4 simulations),
run here beside `bench:sbibm` because sbi itself is not installable on this machine. Rebuilt for
this project from sbibm's and sbi's published settings (no sbi, nflows or sbibm code):

- sbibm's `snpe_c` defaults: 10 rounds of budget/10 simulations, a neural spline flow with 50
  hidden features, 10 atoms, training batches of 10,000 (so every step sees the whole training
  set at 10^4), θ and x z-scored, and automatic transforms: inference runs on the logit image
  u of the prior's box (the prior's density there carries |dθ/du|), draws mapped back at the end.
- sbi's NSF: 5 blocks, each a rational-quadratic spline coupling (10 bins on [-3, 3], linear
  tails, alternating masks; the spline's parameters from a residual network of two blocks of 50
  ReLU units with the context gated into each block) followed by an LU-factored linear map
  initialised to the identity; z-scoring of θ as the first transform, of x on the context.
- sbi's training: Adam at 5e-4, 10% of all rounds' rows held out (drawn afresh each round),
  stop after 20 epochs without a better validation loss and restore the best state, gradient norm
  clipped at 5, the network carried from round to round; round 0 trains by maximum likelihood
  on the prior's draws, later rounds by the atomic loss over every round's rows (each row's
  atoms: itself and 9 other θ of its batch, logits log q(u|x) − log p(u)).
- Proposals: the current network's draws at the observation (on u, so always inside the box).

For each observation it writes 10,000 draws as float32 .npy (score them with
`npx tsx bench/sbibm/score-draws.ts`), and prints the fit's epochs per round and wall time.

Usage: OPENBLAS_NUM_THREADS unset; /usr/bin/python3 bench/sbibm/peers/snpe_c_torch.py
  --task gaussian_mixture --seed 0 --obs 1 --out DIR [--sims 10000] [--rounds 10]
"""
import argparse, json, math, os, time

import numpy as np
import torch
import torch.nn.functional as F

from sbi_training import train_with_patience

TASKS = {
    # name: (dim, prior box half-width, observations file)
    "gaussian_mixture": (2, 10.0, "gm_observations.json"),
    "gaussian_linear_uniform": (10, 1.0, "glu_observations.json"),
}

p = argparse.ArgumentParser()
p.add_argument("--task", choices=sorted(TASKS), required=True)
p.add_argument("--seed", type=int, default=0)
p.add_argument("--obs", default="1")
p.add_argument("--out", required=True)
p.add_argument("--sims", type=int, default=10000)
p.add_argument("--rounds", type=int, default=10)
args = p.parse_args()
torch.set_num_threads(1)
torch.manual_seed(args.seed)
rng = np.random.default_rng(args.seed)
D, HALF, OBS_FILE = TASKS[args.task]
HIDDEN, BLOCKS, BINS, BOUND, ATOMS = 50, 5, 10, 3.0, 10
MIN_W = MIN_H = MIN_D = 1e-3
BATCH, LR, PATIENCE, CLIP = 10000, 5e-4, 20, 5.0


def simulate(theta):
    if args.task == "gaussian_mixture":
        sd = np.where(rng.uniform(size=(len(theta), 1)) < 0.5, 1.0, 0.1)
        return theta + sd * rng.normal(size=theta.shape)
    return theta + math.sqrt(0.1) * rng.normal(size=theta.shape)


# The prior on u = logit((θ + HALF) / 2HALF): log p(u) = log p(θ) + log |dθ/du|.
def to_theta(u):
    return -HALF + 2 * HALF * torch.sigmoid(u)


def to_u(theta):
    s = ((theta + HALF) / (2 * HALF)).clamp(1e-7, 1 - 1e-7)
    return torch.log(s) - torch.log1p(-s)


def prior_log_prob_u(u):
    # The uniform's 1/2HALF and |dθ/du| = 2HALF·σ(u)(1 − σ(u)) cancel per coordinate.
    return (F.logsigmoid(u) + F.logsigmoid(-u)).sum(-1)


class ResidualNet(torch.nn.Module):
    """in → 50, two residual blocks (ReLU, linear, ReLU, linear, context gate), → out."""

    def __init__(self, n_in, n_out, n_context):
        super().__init__()
        self.first = torch.nn.Linear(n_in + n_context, HIDDEN)
        self.blocks = torch.nn.ModuleList()
        for _ in range(2):
            b = torch.nn.ModuleDict(
                {
                    "a": torch.nn.Linear(HIDDEN, HIDDEN),
                    "b": torch.nn.Linear(HIDDEN, HIDDEN),
                    "gate": torch.nn.Linear(n_context, HIDDEN),
                }
            )
            torch.nn.init.uniform_(b["b"].weight, -1e-3, 1e-3)
            torch.nn.init.uniform_(b["b"].bias, -1e-3, 1e-3)
            self.blocks.append(b)
        self.last = torch.nn.Linear(HIDDEN, n_out)

    def forward(self, v, c):
        h = self.first(torch.cat([v, c], -1))
        for b in self.blocks:
            t = b["b"](F.relu(b["a"](F.relu(h))))
            h = h + t * torch.sigmoid(b["gate"](c))
        return self.last(h)


def spline_params(raw):
    """Knots and derivatives of a rational-quadratic spline on [-BOUND, BOUND] from raw outputs."""
    uw, uh, ud = raw[..., :BINS], raw[..., BINS : 2 * BINS], raw[..., 2 * BINS :]
    uw, uh = uw / math.sqrt(HIDDEN), uh / math.sqrt(HIDDEN)

    def knots(un, minimum):
        size = minimum + (1 - minimum * BINS) * torch.softmax(un, -1)
        cum = F.pad(torch.cumsum(size, -1), (1, 0))
        cum = 2 * BOUND * cum - BOUND
        cum = torch.cat([torch.full_like(cum[..., :1], -BOUND), cum[..., 1:-1], torch.full_like(cum[..., :1], BOUND)], -1)
        return cum, cum[..., 1:] - cum[..., :-1]

    cw, w = knots(uw, MIN_W)
    ch, h = knots(uh, MIN_H)
    # Boundary derivatives 1 (linear tails): the padded raw value whose softplus is 1 − MIN_D.
    edge = math.log(math.expm1(1 - MIN_D))
    ud = F.pad(ud, (1, 1), value=edge)
    d = MIN_D + F.softplus(ud)
    return cw, w, ch, h, d


def gather(t, idx):
    return t.gather(-1, idx[..., None])[..., 0]


def rq_spline(x, raw, inverse):
    """The spline (or its inverse) inside [-BOUND, BOUND], identity outside; and log |dy/dx|."""
    inside = (x > -BOUND) & (x < BOUND)
    xc = x.clamp(-BOUND + 1e-6, BOUND - 1e-6)
    cw, w, ch, h, d = spline_params(raw)
    edges = ch if inverse else cw
    k = (torch.sum(xc[..., None] >= edges[..., 1:-1], -1)).long()
    xk, wk, yk, hk = gather(cw, k), gather(w, k), gather(ch, k), gather(h, k)
    dk, dk1 = gather(d, k), gather(d, k + 1)
    s = hk / wk
    if not inverse:
        xi = (xc - xk) / wk
    else:
        # ξ from the quadratic the forward map gives for a y in bin k.
        dy_ = xc - yk
        a = hk * (s - dk) + dy_ * (dk1 + dk - 2 * s)
        b = hk * dk - dy_ * (dk1 + dk - 2 * s)
        c = -s * dy_
        xi = (2 * c) / (-b - torch.sqrt((b**2 - 4 * a * c).clamp_min(0)))
    t = xi * (1 - xi)
    den = s + (dk1 + dk - 2 * s) * t
    y = yk + hk * (s * xi**2 + dk * t) / den if not inverse else xi * wk + xk
    dy = s**2 * (dk1 * xi**2 + 2 * s * t + dk * (1 - xi) ** 2) / den**2
    y = torch.where(inside, y, x)
    logdet = torch.where(inside, torch.log(dy), torch.zeros_like(x))
    return y, (-logdet if inverse else logdet)


class Coupling(torch.nn.Module):
    def __init__(self, even):
        super().__init__()
        mask = torch.zeros(D, dtype=torch.bool)
        mask[(0 if even else 1) :: 2] = True
        self.register_buffer("tr", mask.nonzero()[:, 0])
        self.register_buffer("keep", (~mask).nonzero()[:, 0])
        self.net = ResidualNet(len(self.keep), len(self.tr) * (3 * BINS - 1), D)

    def forward(self, z, c, inverse=False):
        raw = self.net(z[:, self.keep], c).view(len(z), len(self.tr), 3 * BINS - 1)
        y, logdet = rq_spline(z[:, self.tr], raw, inverse)
        out = z.clone()
        out[:, self.tr] = y
        return out, logdet.sum(-1)


class LULinear(torch.nn.Module):
    """z ↦ L U z + b, L unit lower, U upper with a softplus diagonal; the identity at the start."""

    def __init__(self):
        super().__init__()
        self.lower = torch.nn.Parameter(torch.zeros(D, D))
        self.upper = torch.nn.Parameter(torch.zeros(D, D))
        self.diag = torch.nn.Parameter(torch.full((D,), math.log(math.expm1(1 - 1e-3))))
        self.bias = torch.nn.Parameter(torch.zeros(D))

    def mats(self):
        L = torch.tril(self.lower, -1) + torch.eye(D)
        dg = F.softplus(self.diag) + 1e-3
        U = torch.triu(self.upper, 1) + torch.diag(dg)
        return L, U, torch.log(dg).sum()

    def forward(self, z, inverse=False):
        L, U, logdet = self.mats()
        if not inverse:
            return z @ (L @ U).T + self.bias, logdet.expand(len(z))
        y = torch.linalg.solve_triangular(L, (z - self.bias).T, upper=False, unitriangular=True)
        y = torch.linalg.solve_triangular(U, y, upper=True)
        return y.T, -logdet.expand(len(z))


class Flow(torch.nn.Module):
    def __init__(self, u0, x0):
        super().__init__()
        self.register_buffer("u_mean", u0.mean(0))
        self.register_buffer("u_std", u0.std(0))
        self.register_buffer("x_mean", x0.mean(0))
        self.register_buffer("x_std", x0.std(0))
        self.couplings = torch.nn.ModuleList([Coupling(i % 2 == 0) for i in range(BLOCKS)])
        self.linears = torch.nn.ModuleList([LULinear() for _ in range(BLOCKS)])

    def log_prob(self, u, x):
        c = (x - self.x_mean) / self.x_std
        z = (u - self.u_mean) / self.u_std
        logdet = -torch.log(self.u_std).sum().expand(len(u))
        for cp, lu in zip(self.couplings, self.linears):
            z, ld = cp(z, c)
            logdet = logdet + ld
            z, ld = lu(z)
            logdet = logdet + ld
        return -0.5 * (z**2).sum(-1) - 0.5 * D * math.log(2 * math.pi) + logdet

    @torch.no_grad()
    def sample(self, n, x):
        c = ((x - self.x_mean) / self.x_std).expand(n, D)
        z = torch.randn(n, D)
        for cp, lu in reversed(list(zip(self.couplings, self.linears))):
            z, _ = lu(z, inverse=True)
            z, _ = cp(z, c, inverse=True)
        return z * self.u_std + self.u_mean


def atomic_log_prob(net, u, x):
    """log of the proposal posterior over each row's atoms (itself and ATOMS − 1 others)."""
    b = len(u)
    m = min(ATOMS, b)
    probs = (1 - torch.eye(b)) / (b - 1)
    others = torch.multinomial(probs, m - 1, replacement=False)
    atoms = torch.cat([u[:, None, :], u[others]], 1).reshape(b * m, D)
    xs = x.repeat_interleave(m, 0)
    logits = (net.log_prob(atoms, xs) - prior_log_prob_u(atoms)).view(b, m)
    return logits[:, 0] - torch.logsumexp(logits, -1)


def train(net, opt, u, x, atomic):
    n = len(u)
    order = torch.randperm(n)
    n_val = int(0.1 * n)
    val, tr = order[:n_val], order[n_val:]

    def loss_of(idx):
        return -(atomic_log_prob(net, u[idx], x[idx]) if atomic else net.log_prob(u[idx], x[idx])).mean()

    return train_with_patience(net, opt, tr, val, loss_of, BATCH, PATIENCE, CLIP)


observations = json.load(open(os.path.join(os.path.dirname(__file__), OBS_FILE)))
os.makedirs(args.out, exist_ok=True)
per_round = args.sims // args.rounds
for obs in [int(o) for o in args.obs.split(",")]:
    xo = torch.tensor([observations[str(obs)]], dtype=torch.float64).float()
    t0 = time.time()
    theta = torch.tensor(rng.uniform(-HALF, HALF, (per_round, D)), dtype=torch.float32)
    us, xs = [to_u(theta)], [torch.tensor(simulate(theta.double().numpy()), dtype=torch.float32)]
    net = Flow(us[0], xs[0])
    log = []
    for r in range(args.rounds):
        if r > 0:
            u_new = net.sample(per_round, xo)
            us.append(u_new)
            xs.append(torch.tensor(simulate(to_theta(u_new).double().numpy()), dtype=torch.float32))
        # A fresh Adam each round, as sbi's train() makes one per call; the network carries on.
        opt = torch.optim.Adam(net.parameters(), lr=LR)
        epochs, best = train(net, opt, torch.cat(us), torch.cat(xs), atomic=r > 0)
        log.append(f"{epochs}")
        print(f"  round {r}: {epochs} epochs, validation loss {best:.3f}, {time.time() - t0:.0f} s", flush=True)
    draws = to_theta(net.sample(10000, xo)).double().numpy()
    np.save(os.path.join(args.out, f"{args.task}-obs{obs}.npy"), draws.astype(np.float32))
    print(
        f"{args.task} obs {obs}, seed {args.seed}: epochs per round {' '.join(log)}, "
        f"fit {time.time() - t0:.0f} s",
        flush=True,
    )
