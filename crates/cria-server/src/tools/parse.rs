//! Splits generated text into content, reasoning (`<think>` blocks) and tool calls, incrementally: the same
//! pieces come out whether the text arrives at once or a token at a time, so a stream assembles to the
//! non-streamed message. Text that may be the start of a marker is held back until it is known.

use super::family::{Family, THINK_CLOSE, THINK_OPEN};
use super::json_scan::{ObjectScan, ScanEvent, ValueScan, ValueStep};

/// Between a Mistral v11 call's name and its arguments.
const ARGS: &str = "[ARGS]";
/// Before `[ARGS]` in Mistral Small 3.2's calls: the call's id.
const CALL_ID: &str = "[CALL_ID]";
/// The longest name (with its `[CALL_ID]` part) a Mistral v11 call is waited for before the text is taken
/// for content.
const MAX_NAME: usize = 256;

/// A piece of a choice's output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    Content(String),
    Reasoning(String),
    /// A new call, with its function's name.
    CallStart(String),
    /// More of the current call's arguments (JSON text).
    Arguments(String),
}

/// What to look for in the output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutputSyntax {
    /// The call syntax, when the request has tools.
    pub calls: Option<Family>,
    /// Whether `<think>` blocks become reasoning.
    pub reasoning: bool,
    /// Whether the prompt already opened a `<think>` block.
    pub starts_in_think: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Text,
    Think,
    Call,
    /// Mistral v11: the function's name, up to `[ARGS]`.
    CallName,
    /// Mistral v11: the arguments, a bare JSON object.
    CallArgs,
    AfterCall,
}

/// The incremental parser for one choice.
#[derive(Debug, Clone)]
pub struct OutputParser {
    syntax: OutputSyntax,
    mode: Mode,
    pending: String,
    /// Nothing but whitespace written yet (or since `</think>`): where `<think>` and bare JSON calls start.
    at_start: bool,
    scan: ObjectScan,
    /// The current call's text, given back as content if it turns out not to be a call.
    call_raw: String,
    /// A bare `{...}` (no opener): a call only if its first key is `name` or `type`.
    bare: bool,
    name_sent: bool,
    held_arguments: String,
    calls: usize,
    after_think: bool,
    /// Where a Mistral v11 call's arguments end.
    value: ValueScan,
}

impl OutputParser {
    pub fn new(syntax: OutputSyntax) -> Self {
        let arguments_key = syntax.calls.map_or("arguments", Family::arguments_key);
        OutputParser {
            syntax,
            mode: if syntax.reasoning && syntax.starts_in_think {
                Mode::Think
            } else {
                Mode::Text
            },
            pending: String::new(),
            at_start: true,
            scan: ObjectScan::new(arguments_key),
            call_raw: String::new(),
            bare: false,
            name_sent: false,
            held_arguments: String::new(),
            calls: 0,
            after_think: false,
            value: ValueScan::default(),
        }
    }

    /// Calls found so far.
    pub fn calls(&self) -> usize {
        self.calls
    }

    /// The pieces `text` completes.
    pub fn push(&mut self, text: &str) -> Vec<Piece> {
        self.pending.push_str(text);
        let mut out = Vec::new();
        self.drain(false, &mut out);
        out
    }

    /// The pieces held back, at the end of the output.
    pub fn finish(&mut self) -> Vec<Piece> {
        let mut out = Vec::new();
        self.drain(true, &mut out);
        if self.mode == Mode::Call && !self.name_sent {
            emit(&mut out, Piece::Content(std::mem::take(&mut self.call_raw)));
        }
        if self.mode == Mode::CallName {
            self.not_a_named_call(&mut out);
            self.drain(true, &mut out);
        }
        out
    }

    fn drain(&mut self, end: bool, out: &mut Vec<Piece>) {
        loop {
            let progressed = match self.mode {
                Mode::Think => self.think(end, out),
                Mode::Text => self.text(end, out),
                Mode::Call => self.call(out),
                Mode::CallName => self.call_name(end, out),
                Mode::CallArgs => self.call_args(out),
                Mode::AfterCall => self.after_call(end),
            };
            if !progressed {
                return;
            }
        }
    }

    fn think(&mut self, end: bool, out: &mut Vec<Piece>) -> bool {
        if let Some(i) = self.pending.find(THINK_CLOSE) {
            emit(out, Piece::Reasoning(self.pending[..i].to_string()));
            self.pending.drain(..i + THINK_CLOSE.len());
            self.mode = Mode::Text;
            self.at_start = true;
            self.after_think = true;
            return true;
        }
        let keep = if end {
            0
        } else {
            held(&self.pending, &[THINK_CLOSE])
        };
        let cut = self.pending.len() - keep;
        emit(out, Piece::Reasoning(self.pending[..cut].to_string()));
        self.pending.drain(..cut);
        false
    }

    fn text(&mut self, end: bool, out: &mut Vec<Piece>) -> bool {
        if self.at_start {
            let trimmed = self.pending.trim_start();
            if trimmed.is_empty() && !end {
                return false;
            }
            let lead = self.pending.len() - trimmed.len();
            if self.syntax.reasoning && trimmed.starts_with(THINK_OPEN) {
                self.pending.drain(..lead + THINK_OPEN.len());
                self.mode = Mode::Think;
                return true;
            }
            if self.syntax.reasoning && THINK_OPEN.starts_with(trimmed) && !end {
                return false;
            }
            if self.syntax.calls.is_some_and(Family::bare_json) && trimmed.starts_with('{') {
                self.pending.drain(..lead);
                self.start_call(true);
                return true;
            }
            // Content after `</think>` starts at its first non-blank character.
            if self.after_think {
                self.pending.drain(..lead);
            }
            self.at_start = false;
        }
        let opener = self.syntax.calls.map(Family::opener);
        if let Some(opener) = opener
            && let Some(i) = self.pending.find(opener)
        {
            emit(out, Piece::Content(self.pending[..i].to_string()));
            self.pending.drain(..i + opener.len());
            self.start_call(false);
            return true;
        }
        let keep = match (end, opener) {
            (false, Some(o)) => held(&self.pending, &[o]),
            _ => 0,
        };
        let cut = self.pending.len() - keep;
        emit(out, Piece::Content(self.pending[..cut].to_string()));
        self.pending.drain(..cut);
        false
    }

    fn start_call(&mut self, bare: bool) {
        if !bare && self.syntax.calls == Some(Family::MistralArgs) {
            self.mode = Mode::CallName;
            self.name_sent = false;
            return;
        }
        self.mode = Mode::Call;
        self.scan = ObjectScan::new(self.syntax.calls.map_or("arguments", Family::arguments_key));
        self.call_raw.clear();
        self.bare = bare;
        self.name_sent = false;
        self.held_arguments.clear();
    }

    fn call(&mut self, out: &mut Vec<Piece>) -> bool {
        let mut events = Vec::new();
        let mut used = 0;
        for c in self.pending.chars() {
            used += c.len_utf8();
            self.call_raw.push(c);
            self.scan.push(c, &mut events);
            let not_a_call = self.scan.is_invalid()
                || (self.bare
                    && self
                        .scan
                        .first_key
                        .as_deref()
                        .is_some_and(|k| k != "name" && k != "type"));
            if not_a_call && !self.name_sent {
                self.pending.drain(..used);
                let raw = std::mem::take(&mut self.call_raw);
                emit(out, Piece::Content(raw));
                self.mode = Mode::Text;
                self.at_start = false;
                return true;
            }
            if self.scan.is_done() || self.scan.is_invalid() {
                break;
            }
        }
        self.pending.drain(..used);
        for event in events {
            self.on_scan(event, out);
        }
        if self.scan.is_done() || self.scan.is_invalid() {
            if !self.name_sent {
                emit(out, Piece::Content(std::mem::take(&mut self.call_raw)));
            }
            self.mode = Mode::AfterCall;
            return true;
        }
        false
    }

    /// Mistral v11: waits for `[ARGS]` after the name; text that cannot be a name is content.
    fn call_name(&mut self, end: bool, out: &mut Vec<Piece>) -> bool {
        let Some(at) = self.pending.find(ARGS) else {
            let name = self.pending.split('[').next().unwrap_or_default();
            if end || self.pending.len() > MAX_NAME || !is_function_name(name) {
                self.not_a_named_call(out);
                return true;
            }
            return false;
        };
        let name = self.pending[..at].split(CALL_ID).next().unwrap_or_default();
        if name.is_empty() || !is_function_name(name) {
            self.not_a_named_call(out);
            return true;
        }
        self.calls += 1;
        self.name_sent = true;
        out.push(Piece::CallStart(name.to_string()));
        self.pending.drain(..at + ARGS.len());
        self.value = ValueScan::default();
        self.mode = Mode::CallArgs;
        true
    }

    /// The opener was not followed by a call: it is content, and what follows is read as text.
    fn not_a_named_call(&mut self, out: &mut Vec<Piece>) {
        emit(
            out,
            Piece::Content(Family::MistralArgs.opener().to_string()),
        );
        self.mode = Mode::Text;
        self.at_start = false;
    }

    /// Mistral v11: the arguments object, sent as it comes, up to its closing brace.
    fn call_args(&mut self, out: &mut Vec<Piece>) -> bool {
        let (mut used, mut arguments, mut done) = (0, String::new(), false);
        for c in self.pending.chars() {
            let step = self.value.push(c);
            if step == ValueStep::NotAContainer {
                done = true;
                break;
            }
            used += c.len_utf8();
            if let ValueStep::In(closed) = step {
                arguments.push(c);
                if closed {
                    done = true;
                    break;
                }
            }
        }
        self.pending.drain(..used);
        emit(out, Piece::Arguments(arguments));
        if done {
            self.mode = Mode::AfterCall;
        }
        done
    }

    fn on_scan(&mut self, event: ScanEvent, out: &mut Vec<Piece>) {
        match event {
            ScanEvent::Name(name) if !self.name_sent => {
                self.name_sent = true;
                self.calls += 1;
                out.push(Piece::CallStart(name));
                let held = std::mem::take(&mut self.held_arguments);
                emit(out, Piece::Arguments(held));
            }
            ScanEvent::Name(_) | ScanEvent::End => {}
            ScanEvent::Arguments(text) if self.name_sent => emit(out, Piece::Arguments(text)),
            ScanEvent::Arguments(text) => self.held_arguments.push_str(&text),
        }
    }

    fn after_call(&mut self, end: bool) -> bool {
        let Some(family) = self.syntax.calls else {
            self.mode = Mode::Text;
            return true;
        };
        let trimmed = self.pending.trim_start();
        let lead = self.pending.len() - trimmed.len();
        if trimmed.is_empty() {
            if end {
                self.pending.clear();
            }
            return false;
        }
        let opener = family.opener();
        let separators = family.separators();
        if let Some(sep) = separators.iter().find(|s| trimmed.starts_with(**s)) {
            self.pending.drain(..lead + sep.len());
            return true;
        }
        if trimmed.starts_with(opener) {
            self.pending.drain(..lead + opener.len());
            self.start_call(false);
            return true;
        }
        if family != Family::MistralArgs && trimmed.starts_with('{') {
            self.pending.drain(..lead);
            self.start_call(true);
            return true;
        }
        let partial = separators
            .iter()
            .chain(std::iter::once(&opener))
            .any(|m| m.starts_with(trimmed));
        if partial && !end {
            return false;
        }
        self.pending.drain(..lead);
        self.mode = Mode::Text;
        self.at_start = false;
        true
    }
}

/// Whether `name` may be a function's name (Mistral v11 writes it bare).
fn is_function_name(name: &str) -> bool {
    name.chars()
        .all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.' | ':'))
}

/// Adds a piece, merging it into the last one of the same kind; empty text is dropped.
fn emit(out: &mut Vec<Piece>, piece: Piece) {
    let text_empty = matches!(&piece, Piece::Content(t) | Piece::Reasoning(t) | Piece::Arguments(t) if t.is_empty());
    if text_empty {
        return;
    }
    match (out.last_mut(), piece) {
        (Some(Piece::Content(a)), Piece::Content(b))
        | (Some(Piece::Reasoning(a)), Piece::Reasoning(b))
        | (Some(Piece::Arguments(a)), Piece::Arguments(b)) => a.push_str(&b),
        (_, piece) => out.push(piece),
    }
}

/// How many bytes at the end of `text` could begin one of `markers` (held back until known).
fn held(text: &str, markers: &[&str]) -> usize {
    markers
        .iter()
        .flat_map(|m| (1..m.len()).map(move |k| (m, k)))
        .filter(|(_, k)| text.is_char_boundary(text.len().saturating_sub(*k)))
        .filter(|(m, k)| text.ends_with(&m[..*k]))
        .map(|(_, k)| k)
        .max()
        .unwrap_or(0)
}
