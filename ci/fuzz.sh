#!/usr/bin/env bash
# Fuzzes the GGUF parser for about a minute; exits non-zero on a crash.
# Installs what it needs if missing: a nightly toolchain and cargo-fuzz.
# Env: FUZZ_SECONDS (default 60), CRIA_HOME (for seed models; default ~/.cache/cria).
set -euo pipefail

cd "$(dirname "$0")/.."
seconds="${FUZZ_SECONDS:-60}"
models="${CRIA_HOME:-$HOME/.cache/cria}/models"

if ! rustup toolchain list | grep -q '^nightly'; then
    rustup toolchain install nightly --profile minimal
fi
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
    cargo +nightly install cargo-fuzz --locked
fi

# Seeds: the first 4 KiB of each real model (header and early metadata), plus the small
# complete files kept in fuzz/seeds.
corpus=fuzz/corpus/parse_gguf
mkdir -p "$corpus"
for m in smollm2-135m-instruct gemma-3-270m; do
    if [ -f "$models/$m.gguf" ]; then
        head -c 4096 "$models/$m.gguf" > "$corpus/$m-head.gguf"
    fi
done
cp fuzz/seeds/* "$corpus/"

# -malloc_limit_mb: no input of a few KiB may make the parser ask for hundreds of MiB.
cargo +nightly fuzz run parse_gguf "$corpus" -- \
    -max_total_time="$seconds" -max_len=8192 -malloc_limit_mb=256 -rss_limit_mb=2048 -print_final_stats=1
