//! Request fields to engine parameters, with a 400 naming the field for anything out of range.

use cria_sampling::SamplingParams;
use cria_sampling::grammar::Grammar;

use crate::error::ApiError;
use crate::types::{CommonFields, ResponseFormat, Stop};

/// Most stop strings a request may give (OpenAI's limit).
pub const MAX_STOP: usize = 4;
/// Most choices per request.
pub const MAX_N: i64 = 16;

/// What a request asks of generation, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct GenParams {
    pub sampling: SamplingParams,
    pub max_tokens: Option<usize>,
    pub n: usize,
    pub stop: Vec<String>,
    pub stream: bool,
    pub include_usage: bool,
    pub ignore_eos: bool,
    /// What the output must match, with the request field that asked for it.
    pub grammar: Option<(Grammar, &'static str)>,
    /// Keys the request's prompt-cache blocks apart from other salts'.
    pub cache_salt: Option<String>,
}

/// Checks the fields shared by both endpoints. `max_tokens` is the endpoint's own choice of field.
pub fn common(
    c: &CommonFields,
    max_tokens: Option<i64>,
    vocab_size: usize,
) -> Result<GenParams, ApiError> {
    Ok(GenParams {
        sampling: sampling(c, vocab_size)?,
        max_tokens: max_tokens.map(|m| positive("max_tokens", m)).transpose()?,
        n: c.n.map(n).transpose()?.unwrap_or(1),
        stop: stop(c.stop.as_ref())?,
        stream: c.stream.unwrap_or(false),
        include_usage: c.stream_options.as_ref().is_some_and(|o| o.include_usage),
        ignore_eos: c.ignore_eos.unwrap_or(false),
        grammar: grammar(c)?,
        cache_salt: c.cache_salt.clone(),
    })
}

/// The one output constraint a request may name (`response_format`, `json_schema`, `grammar` or `regex`).
fn grammar(c: &CommonFields) -> Result<Option<(Grammar, &'static str)>, ApiError> {
    let mut found = Vec::new();
    if let Some(f) = &c.response_format
        && let Some(g) = response_format(f)?
    {
        found.push((g, "response_format"));
    }
    if let Some(schema) = &c.json_schema {
        found.push((Grammar::JsonSchema(schema.clone()), "json_schema"));
    }
    if let Some(text) = &c.grammar {
        let g = if text.contains("::=") {
            Grammar::Gbnf(text.clone())
        } else {
            Grammar::Lark(text.clone())
        };
        found.push((g, "grammar"));
    }
    if let Some(pattern) = &c.regex {
        found.push((Grammar::Regex(pattern.clone()), "regex"));
    }
    if found.len() > 1 {
        let names: Vec<&str> = found.iter().map(|(_, p)| *p).collect();
        return Err(ApiError::invalid(
            names[1],
            format!("Give at most one of {}.", names.join(", ")),
        ));
    }
    Ok(found.pop())
}

fn response_format(f: &ResponseFormat) -> Result<Option<Grammar>, ApiError> {
    match f.kind.as_str() {
        "text" => Ok(None),
        "json_object" => Ok(Some(match &f.schema {
            Some(schema) => Grammar::JsonSchema(schema.clone()),
            None => Grammar::JsonObject,
        })),
        "json_schema" => {
            let schema = f
                .json_schema
                .as_ref()
                .and_then(|j| j.schema.clone())
                .or_else(|| f.schema.clone())
                .ok_or_else(|| {
                    ApiError::invalid(
                        "response_format",
                        "response_format.json_schema.schema is required for type json_schema.",
                    )
                })?;
            Ok(Some(Grammar::JsonSchema(schema)))
        }
        other => Err(ApiError::invalid(
            "response_format",
            format!(
                "response_format.type must be text, json_object or json_schema, got {other:?}."
            ),
        )),
    }
}

fn sampling(c: &CommonFields, vocab_size: usize) -> Result<SamplingParams, ApiError> {
    let mut p = SamplingParams::default();
    if let Some(t) = c.temperature {
        p.temperature = in_range("temperature", t, 0.0, 2.0)?;
    }
    if let Some(t) = c.top_p {
        if !(t.is_finite() && t > 0.0 && t <= 1.0) {
            return Err(ApiError::invalid(
                "top_p",
                format!("top_p must be in (0, 1], got {t}."),
            ));
        }
        p.top_p = t as f32;
    }
    if let Some(k) = c.top_k {
        p.top_k = usize::try_from(k).map_err(|_| {
            ApiError::invalid("top_k", format!("top_k must be 0 or more, got {k}."))
        })?;
    }
    if let Some(m) = c.min_p {
        p.min_p = in_range("min_p", m, 0.0, 1.0)?;
    }
    if let Some(r) = c.repetition_penalty {
        p.repetition_penalty = in_range("repetition_penalty", r, f64::MIN_POSITIVE, 10.0)?;
    }
    if let Some(v) = c.presence_penalty {
        p.presence_penalty = in_range("presence_penalty", v, -2.0, 2.0)?;
    }
    if let Some(v) = c.frequency_penalty {
        p.frequency_penalty = in_range("frequency_penalty", v, -2.0, 2.0)?;
    }
    if let Some(bias) = &c.logit_bias {
        p.logit_bias = logit_bias(bias, vocab_size)?;
    }
    p.seed = c.seed.map(|s| s as u64);
    Ok(p)
}

fn in_range(param: &str, v: f64, lo: f64, hi: f64) -> Result<f32, ApiError> {
    if v.is_finite() && (lo..=hi).contains(&v) {
        Ok(v as f32)
    } else {
        Err(ApiError::invalid(
            param,
            format!("{param} must be a number in [{lo}, {hi}], got {v}."),
        ))
    }
}

fn positive(param: &str, v: i64) -> Result<usize, ApiError> {
    usize::try_from(v)
        .ok()
        .filter(|&v| v >= 1)
        .ok_or_else(|| ApiError::invalid(param, format!("{param} must be at least 1, got {v}.")))
}

fn n(v: i64) -> Result<usize, ApiError> {
    if (1..=MAX_N).contains(&v) {
        Ok(v as usize)
    } else {
        Err(ApiError::invalid(
            "n",
            format!("n must be between 1 and {MAX_N}, got {v}."),
        ))
    }
}

fn stop(s: Option<&Stop>) -> Result<Vec<String>, ApiError> {
    let list = match s {
        None => Vec::new(),
        Some(Stop::One(s)) => vec![s.clone()],
        Some(Stop::Many(v)) => v.clone(),
    };
    if list.len() > MAX_STOP {
        return Err(ApiError::invalid(
            "stop",
            format!(
                "At most {MAX_STOP} stop sequences are allowed, got {}.",
                list.len()
            ),
        ));
    }
    Ok(list.into_iter().filter(|s| !s.is_empty()).collect())
}

fn logit_bias(
    bias: &std::collections::HashMap<String, f64>,
    vocab_size: usize,
) -> Result<Vec<(u32, f32)>, ApiError> {
    let mut out: Vec<(u32, f32)> = bias
        .iter()
        .map(|(k, &v)| {
            let id = k
                .parse::<u32>()
                .ok()
                .filter(|&id| (id as usize) < vocab_size)
                .ok_or_else(|| {
                    ApiError::invalid(
                        "logit_bias",
                        format!("logit_bias keys must be token ids below {vocab_size}, got {k:?}."),
                    )
                })?;
            Ok((id, in_range("logit_bias", v, -100.0, 100.0)?))
        })
        .collect::<Result<_, ApiError>>()?;
    out.sort_by_key(|&(id, _)| id);
    Ok(out)
}

/// Checks a chat request's `logprobs` / `top_logprobs`: `None` when not asked, else how many alternatives.
pub fn chat_logprobs(logprobs: Option<bool>, top: Option<i64>) -> Result<Option<usize>, ApiError> {
    let top = match top {
        None => 0,
        Some(t @ 0..=20) => t as usize,
        Some(t) => {
            return Err(ApiError::invalid(
                "top_logprobs",
                format!("top_logprobs must be between 0 and 20, got {t}."),
            ));
        }
    };
    match logprobs {
        Some(true) => Ok(Some(top)),
        _ if top > 0 => Err(ApiError::invalid(
            "top_logprobs",
            "top_logprobs requires logprobs to be true.",
        )),
        _ => Ok(None),
    }
}

/// Checks a completions request's `logprobs` (0 to 5 alternatives).
pub fn completion_logprobs(logprobs: Option<i64>) -> Result<Option<usize>, ApiError> {
    match logprobs {
        None => Ok(None),
        Some(t @ 0..=5) => Ok(Some(t as usize)),
        Some(t) => Err(ApiError::invalid(
            "logprobs",
            format!("logprobs must be between 0 and 5, got {t}."),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(c: CommonFields) -> Result<GenParams, ApiError> {
        common(&c, None, 100)
    }

    fn param_of(r: Result<GenParams, ApiError>) -> Option<String> {
        r.err().and_then(|e| e.param)
    }

    #[test]
    fn out_of_range_fields_name_their_param() {
        let nan = CommonFields {
            temperature: Some(f64::NAN),
            ..Default::default()
        };
        assert_eq!(param_of(check(nan)), Some("temperature".into()));
        let neg = CommonFields {
            temperature: Some(-0.5),
            ..Default::default()
        };
        assert_eq!(param_of(check(neg)), Some("temperature".into()));
        for top_p in [0.0, 1.5] {
            assert_eq!(
                param_of(check(CommonFields {
                    top_p: Some(top_p),
                    ..Default::default()
                })),
                Some("top_p".into())
            );
        }
        for n in [0, 17] {
            assert_eq!(
                param_of(check(CommonFields {
                    n: Some(n),
                    ..Default::default()
                })),
                Some("n".into())
            );
        }
        let stops = Stop::Many((0..5).map(|i| i.to_string()).collect());
        assert_eq!(
            param_of(check(CommonFields {
                stop: Some(stops),
                ..Default::default()
            })),
            Some("stop".into())
        );
        assert_eq!(
            param_of(common(&CommonFields::default(), Some(0), 100)),
            Some("max_tokens".into())
        );
    }

    #[test]
    fn logit_bias_keys_must_be_token_ids_in_the_vocabulary() {
        let bias = |k: &str| CommonFields {
            logit_bias: Some([(k.to_string(), 1.0)].into()),
            ..Default::default()
        };
        assert_eq!(param_of(check(bias("abc"))), Some("logit_bias".into()));
        assert_eq!(param_of(check(bias("100"))), Some("logit_bias".into()));
        assert_eq!(
            check(bias("99")).map(|p| p.sampling.logit_bias).ok(),
            Some(vec![(99, 1.0)])
        );
    }

    #[test]
    fn given_fields_override_the_defaults() {
        let c = CommonFields {
            temperature: Some(0.0),
            top_k: Some(5),
            seed: Some(7),
            stop: Some(Stop::One("\n".into())),
            n: Some(2),
            ..Default::default()
        };
        let p = check(c).ok();
        let p = p.as_ref();
        assert_eq!(
            p.map(|p| (p.sampling.temperature, p.sampling.top_k, p.sampling.seed)),
            Some((0.0, 5, Some(7)))
        );
        assert_eq!(
            p.map(|p| (p.stop.clone(), p.n)),
            Some((vec!["\n".to_string()], 2))
        );
    }

    #[test]
    fn top_logprobs_needs_logprobs() {
        assert!(chat_logprobs(None, Some(2)).is_err());
        assert!(chat_logprobs(Some(true), Some(21)).is_err());
        assert_eq!(chat_logprobs(Some(true), Some(2)).ok(), Some(Some(2)));
        assert_eq!(chat_logprobs(Some(false), None).ok(), Some(None));
        assert!(completion_logprobs(Some(6)).is_err());
    }
}
