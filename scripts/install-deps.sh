#!/usr/bin/env bash
# Installs everything ringmail needs to build, test and benchmark, from Debian 12 packages.
# Idempotent and non-interactive; uses sudo only when not already root.
set -euo pipefail
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive

PKGS=(
  build-essential cmake ninja-build pkg-config ccache git
  liburing-dev libssl-dev libc-ares-dev libjemalloc-dev
  libgtest-dev libgmock-dev googletest libbenchmark-dev
  libcli11-dev libtomlplusplus-dev libfmt-dev libidn2-dev libcpp-httplib-dev
  swaks python3-aiosmtpd knot knot-dnsutils openssl procps
  postfix
)

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#PKGS[@]} packages present"
  exit 0
fi
echo "install-deps: installing ${missing[*]}"
# Postfix is only used as a comparison peer (benchmarks, TLS interop): no system configuration,
# and the package's service is never started by us.
echo "postfix postfix/main_mailer_type select No configuration" | $SUDO debconf-set-selections
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
