#!/usr/bin/env python3
"""Benchmark Stable-Baselines3 PPO training throughput on a trading environment with
the same shapes as tradelab's, for comparison with tradelab's PPO trainer.

Throughput = environment steps per second of `model.learn(total_timesteps)`, so it
includes the rollouts (policy forward passes and env steps) and the PPO updates.

The environment (plain numpy, built here, not tradelab's own):
- Bars come from a CSV with a header holding Open, High, Low, Close and Volume (names
  are case-insensitive; `Close`, not `Adj Close`). Default: the ORCL daily file in
  ../shared/data beside the repository.
- 19 causal features per bar: log returns at lags 1..5; rolling mean and std of the
  log return over 5/10/20 bars; close / SMA(n) - 1 for n = 5/10/20/50; (high-low)/close;
  log volume change; (close-open)/open; (close-low)/(high-low). Each is z-scored with
  the mean and std of the first 70% of rows, clipped to +-10, NaN -> 0.
  (--features above 19 repeats columns, below 19 drops the last ones.)
- Observation (float32 Box): the last `window` rows of features flattened, then three
  account values: equity / initial - 1, signed exposure (position value / equity) and
  the unrealised P&L as a fraction of the entry notional. Size window*features + 3
  (611 by default).
- Discrete(5) actions: 0 BUY_LONG, 1 SELL_SHORT (both only when flat), 2 CLOSE_LONG,
  3 CLOSE_SHORT (only when long / short), 4 HOLD. Invalid actions act as HOLD. An
  entry takes a position of 25% of equity (in shares at the current close) and pays 25;
  an exit pays 35. Acting at bar t earns shares * (close[t+1] - close[t]).
- Reward = change in equity / initial cash (100000) * 100.
- Episodes are 256 steps from a uniform random start in the first 70% of rows,
  truncated earlier at the end of the data. Never terminated.

PPO is SB3's `PPO("MlpPolicy", ...)` on a DummyVecEnv of --envs copies, on the CPU,
with torch limited to --threads threads. Each of --repeats timed runs builds a fresh
model (untimed) and times `model.learn(--timesteps)`.

--net separate (default) is SB3's MlpPolicy as users run it: separate actor and critic
networks, each obs -> 64 -> 64 (tanh). --net shared is the shape of tradelab's MLP
policy: one trunk obs -> 64 -> 64 (tanh) shared by the action and value heads (a
features extractor, with net_arch empty), so half the first layer's arithmetic.

Prints one JSON line:
  {"peer", "version", "torch", "threads", "obs", "net", "parameters", "envs", "n_steps",
   "batch_size", "epochs", "timesteps", "steps_per_s_median", "steps_per_s_all"}
where steps_per_s = model.num_timesteps / learn() wall time.
"""

from __future__ import annotations

import os

# Before numpy/torch are imported: no hidden thread pools besides torch's own, which
# main() sets with torch.set_num_threads(--threads).
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import gymnasium as gym  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_CSV = REPO_ROOT.parent / "shared" / "data" / "orcl-1995-2014.txt"

INITIAL_CASH = 100_000.0
ENTRY_FEE, EXIT_FEE = 25.0, 35.0
POSITION_FRACTION = 0.25
EPISODE_LEN = 256
TRAIN_FRACTION = 0.7
BUY_LONG, SELL_SHORT, CLOSE_LONG, CLOSE_SHORT, HOLD = range(5)
N_BASE_FEATURES = 19


def read_bars(path: Path) -> pd.DataFrame:
    df = pd.read_csv(path)
    cols = {c.strip().lower(): c for c in df.columns}
    missing = [c for c in ("open", "high", "low", "close", "volume") if c not in cols]
    if missing:
        raise SystemExit(f"{path}: missing columns {missing} in the header {list(df.columns)}")
    return pd.DataFrame(
        {c: df[cols[c]].astype(np.float64).to_numpy() for c in ("open", "high", "low", "close", "volume")}
    )


def make_features(bars: pd.DataFrame, n_features: int, split: int) -> np.ndarray:
    """[rows, n_features] float32; every value at row t uses bars up to t only."""
    c, o, h, lo, v = (bars[k] for k in ("close", "open", "high", "low", "volume"))
    r = np.log(c).diff()
    cols = [r.shift(lag) for lag in range(5)]  # lags 1..5: r_t .. r_{t-4}
    cols += [r.rolling(n).mean() for n in (5, 10, 20)]
    cols += [r.rolling(n).std() for n in (5, 10, 20)]
    cols += [c / c.rolling(n).mean() - 1.0 for n in (5, 10, 20, 50)]
    cols.append((h - lo) / c)
    cols.append(np.log(v.replace(0.0, np.nan)).diff())
    cols.append((c - o) / o)
    cols.append((c - lo) / (h - lo).replace(0.0, np.nan))
    assert len(cols) == N_BASE_FEATURES
    x = np.column_stack([col.to_numpy() for col in cols])
    x[~np.isfinite(x)] = np.nan
    x = x[:, [i % N_BASE_FEATURES for i in range(n_features)]]
    mean = np.nanmean(x[:split], axis=0)
    std = np.nanstd(x[:split], axis=0)
    std = np.where(np.isfinite(std) & (std > 0), std, 1.0)
    z = np.clip((x - mean) / std, -10.0, 10.0)
    return np.nan_to_num(z, nan=0.0).astype(np.float32)


class TradingEnv(gym.Env):
    """See the module docstring. step() is plain numpy/float arithmetic."""

    metadata = {"render_modes": []}

    def __init__(self, features: np.ndarray, close: np.ndarray, window: int, split: int):
        super().__init__()
        self.features = features
        self.prices = close
        self.window = window
        self.n_win = window * features.shape[1]
        self.first_start = max(window - 1, 50)
        self.last_start = max(self.first_start + 1, split)
        self.last_bar = len(close) - 2  # the last bar an action can be taken on
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (self.n_win + 3,), np.float32)
        self.action_space = gym.spaces.Discrete(5)

    def _obs(self) -> np.ndarray:
        t = self.t
        obs = np.empty(self.n_win + 3, np.float32)
        obs[: self.n_win] = self.features[t - self.window + 1 : t + 1].reshape(-1)
        price = self.prices[t]
        value = self.shares * price
        obs[self.n_win] = self.equity / INITIAL_CASH - 1.0
        obs[self.n_win + 1] = value / self.equity if self.equity > 0 else 0.0
        obs[self.n_win + 2] = (
            self.shares * (price - self.entry_price) / abs(self.shares * self.entry_price) if self.shares else 0.0
        )
        return obs

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = int(self.np_random.integers(self.first_start, self.last_start))
        self.steps = 0
        self.cash = INITIAL_CASH
        self.shares = 0.0
        self.entry_price = 0.0
        self.equity = INITIAL_CASH
        return self._obs(), {}

    def step(self, action):
        a = int(action)
        t = self.t
        price = self.prices[t]
        before = self.equity
        if self.shares == 0.0:
            if a == BUY_LONG or a == SELL_SHORT:
                shares = POSITION_FRACTION * self.equity / price
                self.shares = shares if a == BUY_LONG else -shares
                self.cash -= self.shares * price + ENTRY_FEE
                self.entry_price = price
        elif (a == CLOSE_LONG and self.shares > 0.0) or (a == CLOSE_SHORT and self.shares < 0.0):
            self.cash += self.shares * price - EXIT_FEE
            self.shares = 0.0
        # else: HOLD, or an invalid action acting as HOLD
        self.t = t + 1
        self.steps += 1
        self.equity = self.cash + self.shares * self.prices[t + 1]
        reward = (self.equity - before) / INITIAL_CASH * 100.0
        truncated = self.steps >= EPISODE_LEN or self.t >= self.last_bar
        return self._obs(), reward, False, truncated, {}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--csv", type=Path, default=DEFAULT_CSV, help="OHLCV CSV with a header")
    ap.add_argument("--window", type=int, default=32)
    ap.add_argument("--features", type=int, default=N_BASE_FEATURES)
    ap.add_argument("--envs", type=int, default=8)
    ap.add_argument("--n-steps", type=int, default=128)
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--timesteps", type=int, default=65536)
    ap.add_argument("--threads", type=int, default=1, help="torch.set_num_threads")
    ap.add_argument("--hidden", type=int, default=64)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--net", choices=("separate", "shared"), default="separate")
    args = ap.parse_args()

    import torch
    import stable_baselines3
    from stable_baselines3 import PPO
    from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
    from stable_baselines3.common.vec_env import DummyVecEnv

    class SharedTrunk(BaseFeaturesExtractor):
        """obs -> hidden -> hidden with tanh, shared by the actor and the critic."""

        def __init__(self, observation_space, hidden: int):
            super().__init__(observation_space, features_dim=hidden)
            n = int(observation_space.shape[0])
            self.net = torch.nn.Sequential(
                torch.nn.Linear(n, hidden), torch.nn.Tanh(), torch.nn.Linear(hidden, hidden), torch.nn.Tanh()
            )

        def forward(self, obs):
            return self.net(obs)

    torch.set_num_threads(args.threads)

    bars = read_bars(args.csv)
    split = int(len(bars) * TRAIN_FRACTION)
    if split <= max(args.window - 1, 50) + 1:
        raise SystemExit(f"{args.csv}: too few rows ({len(bars)}) for window {args.window}")
    features = make_features(bars, args.features, split)
    close = bars["close"].to_numpy()

    def make_vec_env() -> DummyVecEnv:
        return DummyVecEnv(
            [lambda: TradingEnv(features, close, args.window, split) for _ in range(args.envs)]
        )

    if args.net == "shared":
        policy_kwargs = dict(
            features_extractor_class=SharedTrunk,
            features_extractor_kwargs=dict(hidden=args.hidden),
            share_features_extractor=True,
            net_arch=dict(pi=[], vf=[]),
        )
    else:
        policy_kwargs = dict(net_arch=dict(pi=[args.hidden, args.hidden], vf=[args.hidden, args.hidden]))

    rates = []
    obs_size = None
    for run in range(args.repeats):
        env = make_vec_env()
        obs_size = int(env.observation_space.shape[0])
        model = PPO(
            "MlpPolicy",
            env,
            n_steps=args.n_steps,
            batch_size=args.batch_size,
            n_epochs=args.epochs,
            learning_rate=3e-4,
            gamma=0.99,
            gae_lambda=0.95,
            clip_range=0.2,
            ent_coef=0.01,
            vf_coef=0.5,
            max_grad_norm=0.5,
            policy_kwargs=policy_kwargs,
            device="cpu",
            seed=args.seed,
            verbose=0,
        )
        parameters = sum(p.numel() for p in model.policy.parameters())
        start = time.perf_counter()
        model.learn(total_timesteps=args.timesteps)
        elapsed = time.perf_counter() - start
        rates.append(model.num_timesteps / elapsed)
        env.close()

    print(
        json.dumps(
            {
                "peer": "stable-baselines3",
                "version": stable_baselines3.__version__,
                "torch": torch.__version__,
                "threads": args.threads,
                "obs": obs_size,
                "net": args.net,
                "parameters": parameters,
                "envs": args.envs,
                "n_steps": args.n_steps,
                "batch_size": args.batch_size,
                "epochs": args.epochs,
                "timesteps": args.timesteps,
                "steps_per_s_median": round(statistics.median(rates), 1),
                "steps_per_s_all": [round(r, 1) for r in rates],
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
