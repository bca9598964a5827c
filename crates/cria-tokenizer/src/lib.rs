//! cria-tokenizer
