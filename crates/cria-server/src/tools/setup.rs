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
    /// The tool-call grammar, when the request has tools (and the family has an opener for `auto`).
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
    let grammar = tools.and_then(|t| {
        tool_grammar(&t.functions(), &t.choice, t.parallel, family, &specials).map(Grammar::Lark)
    });
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
