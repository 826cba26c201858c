#!/usr/bin/env bash
# Installs the Debian 12 packages bora builds and tests with; does nothing when all are present.
set -euo pipefail
packages=(cmake ninja-build g++ clang-14 libclang-rt-14-dev ccache pkg-config
          libgtest-dev libgmock-dev libbenchmark-dev nlohmann-json3-dev libcli11-dev
          libsentencepiece-dev libpcre2-dev libcpp-httplib-dev libsqlite3-dev libssl-dev
          libopenmpi-dev openmpi-bin libpng-dev libjpeg62-turbo-dev libwebp-dev libgif-dev
          chromium curl)
missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
echo "installing ${#missing[@]} Debian packages: ${missing[*]}"
sudo_cmd=()
[ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
export DEBIAN_FRONTEND=noninteractive
log=$(mktemp)
# One line per step; apt's own output only when a step fails.
if ! "${sudo_cmd[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}" > "$log" 2>&1; then
  echo "updating the package lists"
  "${sudo_cmd[@]}" apt-get update -q > "$log" 2>&1 || { cat "$log"; echo "install-deps: apt-get update failed"; exit 1; }
  echo "installing"
  "${sudo_cmd[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}" > "$log" 2>&1 ||
    { cat "$log"; echo "install-deps: apt-get install failed"; exit 1; }
fi
rm -f "$log"
echo "installed"
