# VoiceTwin: Debian-based Node 20 image with the system tools the voice pipeline needs.
FROM node:20-bookworm-slim

# ffmpeg/ffprobe: audio pipeline; flite (+ espeak-ng for other languages and as fallback) and
# pocketsphinx: offline voice and speech-to-text;
# chromium: WhatsApp Web client; python3/make/g++: build the sqlite3 and @discordjs/opus native modules.
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      ffmpeg flite espeak-ng pocketsphinx pocketsphinx-en-us chromium ca-certificates python3 make g++ \
 && rm -rf /var/lib/apt/lists/*

ENV NODE_ENV=production \
    PUPPETEER_SKIP_DOWNLOAD=1 \
    PUPPETEER_EXECUTABLE_PATH=/usr/bin/chromium \
    VOICETWIN_DATA_DIR=/data \
    HTTP_HOST=0.0.0.0 \
    HTTP_PORT=8080

WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force
COPY tsconfig.json ./
COPY bin ./bin
COPY src ./src
COPY web ./web

RUN mkdir -p /data /app/out && chown node:node /data /app/out
USER node
VOLUME ["/data"]
# The HTTP server (health, webhooks, REST API). It listens on every interface of the container's own
# network only: publish it on the host's loopback (`-p 127.0.0.1:8080:8080`) or behind a proxy.
EXPOSE 8080

ENTRYPOINT ["node", "bin/voicetwin.js"]
CMD ["serve"]
