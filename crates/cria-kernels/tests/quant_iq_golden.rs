//! Dequantization of the IQ, ternary and MXFP4 formats against gguf-py's dequantizers, bit for bit
//! (tests/data/make_iq_golden.py says how the data was made).

#![allow(clippy::unwrap_used)] // tests fail loudly on bad fixtures

use cria_kernels::GgmlType;
use cria_kernels::quant::{can_quantize, dequantize_row, quantize_row};
use serde_json::Value;

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

const FORMATS: [&str; 12] = [
    "IQ4_NL", "IQ4_XS", "MXFP4", "TQ1_0", "TQ2_0", "IQ2_XXS", "IQ2_XS", "IQ2_S", "IQ3_XXS",
    "IQ3_S", "IQ1_S", "IQ1_M",
];

#[test]
fn iq_ternary_and_mxfp4_dequantize_matches_gguf_py_bit_for_bit() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/iq_golden.json");
    let g: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    for name in FORMATS {
        let ty = GgmlType::ALL
            .into_iter()
            .find(|t| t.name() == name)
            .unwrap();
        let q = unhex(g[name]["q"].as_str().unwrap());
        let want: Vec<f32> = unhex(g[name]["deq"].as_str().unwrap())
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        let mut got = vec![0f32; want.len()];
        dequantize_row(ty, &q, &mut got).unwrap();
        for (i, (g, w)) in got.iter().zip(&want).enumerate() {
            assert_eq!(
                g.to_bits(),
                w.to_bits(),
                "{name} element {i}: got {g}, want {w}"
            );
        }
    }
}

#[test]
fn quantizing_to_a_read_only_format_is_a_typed_error() {
    for name in FORMATS {
        let ty = GgmlType::ALL
            .into_iter()
            .find(|t| t.name() == name)
            .unwrap();
        assert!(!can_quantize(ty));
        let n = ty.block_size();
        let mut q = vec![0u8; ty.type_size()];
        assert!(
            quantize_row(ty, &vec![0.5f32; n], &mut q).is_err(),
            "{name}"
        );
    }
}
