# The fedcare coordinator, `fedcare serve`, configured by environment variables alone:
#   PORT or FEDCARE_PORT (8080), FEDCARE_HOST (0.0.0.0 here: outside a container serve binds 127.0.0.1), FEDCARE_STORE (sqlite | aws), FEDCARE_DB (/data/fedcare.db),
#   FEDCARE_ADMIN_TOKEN, FEDCARE_HOSPITAL_TOKENS="H1:tok,…", FEDCARE_METRICS_TOKEN, FEDCARE_LOG_LEVEL,
#   FEDCARE_TLS_CERT / FEDCARE_TLS_KEY, FEDCARE_ALLOWED_ORIGINS, FEDCARE_CLOUDWATCH_EMF, FEDCARE_DEPLOYMENT;
#   aws store: FEDCARE_S3_BUCKET, FEDCARE_DYNAMODB_TABLE_PREFIX, FEDCARE_CREATE_MISSING, AWS_REGION,
#   AWS_ENDPOINT_URL_DYNAMODB / AWS_ENDPOINT_URL_S3 and the usual AWS credentials.
# The same image runs the other commands: `docker run fedcare client --server URL --hospital H1 --data …`.
#
# Build: `npm run image` (scripts/image.mjs: docker build, or buildah where no Docker daemon answers,
# on a locally built Node 24 base where no registry is reachable). By hand:
#   docker build --secret id=npm_ca,src=/etc/ssl/certs/ca-certificates.crt -t fedcare .
# The npm_ca secret is optional: a CA bundle for a TLS-intercepting proxy in front of the npm
# registry, mounted for the npm steps only and never written into a layer.

# The official Node 24 LTS image (Debian slim). Any base with Node 24 and its headers under the
# prefix of `node`, apt-get, and a user `node` (uid 1000) works.
ARG BASE_IMAGE=docker.io/library/node:24-slim

# Compilers for better-sqlite3 (node-gyp, against the base's own Node headers: nothing is downloaded).
FROM ${BASE_IMAGE} AS toolchain
RUN apt-get update -qq \
 && apt-get install -y -qq --no-install-recommends python3 make g++ \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY package.json package-lock.json .npmrc ./
COPY shared/package.json shared/
COPY apps/server/package.json apps/server/
COPY apps/cli/package.json apps/cli/
COPY apps/dashboard/package.json apps/dashboard/
COPY apps/hospital-portal/package.json apps/hospital-portal/
COPY e2e/package.json e2e/

# The web apps (dashboard, hospital portal): vite (a root dev dependency) and the two apps' and
# shared's dependencies, dev ones included, no install script — not the CDK app, the e2e suite, the
# CLI or the server (~300 MB that the web build never reads).
# npm's download cache is a build cache mount, shared by both installs and kept out of the layers.
FROM toolchain AS web
RUN --mount=type=secret,id=npm_ca,required=false --mount=type=cache,id=fedcare-npm,target=/root/.npm,sharing=locked \
    if [ -s /run/secrets/npm_ca ]; then export NODE_EXTRA_CA_CERTS=/run/secrets/npm_ca npm_config_cafile=/run/secrets/npm_ca; fi \
 && npm ci --ignore-scripts --no-audit --no-fund --include-workspace-root \
      --workspace shared --workspace apps/dashboard --workspace apps/hospital-portal
COPY tsconfig.base.json vite.config.ts ./
COPY shared shared
COPY apps/dashboard apps/dashboard
COPY apps/hospital-portal apps/hospital-portal
RUN npm run build:web

# Production dependencies of the three workspaces the coordinator and the headless hospital run
# (shared, server, cli): no dev dependencies, nothing of the web apps or the e2e suite. Source maps
# (~250 MB of TF.js bundles' maps) and better-sqlite3's C sources and objects are not needed to run.
FROM toolchain AS deps
RUN --mount=type=secret,id=npm_ca,required=false --mount=type=cache,id=fedcare-npm,target=/root/.npm,sharing=locked \
    if [ -s /run/secrets/npm_ca ]; then export NODE_EXTRA_CA_CERTS=/run/secrets/npm_ca npm_config_cafile=/run/secrets/npm_ca; fi \
 && export npm_config_nodedir="$(dirname "$(dirname "$(command -v node)")")" \
 && npm ci --omit=dev --no-audit --no-fund --workspace shared --workspace apps/server --workspace apps/cli \
 && node -e "require('better-sqlite3')(':memory:').close()" \
 && find node_modules -name '*.map' -type f -delete \
 && rm -rf node_modules/better-sqlite3/deps node_modules/better-sqlite3/src \
           node_modules/better-sqlite3/build/Release/obj node_modules/better-sqlite3/build/Release/obj.target \
           node_modules/better-sqlite3/build/Release/.deps node_modules/better-sqlite3/build/deps

FROM ${BASE_IMAGE} AS runtime
# A container's port is reached through its own interface, so the image listens on all of them
# (outside a container `fedcare serve` binds 127.0.0.1 unless told otherwise).
ENV NODE_ENV=production \
    FEDCARE_HOST=0.0.0.0 \
    FEDCARE_HOME=/data \
    FEDCARE_DB=/data/fedcare.db
WORKDIR /app
# Dependencies and sources are root's and read-only for the user that runs them.
COPY --from=deps /app ./
COPY tsconfig.base.json ./
COPY shared shared
COPY apps/server apps/server
COPY apps/cli apps/cli
COPY --from=web /app/apps/dashboard/dist apps/dashboard/dist
COPY --from=web /app/apps/hospital-portal/dist apps/hospital-portal/dist
RUN ln -s /app/apps/cli/bin/fedcare.mjs /usr/local/bin/fedcare \
 && mkdir -p -m 700 /data \
 && chown node:node /data
USER node
VOLUME /data
EXPOSE 8080
# /healthz over http, or https when TLS is on (the coordinator's own certificate, not verified:
# this only asks whether the process answers). curl is not in slim images.
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
  CMD ["node", "-e", "const tls = !!process.env.FEDCARE_TLS_CERT; require(tls ? 'node:https' : 'node:http').get({ host: '127.0.0.1', port: process.env.PORT || process.env.FEDCARE_PORT || 8080, path: '/healthz', rejectUnauthorized: false, timeout: 4000 }, (r) => process.exit(r.statusCode === 200 ? 0 : 1)).on('error', () => process.exit(1)).on('timeout', () => process.exit(1))"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["node", "/app/apps/cli/bin/fedcare.mjs"]
CMD ["serve"]
