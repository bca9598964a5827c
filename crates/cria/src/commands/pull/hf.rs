//! Files of Hugging Face repositories, fetched over HTTPS from the `resolve` URL.
//! `HF_ENDPOINT` overrides the host (mirrors, tests) and `HF_TOKEN` is sent for gated repositories.

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use super::error::{PullError, Result};
use super::progress;

/// The prefix of a Hugging Face model spec.
pub const PREFIX: &str = "hf:";

const DEFAULT_ENDPOINT: &str = "https://huggingface.co";

/// One file of one repository, at revision `main`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HfFile {
    /// `owner/repo`.
    repo: String,
    /// Path inside the repository, `/`-separated.
    file: String,
}

impl HfFile {
    /// Checks that `repo` is `owner/name` and `file` a relative path of plain segments.
    pub fn new(repo: &str, file: &str) -> Result<Self> {
        let spec = format!("{PREFIX}{repo}/{file}");
        let bad = |reason: &str| PullError::BadHfSpec {
            spec: spec.clone(),
            reason: reason.to_owned(),
        };
        if repo.split('/').count() != 2 {
            return Err(bad("the repository must be owner/name"));
        }
        if let Some(seg) = repo.split('/').chain(file.split('/')).find(|s| !plain(s)) {
            return Err(bad(&format!(
                "`{seg}` is not a plain path segment (letters, digits, - _ . +)"
            )));
        }
        Ok(Self {
            repo: repo.to_owned(),
            file: file.to_owned(),
        })
    }

    /// Parses `hf:owner/repo/path/to/file.gguf`; `None` if `spec` does not start with `hf:`.
    pub fn parse(spec: &str) -> Option<Result<Self>> {
        let rest = spec.strip_prefix(PREFIX)?;
        let mut it = rest.splitn(3, '/');
        Some(match (it.next(), it.next(), it.next()) {
            (Some(owner), Some(name), Some(file)) => Self::new(&format!("{owner}/{name}"), file),
            _ => Err(PullError::BadHfSpec {
                spec: spec.to_owned(),
                reason: "it names no file".to_owned(),
            }),
        })
    }

    /// Where the file is kept: `models/hf/<owner>/<repo>/<file>` under the models directory.
    pub fn local_path(&self, models_dir: PathBuf) -> PathBuf {
        let mut path = models_dir.join("hf");
        path.extend(self.repo.split('/').chain(self.file.split('/')));
        path
    }

    /// The download URL under `endpoint`.
    pub fn url(&self, endpoint: &str) -> String {
        let endpoint = endpoint.trim_end_matches('/');
        format!("{endpoint}/{}/resolve/main/{}", self.repo, self.file)
    }

    /// Streams the file into `out`, with a progress bar.
    pub fn download(&self, out: &mut impl Write) -> Result<()> {
        let endpoint = std::env::var("HF_ENDPOINT").unwrap_or_else(|_| DEFAULT_ENDPOINT.to_owned());
        let url = self.url(&endpoint);
        let fail = |reason: String| PullError::Http {
            url: url.clone(),
            reason,
        };
        let mut request = agent().get(&url);
        if let Ok(token) = std::env::var("HF_TOKEN") {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        let response = request.call().map_err(|e| fail(explain(&e)))?;
        let body = response.into_body();
        let bar = progress::bytes(
            format!("{PREFIX}{}/{}", self.repo, self.file),
            body.content_length(),
        );
        std::io::copy(&mut bar.wrap_read(body.into_reader()), out)
            .map_err(|e| fail(format!("transfer failed: {e}")))?;
        bar.finish_and_clear();
        Ok(())
    }
}

/// Whether `seg` can be a URL path segment and a file name as it is.
fn plain(seg: &str) -> bool {
    !seg.is_empty()
        && seg != "."
        && seg != ".."
        && seg
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '+'))
}

/// Timeouts everywhere, so that no network trouble hangs a pull; large files still may take long.
fn agent() -> ureq::Agent {
    let secs = |s| Some(Duration::from_secs(s));
    ureq::Agent::config_builder()
        .timeout_resolve(secs(15))
        .timeout_connect(secs(15))
        .timeout_send_request(secs(30))
        .timeout_recv_response(secs(60))
        .timeout_per_read(secs(60))
        .user_agent(concat!("cria/", env!("CARGO_PKG_VERSION")))
        .build()
        .new_agent()
}

/// What a failed request means for the user.
fn explain(e: &ureq::Error) -> String {
    use ureq::Error as E;
    match e {
        E::StatusCode(code @ (401 | 403)) => format!(
            "access denied (HTTP {code}): the repository may be missing, gated or private; \
             check the names, or set HF_TOKEN"
        ),
        E::StatusCode(404) => {
            "not found (HTTP 404): check the owner, repository and file names".to_owned()
        }
        E::StatusCode(code) => format!("the server answered HTTP {code}"),
        E::HostNotFound => {
            "host not found: no internet connection? (or set HF_ENDPOINT to a reachable mirror)"
                .to_owned()
        }
        E::Timeout(what) => format!("timed out ({what:?}): the network is slow or unreachable"),
        other => format!(
            "{other} (is this machine online? check the network connection, or HF_ENDPOINT)"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_owner_repo_and_nested_file() {
        let f = HfFile::parse("hf:bartowski/SmolLM2-135M-Instruct-GGUF/sub/model.Q4_K_M.gguf")
            .unwrap()
            .unwrap();
        assert_eq!(
            f.url("https://huggingface.co/"),
            "https://huggingface.co/bartowski/SmolLM2-135M-Instruct-GGUF/resolve/main/sub/model.Q4_K_M.gguf"
        );
        let local = f.local_path(PathBuf::from("/h/models"));
        assert_eq!(
            local,
            PathBuf::from(
                "/h/models/hf/bartowski/SmolLM2-135M-Instruct-GGUF/sub/model.Q4_K_M.gguf"
            )
        );
    }

    #[test]
    fn other_specs_are_not_hf() {
        assert!(HfFile::parse("smollm2").is_none());
        assert!(HfFile::parse("./hf:x").is_none());
    }

    #[test]
    fn rejects_specs_that_name_no_file_or_escape_the_store() {
        for spec in [
            "hf:owner/repo",
            "hf:owner",
            "hf:owner/repo/",
            "hf:owner/repo/../../etc/passwd",
            "hf:owner//file.gguf",
            "hf:owner/repo/a b.gguf",
        ] {
            let err = HfFile::parse(spec).unwrap().unwrap_err();
            assert!(matches!(err, PullError::BadHfSpec { .. }), "{spec}: {err}");
        }
    }

    #[test]
    fn explains_status_codes() {
        assert!(explain(&ureq::Error::StatusCode(401)).contains("HF_TOKEN"));
        assert!(explain(&ureq::Error::StatusCode(404)).contains("404"));
        assert!(explain(&ureq::Error::HostNotFound).contains("internet"));
    }
}
