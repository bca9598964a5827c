//! Chat templates: the model's `tokenizer.chat_template` (Jinja) or a built-in one, rendered with
//! minijinja in a sandbox: no file or template loading, a fuel limit so loops end, and a cap on output.

use std::str::FromStr;

use minijinja::{Environment, Error, ErrorKind, context};
use serde::{Deserialize, Serialize};

use crate::{Tokenizer, TokenizerError};

mod limit;
mod strftime;
mod tojson;

use limit::LimitedWriter;

/// Instructions a template may run before it is stopped (a long chat needs a few thousand).
pub const TEMPLATE_FUEL: u64 = 2_000_000;
/// Bytes a rendered prompt may reach.
pub const TEMPLATE_MAX_OUTPUT: usize = 16 << 20;

/// One turn of a conversation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatMessage {
    pub role: String,
    pub content: String,
}

impl ChatMessage {
    pub fn new(role: impl Into<String>, content: impl Into<String>) -> Self {
        ChatMessage {
            role: role.into(),
            content: content.into(),
        }
    }
}

/// Templates for models whose GGUF carries none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BuiltinTemplate {
    ChatMl,
    Llama2,
    Alpaca,
    Vicuna,
    Gemma,
}

impl BuiltinTemplate {
    pub const ALL: [BuiltinTemplate; 5] = [
        BuiltinTemplate::ChatMl,
        BuiltinTemplate::Llama2,
        BuiltinTemplate::Alpaca,
        BuiltinTemplate::Vicuna,
        BuiltinTemplate::Gemma,
    ];

    pub fn name(self) -> &'static str {
        match self {
            BuiltinTemplate::ChatMl => "chatml",
            BuiltinTemplate::Llama2 => "llama2",
            BuiltinTemplate::Alpaca => "alpaca",
            BuiltinTemplate::Vicuna => "vicuna",
            BuiltinTemplate::Gemma => "gemma",
        }
    }

    /// The Jinja source.
    pub fn source(self) -> &'static str {
        match self {
            BuiltinTemplate::ChatMl => include_str!("templates/chatml.jinja"),
            BuiltinTemplate::Llama2 => include_str!("templates/llama2.jinja"),
            BuiltinTemplate::Alpaca => include_str!("templates/alpaca.jinja"),
            BuiltinTemplate::Vicuna => include_str!("templates/vicuna.jinja"),
            BuiltinTemplate::Gemma => include_str!("templates/gemma.jinja"),
        }
    }

    /// The built-in a model of this architecture gets when its file has no template.
    pub fn for_arch(arch: &str) -> BuiltinTemplate {
        if arch.starts_with("gemma") {
            BuiltinTemplate::Gemma
        } else {
            BuiltinTemplate::ChatMl
        }
    }
}

impl FromStr for BuiltinTemplate {
    type Err = TokenizerError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let lower = s.to_ascii_lowercase();
        BuiltinTemplate::ALL
            .into_iter()
            .find(|t| t.name() == lower || (lower == "llama-2" && *t == BuiltinTemplate::Llama2))
            .ok_or_else(|| TokenizerError::UnknownTemplate(s.to_string()))
    }
}

/// A compiled chat template bound to a tokenizer's BOS/EOS texts.
#[derive(Debug)]
pub struct ChatTemplate {
    env: Environment<'static>,
    bos_token: String,
    eos_token: String,
    /// Strip a leading BOS text, since `encode(add_special = true)` adds BOS itself (as llama.cpp does).
    strip_bos: bool,
    strip_eos: bool,
    builtin: Option<BuiltinTemplate>,
    source: String,
}

/// What a template renders beyond plain turns: messages as JSON objects (with `tool_calls`,
/// `tool_call_id`, `name`), the request's `tools`, and extra variables (`chat_template_kwargs`, such as
/// `enable_thinking`). The fixed variables (`messages`, `tools`, `add_generation_prompt`, `bos_token`,
/// `eos_token`) win over an extra variable of the same name.
#[derive(Debug, Clone, Copy)]
pub struct TemplateInput<'a> {
    pub messages: &'a [serde_json::Value],
    pub tools: Option<&'a serde_json::Value>,
    pub extra: &'a serde_json::Map<String, serde_json::Value>,
    pub add_generation_prompt: bool,
}

impl ChatTemplate {
    /// The model's own template unless `override_builtin` names one; without either, the built-in for
    /// `arch` (`gemma*` -> Gemma, anything else -> ChatML).
    pub fn for_model(
        tok: &Tokenizer,
        arch: &str,
        override_builtin: Option<BuiltinTemplate>,
    ) -> Result<ChatTemplate, TokenizerError> {
        match (override_builtin, tok.chat_template()) {
            (Some(b), _) => ChatTemplate::builtin(tok, b),
            (None, Some(src)) => ChatTemplate::new(tok, src.to_string(), None),
            (None, None) => ChatTemplate::builtin(tok, BuiltinTemplate::for_arch(arch)),
        }
    }

    pub fn builtin(
        tok: &Tokenizer,
        which: BuiltinTemplate,
    ) -> Result<ChatTemplate, TokenizerError> {
        ChatTemplate::new(tok, which.source().to_string(), Some(which))
    }

    /// A template from Jinja source.
    pub fn from_source(
        tok: &Tokenizer,
        source: impl Into<String>,
    ) -> Result<ChatTemplate, TokenizerError> {
        ChatTemplate::new(tok, source.into(), None)
    }

    fn new(
        tok: &Tokenizer,
        source: String,
        builtin: Option<BuiltinTemplate>,
    ) -> Result<ChatTemplate, TokenizerError> {
        let text_of = |id: Option<u32>| {
            id.map(|i| tok.token_text(i).to_string())
                .unwrap_or_default()
        };
        let mut env = sandbox();
        env.add_template_owned("chat", source.clone())
            .map_err(template_error)?;
        Ok(ChatTemplate {
            env,
            bos_token: text_of(tok.bos()),
            eos_token: text_of(tok.eos()),
            strip_bos: tok.adds_bos(),
            strip_eos: tok.adds_eos(),
            builtin,
            source,
        })
    }

    /// The Jinja source (tool-call syntax is recognised from it).
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Which built-in this is, if it is one.
    pub fn builtin_kind(&self) -> Option<BuiltinTemplate> {
        self.builtin
    }

    /// The prompt to encode with `encode(prompt, add_special = true, parse_special = true)`: the
    /// template's output less a leading BOS / trailing EOS text the tokenizer adds by itself.
    pub fn render(
        &self,
        messages: &[ChatMessage],
        add_generation_prompt: bool,
    ) -> Result<String, TokenizerError> {
        let out = self.render_raw(messages, add_generation_prompt)?;
        Ok(self.strip_special(out))
    }

    /// [`ChatTemplate::render`] with tools, structured messages and extra variables.
    pub fn render_input(&self, input: &TemplateInput<'_>) -> Result<String, TokenizerError> {
        let ctx = context! {
            messages => minijinja::Value::from_serialize(input.messages),
            tools => input.tools.map(minijinja::Value::from_serialize),
            add_generation_prompt => input.add_generation_prompt,
            bos_token => &self.bos_token,
            eos_token => &self.eos_token,
            ..minijinja::Value::from_serialize(input.extra)
        };
        let out = self.render_context(ctx)?;
        Ok(self.strip_special(out))
    }

    fn strip_special(&self, mut out: String) -> String {
        if self.strip_bos && !self.bos_token.is_empty() && out.starts_with(&self.bos_token) {
            out.drain(..self.bos_token.len());
        }
        if self.strip_eos && !self.eos_token.is_empty() && out.ends_with(&self.eos_token) {
            out.truncate(out.len() - self.eos_token.len());
        }
        out
    }

    /// Exactly what the template writes.
    pub fn render_raw(
        &self,
        messages: &[ChatMessage],
        add_generation_prompt: bool,
    ) -> Result<String, TokenizerError> {
        let ctx = context! {
            messages => messages,
            add_generation_prompt => add_generation_prompt,
            bos_token => &self.bos_token,
            eos_token => &self.eos_token,
        };
        self.render_context(ctx)
    }

    fn render_context(&self, ctx: minijinja::Value) -> Result<String, TokenizerError> {
        let tmpl = self.env.get_template("chat").map_err(template_error)?;
        let mut w = LimitedWriter::new(TEMPLATE_MAX_OUTPUT);
        match tmpl.render_captured_to(ctx, &mut w) {
            Ok(_) => Ok(w.into_string()),
            Err(_) if w.exceeded() => Err(TokenizerError::TemplateOutputTooLarge {
                limit: TEMPLATE_MAX_OUTPUT,
            }),
            Err(e) => Err(template_error(e)),
        }
    }
}

/// An environment with Python-style string methods, `raise_exception`, `strftime_now` (UTC), HF's `tojson`, a
/// fuel limit, HF's whitespace rules, and no loader (so `include`/`import` of anything but the template itself
/// fails).
fn sandbox() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_fuel(Some(TEMPLATE_FUEL));
    env.set_trim_blocks(true);
    env.set_lstrip_blocks(true);
    env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
    env.add_function("raise_exception", raise_exception);
    env.add_function("strftime_now", strftime::strftime_now);
    env.add_filter("tojson", tojson::tojson);
    env
}

fn raise_exception(message: String) -> Result<String, Error> {
    Err(Error::new(ErrorKind::InvalidOperation, message))
}

fn template_error(e: Error) -> TokenizerError {
    let mut msg = e.to_string();
    if let Some(detail) = e.detail()
        && !msg.contains(detail)
    {
        msg = format!("{msg}: {detail}");
    }
    TokenizerError::Template(msg)
}

#[cfg(test)]
mod tests;
