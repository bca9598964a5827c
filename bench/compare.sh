#!/usr/bin/env bash
# Side-by-side speed of cria and llama.cpp: llama-bench and `cria bench` (pp512 / tg128, same threads, same
# files), alternating engine order every round so that the load of a shared machine falls on both; then peak
# RSS and launch-to-first-token of `cria run` vs llama-completion on the first small model and the first shape
# file. Prints a markdown table with the ratios (bench/compare.py); raw JSON stays in $OUT.
#
# Models: the two small reference models (pulled) and random-weight files with a real model's shape
# (bench/make_shapes.py, quantized by llama-quantize; Llama-3.2-1B's shape by default, -S 8b or -S none).
# ISA (-i): "native" runs cria on its best path against llama.cpp built with -DGGML_NATIVE=ON; "avx2" runs cria
# under CRIA_ISA=avx2-novnni (AVX2, FMA, F16C; no AVX-VNNI, as on a Zen 3) against a llama.cpp built for AVX2 only
# (LLAMA_REF_ISA=avx2), so the AVX2 comparison can be made on any x86-64 machine.
#
# Usage: bench/compare.sh [-i native|avx2] [-t THREADS] [-p 512] [-n 128] [-r 5] [-R ROUNDS]
#                         [-m "model1 model2"] [-S 1b|8b|none] [-q "Q4_K_M Q4_0 Q8_0"]
# Env: CRIA_HOME (models), CRIA_BENCH_HOME (shape files, default ~/.cache/cria-bench), CARGO_TARGET_DIR (cria
#      build), OUT (results folder), LLAMA_CPP_REF (build script), CRIA_BIN / LLAMA_BIN_DIR to skip the builds.
# A model named qwen3moe-a3b-<N>l is a random-weight MoE of Qwen3-30B-A3B's per-layer shape with N layers,
# written by bench/make_moe_model.py into $CRIA_HOME/models when missing (-m qwen3moe-a3b-4l: 1.7 GB).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
threads=2 n_prompt=512 n_gen=128 reps=5 rounds=2 isa=native shape=1b
models="smollm2-135m-instruct gemma-3-270m"
quants="Q4_K_M Q4_0 Q8_0"
while getopts "i:t:p:n:r:R:m:S:q:" opt; do
  case $opt in
    i) isa=$OPTARG ;; t) threads=$OPTARG ;; p) n_prompt=$OPTARG ;; n) n_gen=$OPTARG ;; r) reps=$OPTARG ;;
    R) rounds=$OPTARG ;; m) models=$OPTARG ;; S) shape=$OPTARG ;; q) quants=$OPTARG ;;
    *) sed -n 2,18p "$0"; exit 2 ;;
  esac
done
case $isa in
  native) unset CRIA_ISA ;;
  avx2) export CRIA_ISA=avx2-novnni ;; # llama.cpp's AVX2-only build has no AVX-VNNI either
  *) echo "-i must be native or avx2" >&2; exit 2 ;;
esac
out=${OUT:-${TMPDIR:-/tmp}/cria-compare-$isa-$(date -u +%Y%m%dT%H%M%S)}
mkdir -p "$out"

# llama.cpp's tools for this ISA (idempotent: prints the folder at once when already built).
llama_bin=${LLAMA_BIN_DIR:-$(LLAMA_REF_ISA=$isa bash "${LLAMA_CPP_REF:-$root/../shared/tools/llama-cpp-ref.sh}" | tail -1)}
[[ -x $llama_bin/llama-bench ]] || { echo "no llama-bench in $llama_bin" >&2; exit 1; }

if [[ -z ${CRIA_BIN:-} ]]; then
  (cd "$root" && cargo build --release -p cria -j 2 >&2)
  CRIA_BIN=${CARGO_TARGET_DIR:-$root/target}/release/cria
fi
home=${CRIA_HOME:-$HOME/.cache/cria}

model_path() { # a file, or a name `cria pull` knows
  [[ -f $1 ]] && { echo "$1"; return; }
  local p=$home/models/$1.gguf
  if [[ ! -f $p && $1 =~ ^qwen3moe-a3b-([0-9]+)l$ ]]; then
    mkdir -p "$home/models" && python3 "$root/bench/make_moe_model.py" "$p" --layers "${BASH_REMATCH[1]}" >&2
  fi
  [[ -f $p ]] || "$CRIA_BIN" pull "$1" >&2
  echo "$p"
}

# The shape files (made once; kept outside the repository).
shape_files=()
if [[ $shape != none ]]; then
  mapfile -t shape_files < <(python3 "$root/bench/make_shapes.py" --shape "$shape" --llama-bin "$llama_bin" \
    --out "${CRIA_BENCH_HOME:-$HOME/.cache/cria-bench}" --types "${quants// /,}")
fi

run_llama() { # model name round
  local rc=0
  cut -d' ' -f1 /proc/loadavg > "$out/load-llama-$2-$3.txt"
  "$llama_bin/llama-bench" -m "$1" -p "$n_prompt" -n "$n_gen" -r "$reps" -t "$threads" -o json \
    > "$out/llama-$2-$3.json" 2> "$out/llama-$2-$3.log" || rc=$?
  if (( rc == 132 )); then # SIGILL
    echo "llama-bench died on an illegal instruction. A GGML_NATIVE build on a Sapphire Rapids VM uses AMX," >&2
    echo "which the hypervisor may not allow; rebuild with -DGGML_NATIVE=OFF and explicit AVX-512 flags" >&2
    echo "(docs/BENCHMARKS.md, 'llama.cpp build')." >&2
  fi
  return "$rc"
}
run_cria() {
  cut -d' ' -f1 /proc/loadavg > "$out/load-cria-$2-$3.txt"
  "$CRIA_BIN" bench -m "$1" -p "$n_prompt" -n "$n_gen" -r "$reps" -t "$threads" --json \
    > "$out/cria-$2-$3.json" 2> "$out/cria-$2-$3.log"
}

{
  echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "commit: $(git -C "$root" rev-parse --short HEAD)$(git -C "$root" diff --quiet HEAD -- crates || echo ' (+ uncommitted changes)')"
  echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores"
  echo "isa: $isa (cria: ${CRIA_ISA:-best path}; llama.cpp: $llama_bin)"
  echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "llama.cpp: $llama_bin ($("$llama_bin/llama-bench" --version 2>&1 | head -1 || true))"
} > "$out/machine.txt"

read -ra all_models <<< "$models"
all_models+=("${shape_files[@]}")
for round in $(seq 1 "$rounds"); do
  for m in "${all_models[@]}"; do
    path=$(model_path "$m")
    name=$(basename "$path" .gguf)
    echo "round $round/$rounds: $name" >&2
    if (( round % 2 )); then run_llama "$path" "$name" "$round"; run_cria "$path" "$name" "$round"
    else run_cria "$path" "$name" "$round"; run_llama "$path" "$name" "$round"; fi
  done
done

# Peak RSS and launch-to-first-token on the first small model and the first shape file, same context, one
# generated token, alternating.
first=${models%% *}
prompt="Explain in one paragraph how a bicycle works."
for m in ${first:+"$first"} ${shape_files[0]:+"${shape_files[0]}"}; do
  path=$(model_path "$m")
  name=$(basename "$path" .gguf)
  for round in $(seq 1 "$rounds"); do
    for engine in cria llama; do
      if [[ $engine == cria ]]; then
        cmd=("$CRIA_BIN" run -m "$path" -t "$threads" --ctx 4096 --max-tokens 1 --temp 0 "$prompt")
      else
        cmd=("$llama_bin/llama-completion" -m "$path" -t "$threads" -c 4096 -n 1 --temp 0 -no-cnv -p "$prompt")
      fi
      /usr/bin/time -f "%e %M" -o "$out/run-$engine-$name-$round.time" "${cmd[@]}" \
        > "$out/run-$engine-$name-$round.out" 2>&1 < /dev/null || true
    done
  done
done

python3 "$root/bench/compare.py" "$out" | tee "$out/summary.md"
echo "raw results: $out" >&2
