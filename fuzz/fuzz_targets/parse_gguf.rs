//! Fuzzes the GGUF parser: any bytes must give a file or an error, never a panic, an abort or
//! a huge allocation (run with `-malloc_limit_mb` to catch the last).
#![no_main]

use cria_gguf::{GgufFile, GgufWriter};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(file) = GgufFile::from_bytes(data.to_vec()) else {
        return;
    };
    // Whatever was accepted must be self-consistent and usable.
    for t in file.tensors() {
        assert_eq!(file.tensor_data(t).len() as u64, t.n_bytes);
        assert!(file.tensor(&t.name).is_some());
    }
    for (key, value) in file.metadata() {
        // The very entry (values may hold NaN, which equals nothing).
        assert!(file.get(key).is_some_and(|v| std::ptr::eq(v, value)));
    }
    let _ = file.architecture();
    // And it must survive a rewrite: write → read gives the same tensors (laid out afresh,
    // so offsets may differ) and metadata.
    if let Ok(bytes) = GgufWriter::from_file(&file).and_then(|w| w.to_bytes()) {
        let again = GgufFile::from_bytes(bytes).expect("rewritten file reads back");
        assert_eq!(again.tensors().len(), file.tensors().len());
        for (a, b) in again.tensors().iter().zip(file.tensors()) {
            assert_eq!(
                (&a.name, a.ty, &a.shape, a.n_bytes),
                (&b.name, b.ty, &b.shape, b.n_bytes)
            );
            assert_eq!(again.tensor_data(a), file.tensor_data(b));
        }
        assert_eq!(again.metadata().len(), file.metadata().len());
    }
});
