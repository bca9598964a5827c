//! cria-kernels
