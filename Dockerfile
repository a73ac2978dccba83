# flatnet node image: the daemon, its native addon, and the ip/nft tools it calls.

# Build stage: the full Debian image carries python3, make and g++ for node-gyp.
FROM node:20-bookworm AS build
WORKDIR /app
# Package files and sources together: `npm ci` runs the install script, which
# builds the addon (binding.gyp, native/), and prepare, which compiles the
# TypeScript (tsconfig.json, src/), so both need the sources in place.
COPY . .
RUN npm ci && npm prune --omit=dev

# Runtime stage: slim Debian, same glibc and Node ABI as the build stage, so the
# addon built above loads here.
FROM node:20-bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends iproute2 nftables \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY --from=build /app/package.json ./
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/bin ./bin
COPY --from=build /app/dist ./dist
COPY --from=build /app/build/Release/flatnet.node ./build/Release/flatnet.node
# Runs as root, on purpose: the daemon creates a TUN device and routes in the
# host's network namespace, which needs CAP_NET_ADMIN there, and capabilities
# granted to a pod only reach a root process (a non-root user gets none without
# file capabilities or ambient caps, which Kubernetes does not set). The DaemonSet
# keeps it unprivileged: every capability dropped but NET_ADMIN and NET_RAW.
USER root
ENTRYPOINT ["node", "/app/bin/flatnet.js"]
CMD ["daemon", "--config", "/etc/flatnet/config.json"]
