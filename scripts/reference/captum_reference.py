"""Captum's IntegratedGradients on a tradelab PPO policy, rebuilt in PyTorch
from its safetensors weights: the independent reference for the forensics
attributions (crates/agents/src/attribution.rs, checked by
crates/agents/src/ppo/tests.rs).

    python captum_reference.py WEIGHTS.safetensors CASE.json

CASE is JSON: {"encoder": "lstm" | "mlp", "window": [W*F values, oldest bar
first], "bars": W, "features": F, "account": [3 values], "mask": [5 of 0/1],
"instrument": i, "timeframe": k, "action": a, "alphas": [...], "weights":
[...]}. Prints JSON: {"window": [...], "account": [...], "output": f(x),
"baseline_output": f(0), "delta": sum of the attributions - (f(x) -
f(0))}.

The network is tradelab_nn::policy::PolicyNet written again from its
documentation, in float64: an LSTM (gates i, f, g, o; one bias; zero
initial state) or a tanh layer over the flattened window, the instrument
and timeframe embeddings, a tanh trunk and the policy head. The explained
output is the chosen action's masked log-softmax (invalid actions get
-1e9). The baseline is all zeros; the path's points and weights are
tradelab's (alpha = u^3 on a midpoint grid, denser near the baseline),
handed to Captum's integrator as its `step_sizes_and_alphas`, so what is
compared is the gradients and their sums, computed independently.
"""

import json
import sys

import torch
from captum.attr import IntegratedGradients
from safetensors.torch import load_file

MASKED_LOGIT = -1e9


class Policy(torch.nn.Module):
    def __init__(self, weights, case):
        super().__init__()
        self.w = {k: v.to(torch.float64) for k, v in weights.items()}
        self.encoder = case["encoder"]
        self.mask = torch.tensor(case["mask"], dtype=torch.float64)
        self.instrument = case["instrument"]
        self.timeframe = case["timeframe"]
        self.action = case["action"]

    def encode(self, window):
        w = self.w
        if self.encoder == "mlp":
            x = window.flatten(1)
            return torch.tanh(x @ w["encoder.mlp.weight"].T + w["encoder.mlp.bias"])
        w_ih, w_hh, bias = w["encoder.lstm.weight_ih"], w["encoder.lstm.weight_hh"], w["encoder.lstm.bias"]
        n, hidden = window.shape[0], w_hh.shape[1]
        h = torch.zeros(n, hidden, dtype=torch.float64)
        c = torch.zeros(n, hidden, dtype=torch.float64)
        for t in range(window.shape[1]):
            gates = window[:, t] @ w_ih.T + h @ w_hh.T + bias
            i, f, g, o = gates.chunk(4, dim=1)
            c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
            h = torch.sigmoid(o) * torch.tanh(c)
        return h

    def forward(self, window, account):
        w = self.w
        n = window.shape[0]
        inst = w["embedding.instrument"][self.instrument].expand(n, -1)
        tf = w["embedding.timeframe"][self.timeframe].expand(n, -1)
        joined = torch.cat([self.encode(window), account, inst, tf], dim=1)
        z = torch.tanh(joined @ w["trunk.weight"].T + w["trunk.bias"])
        logits = z @ w["head.policy.weight"].T + w["head.policy.bias"]
        masked = logits + (self.mask - 1.0) * -MASKED_LOGIT
        return torch.log_softmax(masked, dim=1)[:, self.action]


def main():
    weights = load_file(sys.argv[1])
    with open(sys.argv[2]) as f:
        case = json.load(f)
    policy = Policy(weights, case)
    window = torch.tensor(case["window"], dtype=torch.float64).reshape(1, case["bars"], case["features"])
    account = torch.tensor(case["account"], dtype=torch.float64).reshape(1, 3)
    baselines = (torch.zeros_like(window), torch.zeros_like(account))
    ig = IntegratedGradients(policy)
    # The public attribute() takes only named rules; _attribute() takes the
    # points (Captum 0.9).
    a_window, a_account = ig._attribute(
        (window, account),
        baselines,
        n_steps=len(case["alphas"]),
        step_sizes_and_alphas=(case["weights"], case["alphas"]),
    )
    with torch.no_grad():
        output = policy(window, account).item()
        baseline_output = policy(*baselines).item()
    delta = (a_window.sum() + a_account.sum()).item() - (output - baseline_output)
    json.dump(
        {
            "window": a_window.flatten().tolist(),
            "account": a_account.flatten().tolist(),
            "output": output,
            "baseline_output": baseline_output,
            "delta": delta,
        },
        sys.stdout,
    )


if __name__ == "__main__":
    main()
