# The gateway image. Where there is no container engine (these machines), scripts/gateway-image.sh builds
# the same files into the same image (test/unit/gateway-image.test.ts keeps the two equal).
FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json ./
COPY src ./src
COPY bench ./bench
RUN npx tsc -p tsconfig.json && npm prune --omit=dev

FROM node:20-bookworm-slim
WORKDIR /app
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json ./
COPY bin ./bin
COPY policies ./policies
USER node
EXPOSE 8443
ENTRYPOINT ["node", "bin/kplex.js", "gateway"]
CMD ["--listen", ":8443", "--certs", "/etc/kplex/certs"]
