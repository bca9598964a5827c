//! `GET /api/tags`, `POST /api/show`, `GET /api/ps`, `GET /api/version`: the served model described as
//! Ollama describes its models.

use axum::extract::State;
use serde_json::{Value, json};

use super::types::ShowRequest;
use super::{Json, OllamaError, find, tagged_name};
use crate::state::{AppState, Loaded, ModelInfo, Shared};

/// The Ollama version Cria's API follows (clients check it for features).
const OLLAMA_VERSION: &str = "0.12.0";

pub async fn version() -> axum::Json<Value> {
    axum::Json(json!({"version": OLLAMA_VERSION}))
}

/// Every served model, loaded or not.
pub async fn tags(State(state): State<AppState>) -> axum::Json<Value> {
    let models: Vec<Value> = (0..state.models.sources().len())
        .map(|i| entry(&state.models.sources()[i].id, &info(&state, i)))
        .collect();
    axum::Json(json!({ "models": models }))
}

/// The models loaded now, with what they hold: `size` is the bytes counted against the memory budget
/// (file and KV cache), and Cria's own `running` (requests on it) and `idle_seconds`.
pub async fn ps(State(state): State<AppState>) -> axum::Json<Value> {
    let models: Vec<Value> = state
        .models
        .loaded()
        .into_iter()
        .map(|m| {
            let source = &state.models.sources()[m.index];
            let mut e = entry(&source.id, &m.loaded.info);
            e["size"] = json!(source.cost.max(m.loaded.info.file_size));
            e["expires_at"] = json!(rfc3339(u64::from(u32::MAX), 0));
            e["size_vram"] = json!(0);
            e["context_length"] = json!(m.loaded.info.context_length);
            e["running"] = json!(m.active);
            e["idle_seconds"] = json!(m.idle_for.as_secs());
            e
        })
        .collect();
    axum::Json(json!({ "models": models }))
}

/// What is known of model `index`: the loaded model's facts, or the file's before it is loaded.
fn info(state: &Shared, index: usize) -> ModelInfo {
    state
        .models
        .loaded()
        .into_iter()
        .find(|m| m.index == index)
        .map_or_else(
            || state.models.sources()[index].info.clone(),
            |m| m.loaded.info.clone(),
        )
}

/// A model's facts and capabilities, without loading it.
pub async fn show(
    State(state): State<AppState>,
    Json(req): Json<ShowRequest>,
) -> Result<axum::Json<Value>, OllamaError> {
    let name = req.model.or(req.name);
    let index = find(&state, name.as_deref())?;
    let loaded = state.models.loaded().into_iter().find(|m| m.index == index);
    let (info, capabilities) = match loaded {
        Some(m) => (m.loaded.info.clone(), capabilities(&m.loaded)),
        None => {
            let info = state.models.sources()[index].info.clone();
            let caps = info.capabilities.clone();
            (info, caps)
        }
    };
    let arch = &info.arch;
    Ok(axum::Json(json!({
        "modelfile": "",
        "parameters": "",
        "template": "",
        "license": "",
        "details": details(&info),
        "model_info": {
            "general.architecture": arch,
            "general.parameter_count": info.parameters,
            format!("{arch}.context_length"): info.context_length,
            format!("{arch}.embedding_length"): info.embedding_length,
        },
        "capabilities": capabilities,
        "modified_at": rfc3339(info.modified, 0),
    })))
}

fn capabilities(loaded: &Loaded) -> Vec<String> {
    let mut capabilities = Vec::new();
    if loaded.engine.is_some() {
        capabilities.push("completion".to_string());
    }
    if loaded.embedder.is_ok() {
        capabilities.push("embedding".to_string());
    }
    capabilities
}

/// One model as `/api/tags` lists it.
fn entry(id: &str, info: &ModelInfo) -> Value {
    let name = tagged_name(id);
    json!({
        "name": name,
        "model": name,
        "modified_at": rfc3339(info.modified, 0),
        "size": info.file_size,
        "details": details(info),
    })
}

fn details(info: &ModelInfo) -> Value {
    json!({
        "parent_model": "",
        "format": "gguf",
        "family": info.arch,
        "families": [info.arch],
        "parameter_size": parameter_size(info.parameters),
        "quantization_level": info.quantization,
    })
}

/// `135M`, `1.2B`, as Ollama writes sizes.
fn parameter_size(n: u64) -> String {
    let n = n as f64;
    if n >= 1e9 {
        format!("{:.1}B", n / 1e9)
    } else if n >= 1e6 {
        format!("{:.0}M", n / 1e6)
    } else {
        format!("{:.0}K", n / 1e3)
    }
}

/// Unix time as RFC 3339 in UTC (`2026-12-06T14:05:09.123456789Z`).
pub fn rfc3339(secs: u64, nanos: u32) -> String {
    let days = i64::try_from(secs / 86_400).unwrap_or(0);
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    let (h, min, s) = (rem / 3600, rem % 3600 / 60, rem % 60);
    format!("{y:04}-{m:02}-{d:02}T{h:02}:{min:02}:{s:02}.{nanos:09}Z")
}

/// Howard Hinnant's `civil_from_days`: days since 1970-01-01 to (year, month, day).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_matches_known_dates() {
        assert_eq!(rfc3339(0, 0), "1970-01-01T00:00:00.000000000Z");
        // `date -u -d @1795874709`: Sat Nov 28 14:05:09 UTC 2026; 2024-02-29 is a leap day.
        assert_eq!(rfc3339(1_795_874_709, 5), "2026-11-28T14:05:09.000000005Z");
        assert_eq!(rfc3339(1_709_164_800, 0), "2024-02-29T00:00:00.000000000Z");
    }

    #[test]
    fn parameter_sizes_read_like_ollamas() {
        assert_eq!(parameter_size(134_515_008), "135M");
        assert_eq!(parameter_size(1_235_814_400), "1.2B");
    }
}
