# flatnet node image: the daemon, its native addon, and the ip/nft tools it calls.
# The bases are build arguments so that a machine without registry access can build on
# local ones (deploy/image/build.sh makes them); the defaults are the public images.
ARG BUILD_BASE=node:20-bookworm
ARG RUNTIME_BASE=node:20-bookworm-slim

# Build stage: the full Debian image carries python3, make and g++ for node-gyp.
FROM ${BUILD_BASE} AS build
WORKDIR /app
# node-gyp compiles against the headers beside the node binary (both base images have
# them in /usr/local/include/node) instead of downloading them from nodejs.org.
ENV npm_config_nodedir=/usr/local
# Unset normally. Where TLS to the npm registry passes an inspecting proxy, the builder
# mounts that proxy's CA file and names it here (deploy/image/build.sh does); a build
# stage ARG, so it stays out of the image.
ARG NODE_EXTRA_CA_CERTS
# Package files and sources together: `npm ci` runs the install script, which
# builds the addon (binding.gyp, native/), and prepare, which compiles the
# TypeScript (tsconfig.json, src/), so both need the sources in place.
COPY . .
# tsc also compiled the lab (tsconfig.json): not for the image.
RUN npm ci --no-audit --no-fund && npm prune --omit=dev --no-audit --no-fund \
 && rm -rf dist/src/lab

# Runtime stage: slim Debian, same glibc and Node ABI as the build stage, so the
# addon built above loads here.
FROM ${RUNTIME_BASE}
# containernetworking-plugins: bridge, host-local, portmap in /usr/lib/cni, for an init
# container to install onto a host's /opt/cni/bin that lacks them.
RUN apt-get update \
 && apt-get install -y --no-install-recommends iproute2 nftables containernetworking-plugins \
 && apt-get clean && rm -rf /var/lib/apt/lists/*
# flatnet-cni, the conflist's last plugin, beside them: statically linked, so it runs on
# any host the init container copies it to.
COPY --from=build /app/build/Release/flatnet-cni /usr/lib/cni/flatnet-cni
WORKDIR /app
COPY --from=build /app/package.json ./
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/bin ./bin
COPY --from=build /app/dist ./dist
COPY --from=build /app/build/Release/flatnet.node ./build/Release/flatnet.node
# On the PATH, for `kubectl exec ... -- flatnet peers`.
RUN ln -s ../../../app/bin/flatnet.js /usr/local/bin/flatnet
# Runs as root, on purpose: the daemon creates a TUN device and routes in the
# host's network namespace, which needs CAP_NET_ADMIN there, and capabilities
# granted to a pod only reach a root process (a non-root user gets none without
# file capabilities or ambient caps, which Kubernetes does not set). The DaemonSet
# keeps it unprivileged: every capability dropped but NET_ADMIN and BPF.
USER root
# The commit built, for `flatnet --version` and flatnet_build_info (deploy/image/build.sh
# passes it); last, so a new commit rebuilds no layer above.
ARG FLATNET_COMMIT=unknown
ENV FLATNET_COMMIT=${FLATNET_COMMIT}
ENTRYPOINT ["node", "/app/bin/flatnet.js"]
CMD ["daemon", "--config", "/etc/flatnet/config.json"]
