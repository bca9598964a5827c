#!/usr/bin/env bash
# The GPU backend's tests on a software GPU (lavapipe: Vulkan compute on the CPU), so they run on any machine:
# installs mesa-vulkan-drivers where no adapter is found, then runs the op tests against the CPU kernels, both
# reference models' logit parity with llama.cpp on the GPU, and an OpenAI-client run against
# `cria serve --device gpu`. Skips (exit 0, with a message) only where no Vulkan adapter can be had at all.
# Env: CARGO_TARGET_DIR.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
target=${CARGO_TARGET_DIR:-$root/target}
# The Vulkan loader wants a runtime dir; headless CI machines have none (harmless, but it logs an error).
export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-$(mktemp -d /tmp/cria-xdg.XXXXXX)}

timeout 1800 cargo build --release -p cria
bin=$target/release/cria

if ! "$bin" devices --json | grep -q '"device"'; then
  sudo=""
  [[ $(id -u) == 0 ]] || sudo="sudo -n"
  if command -v apt-get >/dev/null; then
    { timeout 600 $sudo apt-get install -y -qq --no-install-recommends mesa-vulkan-drivers libvulkan1 \
      || { timeout 300 $sudo apt-get update -qq \
           && timeout 600 $sudo apt-get install -y -qq --no-install-recommends mesa-vulkan-drivers libvulkan1; }; } \
      >/dev/null 2>&1 || echo "warning: could not install mesa-vulkan-drivers (lavapipe)"
  fi
fi
if ! "$bin" devices --json | grep -q '"device"'; then
  echo "skipping the GPU tests: no Vulkan adapter, and lavapipe (mesa-vulkan-drivers) could not be installed"
  exit 0
fi
"$bin" devices

export CRIA_GPU_REQUIRED=1
timeout 1200 cargo test --release -p cria-gpu
timeout 1800 cargo test --release -p cria-model --test parity_gpu
timeout 1200 cargo test --release -p cria-model --test conformance_gpu

model=smollm2-135m-instruct
# `cria run` drives the engine as serve does: on the GPU, with no fallback line on stderr.
run_err=$(mktemp /tmp/cria-run-gpu.XXXXXX.log)
run_out=$(timeout 600 "$bin" run -m "$model" --device gpu -n 8 --temp 0 --raw "The capital of France is" 2>"$run_err")
if [[ -z ${run_out//[[:space:]]/} ]] || grep -q -- "--device:" "$run_err"; then
  echo "cria run --device gpu did not generate on the GPU:"; cat "$run_err"; exit 1
fi
echo "cria run --device gpu: $run_out"

# `cria bench --device gpu` times pp and tg on the GPU and names the adapter (tiny sizes: lavapipe is slow).
bench_out=$(timeout 600 "$bin" bench -m "$model" --device gpu -p 4 -n 2 -r 1 --bandwidth-mib 0 2>&1)
if ! grep -q '^device: gpu:' <<<"$bench_out" || ! grep -q '| GPU |' <<<"$bench_out"; then
  echo "cria bench --device gpu did not run on the GPU:"; echo "$bench_out"; exit 1
fi

python3 -c 'import openai, pytest' 2>/dev/null || timeout 300 python3 -m pip install -q openai pytest
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
log=$(mktemp /tmp/cria-serve-gpu.XXXXXX.log)
"$bin" serve -m "$model" --device gpu --port "$port" --parallel 2 --ctx 256 --shutdown-timeout 5 >"$log" 2>&1 &
pid=$!
stop() {
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.2; done
  kill -KILL "$pid" 2>/dev/null || true
}
trap stop EXIT
for i in $(seq 1500); do
  if curl -fsS --max-time 2 "http://127.0.0.1:$port/health" >/dev/null 2>&1; then break; fi
  if ! kill -0 "$pid" 2>/dev/null; then echo "cria serve --device gpu died while starting:"; cat "$log"; exit 1; fi
  if [[ $i == 1500 ]]; then echo "cria serve --device gpu not healthy after 300 s:"; cat "$log"; exit 1; fi
  sleep 0.2
done
export CRIA_BASE_URL="http://127.0.0.1:$port" CRIA_MODEL_ID="$model" CRIA_SERVE_LOG="$log"
status=0
timeout 900 python3 -m pytest -q -p no:cacheprovider tests/gpu ${PYTEST_ARGS:-} || status=$?
if [[ $status != 0 ]]; then echo "--- server log ---"; tail -50 "$log"; fi
stop
trap - EXIT
exit "$status"
