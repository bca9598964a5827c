//! Which tool-call syntax a chat template's model writes, recognised from the template's text.

/// A template family's tool-call syntax.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// Hermes 2 Pro / Qwen2.5 / Qwen3: `<tool_call>\n{"name": ..., "arguments": {...}}\n</tool_call>`.
    Hermes,
    /// Llama 3.1 to 3.3: a bare `{"name": ..., "parameters": {...}}`, or after `<|python_tag|>`.
    Llama3,
    /// Mistral (v3 tokenizers: Mistral 7B v0.3, Nemo): `[TOOL_CALLS][{"name": ..., "arguments": {...}}, ...]`.
    Mistral,
    /// Mistral (v11 and later tokenizers: Mistral Small 3.x, Magistral, Devstral):
    /// `[TOOL_CALLS]name[ARGS]{...}`, once per call (Small 3.2's template writes `[CALL_ID]id` before
    /// `[ARGS]` in the history, which is read too).
    MistralArgs,
    /// A template that does not render tools (or in a syntax not above): Cria describes them in a system
    /// message and asks for the Hermes syntax (llama.cpp's generic format does the same with its own JSON).
    Generic,
}

impl Family {
    /// The family whose syntax `template` teaches.
    pub fn detect(template: &str) -> Family {
        if !template.contains("tools") {
            Family::Generic
        } else if template.contains("<tool_call>") {
            Family::Hermes
        } else if template.contains("[TOOL_CALLS]") && template.contains("[ARGS]") {
            Family::MistralArgs
        } else if template.contains("[TOOL_CALLS]") {
            Family::Mistral
        } else if template.contains("<|python_tag|>") || template.contains("<|start_header_id|>") {
            Family::Llama3
        } else {
            Family::Generic
        }
    }

    /// The text that opens a call (Llama 3's plain JSON calls have none; `<|python_tag|>` may precede one).
    pub fn opener(self) -> &'static str {
        match self {
            Family::Hermes | Family::Generic => "<tool_call>",
            Family::Llama3 => "<|python_tag|>",
            Family::Mistral | Family::MistralArgs => "[TOOL_CALLS]",
        }
    }

    /// Whether the template wants Mistral's tool-call ids (nine letters and digits; its templates refuse
    /// any other).
    pub fn mistral_ids(self) -> bool {
        matches!(self, Family::Mistral | Family::MistralArgs)
    }

    /// The key holding a call's arguments.
    pub fn arguments_key(self) -> &'static str {
        match self {
            Family::Llama3 => "parameters",
            _ => "arguments",
        }
    }

    /// Whether a call may also be a bare JSON object at the start of the output.
    pub fn bare_json(self) -> bool {
        self == Family::Llama3
    }

    /// Text skipped between and after calls (closing tags and list punctuation).
    pub fn separators(self) -> &'static [&'static str] {
        match self {
            Family::Hermes | Family::Generic => &["</tool_call>"],
            Family::Llama3 => &[";", "<|eom_id|>"],
            Family::Mistral => &[",", "]"],
            Family::MistralArgs => &[],
        }
    }

    /// Whether the template renders `tools` itself (otherwise Cria describes them in a system message).
    pub fn template_renders_tools(self) -> bool {
        self != Family::Generic
    }
}

/// How `<think>` blocks are treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReasoningFormat {
    /// Split into `reasoning_content` where the template writes `<think>` (llama.cpp's `auto`/`deepseek`).
    Split,
    /// Left inline in `content` (llama.cpp's `--reasoning-format none`).
    Inline,
}

impl ReasoningFormat {
    /// llama.cpp's names: `none` keeps reasoning inline; `auto` and `deepseek` split it out.
    pub fn parse(name: &str) -> Option<ReasoningFormat> {
        match name {
            "none" => Some(ReasoningFormat::Inline),
            "auto" | "deepseek" => Some(ReasoningFormat::Split),
            _ => None,
        }
    }
}

pub const THINK_OPEN: &str = "<think>";
pub const THINK_CLOSE: &str = "</think>";

/// Whether a template's model writes `<think>` blocks.
pub fn template_thinks(template: &str) -> bool {
    template.contains(THINK_CLOSE)
}

/// Whether the rendered prompt already opened a `<think>` block (DeepSeek-R1 distills, Qwen3 thinking
/// templates that prefill it), so the output starts inside reasoning.
pub fn prompt_opens_think(prompt: &str) -> bool {
    prompt.trim_end().ends_with(THINK_OPEN)
}
