//! A persistent pool of device buffers: a step's activations, scratch and kernel parameters come back to it
//! when their last handle drops, and the next step of the same shape takes them again instead of allocating.
//! Sizes are rounded up to classes (at most 1/8 larger) so that steps of nearby lengths share buffers.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError, Weak};

/// Free buffers kept at most (bytes): beyond it a returned buffer is freed.
const MAX_POOLED_BYTES: u64 = 512 << 20;

/// Free buffers by (usage, size in bytes).
#[derive(Default)]
pub(crate) struct BufferPool {
    free: Mutex<Free>,
}

#[derive(Default)]
struct Free {
    by_key: HashMap<(u32, u64), Vec<wgpu::Buffer>>,
    bytes: u64,
}

/// Held by every clone of a pooled [`crate::GpuBuffer`]; the last one's drop gives the buffer back.
pub(crate) struct Lease {
    buf: wgpu::Buffer,
    pool: Weak<BufferPool>,
}

impl std::fmt::Debug for Lease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Lease")
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if let Some(pool) = self.pool.upgrade() {
            pool.put(self.buf.clone());
        }
    }
}

/// `bytes` rounded up to its size class: a multiple of an eighth of its power of two (at least 256 bytes).
pub(crate) fn size_class(bytes: u64) -> u64 {
    let bytes = bytes.max(256);
    let step = (1u64 << (63 - bytes.leading_zeros())) / 8;
    bytes.div_ceil(step) * step
}

impl BufferPool {
    /// A buffer of `size_class(bytes)` bytes (`bytes` where the class would pass the binding limit `max`)
    /// with `usage`, and whether it was reused (its contents are then whatever its last user left).
    pub(crate) fn take(
        self: &Arc<Self>,
        device: &wgpu::Device,
        usage: wgpu::BufferUsages,
        (bytes, max): (u64, u64),
    ) -> (wgpu::Buffer, Arc<Lease>, bool) {
        let size = size_class(bytes).min(max).max(bytes);
        let reused = {
            let mut free = self.free.lock().unwrap_or_else(PoisonError::into_inner);
            let buf = free
                .by_key
                .get_mut(&(usage.bits(), size))
                .and_then(Vec::pop);
            if buf.is_some() {
                free.bytes -= size;
            }
            buf
        };
        let was_reused = reused.is_some();
        let buf = reused.unwrap_or_else(|| {
            device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("pooled"),
                size,
                usage,
                mapped_at_creation: false,
            })
        });
        let lease = Arc::new(Lease {
            buf: buf.clone(),
            pool: Arc::downgrade(self),
        });
        (buf, lease, was_reused)
    }

    fn put(&self, buf: wgpu::Buffer) {
        let mut free = self.free.lock().unwrap_or_else(PoisonError::into_inner);
        if free.bytes + buf.size() > MAX_POOLED_BYTES {
            return;
        }
        free.bytes += buf.size();
        free.by_key
            .entry((buf.usage().bits(), buf.size()))
            .or_default()
            .push(buf);
    }

    /// Free buffers held now (tests).
    pub(crate) fn free_buffers(&self) -> usize {
        let free = self.free.lock().unwrap_or_else(PoisonError::into_inner);
        free.by_key.values().map(Vec::len).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::size_class;

    #[test]
    fn size_classes_round_up_by_at_most_an_eighth() {
        assert_eq!(size_class(1), 256);
        assert_eq!(size_class(256), 256);
        assert_eq!(size_class(257), 288);
        assert_eq!(size_class(4096), 4096);
        assert_eq!(size_class(4097), 4608);
        for bytes in [300u64, 1000, 12_345, 1 << 20, (1 << 20) + 1, 99_999_999] {
            let c = size_class(bytes);
            assert!(c >= bytes && c <= bytes + bytes / 8 + 1, "{bytes} -> {c}");
            assert_eq!(size_class(c), c, "a class is its own class");
        }
    }
}
