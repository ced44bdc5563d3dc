# fleetload container image.
#
#   docker build -t fleetload --build-arg VERSION=$(node -p 'require("./package.json").version') .
#   docker run --rm --ulimit nofile=65536:65536 -v "$PWD/results:/results" fleetload run -H mqtt://broker:1883 -u 1000
#
# Tested here by scripts/test-image.sh (`npm run test:image`): buildah builds this file on a stand-in Node base and
# runs the image (see README, "Container image").
#
# File descriptors: every device holds one socket, so N devices need about N + 128 open files in one process.
# Node cannot raise RLIMIT_NOFILE itself; fleetload re-executes itself under `ulimit -n` when only the soft limit is
# too low, and stops with exit 2 (naming the fix) when the hard limit is. The container's limits come from the runtime:
#   - Docker / Podman: `--ulimit nofile=65536:65536` (or the daemon's `default-ulimits` in daemon.json).
#   - Kubernetes has no per-pod ulimit field: pods inherit the container runtime's limit (containerd and CRI-O
#     usually set nofile to 1048576 through their systemd unit's LimitNOFILE=; check with
#     `kubectl exec POD -- sh -c 'ulimit -Hn'`). Size devices per pod below that, and below the ~28,000 local
#     ports one source address has towards one broker address.
#   - Azure Container Instances: the limit is the platform's; keep devices per container group modest and check
#     the `ulimit -Hn` line fleetload prints when a fleet does not fit.

# The Node 20 base, as a build argument so that another registry or a mirror (or the stand-in the tests build) can
# be used; the Debian-based slim image has /bin/sh, useradd and CA certificates, which this file relies on.
ARG BASE=node:20-bookworm-slim

# --- build: dev dependencies + TypeScript → dist/ -----------------------------------------------------------------
FROM ${BASE} AS build
WORKDIR /src
COPY package.json package-lock.json ./
# --ignore-scripts: no dependency needs an install script, and the package's own `prepare` (tsc) runs below, after
# the sources are in.
RUN npm ci --no-audit --no-fund --ignore-scripts
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build

# --- production dependencies only --------------------------------------------------------------------------------
FROM ${BASE} AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund --ignore-scripts && npm cache clean --force

# --- the image ---------------------------------------------------------------------------------------------------
FROM ${BASE}
# The version is package.json's (pass it: --build-arg VERSION=…); REVISION is the commit built.
ARG VERSION=unknown
ARG REVISION=unknown
ARG SOURCE=https://github.com/fleetload/fleetload
LABEL org.opencontainers.image.title="fleetload" \
      org.opencontainers.image.description="Load-test IoT platforms: a fleet of MQTT devices, followed to where the platform delivers their telemetry." \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.licenses="MIT"

# A fixed non-root uid/gid, so that a results volume can be prepared for it (chown 10001, or Kubernetes'
# securityContext.fsGroup: 10001).
RUN groupadd --system --gid 10001 fleetload \
 && useradd --system --uid 10001 --gid fleetload --home-dir /results --no-create-home --shell /usr/sbin/nologin fleetload \
 && mkdir -p /results \
 && chown fleetload:fleetload /results

WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /src/dist ./dist
# dist/version.js reads ../package.json for `fleetload --version` and summary.json's fleetloadVersion.
COPY package.json ./
RUN chmod 755 dist/cli/main.js && ln -s /app/dist/cli/main.js /usr/local/bin/fleetload

ENV NODE_ENV=production \
    FLEETLOAD_OUT=/results
# Results: `fleetload run` and `consume` write /results/<runId>/ (FLEETLOAD_OUT; --out overrides it); mount a
# volume or a folder there (`-v "$PWD/results:/results"`, writable by uid 10001). `fleetload merge` writes under the
# working directory, /results, unless given --out. No VOLUME instruction: an anonymous volume would hide the results
# where nobody looks for them, Kubernetes ignores it, and buildah's `run` lets it shadow a `-v` bind mount.
WORKDIR /results
USER 10001:10001
ENTRYPOINT ["fleetload"]
CMD ["--help"]
