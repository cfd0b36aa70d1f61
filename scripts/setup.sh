#!/usr/bin/env bash
# Installs what VoiceTwin needs on a Debian/Ubuntu machine: system packages (ffmpeg, flite and
# espeak-ng for the offline voice, pocketsphinx with its US English model, sox, Redis for the Redis tests, Chromium for WhatsApp and the web app's browser test)
# and the npm packages. Safe to run again: it installs only what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(ffmpeg flite espeak-ng pocketsphinx pocketsphinx-en-us sox unzip redis-server chromium procps ca-certificates python3 make g++)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "Installing system packages: ${missing[*]}"
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# whatsapp-web.js pulls in puppeteer; use the system Chromium instead of downloading one.
export PUPPETEER_SKIP_DOWNLOAD=1
# `npm ci` installs exactly what the committed lock file says (it lists every platform's optional
# packages, so it is accepted on any machine) and leaves the checkout clean.
npm ci --no-audit --no-fund
echo "Setup done. Run the offline demo with: npm run demo"
