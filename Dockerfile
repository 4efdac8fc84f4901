# sandboxd in a container: the daemon as the entrypoint, under tini.
#   docker build -t sandboxd .
#   docker run -d -p 9501:9501 -p 49983:49983 \
#     -v "$PWD/token:/run/secrets/sandboxd_token:ro" sandboxd
# The token comes from a file (a Docker or Kubernetes secret), never from the command line.

FROM node:24-bookworm-slim AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json ./
COPY scripts ./scripts
COPY src ./src
COPY web ./web
# The package as the registry would have it: prepack builds dist/ (the bundled daemon and the
# console), which is all it holds besides package.json.
RUN npm pack --pack-destination /package

FROM node:24-bookworm-slim
# tini as PID 1: it passes signals on, and reaps whatever the daemon leaves (the daemon itself
# reaps the orphans of the processes it runs, as their subreaper).
RUN apt-get update \
 && apt-get install -y --no-install-recommends tini=0.19.* \
 && rm -rf /var/lib/apt/lists/*
# Installed as any package is: its dependencies are only the native addons, and `sandboxd` lands
# on PATH, the same binary as the client inside the container: docker exec CONTAINER sandboxd ps
COPY --from=build /package /tmp/package
RUN npm install --global --omit=dev --no-audit --no-fund /tmp/package/sandboxd-*.tgz \
 && npm cache clean --force \
 && rm -rf /tmp/package
COPY docker/entrypoint.sh /usr/local/bin/sandboxd-entrypoint
ENV SANDBOXD_TOKEN_FILE=/run/secrets/sandboxd_token
EXPOSE 9501 49983
HEALTHCHECK --interval=10s --timeout=3s \
  CMD ["node", "-e", "fetch('http://127.0.0.1:9501/api/v1/health').then(r => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
ENTRYPOINT ["tini", "--", "sandboxd-entrypoint"]
CMD ["serve", "--host", "0.0.0.0", "--envd"]
