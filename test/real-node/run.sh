#!/usr/bin/env bash
# npm run test:real-node: only the end-to-end tests on a real node. Runs
# `npm run setup` (cached), starts the local control plane with a real node,
# then runs test/real-node/*.e2e.ts. The cluster stays up afterwards, as with
# `npm test`; `npm run cluster:down` stops the node and the control plane.
# Extra arguments go to ava (e.g. --match '*attach*').
set -euo pipefail
cd "$(dirname "$0")/../.."
PATH="$PWD/node_modules/.bin:$PATH"

node hack/setup.ts
node test/cluster/up.ts --real-node >/dev/null
exec ava --config test/real-node/ava.config.js "$@"
