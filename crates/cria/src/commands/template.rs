//! `--chat-template`: a built-in template's name or a Jinja file.

use std::path::PathBuf;
use std::str::FromStr;

use anyhow::Context;
use cria_tokenizer::{BuiltinTemplate, ChatTemplate, Tokenizer};

/// What `--chat-template` names.
#[derive(Debug, Clone)]
pub enum TemplateArg {
    Builtin(BuiltinTemplate),
    /// A Jinja file (Hugging Face's `chat_template` syntax), e.g. a template with tool calling.
    File(PathBuf),
}

impl FromStr for TemplateArg {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if let Ok(builtin) = s.parse::<BuiltinTemplate>() {
            return Ok(TemplateArg::Builtin(builtin));
        }
        let path = PathBuf::from(s);
        if path.is_file() {
            return Ok(TemplateArg::File(path));
        }
        let names: Vec<&str> = BuiltinTemplate::ALL.iter().map(|b| b.name()).collect();
        Err(format!(
            "{s:?} is neither a built-in template ({}) nor a file",
            names.join(", ")
        ))
    }
}

/// The model's template, or the one `choice` names.
pub fn chat_template(
    tokenizer: &Tokenizer,
    arch: &str,
    choice: Option<&TemplateArg>,
) -> anyhow::Result<ChatTemplate> {
    Ok(match choice {
        None => ChatTemplate::for_model(tokenizer, arch, None)?,
        Some(TemplateArg::Builtin(b)) => ChatTemplate::builtin(tokenizer, *b)?,
        Some(TemplateArg::File(path)) => {
            let source = std::fs::read_to_string(path)
                .with_context(|| format!("reading the chat template {}", path.display()))?;
            ChatTemplate::from_source(tokenizer, source)
                .with_context(|| format!("compiling the chat template {}", path.display()))?
        }
    })
}
