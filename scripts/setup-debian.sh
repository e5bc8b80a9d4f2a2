#!/usr/bin/env bash
# One-time setup of a fresh Debian 12 machine (or a Raspberry Pi OS box) for meterlink development:
# the system packages in scripts/debian-packages.txt, then the npm dependencies. Run as root (or with sudo).
set -euo pipefail
cd "$(dirname "$0")/.."

export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends $(grep -v '^#' scripts/debian-packages.txt) >/dev/null
# Debian starts packaged services on install; tests start their own instances on free loopback ports.
if command -v systemctl >/dev/null; then systemctl disable --now mosquitto influxdb >/dev/null 2>&1 || true; fi

for tool in moto_server cfn-lint; do
  command -v "$tool" >/dev/null || echo "warning: $tool not found (pip install 'moto[server]>=5' cfn-lint); the AWS tests need it" >&2
done

npm ci --no-audit --no-fund
