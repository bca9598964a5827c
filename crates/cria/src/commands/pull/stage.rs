//! Atomic pulls: bytes are written and hashed in a private directory under `$CRIA_HOME/tmp`,
//! then renamed into place only once they check out. A pull that fails leaves nothing behind; one
//! that is killed leaves only its staging directory, swept away by a later pull.

use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use tempfile::TempDir;

use super::error::{PullError, Result};
use super::hash::HashingWriter;
use super::home::Home;

/// Staging directories older than this are left over from killed pulls.
const STALE_AFTER: Duration = Duration::from_secs(24 * 60 * 60);

/// What the staged file must be before it may take its final name.
pub struct Expected<'a> {
    pub name: &'a str,
    pub sha256: &'a str,
    pub size: u64,
}

/// One pull's private staging directory and the file being assembled in it.
pub struct Staging {
    dir: TempDir,
    file: PathBuf,
    out: HashingWriter<BufWriter<File>>,
}

impl Staging {
    /// A fresh staging directory for a pull of `name`.
    pub fn new(home: &Home, name: &str) -> Result<Self> {
        let tmp = home.tmp_dir();
        std::fs::create_dir_all(&tmp).map_err(PullError::io(&tmp))?;
        sweep_stale(&tmp);
        let dir = tempfile::Builder::new()
            .prefix(&format!("pull-{name}-"))
            .tempdir_in(&tmp)
            .map_err(PullError::io(&tmp))?;
        let file = dir.path().join(format!("{name}.partial"));
        let handle = File::create(&file).map_err(PullError::io(&file))?;
        let out = HashingWriter::new(BufWriter::with_capacity(1 << 20, handle));
        Ok(Self { dir, file, out })
    }

    /// The staging directory, for downloads that precede assembly.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Where the model's bytes go; they are hashed on the way.
    pub fn writer(&mut self) -> &mut HashingWriter<BufWriter<File>> {
        &mut self.out
    }

    /// Checks the staged bytes against `expected` (if any) and renames them to `dest`.
    /// On any error the staging directory is removed and `dest` is left as it was.
    pub fn commit(self, dest: &Path, expected: Option<Expected<'_>>) -> Result<String> {
        let (buf, sha256, size) = self.out.finish();
        let handle = buf
            .into_inner()
            .map_err(|e| PullError::io(&self.file)(e.into_error()))?;
        handle.sync_all().map_err(PullError::io(&self.file))?;
        drop(handle);
        if let Some(want) = expected {
            check(&want, &sha256, size)?;
        }
        let parent = dest.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(parent).map_err(PullError::io(parent))?;
        std::fs::rename(&self.file, dest).map_err(PullError::io(dest))?;
        // Make the rename itself durable; failing to is not worth failing the pull.
        if let Ok(dir) = File::open(parent) {
            let _ = dir.sync_all();
        }
        drop(self.dir);
        Ok(sha256)
    }
}

fn check(want: &Expected<'_>, sha256: &str, size: u64) -> Result<()> {
    if size != want.size {
        return Err(PullError::SizeMismatch {
            name: want.name.to_owned(),
            expected: want.size,
            actual: size,
        });
    }
    if sha256 != want.sha256 {
        return Err(PullError::HashMismatch {
            name: want.name.to_owned(),
            expected: want.sha256.to_owned(),
            actual: sha256.to_owned(),
        });
    }
    Ok(())
}

/// Removes staging directories of pulls killed long ago. Best effort: errors are ignored.
fn sweep_stale(tmp: &Path) {
    let Ok(entries) = std::fs::read_dir(tmp) else {
        return;
    };
    let now = SystemTime::now();
    for entry in entries.flatten() {
        let stale = entry
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| now.duration_since(t).ok())
            .is_some_and(|age| age > STALE_AFTER);
        if stale && entry.file_name().to_string_lossy().starts_with("pull-") {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    const ABC_SHA: &str = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";

    fn staged(home: &Home, bytes: &[u8]) -> Staging {
        let mut s = Staging::new(home, "m").unwrap();
        s.writer().write_all(bytes).unwrap();
        s
    }

    fn expected(sha256: &str, size: u64) -> Option<Expected<'_>> {
        Some(Expected {
            name: "m",
            sha256,
            size,
        })
    }

    fn tmp_is_empty(home: &Home) -> bool {
        std::fs::read_dir(home.tmp_dir()).unwrap().next().is_none()
    }

    #[test]
    fn good_bytes_are_renamed_into_place() {
        let root = tempfile::tempdir().unwrap();
        let home = Home::at(root.path());
        let dest = home.models_dir().join("m.gguf");
        let sha = staged(&home, b"abc")
            .commit(&dest, expected(ABC_SHA, 3))
            .unwrap();
        assert_eq!(sha, ABC_SHA);
        assert_eq!(std::fs::read(&dest).unwrap(), b"abc");
        assert!(tmp_is_empty(&home));
    }

    #[test]
    fn bad_hash_leaves_nothing_under_the_final_name() {
        let root = tempfile::tempdir().unwrap();
        let home = Home::at(root.path());
        let dest = home.models_dir().join("m.gguf");
        let err = staged(&home, b"abd")
            .commit(&dest, expected(ABC_SHA, 3))
            .unwrap_err();
        assert!(matches!(err, PullError::HashMismatch { .. }), "{err}");
        assert!(!dest.exists());
        assert!(tmp_is_empty(&home));
    }

    #[test]
    fn bad_size_keeps_the_previous_file() {
        let root = tempfile::tempdir().unwrap();
        let home = Home::at(root.path());
        let dest = home.models_dir().join("m.gguf");
        std::fs::create_dir_all(home.models_dir()).unwrap();
        std::fs::write(&dest, b"old").unwrap();
        let err = staged(&home, b"abcd")
            .commit(&dest, expected(ABC_SHA, 3))
            .unwrap_err();
        assert!(
            matches!(err, PullError::SizeMismatch { actual: 4, .. }),
            "{err}"
        );
        assert_eq!(std::fs::read(&dest).unwrap(), b"old");
    }

    #[test]
    fn abandoned_staging_leaves_nothing_under_the_final_name() {
        let root = tempfile::tempdir().unwrap();
        let home = Home::at(root.path());
        drop(staged(&home, b"ab"));
        assert!(!home.models_dir().exists());
        assert!(tmp_is_empty(&home));
    }

    #[test]
    fn stale_staging_dirs_are_swept() {
        let root = tempfile::tempdir().unwrap();
        let home = Home::at(root.path());
        let old = home.tmp_dir().join("pull-m-old");
        std::fs::create_dir_all(&old).unwrap();
        let long_ago = SystemTime::now() - 2 * STALE_AFTER;
        File::open(&old).unwrap().set_modified(long_ago).unwrap();
        let fresh = home.tmp_dir().join("pull-m-fresh");
        std::fs::create_dir_all(&fresh).unwrap();
        let _s = Staging::new(&home, "m").unwrap();
        assert!(!old.exists());
        assert!(fresh.exists());
    }
}
