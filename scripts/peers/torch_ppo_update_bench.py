#!/usr/bin/env python3
"""Time one PPO update step (forward, loss, backward, gradient clipping, Adam step) in
PyTorch for tradelab's two policy networks, at the same shapes and thread count, for
comparison with the Rust/candle implementation (crates/nn, crates/agents).

The network follows crates/nn/src/policy.rs:
- encoder over the window [B, W, F]:
  - lstm: a single-layer torch.nn.LSTM (hidden H, batch_first), zero initial state;
    its final hidden state. (torch's LSTM has two bias vectors, b_ih and b_hh, where
    tradelab's has one: 4H extra parameters.)
  - transformer: h = x W_in + P (learned positions [W, d], d = H); --layers pre-norm
    layers of h = h + W_o MHA(LN1(h)) (fused qkv d -> 3d, --heads heads,
    softmax(Q K^T / sqrt(d_head)) V) and h = h + W_2 relu(W_1 LN2(h)) (ff = 4d); a final
    LayerNorm (tradelab's Encoder applies one after the layers); the last position.
- z = tanh(W_trunk [e, account(3), instrument_emb(64), timeframe_emb(32)] + b), with
  embedding tables of one row each.
- heads: policy logits Linear(H, 5); quantity Linear(H, 2) -> Beta(1 + softplus(a),
  1 + softplus(b)); value Linear(H, 1).
- Initialisation as tradelab's: orthogonal weights (gain sqrt 2 for ff1 and the trunk,
  0.01 for the policy and quantity heads, 1 elsewhere), zero biases, LayerNorm 1/0,
  positions N(0, 0.02), embeddings N(0, 1).

The loss, per minibatch of --batch samples:
- new log-prob = log_softmax(logits with invalid actions at -1e9)[action] +
  Beta log-density of the quantity;
- ratio = exp(new - old); advantages normalised over the minibatch ((a - mean) /
  (std + 1e-8), population std); clipped surrogate with clip 0.2;
- + 0.5 * mean((value - return)^2) - 0.01 * mean(categorical entropy + Beta entropy).
Then backward, clip_grad_norm_(0.5) and Adam(lr 3e-4, eps 1e-5).

Inputs are random but realistic (HOLD always valid, actions drawn among valid ones,
quantities in (0.05, 0.95), old log-probs = the initial network's log-probs plus
N(0, 0.05) noise so some ratios clip). They are built once; each timed iteration is a
full update on the same minibatch. --warmup untimed iterations come first.

Prints one JSON line per encoder:
  {"peer", "torch", "encoder", "batch", "window", "features", "hidden", "threads",
   "update_ms_median", "update_ms_p10", "update_ms_p90"}
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

ACCOUNT = 3
ACTIONS = 5
HOLD = 4
INSTRUMENT_EMBEDDING = 64
TIMEFRAME_EMBEDDING = 32
MASKED_LOGIT = -1e9
CLIP, VF_COEF, ENT_COEF, MAX_GRAD_NORM = 0.2, 0.5, 0.01, 0.5
LR, ADAM_EPS = 3e-4, 1e-5


def linear(inp: int, out: int, gain: float) -> nn.Linear:
    layer = nn.Linear(inp, out)
    nn.init.orthogonal_(layer.weight, gain)
    nn.init.zeros_(layer.bias)
    return layer


class EncoderLayer(nn.Module):
    def __init__(self, d: int, heads: int):
        super().__init__()
        if d % heads:
            raise SystemExit(f"model width {d} is not divisible by {heads} heads")
        self.heads = heads
        self.ln1 = nn.LayerNorm(d, eps=1e-5)
        self.qkv = linear(d, 3 * d, 1.0)
        self.out = linear(d, d, 1.0)
        self.ln2 = nn.LayerNorm(d, eps=1e-5)
        self.ff1 = linear(d, 4 * d, math.sqrt(2.0))
        self.ff2 = linear(4 * d, d, 1.0)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        b, t, d = h.shape
        dh = d // self.heads
        q, k, v = (
            u.reshape(b, t, self.heads, dh).transpose(1, 2) for u in self.qkv(self.ln1(h)).split(d, dim=-1)
        )
        att = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(dh), dim=-1)
        mixed = (att @ v).transpose(1, 2).reshape(b, t, d)
        h = h + self.out(mixed)
        return h + self.ff2(F.relu(self.ff1(self.ln2(h))))


class TransformerEncoder(nn.Module):
    def __init__(self, features: int, window: int, d: int, heads: int, layers: int):
        super().__init__()
        self.input = linear(features, d, 1.0)
        self.positions = nn.Parameter(torch.randn(window, d) * 0.02)
        self.layers = nn.ModuleList(EncoderLayer(d, heads) for _ in range(layers))
        self.norm = nn.LayerNorm(d, eps=1e-5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.input(x) + self.positions
        for layer in self.layers:
            h = layer(h)
        return self.norm(h)[:, -1]


class LstmEncoder(nn.Module):
    def __init__(self, features: int, hidden: int):
        super().__init__()
        self.lstm = nn.LSTM(features, hidden, num_layers=1, batch_first=True)
        for name, p in self.lstm.named_parameters():
            (nn.init.orthogonal_ if name.startswith("weight") else nn.init.zeros_)(p)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _, (h, _) = self.lstm(x)
        return h[-1]


class PolicyNet(nn.Module):
    def __init__(self, encoder: str, features: int, window: int, hidden: int, heads: int, layers: int):
        super().__init__()
        if encoder == "lstm":
            self.encoder = LstmEncoder(features, hidden)
        else:
            self.encoder = TransformerEncoder(features, window, hidden, heads, layers)
        self.instrument = nn.Embedding(1, INSTRUMENT_EMBEDDING)
        self.timeframe = nn.Embedding(1, TIMEFRAME_EMBEDDING)
        self.trunk = linear(hidden + ACCOUNT + INSTRUMENT_EMBEDDING + TIMEFRAME_EMBEDDING, hidden, math.sqrt(2.0))
        self.policy = linear(hidden, ACTIONS, 0.01)
        self.quantity = linear(hidden, 2, 0.01)
        self.value = linear(hidden, 1, 1.0)

    def forward(self, window, account, instrument, timeframe):
        e = self.encoder(window)
        z = torch.tanh(self.trunk(torch.cat([e, account, self.instrument(instrument), self.timeframe(timeframe)], 1)))
        q = self.quantity(z)
        return self.policy(z), q[:, 0], q[:, 1], self.value(z).squeeze(1)


def log_probs_and_entropy(net: PolicyNet, batch: dict):
    logits, raw_a, raw_b, value = net(batch["window"], batch["account"], batch["instrument"], batch["timeframe"])
    log_p = torch.log_softmax(logits + (1.0 - batch["mask"]) * MASKED_LOGIT, dim=-1)
    cat_entropy = -(log_p.exp() * log_p).sum(-1)
    alpha, beta = 1.0 + F.softplus(raw_a), 1.0 + F.softplus(raw_b)
    log_b = torch.lgamma(alpha) + torch.lgamma(beta) - torch.lgamma(alpha + beta)
    x = batch["quantity"]
    beta_log_prob = (alpha - 1.0) * torch.log(x) + (beta - 1.0) * torch.log1p(-x) - log_b
    beta_entropy = (
        log_b
        - (alpha - 1.0) * torch.digamma(alpha)
        - (beta - 1.0) * torch.digamma(beta)
        + (alpha + beta - 2.0) * torch.digamma(alpha + beta)
    )
    new_log_prob = log_p.gather(1, batch["action"].unsqueeze(1)).squeeze(1) + beta_log_prob
    return new_log_prob, cat_entropy + beta_entropy, value


def ppo_loss(net: PolicyNet, batch: dict) -> torch.Tensor:
    new_log_prob, entropy, value = log_probs_and_entropy(net, batch)
    adv = batch["advantage"]
    adv = (adv - adv.mean()) / (adv.std(unbiased=False) + 1e-8)
    ratio = torch.exp(new_log_prob - batch["old_log_prob"])
    surrogate = torch.min(ratio * adv, torch.clamp(ratio, 1.0 - CLIP, 1.0 + CLIP) * adv)
    policy_loss = -surrogate.mean()
    value_loss = 0.5 * (value - batch["return"]).pow(2).mean()
    return policy_loss + VF_COEF * value_loss - ENT_COEF * entropy.mean()


def make_batch(net: PolicyNet, b: int, w: int, f: int, gen: torch.Generator) -> dict:
    mask = (torch.rand(b, ACTIONS, generator=gen) < 0.5).float()
    mask[:, HOLD] = 1.0
    action = torch.multinomial(mask, 1, generator=gen).squeeze(1)
    batch = {
        "window": torch.randn(b, w, f, generator=gen),
        "account": torch.randn(b, ACCOUNT, generator=gen) * 0.1,
        "instrument": torch.zeros(b, dtype=torch.long),
        "timeframe": torch.zeros(b, dtype=torch.long),
        "mask": mask,
        "action": action,
        "quantity": 0.05 + 0.9 * torch.rand(b, generator=gen),
        "advantage": torch.randn(b, generator=gen),
        "return": torch.randn(b, generator=gen),
    }
    with torch.no_grad():
        lp, _, _ = log_probs_and_entropy(net, batch)
    batch["old_log_prob"] = lp + 0.05 * torch.randn(b, generator=gen)
    return batch


def bench(encoder: str, args) -> dict:
    torch.manual_seed(args.seed)
    net = PolicyNet(encoder, args.features, args.window, args.hidden, args.heads, args.layers)
    opt = torch.optim.Adam(net.parameters(), lr=LR, eps=ADAM_EPS)
    batch = make_batch(net, args.batch, args.window, args.features, torch.Generator().manual_seed(args.seed))

    def update() -> None:
        loss = ppo_loss(net, batch)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(net.parameters(), MAX_GRAD_NORM)
        opt.step()

    for _ in range(args.warmup):
        update()
    times = []
    for _ in range(args.iters):
        start = time.perf_counter()
        update()
        times.append((time.perf_counter() - start) * 1e3)
    times.sort()
    q = statistics.quantiles(times, n=10, method="inclusive") if len(times) > 1 else times * 9
    return {
        "peer": "pytorch",
        "torch": torch.__version__,
        "encoder": encoder,
        "batch": args.batch,
        "window": args.window,
        "features": args.features,
        "hidden": args.hidden,
        "threads": torch.get_num_threads(),
        "update_ms_median": round(statistics.median(times), 3),
        "update_ms_p10": round(q[0], 3),
        "update_ms_p90": round(q[8], 3),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--encoder", choices=("lstm", "transformer", "both"), default="both")
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--window", type=int, default=32)
    ap.add_argument("--features", type=int, default=19)
    ap.add_argument("--hidden", type=int, default=64)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1, help="torch.set_num_threads")
    ap.add_argument("--iters", type=int, default=50, help="timed updates")
    ap.add_argument("--warmup", type=int, default=5, help="untimed updates first")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    if args.iters < 1:
        raise SystemExit("--iters must be at least 1")

    torch.set_num_threads(args.threads)
    encoders = ("lstm", "transformer") if args.encoder == "both" else (args.encoder,)
    for encoder in encoders:
        print(json.dumps(bench(encoder, args)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
