//! One module per subcommand: its clap arguments and its `run`.

pub mod inspect;
pub mod pull;
pub mod tokenize;
