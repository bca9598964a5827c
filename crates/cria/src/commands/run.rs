//! `cria run`: answer one prompt, streaming the text to stdout.

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use cria_tokenizer::{ChatMessage, Tokenizer};

use super::generate::{SamplingArgs, Session};
use super::load::{ModelArgs, load_model};
use super::settings;
use super::template::{TemplateArg, chat_template};

/// Arguments of `cria run`.
#[derive(clap::Args)]
pub struct Args {
    /// The prompt (or use -p).
    #[arg(value_name = "PROMPT", conflicts_with = "prompt_flag")]
    prompt: Option<String>,
    /// The prompt.
    #[arg(short = 'p', long = "prompt", value_name = "PROMPT")]
    prompt_flag: Option<String>,
    #[command(flatten)]
    model: ModelArgs,
    #[command(flatten)]
    sampling: SamplingArgs,
    /// Feed the prompt as it is, without the chat template.
    #[arg(long)]
    raw: bool,
    /// A built-in chat template (chatml, llama2, alpaca, vicuna, gemma) or a Jinja file, instead of the model's.
    #[arg(long)]
    chat_template: Option<TemplateArg>,
}

/// Runs `cria run`.
pub fn run(args: Args) -> anyhow::Result<()> {
    let Some(prompt) = args.prompt.or(args.prompt_flag) else {
        return settings::refuse("no prompt: give one as an argument or with -p");
    };
    let threads = args.model.check()?;
    let sampling = args.sampling.params()?;
    let model = load_model(&args.model)?;
    let ctx = args.sampling.ctx(&model);
    let tokenizer = Arc::new(Tokenizer::from_gguf(model.gguf())?);
    let tokens = if args.raw {
        tokenizer.encode(&prompt, true, false)
    } else {
        let template = chat_template(&tokenizer, &model.spec().arch, args.chat_template.as_ref())?;
        let messages = [ChatMessage {
            role: "user".into(),
            content: prompt,
        }];
        tokenizer.encode(&template.render(&messages, true)?, true, true)
    };
    let session = Session::new(model, tokenizer, threads, ctx, args.model.device)?;
    let stdout = std::io::stdout();
    let stats = session.generate(
        tokens,
        args.sampling.max_tokens,
        &sampling,
        &AtomicBool::new(false),
        |text| {
            let mut out = stdout.lock();
            // A closed stdout (e.g. piped into `head`) ends the output, not the process with a panic.
            let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
        },
    )?;
    println!();
    stats.report();
    Ok(())
}
