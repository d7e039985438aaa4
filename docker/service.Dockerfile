# The service image: one image, two commands (`api`, `worker`), non-root. Builds without a
# registry FROM our debootstrap base (BASE_IMAGE); docker/build-images.sh prepares the
# context: the host's own Node.js binary and npm, and the project with its node_modules.
ARG BASE_IMAGE=debian:bookworm-slim

FROM ${BASE_IMAGE} AS build
COPY node /usr/local/bin/node
COPY npm /opt/npm
COPY app /app
WORKDIR /app
# Compile to plain JavaScript, keep the prompt pack beside it, drop dev dependencies.
RUN node node_modules/typescript/bin/tsc -p tsconfig.build.json \
 && cp -r src/agent/codescout/prompts dist/agent/codescout/ \
 && node /opt/npm/bin/npm-cli.js prune --omit=dev --offline --no-audit --no-fund --loglevel=error \
 && rm -rf src tests

FROM ${BASE_IMAGE}
# git for the repository cache, tar for copy-mode sandboxes, curl for health checks, tini as
# PID 1: node reaps only the children it spawned, and a git killed at its timeout leaves its
# helpers (git-remote-https, index-pack) to PID 1, where they would stay as zombies until the
# container's pid limit is reached.
RUN set -eu; missing=""; \
    for p in git tar curl ca-certificates tini; do \
      dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing="$missing $p"; \
    done; \
    if [ -n "$missing" ]; then apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $missing && rm -rf /var/lib/apt/lists/*; fi; \
    groupadd --gid 10002 codescout; useradd --uid 10002 --gid 10002 --create-home --shell /usr/sbin/nologin codescout
COPY --from=build /usr/local/bin/node /usr/local/bin/node
COPY --from=build /app/package.json /app/package.json
COPY --from=build /app/node_modules /app/node_modules
COPY --from=build /app/dist /app/dist
COPY entrypoint.sh /usr/local/bin/codescout
WORKDIR /app
ENV NODE_ENV=production API_HOST=0.0.0.0 REPO_CACHE_DIR=/var/lib/codescout/repos UPLOAD_DIR=/var/lib/codescout/uploads
USER 10002:10002
EXPOSE 8080
ENTRYPOINT ["/usr/bin/tini", "--", "/usr/local/bin/codescout"]
CMD ["api"]
