//! cria-sampling
