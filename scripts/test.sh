#!/usr/bin/env bash
# The whole test suite on a fresh machine: installs what the tests need (Debian
# packages with apt, Python packages into ./.venv), then checks formatting and lints
# and runs every test. `.ci/run` calls exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages the tests use (none beyond the base image yet; later suites add
# chromium, prometheus, prometheus-alertmanager here).
APT_PACKAGES=()
# Python packages the tests use, installed into ./.venv (later suites add deltalake,
# pandas, aiosmtpd here).
PY_PACKAGES=()

if ((${#APT_PACKAGES[@]})); then
    missing=()
    for p in "${APT_PACKAGES[@]}"; do
        dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
    done
    if ((${#missing[@]})); then
        echo "== installing Debian packages: ${missing[*]}"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
    fi
fi

if ((${#PY_PACKAGES[@]})); then
    if [ ! -x .venv/bin/python ]; then
        echo "== creating .venv"
        python3 -m venv .venv
    fi
    .venv/bin/pip install -q "${PY_PACKAGES[@]}"
    export VITALS_TEST_PYTHON="$PWD/.venv/bin/python"
fi

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy --all-targets -- -D warnings"
cargo clippy --all-targets --quiet -- -D warnings
echo "== cargo test"
cargo test
