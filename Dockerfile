# freeswitch-zammad-cti: FreeSWITCH outbound event socket → Zammad CTI (generic) API.
#
# Configuration comes only from the environment (docker run -e / compose env_file): no .env is
# copied into the image (.dockerignore) and src/process/config.ts is the list of variables.
#
#   docker build -t freeswitch-zammad-cti .
#   docker run --network host -e ZAMMAD_CTI_URL=https://zammad.example.com/api/v1/cti/TOKEN \
#              -v zammad-cti-data:/app/data freeswitch-zammad-cti
#
# Lint: .ci/lint-dockerfile.sh

# ---- build stage: TypeScript → dist/, and better-sqlite3's native addon compiled from source -----
FROM node:24-bookworm-slim AS build

# better-sqlite3 (a runtime dependency) is a native addon. Its install script tries a prebuilt
# binary first and falls back to node-gyp when none can be downloaded (our CI reaches the npm
# registry and Debian only): node-gyp needs python3, make and a C++ compiler. Only this stage
# has them; the runtime stage below gets the compiled node_modules and no toolchain.
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 make g++ \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /app

# Dependencies first, so that a source change does not reinstall them.
# npm_config_nodedir: node-gyp takes Node's headers from this image (/usr/local/include/node)
# instead of downloading them from nodejs.org, which an offline build cannot reach.
# packages/ (the simulators, an npm workspace) is not in the build context: npm ci leaves an
# absent workspace out, so the image gets the adapter and its dependencies only.
COPY package.json package-lock.json ./
RUN npm_config_nodedir=/usr/local npm ci --no-audit --no-fund

COPY tsconfig.json tsconfig.build.json ./
COPY src ./src

# Build, drop the dev dependencies (TypeScript, tsx, …) and the addon's intermediate build files
# (object files, static library, the bundled SQLite and C++ sources): only
# build/Release/better_sqlite3.node is loaded at run time (through `bindings`).
RUN npm run build \
    && npm prune --omit=dev --no-audit --no-fund \
    && mv node_modules/better-sqlite3/build/Release/better_sqlite3.node /tmp/ \
    && rm -rf node_modules/better-sqlite3/build node_modules/better-sqlite3/deps node_modules/better-sqlite3/src \
    && mkdir -p node_modules/better-sqlite3/build/Release \
    && mv /tmp/better_sqlite3.node node_modules/better-sqlite3/build/Release/

# ---- runtime stage: Node 24 LTS, no compiler, non-root -------------------------------------------
# Same base as the build stage: the addon was compiled against this image's glibc and Node ABI.
FROM node:24-bookworm-slim

# ESL_HOST=0.0.0.0: inside a container, 127.0.0.1 would only be reachable from the container
# itself. The adapter still refuses every event-socket connection whose source address is not in
# ESL_ALLOW (default: 127.0.0.1/32 and ::1/128 only), so
#  - with `network_mode: host` and FreeSWITCH on the same host (docker-compose.example.yml),
#    FreeSWITCH connects from 127.0.0.1 and the default ESL_ALLOW is right (you may then also
#    set ESL_HOST=127.0.0.1 and STATUS_HOST=127.0.0.1 so that nothing listens on other interfaces);
#  - with a published port (-p 8084:8084), FreeSWITCH's connection arrives from the Docker
#    bridge's gateway or the switch's own address: add that address/CIDR to ESL_ALLOW, or the
#    adapter closes every call's connection at once (conf/README.md: such a call does not reach
#    the dialplan's fallback).
# STATUS_HOST=0.0.0.0 so that /healthz, /readyz and /metrics are reachable from outside the
# container; they never show the Zammad token.
ENV NODE_ENV=production \
    ESL_HOST=0.0.0.0 \
    OUTBOX_PATH=/app/data/outbox.sqlite \
    STATUS_HOST=0.0.0.0

WORKDIR /app

COPY --from=build /app/package.json ./package.json
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist

# The outbox (undelivered Zammad events, calls in progress) lives on a volume so that it survives
# a new container. The directory is created and handed to `node` before VOLUME, so that a new
# named volume starts out owned by `node` (Docker copies the image directory into it).
RUN mkdir -p /app/data && chown node:node /app/data
VOLUME /app/data

# `node` (uid 1000) comes with the official image.
USER node

# 8084: outbound event socket (ESL_PORT); 8088: /healthz /readyz /metrics (STATUS_PORT).
EXPOSE 8084 8088

# No curl in the slim image: node's own fetch. /healthz = the process is alive; /readyz (Zammad
# reachable, backlog small) is for the operator, since a restart would not fix Zammad.
# Assumes the status server listens on 0.0.0.0 or 127.0.0.1 (STATUS_HOST).
HEALTHCHECK --interval=30s --timeout=5s --start-period=15s --retries=3 \
    CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.STATUS_PORT||8088)+'/healthz',{signal:AbortSignal.timeout(4000)}).then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]

# The same entry as `npm start`, without npm in between: SIGTERM reaches node itself and starts
# the drain (SHUTDOWN_DRAIN_MS); give the container a longer stop timeout than that.
CMD ["node", "dist/src/main.js"]
