//! The IQ, ternary and MXFP4 dot products against llama.cpp's own (`vec_dot` of its AVX2 build, on its own
//! quantized activations), bit for bit, on every kernel path this CPU runs; tests/data/make_iq_dot_golden.py
//! says how the data was made.
//!
//! Why bits: every layer quantizes its input to 8 bits again, so a last-bit difference in one dot product
//! flips a rounding there and grows through the layers (see tests/dot_order.rs).

#![allow(clippy::unwrap_used)] // tests fail loudly on bad fixtures

use cria_kernels::GgmlType;
use cria_kernels::dot::{matmul_rows_with, matvec_rows_with, scalar};
use cria_kernels::isa::Isa;
use serde_json::Value;

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// The paths whose bits must be llama.cpp's x86 ones (NEON sums in its own order, like llama.cpp's).
fn x86_order_paths() -> Vec<Isa> {
    Isa::available()
        .into_iter()
        .filter(|&i| i != Isa::Neon)
        .collect()
}

#[test]
fn iq_ternary_and_mxfp4_dots_match_llama_cpp_bit_for_bit() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/iq_dot_golden.json");
    let g: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mut checked = 0;
    for (name, cases) in g.as_object().unwrap() {
        let ty = GgmlType::ALL
            .into_iter()
            .find(|t| t.name() == name)
            .unwrap();
        for case in cases.as_array().unwrap() {
            let n = case["n"].as_u64().unwrap() as usize;
            let w = unhex(case["w"].as_str().unwrap());
            let rb = ty.row_bytes(n).unwrap();
            let rows = w.len() / rb;
            let acts: Vec<Vec<u8>> = case["a"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| unhex(a.as_str().unwrap()))
                .collect();
            let want: Vec<u32> = case["dots"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| d.as_u64().unwrap() as u32)
                .collect();
            for (t, a) in acts.iter().enumerate() {
                for r in 0..rows {
                    let s = scalar::dot(ty, &w[r * rb..(r + 1) * rb], a);
                    let wb = want[t * rows + r];
                    assert_eq!(
                        s.to_bits(),
                        wb,
                        "{name} n={n} act {t} row {r}: scalar {s} vs llama.cpp {}",
                        f32::from_bits(wb)
                    );
                }
                for isa in x86_order_paths() {
                    let mut got = vec![0f32; rows];
                    matvec_rows_with(isa, ty, &w, n, a, 0..rows, &mut got);
                    for (r, g) in got.iter().enumerate() {
                        assert_eq!(
                            g.to_bits(),
                            want[t * rows + r],
                            "{isa:?} {name} n={n} act {t} row {r}"
                        );
                    }
                }
                checked += 1;
            }
            // a batch gives each token a decode step's bits
            let all: Vec<u8> = acts.concat();
            for isa in Isa::available() {
                let mut batch = vec![0f32; rows * acts.len()];
                matmul_rows_with(isa, ty, &w, n, &all, acts.len(), 0..rows, &mut batch, rows);
                for (t, a) in acts.iter().enumerate() {
                    let mut one = vec![0f32; rows];
                    matvec_rows_with(isa, ty, &w, n, a, 0..rows, &mut one);
                    for r in 0..rows {
                        assert_eq!(
                            one[r].to_bits(),
                            batch[t * rows + r].to_bits(),
                            "{isa:?} {name} batch"
                        );
                    }
                }
            }
        }
    }
    assert_eq!(checked, 12 * 2 * 2);
}
