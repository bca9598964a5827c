//! A writer that refuses to grow past a limit.

use std::io;

pub(super) struct LimitedWriter {
    buf: Vec<u8>,
    limit: usize,
    exceeded: bool,
}

impl LimitedWriter {
    pub fn new(limit: usize) -> Self {
        LimitedWriter {
            buf: Vec::new(),
            limit,
            exceeded: false,
        }
    }

    pub fn exceeded(&self) -> bool {
        self.exceeded
    }

    /// minijinja writes whole UTF-8 strings, so the buffer is valid UTF-8.
    pub fn into_string(self) -> String {
        String::from_utf8_lossy(&self.buf).into_owned()
    }
}

impl io::Write for LimitedWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if self.buf.len() + data.len() > self.limit {
            self.exceeded = true;
            return Err(io::Error::other("template output limit reached"));
        }
        self.buf.extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
