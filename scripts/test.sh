#!/usr/bin/env bash
# The project's test command: fetch the two reference models if missing (cached in $CRIA_HOME), then run every test.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --bin cria
for model in smollm2-135m-instruct gemma-3-270m; do
    ./target/release/cria pull "$model"
done
cargo test --workspace --release
if [ -f tests/openai/run.sh ]; then
    bash tests/openai/run.sh
fi
