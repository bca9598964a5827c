//! Tool calling and reasoning output: request checks, the family's call syntax, the grammar that holds
//! generation to it, and the parser that turns output text into content, reasoning and calls.

mod family;
mod grammar;
mod json_scan;
mod parse;
mod setup;
mod types;

pub use family::{Family, ReasoningFormat, prompt_opens_think, template_thinks};
pub use grammar::{Specials, ToolChoice, compact_schema, tool_grammar};
pub use parse::{OutputParser, OutputSyntax, Piece};
pub use setup::{ChatSetup, prepare};
pub use types::{
    FunctionCall, FunctionDef, FunctionDelta, FunctionName, NamedToolChoice, Tool, ToolCall,
    ToolCallDelta, ToolChoiceField, call_id,
};

use crate::error::ApiError;

/// A request's tools, checked; `None` from [`check`] when there are none or `tool_choice` is `none`.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolRequest {
    pub tools: Vec<Tool>,
    pub choice: ToolChoice,
    pub parallel: bool,
}

impl ToolRequest {
    pub fn functions(&self) -> Vec<FunctionDef> {
        self.tools.iter().map(|t| t.function.clone()).collect()
    }

    /// The `tools` variable for the chat template.
    pub fn template_value(&self) -> serde_json::Value {
        serde_json::to_value(&self.tools).unwrap_or_default()
    }
}

/// Checks `tools`, `tool_choice` and `parallel_tool_calls` (a 400 naming the field).
pub fn check(
    tools: Option<&[Tool]>,
    choice: Option<&ToolChoiceField>,
    parallel: Option<bool>,
) -> Result<Option<ToolRequest>, ApiError> {
    let tools = tools.unwrap_or_default();
    for (i, tool) in tools.iter().enumerate() {
        check_tool(tool, i)?;
        if tools[..i]
            .iter()
            .any(|t| t.function.name == tool.function.name)
        {
            return Err(ApiError::invalid(
                &format!("tools[{i}].function.name"),
                format!("Two tools are named {:?}.", tool.function.name),
            ));
        }
    }
    let choice = match choice {
        None => ToolChoice::Auto,
        Some(ToolChoiceField::Mode(mode)) => match mode.as_str() {
            "auto" => ToolChoice::Auto,
            "required" => ToolChoice::Required,
            "none" => return Ok(None),
            other => {
                return Err(ApiError::invalid(
                    "tool_choice",
                    format!(
                        "Unknown tool_choice {other:?}: use auto, none, required or a function."
                    ),
                ));
            }
        },
        Some(ToolChoiceField::Named(named)) => {
            let name = &named.function.name;
            if named.kind != "function" || !tools.iter().any(|t| &t.function.name == name) {
                return Err(ApiError::invalid(
                    "tool_choice",
                    format!("tool_choice names {name:?}, which is not one of the tools."),
                ));
            }
            ToolChoice::Named(name.clone())
        }
    };
    if tools.is_empty() {
        return match choice {
            ToolChoice::Auto => Ok(None),
            _ => Err(ApiError::invalid(
                "tool_choice",
                "tool_choice asks for a call, but there are no tools.",
            )),
        };
    }
    Ok(Some(ToolRequest {
        tools: tools.to_vec(),
        choice,
        parallel: parallel.unwrap_or(true),
    }))
}

fn check_tool(tool: &Tool, i: usize) -> Result<(), ApiError> {
    if tool.kind != "function" {
        return Err(ApiError::invalid(
            &format!("tools[{i}].type"),
            format!("Only function tools are supported, got {:?}.", tool.kind),
        ));
    }
    if tool.function.name.is_empty() {
        return Err(ApiError::invalid(
            &format!("tools[{i}].function.name"),
            "A function needs a name.",
        ));
    }
    match &tool.function.parameters {
        None | Some(serde_json::Value::Object(_)) => Ok(()),
        Some(_) => Err(ApiError::invalid(
            &format!("tools[{i}].function.parameters"),
            "parameters must be a JSON schema object.",
        )),
    }
}

/// For templates that do not render tools: a system message describing them and the call syntax.
pub fn generic_system_prompt(tools: &[Tool]) -> String {
    let mut text = String::from(
        "You can call functions. To call one, reply with only\n<tool_call>\n{\"name\": <function name>, \"arguments\": <arguments as a JSON object>}\n</tool_call>\nThe functions:\n",
    );
    for tool in tools {
        text.push_str(&serde_json::to_string(&tool.function).unwrap_or_default());
        text.push('\n');
    }
    text
}

/// One choice's finished output, split.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ParsedOutput {
    pub content: String,
    pub reasoning: String,
    pub calls: Vec<FunctionCall>,
}

/// Splits a whole output (the same parser a stream uses).
pub fn parse_output(syntax: OutputSyntax, text: &str) -> ParsedOutput {
    let mut parser = OutputParser::new(syntax);
    let mut pieces = parser.push(text);
    pieces.extend(parser.finish());
    let mut out = ParsedOutput::default();
    for piece in pieces {
        match piece {
            Piece::Content(t) => out.content.push_str(&t),
            Piece::Reasoning(t) => out.reasoning.push_str(&t),
            Piece::CallStart(name) => out.calls.push(FunctionCall {
                name,
                arguments: String::new(),
            }),
            Piece::Arguments(t) => {
                if let Some(call) = out.calls.last_mut() {
                    call.arguments.push_str(&t);
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests;
