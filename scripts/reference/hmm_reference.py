#!/usr/bin/env python3
"""hmmlearn as the independent reference for tradelab's Gaussian HMM.

Reads a JSON file {"data": [[...], ...], "start": [...], "transition": [[...]],
"means": [[...]], "variances": [[...]], "iterations": N} and prints JSON with:

* "log_likelihood": hmmlearn's score(X) (the forward algorithm) of the given
  parameters;
* the parameters after N Baum-Welch iterations from the given ones
  (init_params="" so nothing is re-initialised; priors neutral: Dirichlet 1,
  covars_prior 0, a negligible min_covar; tol very negative so exactly N
  iterations run).
"""
import json
import sys

import numpy as np
from hmmlearn.hmm import GaussianHMM


def model(p, iterations):
    k = len(p["start"])
    m = GaussianHMM(
        n_components=k,
        covariance_type="diag",
        n_iter=iterations,
        tol=-1e300,
        init_params="",
        params="stmc",
        min_covar=1e-12,
        covars_prior=0.0,
        covars_weight=1.0,
        startprob_prior=1.0,
        transmat_prior=1.0,
        implementation="scaling",
    )
    m.startprob_ = np.array(p["start"])
    m.transmat_ = np.array(p["transition"])
    m.means_ = np.array(p["means"])
    m.covars_ = np.array(p["variances"])
    return m


def main():
    p = json.load(open(sys.argv[1]))
    x = np.array(p["data"])
    ll = model(p, 1).score(x)
    fitted = model(p, p["iterations"]).fit(x)
    print(json.dumps({
        "log_likelihood": ll,
        "start": fitted.startprob_.tolist(),
        "transition": fitted.transmat_.tolist(),
        "means": fitted.means_.tolist(),
        # hmmlearn's covars_ property returns full matrices; the diagonal is stored.
        "variances": fitted._covars_.tolist(),
    }))


if __name__ == "__main__":
    main()
