#!/usr/bin/env bash
# The Python reference implementations some tests compare against
# (safetensors, MLflow, authlib, hmmlearn), each in its own venv, and the
# environment variables that switch those tests on, printed as `export`
# lines for the caller to source; progress and warnings go to stderr.
#
#   eval "$(scripts/reference/venvs.sh)"    # then scripts/test
#
# A package index that cannot be reached skips the test that needs it, and
# says so. The venvs live outside the clone, so later runs on the same
# machine reuse them (pip only checks the pins).
set -uo pipefail
cd "$(dirname "$0")/../.."

# Python's safetensors package is the independent reader of our checkpoints;
# if the package index cannot be reached the check is skipped and says so.
# The reference venvs live outside the clone, so a CI run on a machine
# that has run it before reuses them (pip only checks the pins); a new
# machine installs them from scratch.
VENVS=${TRADELAB_CI_VENVS:-${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}/tradelab-ci}
mkdir -p "$VENVS"

echo >&2 "== python safetensors (checkpoint interoperability test)"
if [ ! -x "$VENVS/pyenv/bin/python" ]; then
  python3 -m venv "$VENVS/pyenv" >/dev/null 2>&1 || true
fi
if "$VENVS/pyenv/bin/python" -m pip install --quiet --disable-pip-version-check -r scripts/reference/requirements-checkpoint.txt; then
  echo "export TRADELAB_PYTHON_TESTS=1"
  printf 'export TRADELAB_PYTHON=%q\n' "$VENVS/pyenv/bin/python"
else
  echo >&2 "warning: could not install safetensors; the Python checkpoint check will be skipped"
fi

# A real MLflow tracking server for the mirror's integration test, in its
# own venv (its dependencies are many); skipped, and said so, if the package
# index cannot be reached.
echo >&2 "== MLflow (mirror integration test)"
if [ ! -x "$VENVS/mlflowenv/bin/mlflow" ]; then
  python3 -m venv "$VENVS/mlflowenv" >/dev/null 2>&1 || true
  "$VENVS/mlflowenv/bin/pip" install --quiet --disable-pip-version-check -r scripts/reference/requirements-mlflow.txt || true
fi
if [ -x "$VENVS/mlflowenv/bin/mlflow" ]; then
  printf 'export TRADELAB_TEST_MLFLOW=%q\n' "$VENVS/mlflowenv/bin/mlflow"
else
  echo >&2 "warning: could not install mlflow; the MLflow mirror test will be skipped"
fi

# Python's authlib: the independent OAuth client the authorization server's
# integration test drives (tests/oauth.rs); skipped, and said so, if the
# package index cannot be reached.
echo >&2 "== authlib (OAuth client integration test)"
if [ ! -x "$VENVS/oauthenv/bin/python" ]; then
  python3 -m venv "$VENVS/oauthenv" >/dev/null 2>&1 || true
fi
if "$VENVS/oauthenv/bin/python" -m pip install --quiet --disable-pip-version-check -r scripts/reference/requirements-oauth.txt; then
  printf 'export TRADELAB_TEST_AUTHLIB=%q\n' "$VENVS/oauthenv/bin/python"
else
  echo >&2 "warning: could not install authlib; the OAuth client integration test will be skipped"
fi

# hmmlearn: the independent reference for the regime model's Baum-Welch
# (crates/regime/tests/hmmlearn.rs); skipped, and said so, if unavailable.
echo >&2 "== hmmlearn (regime model reference test)"
if [ ! -x "$VENVS/hmmenv/bin/python" ]; then
  python3 -m venv "$VENVS/hmmenv" >/dev/null 2>&1 || true
fi
if "$VENVS/hmmenv/bin/python" -m pip install --quiet --disable-pip-version-check -r scripts/reference/requirements-regime.txt; then
  printf 'export TRADELAB_TEST_HMMLEARN=%q\n' "$VENVS/hmmenv/bin/python"
else
  echo >&2 "warning: could not install hmmlearn; the regime reference test will be skipped"
fi


# The Python package's tests (crates/py/pytests, run by the workspace's
# test build through crates/py/tests/pytest_suite.rs): pytest, gymnasium,
# pandas, Stable-Baselines3, sb3-contrib and torch (several GB the first
# time); skipped, and said so, if the package index cannot be reached.
echo >&2 "== Python package tests (pytest, gymnasium, SB3, sb3-contrib, nbclient)"
if [ ! -x "$VENVS/pkgenv/bin/python" ]; then
  python3 -m venv "$VENVS/pkgenv" >/dev/null 2>&1 || true
fi
if "$VENVS/pkgenv/bin/python" -m pip install --quiet --disable-pip-version-check -r crates/py/requirements-test.txt; then
  printf 'export TRADELAB_PYTHON_PACKAGE_ENV=%q\n' "$VENVS/pkgenv"
else
  echo >&2 "warning: could not install the Python package's test requirements; its tests will be skipped"
fi

# Captum: the independent reference for the forensics attributions
# (integrated gradients), in the package venv beside its torch.
echo >&2 "== Captum (attribution reference test)"
if [ -x "$VENVS/pkgenv/bin/python" ] && "$VENVS/pkgenv/bin/python" -m pip install --quiet --disable-pip-version-check -r scripts/reference/requirements-captum.txt; then
  printf 'export TRADELAB_TEST_CAPTUM=%q\n' "$VENVS/pkgenv/bin/python"
else
  echo >&2 "warning: could not install Captum; the attribution reference test will be skipped"
fi
