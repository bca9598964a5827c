//! An incremental scanner for one call's JSON object, fed a character at a time: it finds the `name` and the
//! arguments value as they are written, so a stream can send the name once and the arguments in pieces.

/// What a character completed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScanEvent {
    /// The function's name (the `name` string, unescaped).
    Name(String),
    /// More of the arguments' JSON text.
    Arguments(String),
    /// The object closed.
    End,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Before the object's `{`.
    Start,
    /// After `{` or a member: a key, `,` or `}`.
    Key,
    /// Inside a key string.
    KeyText { escaped: bool },
    /// After a key: the `:`.
    Colon,
    /// After `:`: whitespace before the value.
    ValueStart,
    /// Inside a value.
    Value,
    /// The object closed.
    Done,
    /// Not a call object.
    Invalid,
}

/// The scanner for one object.
#[derive(Debug, Clone)]
pub struct ObjectScan {
    state: State,
    key: String,
    /// The value being read, raw.
    value: String,
    depth: usize,
    in_string: bool,
    escaped: bool,
    arguments_key: &'static str,
    /// The first key seen (a bare object is a call only if it starts with `name` or `type`).
    pub first_key: Option<String>,
}

impl ObjectScan {
    pub fn new(arguments_key: &'static str) -> Self {
        ObjectScan {
            state: State::Start,
            key: String::new(),
            value: String::new(),
            depth: 0,
            in_string: false,
            escaped: false,
            arguments_key,
            first_key: None,
        }
    }

    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    pub fn is_invalid(&self) -> bool {
        self.state == State::Invalid
    }

    fn streams_value(&self) -> bool {
        self.key == self.arguments_key || self.key == "arguments" || self.key == "parameters"
    }

    /// Feeds one character; `out` receives what it completed.
    pub fn push(&mut self, c: char, out: &mut Vec<ScanEvent>) {
        match self.state {
            State::Start if c.is_whitespace() || c == '[' => {}
            State::Start if c == '{' => self.state = State::Key,
            State::Key if c.is_whitespace() || c == ',' => {}
            State::Key if c == '"' => {
                self.key.clear();
                self.state = State::KeyText { escaped: false };
            }
            State::Key if c == '}' => {
                self.state = State::Done;
                out.push(ScanEvent::End);
            }
            State::KeyText { escaped } => self.key_char(c, escaped),
            State::Colon if c.is_whitespace() => {}
            State::Colon if c == ':' => self.state = State::ValueStart,
            State::ValueStart if c.is_whitespace() => {}
            State::ValueStart => {
                self.value.clear();
                self.depth = 0;
                self.in_string = false;
                self.escaped = false;
                self.state = State::Value;
                self.value_char(c, out);
            }
            State::Value => self.value_char(c, out),
            State::Done | State::Invalid => {}
            _ => self.state = State::Invalid,
        }
    }

    fn key_char(&mut self, c: char, escaped: bool) {
        if c == '"' && !escaped {
            self.key = serde_json::from_str(&format!("\"{}\"", self.key)).unwrap_or_default();
            self.first_key.get_or_insert_with(|| self.key.clone());
            self.state = State::Colon;
        } else {
            self.key.push(c);
            self.state = State::KeyText {
                escaped: c == '\\' && !escaped,
            };
        }
    }

    /// One character of a value; the value ends at its closing bracket or quote, or (a number or literal) at
    /// the `,` or `}` after it, which then counts for the object.
    fn value_char(&mut self, c: char, out: &mut Vec<ScanEvent>) {
        if self.in_string {
            self.add(c, out);
            if self.escaped {
                self.escaped = false;
            } else if c == '\\' {
                self.escaped = true;
            } else if c == '"' {
                self.in_string = false;
                if self.depth == 0 {
                    self.end_value(out);
                }
            }
            return;
        }
        match c {
            '"' => {
                self.in_string = true;
                self.add(c, out);
            }
            '{' | '[' => {
                self.depth += 1;
                self.add(c, out);
            }
            '}' | ']' if self.depth > 0 => {
                self.depth -= 1;
                self.add(c, out);
                if self.depth == 0 {
                    self.end_value(out);
                }
            }
            ',' | '}' if self.depth == 0 => {
                self.end_value(out);
                self.push(c, out);
            }
            _ => self.add(c, out),
        }
    }

    /// Adds to the value: arguments (not a string: those are decoded whole) stream out as they come.
    fn add(&mut self, c: char, out: &mut Vec<ScanEvent>) {
        let first_quote = self.value.is_empty() && c == '"';
        if self.streams_value() && !first_quote && !self.value.starts_with('"') {
            match out.last_mut() {
                Some(ScanEvent::Arguments(text)) => text.push(c),
                _ => out.push(ScanEvent::Arguments(c.to_string())),
            }
        }
        self.value.push(c);
    }

    fn end_value(&mut self, out: &mut Vec<ScanEvent>) {
        self.state = State::Key;
        let raw = self.value.trim_end();
        if self.key == "name" {
            if let Ok(name) = serde_json::from_str::<String>(raw) {
                out.push(ScanEvent::Name(name));
            }
        } else if self.streams_value() && raw.starts_with('"') {
            // Arguments written as a JSON string holding JSON: the string's text is the arguments.
            if let Ok(text) = serde_json::from_str::<String>(raw) {
                out.push(ScanEvent::Arguments(text));
            }
        }
    }
}

/// Finds where one JSON object or array ends, fed a character at a time (Mistral's v11 arguments, written
/// bare after `[ARGS]`).
#[derive(Debug, Clone, Default)]
pub struct ValueScan {
    depth: usize,
    in_string: bool,
    escaped: bool,
}

/// What a character did to a [`ValueScan`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueStep {
    /// Whitespace before the value: not part of it.
    Before,
    /// Part of the value; `true` when it closed the value.
    In(bool),
    /// The value does not open with `{` or `[`.
    NotAContainer,
}

impl ValueScan {
    pub fn push(&mut self, c: char) -> ValueStep {
        if self.depth == 0 {
            return match c {
                '{' | '[' => {
                    self.depth = 1;
                    ValueStep::In(false)
                }
                c if c.is_whitespace() => ValueStep::Before,
                _ => ValueStep::NotAContainer,
            };
        }
        if self.in_string {
            match (self.escaped, c) {
                (true, _) => self.escaped = false,
                (false, '\\') => self.escaped = true,
                (false, '"') => self.in_string = false,
                _ => {}
            }
            return ValueStep::In(false);
        }
        match c {
            '"' => self.in_string = true,
            '{' | '[' => self.depth += 1,
            '}' | ']' => {
                self.depth -= 1;
                return ValueStep::In(self.depth == 0);
            }
            _ => {}
        }
        ValueStep::In(false)
    }
}
