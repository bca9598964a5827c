//! `cria list` and `cria rm`: the models in the store `cria pull` fills (`$CRIA_HOME/models`, default
//! `~/.cache/cria/models`).

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use anyhow::Context;
use cria_gguf::GgufFile;
use indicatif::HumanBytes;

use super::pull::{Home, Registry};
use super::settings;

/// Arguments of `cria list`.
#[derive(clap::Args)]
pub struct ListArgs {}

/// Arguments of `cria rm`.
#[derive(clap::Args)]
pub struct RmArgs {
    /// A model as `cria list` names it (or a known model's name or alias, or its file's path in the
    /// store).
    pub name: String,
}

/// One model file in the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    /// Its path under `models/` without `.gguf` (`smollm2-135m-instruct`, `hf/owner/repo/file`).
    pub name: String,
    pub path: PathBuf,
    pub size: u64,
    /// Unix seconds.
    pub modified: u64,
}

/// Runs `cria list`.
pub fn list(_args: ListArgs) -> anyhow::Result<()> {
    let home = Home::from_env()?;
    let models = stored(&home.models_dir())?;
    write_list(&mut io::stdout().lock(), &models, &home.models_dir())?;
    Ok(())
}

/// Runs `cria rm`.
pub fn rm(args: RmArgs) -> anyhow::Result<()> {
    let home = Home::from_env()?;
    let registry = Registry::load(home.root())?;
    let dir = home.models_dir();
    let known = registry.find(&args.name).map(|e| e.file_name());
    let path = target(&dir, &args.name, known.as_deref())?;
    std::fs::remove_file(&path).with_context(|| format!("removing {}", path.display()))?;
    println!("removed {}", path.display());
    Ok(())
}

/// The file `name` means in the store `dir`; a path outside it, or a model not in it, is refused.
fn target(dir: &Path, name: &str, known_file: Option<&str>) -> anyhow::Result<PathBuf> {
    let candidates: Vec<PathBuf> = if settings::looks_like_path(name) && Path::new(name).exists() {
        vec![PathBuf::from(name)]
    } else {
        let mut c = vec![dir.join(format!("{name}.gguf")), dir.join(name)];
        c.extend(known_file.map(|f| dir.join(f)));
        c
    };
    let Some(found) = candidates.into_iter().find(|p| p.is_file()) else {
        return settings::refuse(format!(
            "{name}: no such model in {} (see cria list)",
            dir.display()
        ));
    };
    let real = found
        .canonicalize()
        .with_context(|| format!("resolving {}", found.display()))?;
    let store = dir
        .canonicalize()
        .with_context(|| format!("resolving {}", dir.display()))?;
    if !real.starts_with(&store) || real.extension().is_none_or(|e| e != "gguf") {
        return settings::refuse(format!(
            "{name}: {} is not a model in cria's store ({}); cria rm removes only those",
            real.display(),
            store.display()
        ));
    }
    Ok(real)
}

/// Every `.gguf` file under `dir` (Hugging Face pulls sit in `hf/owner/repo/`), by name.
pub fn stored(dir: &Path) -> anyhow::Result<Vec<Stored>> {
    let mut found = Vec::new();
    if dir.is_dir() {
        walk(dir, dir, &mut found)?;
    }
    found.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(found)
}

fn walk(root: &Path, dir: &Path, found: &mut Vec<Stored>) -> anyhow::Result<()> {
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        if path.is_dir() {
            walk(root, &path, found)?;
            continue;
        }
        if path.extension().is_none_or(|e| e != "gguf") {
            continue;
        }
        let meta = std::fs::metadata(&path)?;
        let relative = path.strip_prefix(root).unwrap_or(&path).with_extension("");
        let modified = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_secs());
        found.push(Stored {
            name: relative.to_string_lossy().replace('\\', "/"),
            path,
            size: meta.len(),
            modified,
        });
    }
    Ok(())
}

/// The file's format: `GGUF` and the type of most of its weights, or why it cannot be read.
fn format(path: &Path) -> String {
    match GgufFile::open(path) {
        Ok(file) => format!("GGUF {}", super::serve::weight_type(&file)),
        Err(_) => "unreadable".to_string(),
    }
}

/// One line per model: name, size, format, modified (UTC).
fn write_list(out: &mut impl Write, models: &[Stored], dir: &Path) -> io::Result<()> {
    let mut rows = vec![["NAME", "SIZE", "FORMAT", "MODIFIED"].map(String::from)];
    rows.extend(models.iter().map(|m| {
        let stamp = cria_server::rfc3339(m.modified, 0);
        [
            m.name.clone(),
            HumanBytes(m.size).to_string(),
            format(&m.path),
            format!("{} {} UTC", &stamp[..10], &stamp[11..16]),
        ]
    }));
    let width = |col: usize| rows.iter().map(|r| r[col].len()).max().unwrap_or(0);
    let (w0, w1, w2) = (width(0), width(1), width(2));
    for [name, size, format, modified] in &rows {
        writeln!(out, "{name:<w0$}  {size:>w1$}  {format:<w2$}  {modified}")?;
    }
    if models.is_empty() {
        writeln!(
            out,
            "(no models in {}; see cria pull --list)",
            dir.display()
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn sparse(path: &Path, len: u64) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::File::create(path).unwrap().set_len(len).unwrap();
    }

    #[test]
    fn lists_the_stores_gguf_files_with_their_sizes() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("models");
        sparse(&dir.join("b-model.gguf"), 2048);
        sparse(&dir.join("hf/owner/repo/a.gguf"), 10);
        sparse(&dir.join("notes.txt"), 1);
        let models = stored(&dir).unwrap();
        let names: Vec<(&str, u64)> = models.iter().map(|m| (m.name.as_str(), m.size)).collect();
        assert_eq!(names, [("b-model", 2048), ("hf/owner/repo/a", 10)]);
        let mut out = Vec::new();
        write_list(&mut out, &models, &dir).unwrap();
        let text = String::from_utf8(out).unwrap();
        let line = text.lines().find(|l| l.starts_with("b-model")).unwrap();
        // Zero bytes are no GGUF header.
        assert!(
            line.contains("2.00 KiB") && line.contains("unreadable"),
            "{text}"
        );
        assert!(line.ends_with(" UTC"), "{text}");
    }

    #[test]
    fn rm_finds_a_model_by_name_and_refuses_paths_outside_the_store() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("models");
        sparse(&dir.join("m.gguf"), 1);
        sparse(&dir.join("hf/o/r/x.gguf"), 1);
        let outside = root.path().join("elsewhere.gguf");
        sparse(&outside, 1);
        let real = |p: &Path| p.canonicalize().unwrap();
        assert_eq!(target(&dir, "m", None).unwrap(), real(&dir.join("m.gguf")));
        assert_eq!(
            target(&dir, "hf/o/r/x", None).unwrap(),
            real(&dir.join("hf/o/r/x.gguf"))
        );
        assert_eq!(
            target(&dir, "alias", Some("m.gguf")).unwrap(),
            real(&dir.join("m.gguf"))
        );
        let refused = target(&dir, outside.to_str().unwrap(), None).unwrap_err();
        assert!(
            refused.to_string().contains("not a model in cria's store"),
            "{refused}"
        );
        let escape = format!("{}/../elsewhere.gguf", dir.display());
        assert!(target(&dir, &escape, None).is_err());
        assert!(target(&dir, "missing", None).is_err());
        assert!(outside.exists());
    }
}
