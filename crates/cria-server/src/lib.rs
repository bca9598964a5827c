//! cria-server
