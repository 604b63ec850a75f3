#!/usr/bin/env bash
# npm test: every test, on what `npm run setup` prepares.
#   1. npm run setup (packages, the control plane and kubelet, the images; cached);
#   2. the typecheck and the formatter check (npm run format fixes what it finds);
#   3. the local control plane with its real node (npm run cluster:up -- --real-node);
#   4. ava: the unit and integration tests (test/**/*.test.ts, kwok nodes);
#   5. ava: the end-to-end tests on the real node (test/real-node/*.e2e.ts),
#      the make deploy test among them, on the images built from the Dockerfile.
# Both ava runs always run; the exit status is non-zero when either failed.
# Arguments (npm test -- <files or ava flags>) run only the first ava run with them.
# The cluster stays up afterwards; `npm run cluster:down` stops it.
set -uo pipefail
cd "$(dirname "$0")/.."
PATH="$PWD/node_modules/.bin:$PATH"

node hack/setup.ts || exit 1
tsc -p tsconfig.json --noEmit || exit 1
npm run -s format:check || { echo 'npm test: files are not formatted; run npm run format' >&2; exit 1; }
node test/cluster/up.ts --quiet --real-node >/dev/null || exit 1
# With arguments (npm test -- test/unit/x.test.ts), only those go to the first ava run.
if [[ $# -gt 0 ]]; then exec ava "$@"; fi
status=0
ava || status=1
ava --config test/real-node/ava.config.js || status=1
exit "$status"
