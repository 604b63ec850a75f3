# syntax=docker/dockerfile:1
#
# Two images from one build:
#   docker build --target manager -t trace-operator-manager:dev .   the operator (controller manager)
#   docker build --target runner  -t trace-operator:dev .           the trace pod image (the operator's default runner repository)
# Every command run here is also run by the tests outside Docker
# (test/integration/runner-build.test.ts): npm ci, npm run build,
# node dist/cli.js runner|stop|run-local, and the trace-operator wrapper.

ARG NODE_IMAGE=node:24-bookworm-slim
ARG DEBIAN_IMAGE=debian:bookworm-slim

# ---- build: bundle the TypeScript into dist/ (hack/build.ts: esbuild, one chunk per command) ----
FROM ${NODE_IMAGE} AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json ./
COPY hack/build.ts ./hack/
COPY src ./src
RUN npm run build \
 && npm prune --omit=dev --no-audit --no-fund

# ---- manager: the operator ----
FROM ${NODE_IMAGE} AS manager
ENV NODE_ENV=production
WORKDIR /app
COPY --from=build /src/package.json ./package.json
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/dist ./dist
# The node image's unprivileged "node" user, by number so runAsNonRoot can check it.
USER 1000:1000
ENTRYPOINT ["node", "/app/dist/cli.js"]
CMD ["manager"]

# ---- runner: bpftrace plus the trace runner, run privileged in trace pods ----
# Debian's bpftrace (bookworm: v0.17, the version the tests run against).
FROM ${DEBIAN_IMAGE} AS runner
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends bpftrace ca-certificates \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /usr/local/bin/node /usr/local/bin/node
ENV NODE_ENV=production
WORKDIR /app
COPY --from=build /src/package.json ./package.json
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/dist ./dist
COPY --chmod=0755 src/runner/bin/trace-operator /usr/local/bin/trace-operator
# The TraceJob mapping sets the command ("trace-operator runner --program=..."),
# so this is only the default; the pod runs as root (privileged) to load BPF.
ENTRYPOINT ["trace-operator"]
CMD ["runner", "--help"]
