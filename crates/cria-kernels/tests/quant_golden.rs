//! Reference quantize / dequantize against golden vectors made with the `gguf` Python package
//! (tests/data/make_golden.py says how), bit for bit.

use cria_kernels::GgmlType;
use cria_kernels::quant::{dequantize_row, quantize_row};
use serde_json::Value;

fn golden() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/golden.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn floats(s: &str) -> Vec<f32> {
    unhex(s)
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect()
}

fn ty(name: &str) -> GgmlType {
    GgmlType::ALL
        .into_iter()
        .find(|t| t.name() == name)
        .unwrap()
}

fn assert_bits(ty: GgmlType, got: &[f32], want: &[f32]) {
    assert_eq!(got.len(), want.len());
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert_eq!(
            g.to_bits(),
            w.to_bits(),
            "{ty:?} element {i}: got {g}, want {w}"
        );
    }
}

#[test]
fn quantize_matches_gguf_py_bit_for_bit() {
    let g = golden();
    let mut checked = 0;
    for (name, v) in g.as_object().unwrap() {
        let Some(cases) = v.get("quantize") else {
            continue;
        };
        let t = ty(name);
        for case in cases.as_array().unwrap() {
            let x = floats(case["x"].as_str().unwrap());
            let want = unhex(case["q"].as_str().unwrap());
            let mut q = vec![0u8; t.row_bytes(x.len()).unwrap()];
            quantize_row(t, &x, &mut q).unwrap();
            assert_eq!(q, want, "{t:?} quantized bytes");
            let mut d = vec![0f32; x.len()];
            dequantize_row(t, &q, &mut d).unwrap();
            assert_bits(t, &d, &floats(case["deq"].as_str().unwrap()));
            checked += 1;
        }
    }
    assert_eq!(checked, 7 * 4);
}

#[test]
fn k_quant_dequantize_matches_gguf_py_bit_for_bit() {
    let g = golden();
    for name in ["Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K"] {
        let t = ty(name);
        let case = &g[name]["dequantize"][0];
        let q = unhex(case["q"].as_str().unwrap());
        let want = floats(case["deq"].as_str().unwrap());
        let mut d = vec![0f32; want.len()];
        dequantize_row(t, &q, &mut d).unwrap();
        assert_bits(t, &d, &want);
    }
}

#[test]
fn wrong_sizes_are_typed_errors() {
    let mut d = vec![0f32; 100];
    assert!(dequantize_row(GgmlType::Q4_K, &[0u8; 144], &mut d).is_err());
    let mut d = vec![0f32; 256];
    assert!(dequantize_row(GgmlType::Q4_K, &[0u8; 143], &mut d).is_err());
    assert!(quantize_row(GgmlType::Q8_0, &[0f32; 32], &mut [0u8; 33]).is_err());
}
