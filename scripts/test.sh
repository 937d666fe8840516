#!/usr/bin/env bash
# The whole test suite on a fresh machine: installs what the tests need (Debian
# packages with apt, Python packages into ./.venv), then checks formatting and lints
# and runs every test. `.ci/run` calls exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."

# Where the time goes: each phase's seconds, printed as it ends and summed at the end.
timings=()
mark=$SECONDS
took() {
    timings+=("$1 $((SECONDS - mark))s")
    echo "== $1 took $((SECONDS - mark)) s"
    mark=$SECONDS
}
trap 'echo "== timings: ${timings[*]:-} (total ${SECONDS}s)"' EXIT

# Debian packages the tests use: openssl makes the certificates of the STARTTLS test,
# prometheus-alertmanager is the real Alertmanager the alertmanager sink is tested on,
# prometheus brings promtool (checks /metrics), chromium and chromium-driver are the
# real browser the status page is tested in, nginx the real reverse proxy (with TLS) in
# front of it, systemd brings systemd-analyze (verifies the unit), procps' ps is what the
# host check's process count is compared with.
APT_PACKAGES=(openssl prometheus-alertmanager prometheus chromium chromium-driver nginx systemd procps)
# Python packages the tests use, installed into ./.venv: aiosmtpd is the real SMTP
# server of the email tests; deltalake, pandas and pyarrow read and write Delta tables
# the way the trading system does; moto[server] is the local S3 server the object-storage
# tests (the `s3` feature) run against.
PY_PACKAGES=(aiosmtpd==1.4.6 deltalake==1.6.6 pandas==3.1.1 pyarrow==26.0.1 "moto[server]==5.1.20")

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
took apt

if ((${#PY_PACKAGES[@]})); then
    if [ ! -x .venv/bin/python ]; then
        echo "== creating .venv"
        python3 -m venv .venv
    fi
    .venv/bin/pip install -q "${PY_PACKAGES[@]}"
    export VITALS_TEST_PYTHON="$PWD/.venv/bin/python"
fi
took pip

echo "== cargo fmt --check"
cargo fmt --all -- --check
took fmt
# The default build, and with the `s3` feature (object storage), whose tests need it.
echo "== cargo clippy --all-targets -- -D warnings (default features, then --features s3)"
cargo clippy --all-targets --quiet -- -D warnings
took clippy
cargo clippy --all-targets --quiet --features s3 -- -D warnings
took "clippy s3"
echo "== cargo test --features s3"
cargo test --features s3
took test
