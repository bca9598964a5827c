//! One module per subcommand: its clap arguments and its `run`.

pub mod bench;
pub mod chat;
pub mod devices;
pub mod embed;
pub mod eval;
mod generate;
pub mod inspect;
mod load;
pub mod perplexity;
pub mod ps;
pub mod pull;
pub mod run;
pub mod serve;
pub mod settings;
pub mod store;
mod template;
pub mod tokenize;
