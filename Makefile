# trace-operator: the targets every kubebuilder operator has, driving the npm
# scripts and the kustomize config in config/. `make help` lists them.

# The manager image (Dockerfile target "manager") and the runner image trace
# pods run (target "runner"). The runner default is the image the operator
# ships with (src/tracejob/settings.ts).
IMG ?= ghcr.io/alexeldeib/trace-operator-manager:v0.1.0
RUNNER_IMG ?= ghcr.io/alexeldeib/trace-operator:v0.1.0
# Images TraceJobs may run (comma-separated; an entry ending in ':' or '@'
# allows every tag or digest of a repository). `make deploy` pins it to the
# runner image and kubectl-trace's header-fetching init image.
ALLOWED_IMAGES ?= $(RUNNER_IMG),quay.io/iovisor/kubectl-trace-init:latest
# The kustomization deploy renders (an overlay of config/default may add, say, tolerations).
DEPLOY_BASE ?= config/default
# Where build-installer writes the rendered manifests.
INSTALLER ?= dist/install.yaml

CONTAINER_TOOL ?= docker
# Extra options for both image builds, e.g. for buildah (Debian's, daemonless):
#   make docker-build CONTAINER_TOOL=buildah BUILD_FLAGS="--isolation chroot --network host"
# (npm run setup builds them that way, from local base images: hack/images/build.ts).
BUILD_FLAGS ?=
# The control plane's binaries (npm run cluster:up builds them once).
K8S_VERSION ?= v1.37.2
TESTBIN_DIR ?= $(or $(TRACE_OPERATOR_CACHE),$(HOME)/.cache/trace-operator)/testbin/$(K8S_VERSION)
# kubectl from PATH, else the one built with the local control plane (it has kustomize built in).
KUBECTL ?= $(or $(shell command -v kubectl 2>/dev/null),$(TESTBIN_DIR)/kubectl)
# Node 24 from node_modules (the "node" devDependency): TypeScript runs as is.
NODE ?= node_modules/.bin/node
ignore-not-found ?= true

SHELL := /usr/bin/env bash
.SHELLFLAGS := -o pipefail -ec
.DEFAULT_GOAL := help

##@ General

.PHONY: help
help: ## Show the targets.
	@awk 'BEGIN {FS = ":.*##"; printf "\nUsage:\n  make \033[36m<target>\033[0m\n"} /^[a-zA-Z_0-9-]+:.*?##/ { printf "  \033[36m%-16s\033[0m %s\n", $$1, $$2 } /^##@/ { printf "\n\033[1m%s\033[0m\n", substr($$0, 5) } ' $(MAKEFILE_LIST)

##@ Development

node_modules/.package-lock.json: package-lock.json
	npm ci --no-audit --no-fund

.PHONY: deps
deps: node_modules/.package-lock.json ## Install the npm dependencies (npm ci) when package-lock.json changed.

.PHONY: manifests
manifests: deps ## Generate the TraceJob CRD in config/crd from src/tracejob/schema.ts.
	npm run manifests

.PHONY: build
build: deps ## Bundle the TypeScript into dist/ (esbuild; hack/build.ts).
	npm run build

.PHONY: test
test: deps ## Typecheck, start the local control plane if needed, run every test.
	npm test

.PHONY: run
run: deps ## Run the manager here against the current kubeconfig (ARGS="--namespaces=..." for flags).
	$(NODE) src/cli.ts manager $(ARGS)

##@ Local cluster

.PHONY: cluster-up
cluster-up: deps ## Start the local control plane (etcd, API server, controllers, kwok nodes); writes .cluster/kubeconfig.
	npm run cluster:up

.PHONY: cluster-down
cluster-down: deps ## Stop the local control plane and everything recorded in .cluster/pids (the demo's manager too).
	npm run cluster:down

.PHONY: demo
demo: deps ## Setup, then the local control plane with its real node and the manager; trace the biolatency sample for real.
	$(NODE) hack/demo.ts

##@ Build images

.PHONY: docker-build
docker-build: ## Build the manager image IMG and the runner image RUNNER_IMG.
	$(CONTAINER_TOOL) build $(BUILD_FLAGS) --target manager -t $(IMG) .
	$(CONTAINER_TOOL) build $(BUILD_FLAGS) --target runner -t $(RUNNER_IMG) .

.PHONY: docker-push
docker-push: ## Push IMG and RUNNER_IMG.
	$(CONTAINER_TOOL) push $(IMG)
	$(CONTAINER_TOOL) push $(RUNNER_IMG)

##@ Deployment

.PHONY: install
install: ## Install the TraceJob CRD into the current kubeconfig's cluster.
	$(KUBECTL) apply --server-side --force-conflicts -k config/crd

.PHONY: uninstall
uninstall: ## Remove the TraceJob CRD (and with it every TraceJob). ignore-not-found=false to fail on absent objects.
	$(KUBECTL) delete --ignore-not-found=$(ignore-not-found) -k config/crd

# config/default with the images set: a throwaway overlay under dist/ whose
# strategic-merge patch sets the manager's image and its runner settings
# (kustomize's images: cannot take a full reference such as reg:5000/x:tag in one field).
define render
	@mkdir -p dist
	@overlay=$$(mktemp -d dist/kustomize.XXXXXX); trap 'rm -rf "$$overlay"' EXIT; \
	printf '%s\n' '{"resources": ["../../$(DEPLOY_BASE)"], "patches": [{"path": "manager.json"}]}' > "$$overlay/kustomization.yaml"; \
	printf '{"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "trace-operator-controller-manager", "namespace": "trace-operator-system"}, "spec": {"template": {"spec": {"containers": [{"name": "manager", "image": "%s", "env": [{"name": "TRACE_OPERATOR_DEFAULT_IMAGE", "value": "%s"}, {"name": "TRACE_OPERATOR_ALLOWED_IMAGES", "value": "%s"}]}]}}}}\n' '$(IMG)' '$(RUNNER_IMG)' '$(ALLOWED_IMAGES)' > "$$overlay/manager.json"; \
	$(KUBECTL) kustomize "$$overlay"
endef

.PHONY: build-installer
build-installer: ## Write the whole deployment with IMG and RUNNER_IMG to dist/install.yaml (or INSTALLER=path).
	$(render) > $(INSTALLER)
	@echo "wrote $(INSTALLER)"

.PHONY: deploy
deploy: ## Deploy the CRD, RBAC and manager (IMG, RUNNER_IMG) to the current kubeconfig's cluster.
	$(render) | $(KUBECTL) apply --server-side --force-conflicts --field-manager=trace-operator-deploy -f -

.PHONY: undeploy
undeploy: ## Remove what deploy created, the CRD and every TraceJob included. ignore-not-found=false to fail on absent objects.
	$(render) | $(KUBECTL) delete --ignore-not-found=$(ignore-not-found) -f -
