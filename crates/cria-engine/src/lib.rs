//! cria-engine
