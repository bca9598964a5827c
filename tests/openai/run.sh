#!/usr/bin/env bash
# Runs the OpenAI-client tests (and the official Ollama and Anthropic clients' against the same server): builds the release binary, starts `cria serve` on a free port with the default
# model, waits for /health, runs pytest, stops the server. Fails loudly, never hangs (every step has a timeout).
# Env: CRIA_SERVE_MODEL (default smollm2-135m-instruct), CARGO_TARGET_DIR, PYTEST_ARGS.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
model=${CRIA_SERVE_MODEL:-smollm2-135m-instruct}
target=${CARGO_TARGET_DIR:-$root/target}

python3 -c 'import openai, pytest, yaml, ollama, anthropic' 2>/dev/null ||
  timeout 300 python3 -m pip install -q openai pytest pyyaml ollama anthropic
# promtool (Debian's prometheus package) checks /metrics; CI sets CRIA_REQUIRE_PROMTOOL=1 so the test cannot skip.
if ! command -v promtool >/dev/null && command -v apt-get >/dev/null && [[ $(id -u) == 0 ]]; then
  { timeout 600 apt-get install -y -qq --no-install-recommends prometheus \
    || { timeout 300 apt-get update -qq && timeout 600 apt-get install -y -qq --no-install-recommends prometheus; }; } >/dev/null 2>&1 \
    || echo "warning: could not install prometheus (promtool)"
fi
timeout 1800 cargo build --release -p cria
bin=$target/release/cria

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
log=$(mktemp /tmp/cria-serve.XXXXXX.log)
"$bin" serve -m "$model" --port "$port" --parallel 8 --ctx 2048 --max-queue 4 --shutdown-timeout 5 \
  --pooling mean >"$log" 2>&1 &
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

export CRIA_BASE_URL="http://127.0.0.1:$port" CRIA_MODEL_ID="$model" CRIA_BIN="$bin"
status=0
timeout 900 python3 -m pytest -q -p no:cacheprovider tests/openai ${PYTEST_ARGS:-} || status=$?
if [[ $status != 0 ]]; then echo "--- server log ---"; tail -50 "$log"; fi
# The server must stop cleanly on SIGTERM.
stop
trap - EXIT
exit "$status"
