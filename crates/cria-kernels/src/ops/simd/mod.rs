//! Vector primitives behind the ops, one table per ISA, picked once from [`crate::isa::active`].
//!
//! Every table computes the same functions as [`scalar`]; the SIMD ones differ only by rounding
//! (other summation order, FMA, a polynomial `exp`), which the proptests in `tests/ops_simd.rs` bound.

use half::f16;

use crate::isa::Isa;

#[cfg(target_arch = "aarch64")]
mod neon;
mod scalar;
#[cfg(target_arch = "x86_64")]
mod x86;

/// Constants of the vector `exp`: `e^x = 2^n · e^r`, `n = round(x·log2 e)`, `r = x − n·ln 2` (ln 2 split in
/// two for precision), `e^r` by its degree-6 Taylor polynomial on |r| ≤ ln2/2 (relative error ≈ 1e-7).
/// Inputs are clamped to [-87, 88] so `2^n` stays a normal float; below -87 (and for -inf) the result is 0.
#[allow(dead_code)] // Unused by the scalar-only targets.
pub(crate) mod exp_consts {
    pub const LOG2E: f32 = std::f32::consts::LOG2_E;
    pub const LN2_HI: f32 = 0.693_145_75;
    pub const LN2_LO: f32 = 1.428_606_8e-6;
    pub const MIN: f32 = -87.0;
    pub const MAX: f32 = 88.0;
    /// 1/6!, 1/5!, ... 1/1!, 1/0!: Horner order.
    pub const POLY: [f32; 7] = [
        1.0 / 720.0,
        1.0 / 120.0,
        1.0 / 24.0,
        1.0 / 6.0,
        0.5,
        1.0,
        1.0,
    ];
}

/// Element types the multi-query kernels read K/V rows in: the cache's f16, or f32 copies of them (exact, so
/// the results are the same bits).
pub(crate) trait KvElem: Copy + Send + Sync + sealed::Sealed + 'static {
    /// Whether rows are f16 (converted as they are read) rather than f32. Read by the AVX-512 kernels only.
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
    const IS_F16: bool;
}

impl KvElem for f16 {
    const IS_F16: bool = true;
}

impl KvElem for f32 {
    const IS_F16: bool = false;
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for half::f16 {}
    impl Sealed for f32 {}
}

/// The primitives, as plain function pointers (one indirect call per row or head, not per element).
pub(crate) struct Kernels {
    pub(crate) isa: Isa,
    dot_rows_f16: fn(&[f32], &[f16], usize, &mut [f32]),
    axpy_rows_f16: fn(&mut [f32], &[f32], &[f16], usize),
    sum_sq: fn(&[f32]) -> f32,
    silu_mul: fn(&[f32], &[f32], &mut [f32]),
    gelu_mul: fn(&[f32], &[f32], &mut [f32]),
    exp_sub_sum: fn(&mut [f32], f32) -> f32,
}

impl Kernels {
    /// `out[t] = q · k[t*stride ..][..q.len()]` for each `t < out.len()`.
    #[inline]
    pub(crate) fn dot_rows_f16(&self, q: &[f32], k: &[f16], stride: usize, out: &mut [f32]) {
        if let Some(last) = out.len().checked_sub(1) {
            assert!(
                last * stride + q.len() <= k.len(),
                "dot_rows_f16: k too short"
            );
        }
        (self.dot_rows_f16)(q, k, stride, out)
    }

    /// `out += Σ_t probs[t] · v[t*stride ..][..out.len()]`.
    #[inline]
    pub(crate) fn axpy_rows_f16(&self, out: &mut [f32], probs: &[f32], v: &[f16], stride: usize) {
        (self.axpy_rows_f16)(out, probs, v, stride)
    }

    /// Whether [`Self::dot_rows_multi`] and [`Self::axpy_rows_multi`] have a body for this head size (the
    /// grouped prefill path runs only where they do).
    pub(crate) fn has_multi(&self, head_dim: usize) -> bool {
        self.isa == Isa::Avx512 && matches!(head_dim, 64 | 128 | 256)
    }

    /// Several queries of `hd` floats (`q` is `[n_q][hd]`) against the same K rows, given as the cache's f16 or
    /// as their exact f32 copies: `out[g*out_stride + t]` = what [`Self::dot_rows_f16`] gives for query `g` and
    /// (the f16 of) row `t`, bit for bit, for `t < n_rows`.
    ///
    /// # Panics
    /// If `!self.has_multi(hd)` or a slice is too short.
    #[inline]
    pub(crate) fn dot_rows_multi<T: KvElem>(
        &self,
        (q, hd): (&[f32], usize),
        (k, stride): (&[T], usize),
        (out, out_stride): (&mut [f32], usize),
        n_rows: usize,
    ) {
        assert!(self.has_multi(hd), "dot_rows_multi: head size {hd}");
        assert!(q.len().is_multiple_of(hd), "dot_rows_multi: q");
        let n_q = q.len() / hd;
        if n_q == 0 || n_rows == 0 {
            return;
        }
        assert!(
            (n_rows - 1) * stride + hd <= k.len(),
            "dot_rows_multi: k too short"
        );
        assert!(
            (n_q - 1) * out_stride + n_rows <= out.len(),
            "dot_rows_multi: out too short"
        );
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `has_multi` holds only for the table with isa Avx512, which `x86::avx512_table` hands out
        // after detecting avx512f, avx512bw and avx512vl.
        unsafe {
            x86::avx512_dot_rows_multi(q, hd, k, stride, (out, out_stride), n_rows)
        };
    }

    /// Several queries against the same V rows (f16, or their exact f32 copies): `acc` is `[n_q][n]`, and
    /// `acc[g]` gets what [`Self::axpy_rows_f16`] does to it with `probs[g*probs_stride..][..n_rows]`, bit for
    /// bit.
    ///
    /// # Panics
    /// If `!self.has_multi(n)` or a slice is too short.
    #[inline]
    pub(crate) fn axpy_rows_multi<T: KvElem>(
        &self,
        (acc, n): (&mut [f32], usize),
        (probs, probs_stride): (&[f32], usize),
        (v, stride): (&[T], usize),
        n_rows: usize,
    ) {
        assert!(self.has_multi(n), "axpy_rows_multi: head size {n}");
        assert!(acc.len().is_multiple_of(n), "axpy_rows_multi: acc");
        let n_q = acc.len() / n;
        if n_q == 0 || n_rows == 0 {
            return;
        }
        assert!(
            (n_rows - 1) * stride + n <= v.len(),
            "axpy_rows_multi: v too short"
        );
        assert!(
            (n_q - 1) * probs_stride + n_rows <= probs.len(),
            "axpy_rows_multi: probs too short"
        );
        #[cfg(target_arch = "x86_64")]
        // SAFETY: as in `dot_rows_multi`.
        unsafe {
            x86::avx512_axpy_rows_multi((acc, n), (probs, probs_stride), v, stride, n_rows)
        };
    }

    /// The query heads of one grouped-query KV head (`q` is `[n_q][hd]`) against the same f16 K rows:
    /// `out[g*out_stride + t]` = what [`Self::dot_rows_f16`] gives for query `g` and row `t`, bit for bit,
    /// with each row converted once for all the queries where the ISA has a kernel for it (AVX2), else one
    /// query at a time (AVX-512's multi kernels would give the same bits; not measured in decode, so not
    /// taken).
    ///
    /// # Panics
    /// If a slice is too short.
    pub(crate) fn dot_rows_group(
        &self,
        (q, hd): (&[f32], usize),
        (k, stride): (&[f16], usize),
        (out, out_stride): (&mut [f32], usize),
        n_rows: usize,
    ) {
        let n_q = q.len() / hd.max(1);
        if n_q == 0 || n_rows == 0 {
            return;
        }
        assert!(
            (n_rows - 1) * stride + hd <= k.len(),
            "dot_rows_group: k too short"
        );
        assert!(
            (n_q - 1) * out_stride + n_rows <= out.len(),
            "dot_rows_group: out too short"
        );
        #[cfg(target_arch = "x86_64")]
        if n_q > 1 && self.isa == Isa::Avx2 {
            // SAFETY: a table with isa Avx2 is only handed out by `x86::avx2_table`, after detecting avx2, fma
            // and f16c.
            unsafe { x86::avx2_dot_rows_group((q, hd), (k, stride), (out, out_stride), n_rows) };
            return;
        }
        for (g, q_g) in q.chunks_exact(hd).enumerate() {
            let o = &mut out[g * out_stride..g * out_stride + n_rows];
            self.dot_rows_f16(q_g, k, stride, o);
        }
    }

    /// The query heads of one grouped-query KV head against the same f16 V rows: `acc` is `[n_q][n]`, and
    /// `acc[g]` gets what [`Self::axpy_rows_f16`] does to it with `probs[g*probs_stride..][..n_rows]`, bit for
    /// bit; each row converted once for all the queries as in [`Self::dot_rows_group`].
    ///
    /// # Panics
    /// If a slice is too short.
    pub(crate) fn axpy_rows_group(
        &self,
        (acc, n): (&mut [f32], usize),
        (probs, probs_stride): (&[f32], usize),
        (v, stride): (&[f16], usize),
        n_rows: usize,
    ) {
        let n_q = acc.len() / n.max(1);
        if n_q == 0 || n_rows == 0 {
            return;
        }
        assert!(
            (n_rows - 1) * stride + n <= v.len(),
            "axpy_rows_group: v too short"
        );
        assert!(
            (n_q - 1) * probs_stride + n_rows <= probs.len(),
            "axpy_rows_group: probs too short"
        );
        #[cfg(target_arch = "x86_64")]
        if n_q > 1 && self.isa == Isa::Avx2 {
            // SAFETY: as in `dot_rows_group`.
            unsafe {
                x86::avx2_axpy_rows_group((acc, n), (probs, probs_stride), (v, stride), n_rows)
            };
            return;
        }
        for (g, acc_g) in acc.chunks_exact_mut(n).enumerate() {
            let p = &probs[g * probs_stride..g * probs_stride + n_rows];
            self.axpy_rows_f16(acc_g, p, v, stride);
        }
    }

    /// `x[i] *= scale`, returning the largest product (`f32::max`'s fold: NaNs skipped, `-inf` if none).
    #[inline]
    pub(crate) fn scale_max(&self, x: &mut [f32], scale: f32) -> f32 {
        #[cfg(target_arch = "x86_64")]
        if self.isa == Isa::Avx512 {
            // SAFETY: a table with isa Avx512 is only handed out by `x86::avx512_table`, after detecting
            // avx512f, avx512bw and avx512vl.
            return unsafe { x86::avx512_scale_max(x, scale) };
        }
        x.iter_mut().fold(f32::NEG_INFINITY, |m, v| {
            *v *= scale;
            m.max(*v)
        })
    }

    /// `x[i] *= s`.
    #[inline]
    pub(crate) fn scale(&self, x: &mut [f32], s: f32) {
        #[cfg(target_arch = "x86_64")]
        if self.isa == Isa::Avx512 {
            // SAFETY: as in `scale_max`.
            unsafe { x86::avx512_scale(x, s) };
            return;
        }
        x.iter_mut().for_each(|v| *v *= s);
    }

    /// `Σ x[i]²`.
    #[inline]
    pub(crate) fn sum_sq(&self, x: &[f32]) -> f32 {
        (self.sum_sq)(x)
    }

    /// `out[i] = silu(gate[i]) · up[i]`; all three the same length.
    #[inline]
    pub(crate) fn silu_mul(&self, gate: &[f32], up: &[f32], out: &mut [f32]) {
        debug_assert!(gate.len() == up.len() && up.len() == out.len());
        (self.silu_mul)(gate, up, out)
    }

    /// `out[i] = gelu_as_ggml(gate[i]) · up[i]` (ggml's f16 GELU table); all three the same length.
    #[inline]
    pub(crate) fn gelu_mul(&self, gate: &[f32], up: &[f32], out: &mut [f32]) {
        debug_assert!(gate.len() == up.len() && up.len() == out.len());
        (self.gelu_mul)(gate, up, out)
    }

    /// `x[i] = exp(x[i] - max)`, returning `Σ x[i]` (softmax's middle step).
    #[inline]
    pub(crate) fn exp_sub_sum(&self, x: &mut [f32], max: f32) -> f32 {
        (self.exp_sub_sum)(x, max)
    }
}

static SCALAR: Kernels = Kernels {
    isa: Isa::Scalar,
    dot_rows_f16: scalar::dot_rows_f16,
    axpy_rows_f16: scalar::axpy_rows_f16,
    sum_sq: scalar::sum_sq,
    silu_mul: scalar::gated_mul::<false>,
    gelu_mul: scalar::gated_mul::<true>,
    exp_sub_sum: scalar::exp_sub_sum,
};

/// The table for the process-wide ISA.
pub(crate) fn kernels() -> &'static Kernels {
    static ACTIVE: std::sync::OnceLock<&'static Kernels> = std::sync::OnceLock::new();
    ACTIVE.get_or_init(|| for_isa(crate::isa::active()).unwrap_or(&SCALAR))
}

/// The table for `isa`, or `None` if this CPU (or build target) cannot run it. Tests use it to hold
/// every path this machine has against [`scalar`].
pub(crate) fn for_isa(isa: Isa) -> Option<&'static Kernels> {
    match isa {
        Isa::Scalar => Some(&SCALAR),
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => x86::avx2_table(),
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => x86::avx512_table(),
        #[cfg(target_arch = "aarch64")]
        Isa::Neon => neon::table(),
        #[allow(unreachable_patterns)]
        _ => None,
    }
}

/// Test hooks: the same primitives, reachable from the integration tests for a chosen ISA.
#[doc(hidden)]
pub mod testing {
    use super::*;

    /// The ISA the ops use in this process.
    pub fn active_isa() -> Isa {
        kernels().isa
    }
    /// Whether this machine can run `isa`'s op kernels.
    pub fn available(isa: Isa) -> bool {
        for_isa(isa).is_some()
    }
    /// `out[t] = q · k[t*stride..]` on `isa`. Panics if unavailable.
    pub fn dot_rows_f16(isa: Isa, q: &[f32], k: &[f16], stride: usize, out: &mut [f32]) {
        table(isa).dot_rows_f16(q, k, stride, out)
    }
    /// `out += Σ probs[t] · v[t*stride..]` on `isa`. Panics if unavailable.
    pub fn axpy_rows_f16(isa: Isa, out: &mut [f32], probs: &[f32], v: &[f16], stride: usize) {
        table(isa).axpy_rows_f16(out, probs, v, stride)
    }
    /// `Σ x²` on `isa`. Panics if unavailable.
    pub fn sum_sq(isa: Isa, x: &[f32]) -> f32 {
        table(isa).sum_sq(x)
    }
    /// `silu(gate)·up` on `isa`. Panics if unavailable.
    pub fn silu_mul(isa: Isa, gate: &[f32], up: &[f32], out: &mut [f32]) {
        table(isa).silu_mul(gate, up, out)
    }
    /// `gelu(gate)·up` on `isa`. Panics if unavailable.
    pub fn gelu_mul(isa: Isa, gate: &[f32], up: &[f32], out: &mut [f32]) {
        table(isa).gelu_mul(gate, up, out)
    }
    /// `x = exp(x - max)`, returns the sum, on `isa`. Panics if unavailable.
    pub fn exp_sub_sum(isa: Isa, x: &mut [f32], max: f32) -> f32 {
        table(isa).exp_sub_sum(x, max)
    }
    /// [`Kernels::dot_rows_group`] on `isa`. Panics if unavailable.
    pub fn dot_rows_group(
        isa: Isa,
        q: (&[f32], usize),
        k: (&[f16], usize),
        out: (&mut [f32], usize),
        n_rows: usize,
    ) {
        table(isa).dot_rows_group(q, k, out, n_rows)
    }
    /// [`Kernels::axpy_rows_group`] on `isa`. Panics if unavailable.
    pub fn axpy_rows_group(
        isa: Isa,
        acc: (&mut [f32], usize),
        probs: (&[f32], usize),
        v: (&[f16], usize),
        n_rows: usize,
    ) {
        table(isa).axpy_rows_group(acc, probs, v, n_rows)
    }
    fn table(isa: Isa) -> &'static Kernels {
        match for_isa(isa) {
            Some(t) => t,
            None => panic!("{isa:?} op kernels unavailable on this machine"),
        }
    }
}
