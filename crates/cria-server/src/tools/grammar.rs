//! Lark grammars (llguidance's dialect) that hold generation to a family's call syntax, with each call's
//! arguments held to its function's JSON schema.

use cria_sampling::grammar::{Grammar, Trigger};
use serde_json::Value;

use super::family::Family;
use super::types::FunctionDef;

/// What `tool_choice` asks for, once checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ToolChoice {
    /// Text or calls; the grammar applies from the moment the model opens a call.
    Auto,
    /// At least one call, to any of the tools.
    Required,
    /// A call to this function.
    Named(String),
}

/// Which marker texts are one special (control) token of the vocabulary, by id: grammar text never produces
/// those, so the grammar names the token instead.
pub type Specials<'a> = &'a dyn Fn(&str) -> Option<u32>;

/// The grammar for `tools` under `choice` in `family`'s syntax. For `required` and a named function it holds
/// the whole output; for `auto` it is lazy: the output is free text until the model opens a call (the
/// family's opener, or for Llama 3 a reply that opens with `{"`), and the calls are held from there on.
pub fn tool_grammar(
    tools: &[FunctionDef],
    choice: &ToolChoice,
    parallel: bool,
    family: Family,
    specials: Specials<'_>,
) -> Grammar {
    let atom =
        |text: &str| specials(text).map_or_else(|| lark_string(text), |id| format!("<[{id}]>"));
    let called: Vec<&FunctionDef> = match choice {
        ToolChoice::Named(name) => tools.iter().filter(|t| &t.name == name).collect(),
        _ => tools.iter().collect(),
    };
    let mut rules = vec!["%llguidance {}".to_string()];
    let fns: Vec<String> = called
        .iter()
        .map(|t| format!("fn_{}", rule_id(t)))
        .collect();
    rules.push(format!("fn: {}", fns.join(" | ")));
    for (t, rule) in called.iter().zip(&fns) {
        rules.push(function_rule(rule, t, family, &atom));
    }
    let repeat = |one: &str, sep: &str| {
        if parallel {
            format!("{one} ({sep} {one})*")
        } else {
            one.to_string()
        }
    };
    let opener = family.opener();
    let open = atom(opener);
    let calls = match family {
        Family::Hermes | Family::Generic => repeat(
            &format!(r#"{open} "\n" fn "\n" {}"#, atom("</tool_call>")),
            r#""\n""#,
        ),
        Family::Mistral => format!("{open} \"[\" {} \"]\"", repeat("fn", "\", \"")),
        // Each call opens with the opener, as the templates write them.
        Family::MistralArgs => repeat(&format!("{open} fn"), ""),
        Family::Llama3 => repeat("fn", "\"; \""),
    };
    rules.push(format!("calls: {calls}"));
    let start = match (family, choice) {
        // From the trigger on: a bare call, or `<|python_tag|>` and calls.
        (Family::Llama3, ToolChoice::Auto) => format!("start: calls | {open} calls"),
        _ => "start: calls".to_string(),
    };
    rules.push(start);
    let grammar = Grammar::Lark(rules.join("\n"));
    if *choice != ToolChoice::Auto {
        return grammar;
    }
    let mut triggers =
        vec![specials(opener).map_or_else(|| Trigger::Text(opener.into()), Trigger::Token)];
    if family == Family::Llama3 {
        triggers.push(Trigger::Start("{\"".into()));
    }
    Grammar::Lazy {
        triggers,
        grammar: Box::new(grammar),
    }
}

/// `fn_N: "{\"name\": \"NAME\", \"arguments\": " %json {...} "}"`, or for Mistral's v11 syntax
/// `fn_N: "NAME" ([CALL_ID] /[A-Za-z0-9]{9}/)? [ARGS] %json {...}`.
fn function_rule(
    rule: &str,
    tool: &FunctionDef,
    family: Family,
    atom: &dyn Fn(&str) -> String,
) -> String {
    if family == Family::MistralArgs {
        return format!(
            "{rule}: {} ({} /[A-Za-z0-9]{{9}}/)? {} %json {}",
            lark_string(&tool.name),
            atom("[CALL_ID]"),
            atom("[ARGS]"),
            compact_schema(tool.schema())
        );
    }
    let head = format!(
        "{{\"name\": {}, \"{}\": ",
        json_string(&tool.name),
        family.arguments_key()
    );
    format!(
        "{rule}: {} %json {} \"}}\"",
        lark_string(&head),
        compact_schema(tool.schema())
    )
}

/// The schema with llguidance's options for one-line JSON as Python's `json.dumps` writes it (`", "` and
/// `": "`), so a call cannot run on in whitespace.
pub fn compact_schema(mut schema: Value) -> String {
    if let Value::Object(map) = &mut schema {
        map.insert(
            "x-guidance".into(),
            serde_json::json!({
                "whitespace_flexible": false,
                "item_separator": ", ",
                "key_separator": ": ",
            }),
        );
    }
    schema.to_string()
}

/// A rule-name-safe id for a function: its name's alphanumerics plus a hash, so names never collide.
fn rule_id(tool: &FunctionDef) -> String {
    let clean: String = tool
        .name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect();
    let hash = tool.name.bytes().fold(0xcbf29ce484222325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100000001b3)
    });
    format!("{clean}_{:08x}", hash as u32)
}

fn json_string(s: &str) -> String {
    Value::String(s.to_string()).to_string()
}

/// A Lark string literal (JSON's escapes).
fn lark_string(s: &str) -> String {
    json_string(s)
}
