//! A chat request's prompt, output grammar and output syntax, from its messages, tools and template.

use cria_sampling::grammar::Grammar;
use serde_json::{Map, Value, json};

use super::family::{Family, ReasoningFormat, prompt_opens_think, template_thinks};
use super::grammar::tool_grammar;
use super::parse::OutputSyntax;
use super::{ToolRequest, generic_system_prompt};
use crate::error::ApiError;
use crate::frontend::{ChatInput, Frontend};

/// What a chat request renders to and how its output is read.
#[derive(Debug, Clone)]
pub struct ChatSetup {
    pub prompt: Vec<u32>,
    /// The rendered text (empty from front ends without a template engine).
    pub text: String,
    /// The tool-call grammar, when the request has tools (lazy for `tool_choice: "auto"`).
    pub grammar: Option<Grammar>,
    /// How to split the output; `None`: all of it is content.
    pub syntax: Option<OutputSyntax>,
}

/// Renders `messages` (JSON objects, see [`ChatInput`]) with `tools` through the template and works out the
/// grammar and output syntax.
pub fn prepare(
    frontend: &dyn Frontend,
    mut messages: Vec<Value>,
    tools: Option<&ToolRequest>,
    extra: &Map<String, Value>,
    reasoning: ReasoningFormat,
) -> Result<ChatSetup, ApiError> {
    let source = frontend.template_source();
    let family = Family::detect(source);
    if let Some(tools) = tools
        && !family.template_renders_tools()
    {
        describe_tools(&mut messages, tools);
    }
    if family.mistral_ids() {
        mistral_call_ids(&mut messages);
    }
    let tools_value = tools.map(ToolRequest::template_value);
    let rendered = frontend
        .chat_input(&ChatInput {
            messages: &messages,
            tools: tools_value.as_ref(),
            extra,
        })
        .map_err(|e| ApiError::invalid("messages", e))?;
    let thinks = reasoning == ReasoningFormat::Split && template_thinks(source);
    let syntax = (tools.is_some() || thinks).then(|| OutputSyntax {
        calls: tools.map(|_| family),
        reasoning: thinks,
        starts_in_think: thinks && prompt_opens_think(&rendered.text),
    });
    let specials = |text: &str| frontend.special_token(text);
    let grammar =
        tools.map(|t| tool_grammar(&t.functions(), &t.choice, t.parallel, family, &specials));
    Ok(ChatSetup {
        prompt: rendered.tokens,
        text: rendered.text,
        grammar,
        syntax,
    })
}

/// For a template that renders no tools: the tools described in the system message, and earlier calls
/// written into their assistant turns in the syntax the description asks for.
fn describe_tools(messages: &mut Vec<Value>, tools: &ToolRequest) {
    let prompt = generic_system_prompt(&tools.tools);
    match messages.first_mut() {
        Some(first) if first["role"] == "system" => {
            let text = first["content"].as_str().unwrap_or_default();
            first["content"] = Value::String(format!("{text}\n\n{prompt}"));
        }
        _ => messages.insert(0, json!({"role": "system", "content": prompt})),
    }
    for message in messages.iter_mut() {
        let Some(calls) = message["tool_calls"].as_array() else {
            continue;
        };
        let mut text = message["content"].as_str().unwrap_or_default().to_string();
        for call in calls {
            let function = &call["function"];
            let call = json!({"name": function["name"], "arguments": function["arguments"]});
            text.push_str(&format!("<tool_call>\n{call}\n</tool_call>\n"));
        }
        message["content"] = Value::String(text);
    }
}

/// Mistral's templates refuse a call id that is not nine letters and digits (`call_...` from OpenAI's
/// clients, `toolu_...` from Anthropic's): such ids in calls and tool results are replaced by nine
/// characters derived from them, the same for a call and its result.
fn mistral_call_ids(messages: &mut [Value]) {
    for message in messages.iter_mut() {
        let calls = message.get_mut("tool_calls").and_then(Value::as_array_mut);
        for call in calls.into_iter().flatten() {
            replace_id(call.get_mut("id"));
        }
        replace_id(message.get_mut("tool_call_id"));
    }
}

fn replace_id(id: Option<&mut Value>) {
    if let Some(id) = id
        && let Some(text) = id.as_str()
    {
        *id = Value::String(mistral_id(text));
    }
}

/// `id` if it is already nine ASCII letters and digits, else nine drawn from its FNV-1a hash.
pub fn mistral_id(id: &str) -> String {
    if id.len() == 9 && id.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return id.to_string();
    }
    const DIGITS: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
    let mut h = id.bytes().fold(0xcbf29ce484222325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100000001b3)
    });
    (0..9)
        .map(|_| {
            let c = DIGITS[(h % 62) as usize] as char;
            h /= 62;
            c
        })
        .collect()
}
