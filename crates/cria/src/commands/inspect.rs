//! `cria inspect`: what a GGUF file holds, for people (`--json` for programs).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use anyhow::Context;
use cria_gguf::{GgufFile, TensorInfo, Value};
use serde_json::json;

/// Arrays longer than this are shown as their first elements and a count.
const ARRAY_HEAD: usize = 8;

/// Arguments of `cria inspect`.
#[derive(clap::Args)]
pub struct Args {
    /// A GGUF file, or a known model's name.
    pub model: String,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Runs `cria inspect`.
pub fn run(args: Args) -> anyhow::Result<()> {
    let path = super::pull::resolve_model(&args.model)?;
    let file =
        GgufFile::open(&path).with_context(|| format!("cannot inspect {}", path.display()))?;
    let mut out = std::io::stdout().lock();
    let written = if args.json {
        let report = serde_json::to_string_pretty(&json_report(&path, &file))?;
        writeln!(out, "{report}").map_err(anyhow::Error::from)
    } else {
        write_text(&mut out, &path, &file)
    };
    match written.and_then(|()| Ok(out.flush()?)) {
        // `cria inspect m | head` closes the pipe early: that is the reader's choice, not an error.
        Err(e) if is_broken_pipe(&e) => Ok(()),
        other => other,
    }
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.downcast_ref::<std::io::Error>()
        .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
}

/// Count and bytes of the tensors of each type, by type name.
fn type_mix(file: &GgufFile) -> BTreeMap<&'static str, (usize, u64)> {
    let mut mix = BTreeMap::new();
    for t in file.tensors() {
        let entry = mix.entry(t.ty.name()).or_insert((0, 0));
        entry.0 += 1;
        entry.1 += t.n_bytes;
    }
    mix
}

fn parameter_count(file: &GgufFile) -> u64 {
    file.tensors().iter().map(TensorInfo::n_elements).sum()
}

fn context_length(file: &GgufFile) -> Option<u64> {
    let arch = file.architecture().ok()?;
    file.u64(&format!("{arch}.context_length")).ok()
}

/// Whether Cria can read the file's architecture: `Err` says why not (an unsupported architecture lists the
/// supported ones).
fn arch_support(file: &GgufFile) -> Result<(), String> {
    cria_model::ArchSpec::from_gguf(file)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

fn json_report(path: &Path, file: &GgufFile) -> serde_json::Value {
    let metadata: serde_json::Map<String, serde_json::Value> = file
        .metadata()
        .iter()
        .map(|(k, v)| (k.clone(), json_value(v)))
        .collect();
    let mix: serde_json::Map<String, serde_json::Value> = type_mix(file)
        .into_iter()
        .map(|(ty, (count, bytes))| (ty.to_owned(), json!({"count": count, "bytes": bytes})))
        .collect();
    let tensors: Vec<_> = file.tensors().iter().map(json_tensor).collect();
    json!({
        "path": path.display().to_string(),
        "version": file.version(),
        "alignment": file.alignment(),
        "data_offset": file.data_offset(),
        "architecture": file.architecture().ok(),
        "architecture_supported": arch_support(file).is_ok(),
        "architecture_error": arch_support(file).err(),
        "name": file.str("general.name").ok(),
        "parameter_count": parameter_count(file),
        "context_length": context_length(file),
        "tensor_count": file.tensors().len(),
        "tensor_types": mix,
        "metadata": metadata,
        "tensors": tensors,
    })
}

fn json_tensor(t: &TensorInfo) -> serde_json::Value {
    json!({"name": t.name, "type": t.ty.name(), "shape": t.shape, "offset": t.offset, "bytes": t.n_bytes})
}

/// A metadata value as JSON; long arrays become `{type, len, head}`.
fn json_value(v: &Value) -> serde_json::Value {
    match v {
        Value::U8(x) => json!(x),
        Value::I8(x) => json!(x),
        Value::U16(x) => json!(x),
        Value::I16(x) => json!(x),
        Value::U32(x) => json!(x),
        Value::I32(x) => json!(x),
        Value::U64(x) => json!(x),
        Value::I64(x) => json!(x),
        Value::F32(x) => json!(x),
        Value::F64(x) => json!(x),
        Value::Bool(x) => json!(x),
        Value::String(s) => json!(s),
        Value::Array(a) if a.len() <= ARRAY_HEAD * 2 => {
            json!(a.iter().map(|v| json_value(&v)).collect::<Vec<_>>())
        }
        Value::Array(a) => json!({
            "type": format!("{:?}", a.elem_type()),
            "len": a.len(),
            "head": a.iter().take(ARRAY_HEAD).map(|v| json_value(&v)).collect::<Vec<_>>(),
        }),
    }
}

/// A metadata value for people: strings quoted, long ones and long arrays shortened.
fn text_value(v: &Value) -> String {
    match v {
        Value::String(s) => format!("{:?}", shorten(s, 120)),
        Value::Array(a) => {
            let head: Vec<String> = a.iter().take(ARRAY_HEAD).map(|v| text_value(&v)).collect();
            let more = if a.len() > ARRAY_HEAD { ", ..." } else { "" };
            format!(
                "[{:?} x {}] [{}{more}]",
                a.elem_type(),
                a.len(),
                head.join(", ")
            )
        }
        other => json_value(other).to_string(),
    }
}

/// At most `max` characters of `s`, with a note of how much was cut.
fn shorten(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        None => s.to_owned(),
        Some((cut, _)) => format!("{}... ({} bytes)", &s[..cut], s.len()),
    }
}

fn write_text(out: &mut impl Write, path: &Path, file: &GgufFile) -> anyhow::Result<()> {
    let unknown = || "?".to_owned();
    writeln!(out, "file:           {}", path.display())?;
    writeln!(
        out,
        "GGUF version:   {} (alignment {}, data at byte {})",
        file.version(),
        file.alignment(),
        file.data_offset()
    )?;
    writeln!(
        out,
        "architecture:   {}",
        file.architecture()
            .map_or_else(|_| unknown(), str::to_owned)
    )?;
    match arch_support(file) {
        Ok(()) => writeln!(out, "runs in Cria:   yes")?,
        Err(why) => writeln!(out, "runs in Cria:   no: {why}")?,
    }
    writeln!(
        out,
        "name:           {}",
        file.str("general.name")
            .map_or_else(|_| unknown(), str::to_owned)
    )?;
    let params = parameter_count(file);
    writeln!(
        out,
        "parameters:     {params} ({:.1} M)",
        params as f64 / 1e6
    )?;
    let ctx = context_length(file).map_or_else(unknown, |n| n.to_string());
    writeln!(out, "context length: {ctx}")?;
    writeln!(out, "tensor types:")?;
    for (ty, (count, bytes)) in type_mix(file) {
        writeln!(
            out,
            "  {ty:<6} {count:>5} tensors {:>10.2} MiB",
            bytes as f64 / (1 << 20) as f64
        )?;
    }
    writeln!(out, "metadata ({} keys):", file.metadata().len())?;
    for (key, value) in file.metadata() {
        writeln!(out, "  {key} = {}", text_value(value))?;
    }
    write_tensor_table(out, file)
}

fn write_tensor_table(out: &mut impl Write, file: &GgufFile) -> anyhow::Result<()> {
    writeln!(out, "tensors ({}):", file.tensors().len())?;
    let width = file
        .tensors()
        .iter()
        .map(|t| t.name.len())
        .max()
        .unwrap_or(0);
    for t in file.tensors() {
        let shape: Vec<String> = t.shape.iter().map(u64::to_string).collect();
        let shape = format!("[{}]", shape.join(", "));
        writeln!(
            out,
            "  {:<width$}  {:<5} {shape:<16} {:>12} B",
            t.name,
            t.ty.name(),
            t.n_bytes
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use cria_gguf::{Array, ValueType};

    #[test]
    fn long_arrays_are_summarised() {
        let values = (0..100).map(Value::U32).collect();
        let v = Value::Array(Array::new(ValueType::U32, values).unwrap());
        let j = json_value(&v);
        assert_eq!(j["len"], 100);
        assert_eq!(j["head"].as_array().map(Vec::len), Some(ARRAY_HEAD));
        assert!(text_value(&v).starts_with("[U32 x 100] [0, 1,"));
    }

    #[test]
    fn shorten_cuts_on_char_boundaries() {
        assert_eq!(shorten("héllo", 2), "hé... (6 bytes)");
        assert_eq!(shorten("abc", 5), "abc");
    }
}
