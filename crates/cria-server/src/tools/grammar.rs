//! Lark grammars (llguidance's dialect) that hold generation to a family's call syntax, with each call's
//! arguments held to its function's JSON schema.

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

/// The grammar for `tools` under `choice` in `family`'s syntax. `None` for `Auto` in a family whose calls
/// have no opener to wait for (Llama 3's bare JSON).
pub fn tool_grammar(
    tools: &[FunctionDef],
    choice: &ToolChoice,
    parallel: bool,
    family: Family,
    specials: Specials<'_>,
) -> Option<String> {
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
        rules.push(function_rule(rule, t, family));
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
    let (call_rest, calls) = match family {
        Family::Hermes | Family::Generic => {
            let rest = format!(r#""\n" fn "\n" {}"#, atom("</tool_call>"));
            let calls = repeat(&format!("{open} call_rest"), r#""\n""#);
            (rest, calls)
        }
        Family::Mistral => {
            let rest = format!("\"[\" {} \"]\"", repeat("fn", "\", \""));
            (rest, format!("{open} call_rest"))
        }
        Family::Llama3 => {
            let calls = repeat("fn", "\"; \"");
            if *choice == ToolChoice::Auto {
                return None;
            }
            rules.push(format!("start: {calls}"));
            return Some(rules.join("\n"));
        }
    };
    rules.push(format!("call_rest: {call_rest}"));
    rules.push(format!("calls: {calls}"));
    match (choice, specials(opener)) {
        (ToolChoice::Auto, None) => {
            // Text without the opener, or text up to the first opener and then calls (the opener written once
            // by PREFIX). Two disjoint lexemes, so the lexer never has to guess.
            let t = regex_escape(opener);
            rules.push(format!(
                "start: TEXT | PREFIX call_rest{}",
                if parallel { r#" ("\n" calls)?"# } else { "" }
            ));
            rules.push(format!(r"TEXT: /(?s:.*)/ & ~/(?s:.*{t}.*)/"));
            rules.push(format!(r"PREFIX: /(?s:.*){t}/ & ~/(?s:.*{t}.+)/"));
        }
        // Text never produces a special token, so any text, then calls from the opener token on.
        (ToolChoice::Auto, Some(_)) => {
            rules.push("start: TEXT? calls?".to_string());
            rules.push(r"TEXT: /(?s:.+)/".to_string());
        }
        _ => rules.push("start: calls".to_string()),
    }
    Some(rules.join("\n"))
}

/// `fn_N: "{\"name\": \"NAME\", \"arguments\": " %json {...} "}"`.
fn function_rule(rule: &str, tool: &FunctionDef, family: Family) -> String {
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

/// `s` with regex metacharacters escaped, for a Lark `/.../` regex.
fn regex_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 2);
    for c in s.chars() {
        if "\\.+*?()|[]{}^$#&-~/".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}
