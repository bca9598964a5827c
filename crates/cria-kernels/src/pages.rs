//! Weight memory on 2 MiB pages.
//!
//! Decode streams every weight once per token; read through 4 KiB pages (a `Vec`, or the GGUF's file map)
//! the one-token kernels ran 9-27% slower per CPU-second than from a 2 MiB-aligned anonymous mapping advised
//! `MADV_HUGEPAGE` (tests/page_ab.rs, one thread, Zen 4). With THP in `madvise` mode (the common default)
//! only advised memory gets huge pages, so the loader copies the weights it reads in file layout into a
//! [`HugeBytes`] and allocates repacked copies through [`advise_huge_pages`].

use std::ops::{Deref, DerefMut};

/// The huge page size advised for (x86-64 and aarch64 Linux with 4 KiB base pages).
pub const HUGE_PAGE: usize = 2 << 20;

/// A zero-filled, 2 MiB-aligned anonymous mapping advised for transparent huge pages (on Linux; elsewhere
/// plain anonymous memory). Pages are allocated on first write, so ranges never written cost no memory.
pub struct HugeBytes {
    base: *mut libc::c_void,
    map_len: usize,
    ptr: *mut u8,
    len: usize,
}

// SAFETY: HugeBytes owns its mapping exclusively (as a Vec owns its buffer); shared access is read-only.
unsafe impl Send for HugeBytes {}
// SAFETY: as above: `&HugeBytes` gives only `&[u8]`.
unsafe impl Sync for HugeBytes {}

impl HugeBytes {
    /// `len` zero bytes; an error if the mapping fails. A refused advice only means no huge pages.
    pub fn zeroed(len: usize) -> std::io::Result<HugeBytes> {
        let map_len = len
            .checked_add(HUGE_PAGE)
            .ok_or_else(|| std::io::Error::other("HugeBytes: length overflows"))?;
        // SAFETY: a fresh private anonymous mapping (no file, no fixed address); checked against MAP_FAILED.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                map_len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(std::io::Error::last_os_error());
        }
        let skip = (HUGE_PAGE - base as usize % HUGE_PAGE) % HUGE_PAGE;
        // SAFETY: skip < HUGE_PAGE, so ptr..ptr + len lies inside the map_len = len + HUGE_PAGE bytes mapped.
        let ptr = unsafe { base.cast::<u8>().add(skip) };
        advise(ptr, len);
        Ok(HugeBytes {
            base,
            map_len,
            ptr,
            len,
        })
    }
}

impl Deref for HugeBytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        // SAFETY: ptr..ptr + len is mapped readable for self's lifetime (zero-filled until written).
        unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
    }
}

impl DerefMut for HugeBytes {
    fn deref_mut(&mut self) -> &mut [u8] {
        // SAFETY: as in deref, mapped writable, and `&mut self` makes this the only borrow.
        unsafe { std::slice::from_raw_parts_mut(self.ptr, self.len) }
    }
}

impl Drop for HugeBytes {
    fn drop(&mut self) {
        // SAFETY: base / map_len are the mapping `zeroed` made; unmapped once, no borrow outlives self.
        unsafe { libc::munmap(self.base, self.map_len) };
    }
}

impl std::fmt::Debug for HugeBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HugeBytes").field("len", &self.len).finish()
    }
}

/// Advises the whole 2 MiB pages inside `buf`'s spare capacity for transparent huge pages, so that the
/// writes that fill it fault in huge pages (the advice changes no byte; memory already resident stays as it
/// is). For a `Vec` about to be filled: `Vec::with_capacity(n)`, then this, then the writes.
pub fn advise_huge_pages<T>(buf: &mut Vec<T>) {
    let spare = buf.spare_capacity_mut();
    let (start, len) = (spare.as_mut_ptr() as usize, std::mem::size_of_val(spare));
    let first = start.next_multiple_of(HUGE_PAGE);
    let end = (start + len) / HUGE_PAGE * HUGE_PAGE;
    if first < end {
        advise(first as *mut u8, end - first);
    }
}

/// `madvise(MADV_HUGEPAGE)` on a page-aligned range this process owns; failures (no THP, an old kernel,
/// an emulator) are ignored: the memory works the same on small pages.
fn advise(ptr: *mut u8, len: usize) {
    #[cfg(target_os = "linux")]
    // SAFETY: the callers pass a page-aligned range inside memory they own; MADV_HUGEPAGE changes no byte.
    unsafe {
        libc::madvise(ptr.cast(), len, libc::MADV_HUGEPAGE);
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (ptr, len);
}

/// kB of `AnonHugePages` in the mappings of this process that overlap `bytes` (Linux; 0 elsewhere): whether
/// the advice was granted.
pub fn huge_kb(bytes: &[u8]) -> u64 {
    let (start, len) = (bytes.as_ptr() as usize, bytes.len());
    let text = std::fs::read_to_string("/proc/self/smaps").unwrap_or_default();
    let (mut inside, mut kb) = (false, 0);
    for line in text.lines() {
        let head = line.split_whitespace().next().unwrap_or("");
        if let Some((a, b)) = head.split_once('-')
            && let (Ok(a), Ok(b)) = (usize::from_str_radix(a, 16), usize::from_str_radix(b, 16))
        {
            inside = a < start + len && b > start;
        } else if inside && let Some(v) = line.strip_prefix("AnonHugePages:") {
            kb += v
                .trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<u64>()
                .unwrap_or(0);
        }
    }
    kb
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn huge_bytes_hold_what_is_written_and_start_zeroed() {
        let len = 3 * HUGE_PAGE + 12345;
        let mut b = HugeBytes::zeroed(len).expect("map");
        assert_eq!(b.len(), len);
        assert_eq!(b.as_ptr() as usize % HUGE_PAGE, 0);
        assert!(b.iter().all(|&v| v == 0));
        for (i, v) in b.iter_mut().enumerate() {
            *v = (i * 7 % 251) as u8;
        }
        assert!(b.iter().enumerate().all(|(i, &v)| v == (i * 7 % 251) as u8));
    }

    #[test]
    fn advised_vec_keeps_its_bytes() {
        let mut v = Vec::with_capacity(5 * HUGE_PAGE);
        v.extend_from_slice(&[1, 2, 3]);
        advise_huge_pages(&mut v);
        v.resize(5 * HUGE_PAGE, 9);
        assert_eq!(&v[..4], &[1, 2, 3, 9]);
        assert!(v[3..].iter().all(|&x| x == 9));
    }
}
