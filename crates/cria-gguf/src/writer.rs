//! `GgufWriter`: builds GGUF v3 files that `GgufFile` reads back exactly.
