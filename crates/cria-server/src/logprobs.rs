//! Engine logprobs to the two OpenAI shapes.

use cria_engine::TokenLogprob;
use serde_json::{Map, Value};

use crate::frontend::Frontend;
use crate::types::{ChatLogprobs, CompletionLogprobs, TokenLogprobOut, TopLogprob};

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
                        logprob,
                        bytes,
                    }
                })
                .collect();
            TokenLogprobOut {
                token,
                logprob: lp.logprob,
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
            .map(|&(id, logprob)| (token_string(frontend, id).0, Value::from(logprob)))
            .collect();
        out.text_offset.push(offset);
        offset += bytes.len();
        out.tokens.push(token);
        out.token_logprobs.push(lp.logprob);
        out.top_logprobs.push(top);
    }
    out
}
