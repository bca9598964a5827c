//! `CRIA_ISA` forces the process-wide path, and a path the CPU lacks is a clear error. `isa::active()` is
//! decided once per process, so each case runs this test binary again as a child with the variable set.

use cria_kernels::isa::{self, Isa};
use std::process::Command;

/// The child side: reports what `try_active` decided. Does nothing unless run by `forced_paths_*`.
#[test]
fn child_reports_active_isa() {
    let Ok(expect) = std::env::var("CRIA_ISA_EXPECT") else {
        return;
    };
    match isa::try_active() {
        Ok(got) => assert_eq!(
            got.name(),
            expect,
            "CRIA_ISA={:?}",
            std::env::var("CRIA_ISA")
        ),
        Err(e) => {
            assert_eq!(expect, "error", "unexpected error: {e}");
            assert!(
                e.to_string().contains("CRIA_ISA="),
                "error should name the variable: {e}"
            );
        }
    }
}

/// This test binary as a command: through cargo's runner when cross-testing (qemu-aarch64 for ci/neon.sh).
fn this_binary() -> Command {
    let exe = std::env::current_exe().unwrap();
    let runner = std::env::var("CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUNNER").ok();
    match runner.filter(|_| cfg!(target_arch = "aarch64")) {
        Some(r) => {
            let mut parts = r.split_whitespace();
            let mut cmd = Command::new(parts.next().unwrap());
            cmd.args(parts).arg(exe);
            cmd
        }
        None => Command::new(exe),
    }
}

fn run_child(value: &str, expect: &str) {
    let out = this_binary()
        .args(["--exact", "child_reports_active_isa", "--test-threads=1"])
        .env("CRIA_ISA", value)
        .env("CRIA_ISA_EXPECT", expect)
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "CRIA_ISA={value}: child failed:\n{log}"
    );
    assert!(
        log.contains("1 passed"),
        "CRIA_ISA={value}: child did not run:\n{log}"
    );
}

#[test]
fn forced_paths_are_honoured() {
    for isa in Isa::available() {
        run_child(isa.name(), isa.name());
    }
    run_child("", Isa::best().name());
}

#[test]
fn unknown_or_missing_paths_are_errors() {
    run_child("sse9", "error");
    for isa in [Isa::Avx2, Isa::Avx512, Isa::Neon] {
        if !isa.supported() {
            run_child(isa.name(), "error");
        }
    }
}
