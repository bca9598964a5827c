//! WGSL sources: each kernel's text, and the weight-reading kernels (matmul, get_rows) specialised per format by
//! prepending that format's `dq_group` (dequantize one 32-wide group of a row).

use cria_gguf::GgmlType;

const BYTES: &str = include_str!("wgsl/bytes.wgsl");
const KSCALE: &str = include_str!("wgsl/dq_kscale.wgsl");
pub(crate) const MATMUL: &str = include_str!("wgsl/matmul.wgsl");
pub(crate) const GET_ROWS: &str = include_str!("wgsl/get_rows.wgsl");
pub(crate) const ROWS: &str = include_str!("wgsl/rows.wgsl");
pub(crate) const ROPE: &str = include_str!("wgsl/rope.wgsl");
pub(crate) const ELEMENTWISE: &str = include_str!("wgsl/elementwise.wgsl");
pub(crate) const KV_STORE: &str = include_str!("wgsl/kv_store.wgsl");
pub(crate) const ATTENTION: &str = include_str!("wgsl/attention.wgsl");
pub(crate) const ATTENTION_SPLIT: &str = include_str!("wgsl/attention_split.wgsl");
pub(crate) const ATTENTION_COMBINE: &str = include_str!("wgsl/attention_combine.wgsl");
pub(crate) const QUANTIZE_Q8: &str = include_str!("wgsl/quantize_q8.wgsl");
const MATVEC_Q8: &str = include_str!("wgsl/matvec_q8.wgsl");

/// How `quantize_q8.wgsl` rounds activations: as the CPU's activation format for the weight format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Q8Mode {
    Q8_0 = 0,
    Q8_1 = 1,
    Q8K = 2,
}

/// The format's int8 `load_group`, whether it needs the K-quant scale helper, and its activations' rounding.
fn q8_source(ty: GgmlType) -> Option<(&'static str, bool, Q8Mode)> {
    Some(match ty {
        GgmlType::Q8_0 => (include_str!("wgsl/q8w_q8_0.wgsl"), false, Q8Mode::Q8_0),
        GgmlType::Q4_0 => (include_str!("wgsl/q8w_q4_0.wgsl"), false, Q8Mode::Q8_0),
        GgmlType::Q5_0 => (include_str!("wgsl/q8w_q5_0.wgsl"), false, Q8Mode::Q8_0),
        GgmlType::Q4_1 => (include_str!("wgsl/q8w_q4_1.wgsl"), false, Q8Mode::Q8_1),
        GgmlType::Q5_1 => (include_str!("wgsl/q8w_q5_1.wgsl"), false, Q8Mode::Q8_1),
        GgmlType::Q4_K => (include_str!("wgsl/q8w_q4_k.wgsl"), true, Q8Mode::Q8K),
        GgmlType::Q5_K => (include_str!("wgsl/q8w_q5_k.wgsl"), true, Q8Mode::Q8K),
        GgmlType::Q6_K => (include_str!("wgsl/q8w_q6_k.wgsl"), false, Q8Mode::Q8K),
        _ => return None,
    })
}

/// How activations are quantized for `ty`'s int8 matrix-vector product; `None` where `ty` has none.
pub(crate) fn q8_mode(ty: GgmlType) -> Option<Q8Mode> {
    q8_source(ty).map(|(_, _, mode)| mode)
}

const MATVEC_Q8_GATED: &str = include_str!("wgsl/matvec_q8_gated.wgsl");
const Q8W_WORDS: &str = include_str!("wgsl/q8w_words.wgsl");
const Q8W_COMMON: &str = include_str!("wgsl/q8w_common.wgsl");

/// `ty`'s weight readers: word and byte access to the buffer `w`, the K-quant scales where needed, and
/// `load_group`.
fn weight_readers(ty: GgmlType) -> Option<String> {
    let (load, kscale, _) = q8_source(ty)?;
    let kscale = if kscale { KSCALE } else { "" };
    Some(format!("{Q8W_WORDS}\n{BYTES}\n{kscale}\n{load}"))
}

/// The int8 matrix-vector product (`matvec_q8.wgsl`) specialised for `ty`.
pub(crate) fn matvec_q8(ty: GgmlType) -> Option<String> {
    let readers = weight_readers(ty)?;
    Some(format!("{MATVEC_Q8}\n{Q8W_COMMON}\n{readers}"))
}

/// The fused gate/up matrix-vector product with its gated activation (`matvec_q8_gated.wgsl`) for `ty`: the
/// weight readers twice, the second copy renamed to read the up matrix `u` (`load_group_up`).
pub(crate) fn matvec_q8_gated(ty: GgmlType) -> Option<String> {
    let readers = weight_readers(ty)?;
    let mut up = readers.replace("w[", "u[");
    for f in [
        "word_at",
        "half_at",
        "b8",
        "i8at",
        "u16at",
        "f16at",
        "u32at",
        "scale_min_k4",
        "load_group",
    ] {
        up = up.replace(&format!("{f}("), &format!("{f}_up("));
    }
    Some(format!("{MATVEC_Q8_GATED}\n{Q8W_COMMON}\n{readers}\n{up}"))
}

const REDUCE_WORKGROUP: &str = include_str!("wgsl/reduce_workgroup.wgsl");
const REDUCE_SUBGROUP: &str = include_str!("wgsl/reduce_subgroup.wgsl");

/// `kernel` (rows, attention: one that calls `reduce_sum` / `reduce_max` and marks its entry point's
/// parameters and first line) with its reductions through subgroup operations when `subgroups`, else through
/// workgroup memory.
pub(crate) fn with_reductions(kernel: &str, subgroups: bool) -> String {
    if subgroups {
        let args = ", @builtin(subgroup_id) sg_id: u32, @builtin(num_subgroups) n_sg: u32, \
                    @builtin(subgroup_invocation_id) sg_lane_id: u32";
        let init = "sg_index = sg_id;\n    sg_count = n_sg;\n    sg_lane = sg_lane_id;";
        let body = kernel
            .replace("/*SUBGROUP_ARGS*/", args)
            .replace("/*SUBGROUP_INIT*/", init);
        // naga takes subgroup operations without WGSL's `enable subgroups;` (it rejects the directive): the
        // device's SUBGROUP feature allows them.
        format!("{body}\n{REDUCE_SUBGROUP}")
    } else {
        let body = kernel
            .replace("/*SUBGROUP_ARGS*/", "")
            .replace("/*SUBGROUP_INIT*/", "");
        format!("{body}\n{REDUCE_WORKGROUP}")
    }
}

/// The format's `dq_group`, and whether it needs the K-quant scale helper.
fn dequant_source(ty: GgmlType) -> Option<(&'static str, bool)> {
    Some(match ty {
        GgmlType::F32 => (include_str!("wgsl/dq_f32.wgsl"), false),
        GgmlType::F16 => (include_str!("wgsl/dq_f16.wgsl"), false),
        GgmlType::BF16 => (include_str!("wgsl/dq_bf16.wgsl"), false),
        GgmlType::Q8_0 => (include_str!("wgsl/dq_q8_0.wgsl"), false),
        GgmlType::Q4_0 => (include_str!("wgsl/dq_q4_0.wgsl"), false),
        GgmlType::Q4_1 => (include_str!("wgsl/dq_q4_1.wgsl"), false),
        GgmlType::Q5_0 => (include_str!("wgsl/dq_q5_0.wgsl"), false),
        GgmlType::Q5_1 => (include_str!("wgsl/dq_q5_1.wgsl"), false),
        GgmlType::Q4_K => (include_str!("wgsl/dq_q4_k.wgsl"), true),
        GgmlType::Q5_K => (include_str!("wgsl/dq_q5_k.wgsl"), true),
        GgmlType::Q6_K => (include_str!("wgsl/dq_q6_k.wgsl"), false),
        _ => return None,
    })
}

/// Whether the GPU kernels read weights of format `ty` (matmul and get_rows); the others stay on the CPU.
pub fn supports_format(ty: GgmlType) -> bool {
    dequant_source(ty).is_some()
}

/// `kernel` (one that calls `dq_group` on a buffer `w`) specialised for `ty`.
pub(crate) fn with_format(kernel: &str, ty: GgmlType) -> Option<String> {
    let (dq, kscale) = dequant_source(ty)?;
    let mut src = String::with_capacity(BYTES.len() + dq.len() + kernel.len() + 512);
    src.push_str(kernel);
    src.push('\n');
    src.push_str(BYTES);
    if kscale {
        src.push_str(KSCALE);
    }
    src.push_str(dq);
    Some(src)
}
