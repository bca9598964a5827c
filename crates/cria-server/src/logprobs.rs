//! Engine logprobs to the two OpenAI shapes.

use cria_engine::TokenLogprob;
use serde_json::{Map, Value};

use crate::frontend::Frontend;
use crate::types::{ChatLogprobs, CompletionLogprobs, TokenLogprobOut, TopLogprob};

/// The f64 whose shortest decimal is `x`'s shortest decimal: JSON numbers are written from f64, and a plain
/// widening of an f32 prints its binary expansion (-0.4732856750488281 for -0.47328568). Through this, a
/// logprob reads the same in streamed chunks (built as `serde_json::Value`) and in whole responses.
pub fn decimal(x: f32) -> f64 {
    if !x.is_finite() {
        return f64::from(x);
    }
    x.to_string().parse().unwrap_or(f64::from(x))
}

fn token_string(frontend: &dyn Frontend, id: u32) -> (String, Vec<u8>) {
    let bytes = frontend.token_bytes(id);
    (String::from_utf8_lossy(&bytes).into_owned(), bytes)
}

/// The chat form: one entry per token with its bytes and alternatives.
pub fn chat(frontend: &dyn Frontend, lps: &[TokenLogprob]) -> ChatLogprobs {
    let content = lps
        .iter()
        .map(|lp| {
            let (token, bytes) = token_string(frontend, lp.id);
            let top_logprobs = lp
                .top
                .iter()
                .map(|&(id, logprob)| {
                    let (token, bytes) = token_string(frontend, id);
                    TopLogprob {
                        token,
                        logprob: decimal(logprob),
                        bytes,
                    }
                })
                .collect();
            TokenLogprobOut {
                token,
                logprob: decimal(lp.logprob),
                bytes,
                top_logprobs,
            }
        })
        .collect();
    ChatLogprobs { content }
}

/// The legacy completions form; `offset` is where the text of the first token starts.
pub fn completion(
    frontend: &dyn Frontend,
    lps: &[TokenLogprob],
    mut offset: usize,
) -> CompletionLogprobs {
    let mut out = CompletionLogprobs::default();
    for lp in lps {
        let (token, bytes) = token_string(frontend, lp.id);
        let top: Map<String, Value> = lp
            .top
            .iter()
            .map(|&(id, logprob)| (token_string(frontend, id).0, Value::from(decimal(logprob))))
            .collect();
        out.text_offset.push(offset);
        offset += bytes.len();
        out.tokens.push(token);
        out.token_logprobs.push(decimal(lp.logprob));
        out.top_logprobs.push(top);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logprobs_print_as_their_shortest_f32_decimal_in_values_and_structs() {
        let x = -0.473_285_68_f32;
        assert_eq!(Value::from(decimal(x)).to_string(), "-0.47328568");
        assert_eq!(
            serde_json::to_string(&decimal(x)).ok().as_deref(),
            Some("-0.47328568")
        );
        assert_eq!(decimal(x) as f32, x, "the same f32 comes back");
        assert_eq!(decimal(f32::NEG_INFINITY), f64::NEG_INFINITY);
    }
}
