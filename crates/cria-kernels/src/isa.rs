//! Which instruction set the kernels use: detected once at run time, or forced with `CRIA_ISA`.

use crate::KernelError;
use std::sync::OnceLock;

/// A kernel path.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Isa {
    /// Portable Rust, any target.
    Scalar,
    /// x86-64 AVX2 + FMA + F16C (uses AVX-VNNI when present).
    Avx2,
    /// x86-64 AVX-512 F/BW/VL (+VNNI when present).
    Avx512,
    /// aarch64 NEON (+dotprod when present).
    Neon,
}

impl Isa {
    /// The name `CRIA_ISA` uses.
    pub fn name(self) -> &'static str {
        match self {
            Isa::Scalar => "scalar",
            Isa::Avx2 => "avx2",
            Isa::Avx512 => "avx512",
            Isa::Neon => "neon",
        }
    }

    /// Whether this CPU can run the path.
    pub fn supported(self) -> bool {
        match self {
            Isa::Scalar => true,
            Isa::Avx2 => has_avx2(),
            Isa::Avx512 => has_avx512(),
            Isa::Neon => has_neon(),
        }
    }

    /// Every path this CPU can run, scalar first.
    pub fn available() -> Vec<Isa> {
        [Isa::Scalar, Isa::Avx2, Isa::Avx512, Isa::Neon]
            .into_iter()
            .filter(|i| i.supported())
            .collect()
    }

    /// The best path this CPU has.
    pub fn best() -> Isa {
        [Isa::Avx512, Isa::Avx2, Isa::Neon]
            .into_iter()
            .find(|i| i.supported())
            .unwrap_or(Isa::Scalar)
    }
}

#[cfg(target_arch = "x86_64")]
fn has_avx2() -> bool {
    is_x86_feature_detected!("avx2")
        && is_x86_feature_detected!("fma")
        && is_x86_feature_detected!("f16c")
}
#[cfg(not(target_arch = "x86_64"))]
fn has_avx2() -> bool {
    false
}

#[cfg(target_arch = "x86_64")]
fn has_avx512() -> bool {
    has_avx2()
        && is_x86_feature_detected!("avx512f")
        && is_x86_feature_detected!("avx512bw")
        && is_x86_feature_detected!("avx512vl")
}
#[cfg(not(target_arch = "x86_64"))]
fn has_avx512() -> bool {
    false
}

#[cfg(target_arch = "aarch64")]
fn has_neon() -> bool {
    std::arch::is_aarch64_feature_detected!("neon")
}
#[cfg(not(target_arch = "aarch64"))]
fn has_neon() -> bool {
    false
}

/// Whether x86 VNNI (512-bit) is present, for the AVX-512 path.
#[cfg(target_arch = "x86_64")]
pub(crate) fn has_avx512_vnni() -> bool {
    static V: OnceLock<bool> = OnceLock::new();
    *V.get_or_init(|| is_x86_feature_detected!("avx512vnni"))
}

/// Whether `CRIA_AMX=0` asks the AVX-512 path not to use Intel AMX (A/B runs, tests of the AVX-512 kernels
/// on an AMX machine). The AVX2 and scalar paths never use it.
pub fn amx_refused() -> bool {
    static V: OnceLock<bool> = OnceLock::new();
    *V.get_or_init(|| std::env::var("CRIA_AMX").is_ok_and(|v| v.trim() == "0"))
}

/// Whether Intel AMX-INT8 tiles (Sapphire Rapids and later) may run in this process: the CPU has AMX-TILE
/// and AMX-INT8, the OS saves their state (XCR0 bits 17 and 18), Linux granted this process the tile
/// data (`arch_prctl(ARCH_REQ_XCOMP_PERM)`, asked once), and `CRIA_AMX=0` does not refuse it. Anywhere else
/// (another OS, a refused request) AMX is simply absent and the AVX-512 kernels run.
#[cfg(target_arch = "x86_64")]
pub(crate) fn has_amx_int8() -> bool {
    static V: OnceLock<bool> = OnceLock::new();
    *V.get_or_init(|| !amx_refused() && amx_cpu_and_os() && amx_permission())
}

/// CPUID.(7,0):EDX bits 24 (AMX-TILE) and 25 (AMX-INT8), and XCR0's tile state bits (17 XTILECFG, 18
/// XTILEDATA) set by the OS.
#[cfg(target_arch = "x86_64")]
fn amx_cpu_and_os() -> bool {
    use std::arch::x86_64::{__cpuid, __cpuid_count};
    if __cpuid(0).eax < 7 || !is_x86_feature_detected!("xsave") {
        return false;
    }
    let edx = __cpuid_count(7, 0).edx;
    let osxsave = __cpuid(1).ecx & (1 << 27) != 0;
    if edx & (1 << 24) == 0 || edx & (1 << 25) == 0 || !osxsave {
        return false;
    }
    // SAFETY: `xsave` is present and the OS set CR4.OSXSAVE (CPUID.1:ECX bit 27), so `xgetbv` is defined.
    let xcr0 = unsafe { xcr0() };
    xcr0 & (3 << 17) == 3 << 17
}

/// # Safety
/// The CPU has XSAVE and the OS enabled it (OSXSAVE).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "xsave")]
unsafe fn xcr0() -> u64 {
    // SAFETY: the caller's contract (XSAVE present and enabled by the OS).
    unsafe { std::arch::x86_64::_xgetbv(0) }
}

/// Asks Linux for the AMX tile data state (`ARCH_REQ_XCOMP_PERM`, `XFEATURE_XTILEDATA`): without it the first
/// tile instruction raises SIGILL. Process-wide, so asked once; other systems: no AMX.
#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
fn amx_permission() -> bool {
    const ARCH_REQ_XCOMP_PERM: libc::c_long = 0x1023;
    const XFEATURE_XTILEDATA: libc::c_long = 18;
    // SAFETY: arch_prctl with this request only changes which xstate features the process may use; it
    // reads and writes no memory of ours.
    let r = unsafe {
        libc::syscall(
            libc::SYS_arch_prctl,
            ARCH_REQ_XCOMP_PERM,
            XFEATURE_XTILEDATA,
        )
    };
    r == 0
}
#[cfg(all(target_arch = "x86_64", not(target_os = "linux")))]
fn amx_permission() -> bool {
    false
}

/// Whether aarch64 `sdot` is present, for the NEON path.
#[cfg(target_arch = "aarch64")]
pub(crate) fn has_dotprod() -> bool {
    static V: OnceLock<bool> = OnceLock::new();
    *V.get_or_init(|| std::arch::is_aarch64_feature_detected!("dotprod"))
}

/// Parses a `CRIA_ISA` value and checks the CPU has it.
pub fn parse(value: &str) -> Result<Isa, KernelError> {
    let isa = match value.trim().to_ascii_lowercase().as_str() {
        "scalar" => Isa::Scalar,
        "avx2" | AVX2_NO_VNNI => Isa::Avx2,
        "avx512" => Isa::Avx512,
        "neon" => Isa::Neon,
        _ => {
            return Err(KernelError::UnsupportedIsa(
                value.into(),
                "unknown path (scalar|avx2|avx2-novnni|avx512|neon)",
            ));
        }
    };
    if !isa.supported() {
        return Err(KernelError::UnsupportedIsa(
            value.into(),
            "this CPU lacks that instruction set",
        ));
    }
    Ok(isa)
}

/// The `CRIA_ISA` value for the AVX2 path without AVX-VNNI even where the CPU has it: AVX2 as a Zen 3 or an
/// older Intel part runs it, and as llama.cpp's AVX2-only build (no `GGML_AVX_VNNI`) does, for like-for-like
/// comparisons on a newer machine.
pub const AVX2_NO_VNNI: &str = "avx2-novnni";

/// Whether `CRIA_ISA` asks for the AVX2 path without AVX-VNNI ([`AVX2_NO_VNNI`]).
pub fn avxvnni_refused() -> bool {
    static V: OnceLock<bool> = OnceLock::new();
    *V.get_or_init(|| {
        std::env::var("CRIA_ISA").is_ok_and(|v| v.trim().eq_ignore_ascii_case(AVX2_NO_VNNI))
    })
}

fn detect() -> Result<Isa, KernelError> {
    match std::env::var("CRIA_ISA") {
        Ok(v) if !v.trim().is_empty() => parse(&v),
        _ => Ok(Isa::best()),
    }
}

static ACTIVE: OnceLock<Result<Isa, KernelError>> = OnceLock::new();

/// The process-wide path: `CRIA_ISA` if set (checked), else the best this CPU has. Decided once.
pub fn try_active() -> Result<Isa, KernelError> {
    ACTIVE.get_or_init(detect).clone()
}

/// [`try_active`], for the hot paths.
///
/// # Panics
/// If `CRIA_ISA` names an unknown path or one this CPU lacks; binaries call [`try_active`] at start-up to turn
/// that into a clean error first.
pub fn active() -> Isa {
    match try_active() {
        Ok(isa) => isa,
        Err(e) => panic!("{e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scalar_is_always_available() {
        assert!(Isa::available().contains(&Isa::Scalar));
        assert!(parse("scalar").is_ok());
        assert!(parse("SCALAR").is_ok());
    }

    #[test]
    fn avx2_without_vnni_is_the_avx2_path() {
        if Isa::Avx2.supported() {
            assert_eq!(parse(AVX2_NO_VNNI).ok(), Some(Isa::Avx2));
        }
    }

    #[test]
    fn unknown_names_are_rejected() {
        assert!(matches!(
            parse("sse9"),
            Err(KernelError::UnsupportedIsa(..))
        ));
    }

    #[test]
    fn best_is_supported() {
        assert!(Isa::best().supported());
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn neon_is_refused_on_x86() {
        assert!(parse("neon").is_err());
    }
}
