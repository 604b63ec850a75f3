#!/usr/bin/env bash
# npm run test:real-node: the end-to-end tests on a real node. Installs the
# Debian packages the node needs (when root and missing), starts the local
# control plane with a real node (building the kubelet and the runner and
# pause images once; all cached in ~/.cache/trace-operator), then runs
# test/real-node/*.e2e.ts. The cluster stays up afterwards, as with
# `npm test`; `npm run cluster:down` stops the node and the control plane.
# Extra arguments go to ava (e.g. --match '*attach*').
set -euo pipefail
cd "$(dirname "$0")/../.."
PATH="$PWD/node_modules/.bin:$PATH"

bash hack/real-node/install-deps.sh
node test/cluster/up.ts --real-node >/dev/null
exec ava --config test/real-node/ava.config.js "$@"
