//! `cria chat`: an interactive multi-turn conversation with line editing and history.

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Context;
use cria_tokenizer::{ChatMessage, Tokenizer};
use rustyline::error::ReadlineError;

use super::generate::{SamplingArgs, Session};
use super::load::{ModelArgs, load_model};
use super::template::{TemplateArg, chat_template};

/// Arguments of `cria chat`.
#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    model: ModelArgs,
    #[command(flatten)]
    sampling: SamplingArgs,
    /// A system message that opens the conversation.
    #[arg(long)]
    system: Option<String>,
    /// A built-in chat template (chatml, llama2, alpaca, vicuna, gemma) or a Jinja file, instead of the model's.
    #[arg(long)]
    chat_template: Option<TemplateArg>,
}

const HELP: &str =
    "/reset forgets the conversation, /exit (or Ctrl-D) leaves, Ctrl-C stops a reply";

/// Runs `cria chat`.
pub fn run(args: Args) -> anyhow::Result<()> {
    let threads = args.model.check()?;
    let sampling = args.sampling.params()?;
    let model = load_model(&args.model)?;
    let ctx = args.sampling.ctx(&model);
    let tokenizer = Arc::new(Tokenizer::from_gguf(model.gguf())?);
    let template = chat_template(&tokenizer, &model.spec().arch, args.chat_template.as_ref())?;
    let session = Session::new(model, tokenizer, threads, ctx, args.model.device)?;
    let interrupted = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&interrupted);
    ctrlc::set_handler(move || flag.store(true, Ordering::Relaxed))
        .context("installing the Ctrl-C handler")?;
    let mut editor = rustyline::DefaultEditor::new()?;
    let opening: Vec<ChatMessage> = args
        .system
        .iter()
        .map(|s| ChatMessage {
            role: "system".into(),
            content: s.clone(),
        })
        .collect();
    let mut messages = opening.clone();
    eprintln!("{HELP}");
    loop {
        let line = match editor.readline("> ") {
            Ok(line) => line,
            Err(ReadlineError::Interrupted) => continue,
            Err(ReadlineError::Eof) => break,
            Err(e) => return Err(e.into()),
        };
        let line = line.trim();
        match line {
            "" => continue,
            "/exit" | "/quit" => break,
            "/reset" => {
                // The engine's prompt cache may keep the old turns' KV; the next prompt just will not match it.
                messages = opening.clone();
                eprintln!("(conversation reset)");
                continue;
            }
            "/help" => {
                eprintln!("{HELP}");
                continue;
            }
            _ => {}
        }
        let _ = editor.add_history_entry(line);
        messages.push(ChatMessage {
            role: "user".into(),
            content: line.to_string(),
        });
        let prompt = session
            .tokenizer
            .encode(&template.render(&messages, true)?, true, true);
        interrupted.store(false, Ordering::Relaxed);
        let mut reply = String::new();
        let result = session.generate(
            prompt,
            args.sampling.max_tokens,
            &sampling,
            &interrupted,
            |text| {
                reply.push_str(text);
                let mut out = std::io::stdout().lock();
                let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
            },
        );
        println!();
        match result {
            Ok(stats) => stats.report(),
            Err(e) => {
                // A full context or a bad turn ends the turn, not the chat.
                eprintln!("error: {e:#}");
                messages.pop();
                continue;
            }
        }
        messages.push(ChatMessage {
            role: "assistant".into(),
            content: reply,
        });
    }
    Ok(())
}
