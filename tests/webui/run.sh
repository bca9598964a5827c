#!/usr/bin/env bash
# The chat page in a real browser: Debian's chromium and chromium-driver drive the page served by `cria serve`
# through Selenium (tests/webui/test_webui.py). Installs chromium, its driver and a Korean font with apt-get when
# missing (as root or with sudo), and selenium with pip; skips, loudly, only when apt is impossible.
# Screenshots go to $WEBUI_ARTIFACTS (default target/webui-artifacts).
# Env: CRIA_SERVE_MODEL (default smollm2-135m-instruct), CARGO_TARGET_DIR, PYTEST_ARGS.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
model=${CRIA_SERVE_MODEL:-smollm2-135m-instruct}
target=${CARGO_TARGET_DIR:-$root/target}
export WEBUI_ARTIFACTS=${WEBUI_ARTIFACTS:-$target/webui-artifacts}

if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then
  packages="chromium chromium-driver fonts-nanum"
  if [[ $(id -u) == 0 ]]; then apt=(apt-get); elif sudo -n true 2>/dev/null; then apt=(sudo -n apt-get); else apt=(); fi
  if [[ ${#apt[@]} == 0 ]] || ! command -v apt-get >/dev/null; then
    echo "############################################################################"
    echo "# SKIPPED tests/webui: chromium/chromedriver missing and apt-get unusable   #"
    echo "# (not root, no passwordless sudo, or no apt). Install: $packages"
    echo "############################################################################"
    exit 0
  fi
  timeout 600 "${apt[@]}" update -q
  DEBIAN_FRONTEND=noninteractive timeout 900 "${apt[@]}" install -y -q --no-install-recommends $packages
fi
python3 -c 'import selenium, pytest' 2>/dev/null || timeout 300 python3 -m pip install -q selenium pytest
timeout 1800 cargo build --release -p cria
bin=$target/release/cria

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
key=webui-test-key
log=$(mktemp /tmp/cria-webui.XXXXXX.log)
"$bin" serve -m "$model" --port "$port" --parallel 4 --ctx 2048 --api-key "$key" >"$log" 2>&1 &
pid=$!
stop() {
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.2; done
  kill -KILL "$pid" 2>/dev/null || true
}
trap stop EXIT

for i in $(seq 600); do
  if curl -fsS --max-time 2 "http://127.0.0.1:$port/health" >/dev/null 2>&1; then break; fi
  if ! kill -0 "$pid" 2>/dev/null; then echo "cria serve died while starting:"; cat "$log"; exit 1; fi
  if [[ $i == 600 ]]; then echo "cria serve not healthy after 120 s:"; cat "$log"; exit 1; fi
  sleep 0.2
done

# SE_OFFLINE: Selenium Manager never downloads a browser or driver; Debian's are used.
export SE_OFFLINE=true CRIA_BASE_URL="http://127.0.0.1:$port" CRIA_MODEL_ID="$model" CRIA_API_KEY_FOR_TESTS="$key"
mkdir -p "$WEBUI_ARTIFACTS"
status=0
timeout 600 python3 -m pytest -q -p no:cacheprovider tests/webui ${PYTEST_ARGS:-} || status=$?
if [[ $status != 0 ]]; then echo "--- server log ---"; tail -50 "$log"; fi
echo "webui screenshots: $WEBUI_ARTIFACTS"
exit "$status"
