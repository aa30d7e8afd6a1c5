#!/usr/bin/env bash
# Installs the programs the e2e tests talk to (Debian packages + npm devDependencies).
# Idempotent: it only installs what is missing, so a second run takes well under a second.
set -euo pipefail

cd "$(dirname "$0")/.."

say() { printf 'install-peers: %s\n' "$*"; }

SUDO=()
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        SUDO=(sudo)
    else
        say "not root and no sudo: missing packages cannot be installed"
    fi
fi

PACKAGES=(
    ffmpeg nginx libnginx-mod-rtmp srt-tools libsrt1.5-openssl redis-server
    python3-gi gir1.2-gst-rtsp-server-1.0
    gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-ugly
    gstreamer1.0-plugins-bad gstreamer1.0-libav
    chromium nghttp2-client wrk
)
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    PACKAGES+=(nodejs npm)
fi

missing=()
for pkg in "${PACKAGES[@]}"; do
    status="$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)"
    if [ "$status" != "install ok installed" ]; then
        missing+=("$pkg")
    fi
done

if [ "${#missing[@]}" -gt 0 ]; then
    apt_log="$(mktemp -t kiln-install-peers.XXXXXX)"
    say "apt-get update (log: $apt_log)"
    if ! "${SUDO[@]}" apt-get update -q >>"$apt_log" 2>&1; then
        tail -n 30 "$apt_log" >&2; exit 1
    fi
    say "apt-get install ${missing[*]}"
    if ! "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -q --no-install-recommends "${missing[@]}" >>"$apt_log" 2>&1; then
        tail -n 30 "$apt_log" >&2; exit 1
    fi
    rm -f "$apt_log"
else
    say "debian packages: all ${#PACKAGES[@]} present"
fi

export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1
need_npm=0
for mod in playwright-core hls.js ovenplayer ovenlivekit @eyevinn/webrtc-player @eyevinn/whip-web-client esbuild; do
    [ -d "node_modules/$mod" ] || need_npm=1
done
if [ "$need_npm" -eq 1 ]; then
    if [ -f package-lock.json ]; then
        say "npm ci"
        npm ci --no-audit --no-fund --loglevel=error
    else
        say "npm install"
        npm install --no-audit --no-fund --loglevel=error
    fi
else
    say "npm modules: all present"
fi
