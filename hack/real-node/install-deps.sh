#!/usr/bin/env bash
# Installs, from Debian's packages, what the real node (test/cluster/real-node.ts)
# needs and a fresh machine lacks: containerd and runc (the runtime), the CNI
# plugins (the pods' bridge), debootstrap (the runner image's root file
# system), gcc and libc6-dev (the static pause binary), and util-linux's
# `script` (a terminal for `kubectl attach -it` in the tests). Idempotent.
set -euo pipefail

need=()
command -v containerd >/dev/null || need+=(containerd)
command -v runc >/dev/null || need+=(runc)
[[ -x /usr/lib/cni/bridge ]] || need+=(containernetworking-plugins)
command -v debootstrap >/dev/null || need+=(debootstrap)
command -v gcc >/dev/null || need+=(gcc)
[[ -f /usr/lib/x86_64-linux-gnu/libc.a ]] || need+=(libc6-dev)
command -v script >/dev/null || need+=(bsdutils)
command -v openssl >/dev/null || need+=(openssl)

if [[ ${#need[@]} -eq 0 ]]; then
  exit 0
fi
if [[ $(id -u) -ne 0 ]]; then
  echo "install-deps: run as root to install ${need[*]}" >&2
  exit 1
fi
echo "install-deps: apt-get install ${need[*]}" >&2
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
