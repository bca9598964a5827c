//! The models `cria serve -m ...` serves: each `-m` resolved (a folder gives its GGUF files), named, and
//! described from its file before it is loaded (what `/api/tags` lists, what it costs against
//! `--memory-budget`).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use cria_engine::{EngineConfig, FaultPlan};
use cria_gguf::GgufFile;
use cria_model::encoder::ENCODER_ARCHS;
use cria_model::{ArchSpec, Pooling};
use cria_server::{LoadFn, ModelSource};

use super::super::settings;
use super::{Args, load, model_info};

/// Checks `CRIA_ISA`, `-t` and the shape of every `-m`; returns the threads to run with.
pub fn check(args: &Args) -> anyhow::Result<usize> {
    settings::isa()?;
    let threads = settings::threads(args.threads)?;
    for spec in &args.models {
        let path = Path::new(spec);
        if settings::looks_like_path(spec) && !path.is_dir() {
            settings::existing_file("-m", path)?;
        }
    }
    Ok(threads)
}

/// Every model to serve as (id, file), in the order given (a folder's files by name); `--alias` names the
/// first. Two models with one id are refused.
pub fn resolve(args: &Args) -> anyhow::Result<Vec<(String, PathBuf)>> {
    let mut files = Vec::new();
    for spec in &args.models {
        let path = Path::new(spec);
        if path.is_dir() {
            let found = gguf_files(path)?;
            if found.is_empty() {
                return settings::refuse(format!("-m {spec}: the folder holds no .gguf file"));
            }
            files.extend(found);
        } else {
            files.push(super::super::pull::resolve_model(spec)?);
        }
    }
    let mut named: Vec<(String, PathBuf)> = files
        .into_iter()
        .map(|path| {
            let stem = path
                .file_stem()
                .map_or_else(String::new, |s| s.to_string_lossy().into_owned());
            (stem, path)
        })
        .collect();
    if let (Some(alias), Some(first)) = (&args.alias, named.first_mut()) {
        first.0 = alias.clone();
    }
    for (i, (id, path)) in named.iter().enumerate() {
        if let Some((_, other)) = named[..i].iter().find(|(other, _)| other == id) {
            return settings::refuse(format!(
                "-m: two models are named {id:?} ({} and {}); give one --alias or rename a file",
                other.display(),
                path.display()
            ));
        }
    }
    Ok(named)
}

/// The `.gguf` files directly in `dir`, by name.
fn gguf_files(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.is_file()
                && p.extension()
                    .is_some_and(|e| e.eq_ignore_ascii_case("gguf"))
        })
        .collect();
    found.sort();
    Ok(found)
}

/// The server's view of one model: its facts and cost from the file's header (nothing is loaded yet) and
/// the loader, which `cria serve` calls on the model's first request (again after an unload).
pub fn source(
    id: String,
    path: PathBuf,
    args: &Arc<Args>,
    threads: usize,
    fault: Option<FaultPlan>,
) -> anyhow::Result<ModelSource> {
    let file = GgufFile::open(&path).with_context(|| format!("opening {}", path.display()))?;
    let (info, cost) = describe(&file, &path, args)?;
    let (loader_id, loader_args, loader_path) = (id.clone(), Arc::clone(args), path);
    let load: LoadFn = Arc::new(move || {
        load(&loader_id, &loader_path, &loader_args, threads, fault).map_err(|e| format!("{e:#}"))
    });
    Ok(ModelSource {
        id,
        info,
        cost,
        load,
    })
}

/// The model's facts and its cost: the file's size plus, for a decoder, its full KV pool (f16 keys and
/// values for every position the pool holds, in every layer).
fn describe(
    file: &GgufFile,
    path: &Path,
    args: &Args,
) -> anyhow::Result<(cria_server::ModelInfo, u64)> {
    let arch = file.architecture()?.to_string();
    if ENCODER_ARCHS.contains(&arch.as_str()) {
        let n_embd = file.u64(&format!("{arch}.embedding_length")).unwrap_or(0) as usize;
        let ctx = file.u64(&format!("{arch}.context_length")).unwrap_or(0) as usize;
        let mut info = model_info(path, file, ctx.min(args.ctx), n_embd);
        info.capabilities = vec!["embedding".into()];
        let cost = info.file_size;
        return Ok((info, cost));
    }
    let spec = ArchSpec::from_gguf(file).with_context(|| format!("reading {}", path.display()))?;
    let ctx = args.ctx.min(spec.n_ctx_train.max(16));
    let mut info = model_info(path, file, ctx, spec.n_embd);
    info.capabilities = vec!["completion".into()];
    let pooling = match args.pooling {
        Some(p) => p,
        None => Pooling::from_gguf(file, &format!("{arch}.pooling_type"))?,
    };
    if pooling != Pooling::None {
        info.capabilities.push("embedding".into());
    }
    let engine = EngineConfig {
        parallel: args.parallel,
        ctx,
        block_size: args.kv_block_size,
        kv_tokens: args.kv_cache_tokens.unwrap_or(0),
        ..EngineConfig::default()
    };
    let positions = (engine.kv_blocks() * args.kv_block_size) as u64;
    let per_position = (2 * spec.n_layer * spec.kv_dim() * 2) as u64;
    let cost = info
        .file_size
        .saturating_add(positions.saturating_mul(per_position));
    Ok((info, cost))
}

/// A size in bytes: a number with an optional unit (B, KB, MB, GB, TB in powers of 1000; KiB, MiB,
/// GiB, TiB in powers of 1024; K, M, G, T read as the binary ones).
pub fn parse_bytes(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a size (e.g. 8GiB, 512MiB, 1000000)"))?;
    let scale: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        "tb" => 1_000_000_000_000,
        "k" | "kib" => 1 << 10,
        "m" | "mib" => 1 << 20,
        "g" | "gib" => 1 << 30,
        "t" | "tib" => 1 << 40,
        other => return Err(format!("unknown unit {other:?} in {text:?}")),
    };
    let bytes = value * scale as f64;
    if !(bytes.is_finite() && bytes >= 1.0 && bytes < u64::MAX as f64) {
        return Err(format!("{text:?} is not a usable size"));
    }
    Ok(bytes as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_take_decimal_and_binary_units() {
        assert_eq!(parse_bytes("1000"), Ok(1000));
        assert_eq!(parse_bytes("8GiB"), Ok(8 << 30));
        assert_eq!(parse_bytes("8G"), Ok(8 << 30));
        assert_eq!(parse_bytes("1.5 GB"), Ok(1_500_000_000));
        assert_eq!(parse_bytes("512mib"), Ok(512 << 20));
        assert!(parse_bytes("8 parsecs").is_err());
        assert!(parse_bytes("GiB").is_err());
        assert!(parse_bytes("0").is_err());
    }
}
