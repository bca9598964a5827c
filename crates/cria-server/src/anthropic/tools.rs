//! Anthropic's tool use on the shared tool-calling code (`crate::tools`): `tools` and `tool_choice` as
//! function tools, the conversation (with `tool_use` and `tool_result` blocks) as the chat template's
//! messages, and the parsed output as `text` and `tool_use` blocks.

use serde_json::{Value, json};

use super::types::{Block, Content, MessagesRequest, OutBlock};
use crate::error::ApiError;
use crate::tools::{
    self, FunctionDef, FunctionName, NamedToolChoice, OutputSyntax, Tool, ToolChoiceField,
    ToolRequest,
};

/// The request's tools as function tools (`None`: no tools, or `tool_choice` `none`).
pub fn request(req: &MessagesRequest) -> Result<Option<ToolRequest>, ApiError> {
    let Some(list) = req.tools.as_ref().filter(|t| !t.is_empty()) else {
        return Ok(None);
    };
    let mut functions = Vec::with_capacity(list.len());
    for (i, tool) in list.iter().enumerate() {
        if let Some(kind) = tool.kind.as_deref().filter(|k| *k != "custom") {
            return Err(ApiError::invalid(
                &format!("tools.{i}.type"),
                format!(
                    "server tools ({kind:?}) are not supported; give name, description and input_schema"
                ),
            ));
        }
        functions.push(Tool {
            kind: "function".into(),
            function: FunctionDef {
                name: tool.name.clone(),
                description: tool.description.clone(),
                parameters: tool.input_schema.clone(),
                strict: None,
            },
        });
    }
    let choice = req.tool_choice.as_ref();
    let field = match choice.map(|c| c.kind.as_str()) {
        None | Some("auto") => None,
        Some("any") => Some(ToolChoiceField::Mode("required".into())),
        Some("none") => Some(ToolChoiceField::Mode("none".into())),
        Some("tool") => {
            let name = choice.and_then(|c| c.name.clone()).ok_or_else(|| {
                ApiError::invalid("tool_choice.name", "tool_choice of type tool needs a name")
            })?;
            Some(ToolChoiceField::Named(NamedToolChoice {
                kind: "function".into(),
                function: FunctionName { name },
            }))
        }
        Some(other) => {
            return Err(ApiError::invalid(
                "tool_choice.type",
                format!("unknown tool_choice type {other:?}: use auto, any, tool or none"),
            ));
        }
    };
    let parallel = choice
        .and_then(|c| c.disable_parallel_tool_use)
        .map(|off| !off);
    tools::check(Some(&functions), field.as_ref(), parallel).map_err(|e| {
        let param = e
            .param
            .as_deref()
            .map(|p| p.replace('[', ".").replace(']', ""));
        ApiError { param, ..e }
    })
}

/// `system` and the messages as the chat template reads them: text blocks joined, an assistant's
/// `tool_use` blocks as its `tool_calls` (arguments as objects), each `tool_result` as a `tool` message.
pub fn template_messages(req: &MessagesRequest) -> Result<Vec<Value>, ApiError> {
    if req.messages.is_empty() {
        return Err(ApiError::invalid(
            "messages",
            "messages: at least one message is required",
        ));
    }
    let mut out = Vec::with_capacity(req.messages.len() + 1);
    if let Some(system) = &req.system {
        out.push(json!({"role": "system", "content": text(system, "system", "\n")?}));
    }
    for (i, m) in req.messages.iter().enumerate() {
        let param = format!("messages.{i}.content");
        match (m.role.as_str(), &m.content) {
            ("user" | "assistant", Content::Text(t)) => {
                out.push(json!({"role": m.role, "content": t}));
            }
            ("user", Content::Blocks(blocks)) => user_blocks(blocks, &param, &mut out)?,
            ("assistant", Content::Blocks(blocks)) => out.push(assistant_blocks(blocks, &param)?),
            (role, _) => {
                return Err(ApiError::invalid(
                    &format!("messages.{i}.role"),
                    format!("role must be user or assistant, got {role:?}"),
                ));
            }
        }
    }
    Ok(out)
}

/// A user turn: its `tool_result` blocks as `tool` messages, then its text (if any) as a user message.
fn user_blocks(blocks: &[Block], param: &str, out: &mut Vec<Value>) -> Result<(), ApiError> {
    let mut texts = Vec::new();
    for block in blocks {
        match block.kind.as_str() {
            "tool_result" => {
                let id = block.tool_use_id.as_deref().ok_or_else(|| {
                    ApiError::invalid(param, "a tool_result block needs its tool_use_id")
                })?;
                let mut result = match &block.content {
                    Some(content) => text(content, param, "\n")?,
                    None => String::new(),
                };
                if block.is_error == Some(true) {
                    result = format!("Error: {result}");
                }
                out.push(json!({"role": "tool", "tool_call_id": id, "content": result}));
            }
            _ => texts.push(block_text(block, param)?),
        }
    }
    if !texts.is_empty() {
        out.push(json!({"role": "user", "content": texts.concat()}));
    }
    Ok(())
}

/// An assistant turn: its text, and its `tool_use` blocks as calls.
fn assistant_blocks(blocks: &[Block], param: &str) -> Result<Value, ApiError> {
    let mut texts = Vec::new();
    let mut calls = Vec::new();
    for block in blocks {
        match block.kind.as_str() {
            "tool_use" => {
                let (Some(id), Some(name)) = (&block.id, &block.name) else {
                    return Err(ApiError::invalid(
                        param,
                        "a tool_use block needs its id and name",
                    ));
                };
                let input = block.input.clone().unwrap_or_else(|| json!({}));
                calls.push(json!({"id": id, "type": "function",
                                  "function": {"name": name, "arguments": input}}));
            }
            _ => texts.push(block_text(block, param)?),
        }
    }
    let mut message = json!({"role": "assistant", "content": texts.concat()});
    if !calls.is_empty() {
        message["tool_calls"] = Value::Array(calls);
    }
    Ok(message)
}

/// A content's text: a string, or its text blocks joined by `sep`.
pub fn text(content: &Content, param: &str, sep: &str) -> Result<String, ApiError> {
    match content {
        Content::Text(t) => Ok(t.clone()),
        Content::Blocks(blocks) => blocks
            .iter()
            .map(|b| block_text(b, param))
            .collect::<Result<Vec<_>, _>>()
            .map(|texts| texts.join(sep)),
    }
}

fn block_text<'a>(block: &'a Block, param: &str) -> Result<&'a str, ApiError> {
    match (block.kind.as_str(), &block.text) {
        ("text", Some(t)) => Ok(t),
        ("text", None) => Err(ApiError::invalid(param, "a text block needs its text")),
        (kind, _) => Err(ApiError::invalid(
            param,
            format!("content blocks of type {kind:?} are not supported here"),
        )),
    }
}

/// A `tool_use` block's id (`toolu_` and 24 hex digits).
pub fn tool_use_id() -> String {
    tools::call_id().replacen("call_", "toolu_", 1)
}

/// A call's arguments (JSON text) as the block's `input` object; text that is not a JSON object (a call
/// cut short by `max_tokens`) becomes `{}`.
pub fn input(arguments: &str) -> Value {
    match serde_json::from_str::<Value>(arguments) {
        Ok(v @ Value::Object(_)) => v,
        _ => json!({}),
    }
}

/// A whole answer's blocks: its text (when there is some, or nothing else), then one `tool_use` block a
/// call; and the number of calls.
pub fn output_blocks(text: String, syntax: Option<OutputSyntax>) -> (Vec<OutBlock>, usize) {
    let Some(syntax) = syntax else {
        return (vec![OutBlock::Text { text }], 0);
    };
    let parsed = tools::parse_output(syntax, &text);
    let n = parsed.calls.len();
    let mut blocks = Vec::with_capacity(n + 1);
    if n == 0 || !parsed.content.is_empty() {
        blocks.push(OutBlock::Text {
            text: parsed.content,
        });
    }
    blocks.extend(parsed.calls.into_iter().map(|call| OutBlock::ToolUse {
        id: tool_use_id(),
        input: input(&call.arguments),
        name: call.name,
    }));
    (blocks, n)
}
