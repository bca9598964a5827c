//! llama.cpp's GBNF turned into llguidance's Lark dialect, so users of llama.cpp's `grammar` field keep their
//! grammars. Rules `name ::= ...` become `name: ...` (`root` is `start`, `-` in names becomes `_`), string
//! literals are re-escaped, character classes and `.` become regex terminals; groups, alternatives, `* + ?` and
//! `{m,n}` repetitions carry over as they are.

use crate::constraint::ConstraintError;

/// The Lark text of a GBNF grammar, or where it does not parse.
pub fn gbnf_to_lark(gbnf: &str) -> Result<String, ConstraintError> {
    let mut lexer = Lexer {
        chars: gbnf.chars().collect(),
        pos: 0,
    };
    let mut out = String::new();
    let mut first = true;
    while let Some(token) = lexer.next()? {
        match token {
            Token::Name(name) if lexer.peek_assign() => {
                if !first {
                    out.push('\n');
                }
                first = false;
                out.push_str(&rule_name(&name));
                out.push(':');
            }
            Token::Name(name) => push_item(&mut out, &rule_name(&name)),
            Token::Literal(text) => push_item(&mut out, &lark_string(&text)),
            Token::Class(body) => push_item(&mut out, &format!("/[{body}]/")),
            Token::Any => push_item(&mut out, "/(?s:.)/"),
            Token::Punct(p) => push_item(&mut out, &p),
        }
    }
    if first {
        return Err(invalid("the grammar has no rules"));
    }
    Ok(out)
}

fn invalid(what: &str) -> ConstraintError {
    ConstraintError::Invalid(format!("GBNF: {what}"))
}

fn push_item(out: &mut String, item: &str) {
    out.push(' ');
    out.push_str(item);
}

fn rule_name(name: &str) -> String {
    if name == "root" {
        "start".into()
    } else {
        format!("r_{}", name.replace('-', "_").to_lowercase())
    }
}

/// A Lark string literal (JSON escaping, which llguidance's Lark reads).
fn lark_string(text: &str) -> String {
    serde_json::Value::String(text.into()).to_string()
}

enum Token {
    Name(String),
    Literal(String),
    /// A character class body, already in regex syntax.
    Class(String),
    Any,
    /// `( ) | * + ?` or a `{m,n}` repetition, copied as is.
    Punct(String),
}

struct Lexer {
    chars: Vec<char>,
    pos: usize,
}

impl Lexer {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek();
        self.pos += 1;
        c
    }

    fn skip_space_and_comments(&mut self) {
        while let Some(c) = self.peek() {
            if c == '#' {
                while self.peek().is_some_and(|c| c != '\n') {
                    self.pos += 1;
                }
            } else if c.is_whitespace() {
                self.pos += 1;
            } else {
                break;
            }
        }
    }

    /// After a name: is `::=` next (so the name starts a rule)? Consumes it if so.
    fn peek_assign(&mut self) -> bool {
        self.skip_space_and_comments();
        let next: String = self.chars.iter().skip(self.pos).take(3).collect();
        if next == "::=" {
            self.pos += 3;
            true
        } else {
            false
        }
    }

    fn next(&mut self) -> Result<Option<Token>, ConstraintError> {
        self.skip_space_and_comments();
        let Some(c) = self.bump() else {
            return Ok(None);
        };
        Ok(Some(match c {
            '"' => Token::Literal(self.literal()?),
            '[' => Token::Class(self.class()?),
            '.' => Token::Any,
            '(' | ')' | '|' | '*' | '+' | '?' => Token::Punct(c.to_string()),
            '{' => Token::Punct(self.repetition()?),
            c if c.is_ascii_alphanumeric() || c == '-' || c == '_' => {
                let mut name = c.to_string();
                while let Some(c) = self
                    .peek()
                    .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
                {
                    name.push(c);
                    self.pos += 1;
                }
                Token::Name(name)
            }
            other => {
                return Err(invalid(&format!(
                    "unexpected {other:?} at character {}",
                    self.pos
                )));
            }
        }))
    }

    fn literal(&mut self) -> Result<String, ConstraintError> {
        let mut text = String::new();
        loop {
            match self.bump() {
                None => return Err(invalid("unterminated string literal")),
                Some('"') => return Ok(text),
                Some('\\') => text.push(self.escape()?),
                Some(c) => text.push(c),
            }
        }
    }

    /// A class body in regex syntax: every member but ASCII alphanumerics is written as `\x{..}`.
    fn class(&mut self) -> Result<String, ConstraintError> {
        let mut body = String::new();
        if self.peek() == Some('^') {
            self.pos += 1;
            body.push('^');
        }
        loop {
            let c = match self.bump() {
                None => return Err(invalid("unterminated character class")),
                Some(']') => return Ok(body),
                Some('\\') => self.escape()?,
                Some('-') if !body.is_empty() && body != "^" && self.peek() != Some(']') => {
                    body.push('-');
                    continue;
                }
                Some(c) => c,
            };
            if c.is_ascii_alphanumeric() {
                body.push(c);
            } else {
                body.push_str(&format!("\\x{{{:X}}}", u32::from(c)));
            }
        }
    }

    fn repetition(&mut self) -> Result<String, ConstraintError> {
        let mut rep = String::from("{");
        loop {
            match self.bump() {
                Some('}') => {
                    rep.push('}');
                    return Ok(rep);
                }
                Some(c) if c.is_ascii_digit() || c == ',' || c == ' ' => rep.push(c),
                _ => return Err(invalid("bad {m,n} repetition")),
            }
        }
    }

    fn escape(&mut self) -> Result<char, ConstraintError> {
        let hex = |lexer: &mut Lexer, n: usize| -> Result<char, ConstraintError> {
            let digits: String = (0..n).filter_map(|_| lexer.bump()).collect();
            u32::from_str_radix(&digits, 16)
                .ok()
                .and_then(char::from_u32)
                .ok_or_else(|| invalid("bad hex escape"))
        };
        match self.bump() {
            Some('n') => Ok('\n'),
            Some('t') => Ok('\t'),
            Some('r') => Ok('\r'),
            Some('x') => hex(self, 2),
            Some('u') => hex(self, 4),
            Some('U') => hex(self, 8),
            Some(c @ ('\\' | '"' | '[' | ']' | '-' | '^')) => Ok(c),
            _ => Err(invalid("unknown escape")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_literals_and_classes_convert() {
        let lark =
            gbnf_to_lark("root ::= \"a\\n\" item+ # comment\nitem ::= [a-z0-9_] | \"x\"{2,3}")
                .unwrap();
        assert_eq!(
            lark,
            "start: \"a\\n\" r_item +\nr_item: /[a-z0-9\\x{5F}]/ | \"x\" {2,3}"
        );
    }

    #[test]
    fn negated_classes_and_any_convert() {
        let lark = gbnf_to_lark("root ::= [^\"\\\\] .").unwrap();
        assert_eq!(lark, "start: /[^\\x{22}\\x{5C}]/ /(?s:.)/");
    }

    #[test]
    fn broken_grammars_are_errors() {
        for bad in ["", "root ::= \"a", "root ::= [a-", "root ::= a @"] {
            assert!(gbnf_to_lark(bad).is_err(), "{bad:?}");
        }
    }
}
