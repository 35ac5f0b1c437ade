//! The memory allocator of the binary: the system allocator, plus a bump arena that
//! short commands (`load`, `unload`, `exec`, …) switch on.
//!
//! Those commands allocate about a megabyte in thousands of small blocks and exit a few
//! milliseconds later; the system allocator's bookkeeping (splitting, merging, free
//! lists) was about a third of their instructions. Once [`enable`] is called, blocks
//! come from one reserved region by bumping a pointer, freeing them does nothing, and a
//! block that is the last one handed out grows in place. Memory is never reused, which
//! is right for a process that exits at once and wrong for a long-lived one: the
//! daemon supervisor and the plugin commands never switch it on. Blocks allocated
//! before the switch, or that do not fit in what is left of the region, are the system
//! allocator's, and freeing one goes back to it.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

/// The size of the region reserved (address space only: pages are committed when first
/// touched).
const REGION: usize = 256 << 20;
/// Blocks larger than this go to the system allocator.
const LARGE: usize = 1 << 20;
/// How much of the region is committed up front, in one system call instead of one
/// page fault per page.
const PREFAULT: usize = 1 << 20;

/// Start of the region (0: not enabled).
static BASE: AtomicUsize = AtomicUsize::new(0);
/// The next free byte.
static NEXT: AtomicUsize = AtomicUsize::new(0);
/// Where the last block handed out starts (it may grow in place).
static LAST: AtomicUsize = AtomicUsize::new(0);

/// The allocator of the binary (see the module documentation).
pub struct Allocator;

/// Switches the arena on for the rest of the process. Call it only from a command that
/// ends soon; calling it twice does nothing. When the region cannot be reserved, the
/// system allocator simply goes on.
pub fn enable() {
    if BASE.load(Ordering::Acquire) != 0 {
        return;
    }
    use nix::sys::mman::{MapFlags, ProtFlags, mmap_anonymous};
    let length = std::num::NonZeroUsize::new(REGION).expect("non-zero");
    // SAFETY: a fresh anonymous mapping, owned by this module for the rest of the process.
    let Ok(region) = (unsafe {
        mmap_anonymous(
            None,
            length,
            ProtFlags::PROT_READ | ProtFlags::PROT_WRITE,
            MapFlags::MAP_PRIVATE | MapFlags::MAP_NORESERVE,
        )
    }) else {
        return;
    };
    let base = region.as_ptr() as usize;
    // Commit the first pages at once (Linux 5.14+; harmless failure elsewhere).
    // SAFETY: the range lies inside the mapping just made.
    unsafe {
        nix::libc::madvise(region.as_ptr(), PREFAULT, 23 /* MADV_POPULATE_WRITE */);
    }
    NEXT.store(base, Ordering::Release);
    BASE.store(base, Ordering::Release);
}

fn in_region(address: usize) -> bool {
    let base = BASE.load(Ordering::Acquire);
    base != 0 && address >= base && address < base + REGION
}

/// A block from the region, or `None` when it does not fit.
fn bump(layout: Layout) -> Option<*mut u8> {
    let base = BASE.load(Ordering::Acquire);
    if base == 0 || layout.size() > LARGE {
        return None;
    }
    let end = base + REGION;
    let mut next = NEXT.load(Ordering::Relaxed);
    loop {
        let start = next.checked_add(layout.align() - 1)? & !(layout.align() - 1);
        let stop = start.checked_add(layout.size().max(1))?;
        if stop > end {
            return None;
        }
        match NEXT.compare_exchange_weak(next, stop, Ordering::AcqRel, Ordering::Relaxed) {
            Ok(_) => {
                LAST.store(start, Ordering::Release);
                return Some(start as *mut u8);
            }
            Err(current) => next = current,
        }
    }
}

// SAFETY: blocks never overlap (the bump pointer only moves forward under a CAS), are
// aligned as asked, and blocks outside the region are handled by `System` alone.
unsafe impl GlobalAlloc for Allocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        match bump(layout) {
            Some(block) => block,
            // SAFETY: forwarded as is.
            None => unsafe { System.alloc(layout) },
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if !in_region(ptr as usize) {
            // SAFETY: a block of the system allocator, forwarded as is.
            unsafe { System.dealloc(ptr, layout) }
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let address = ptr as usize;
        if !in_region(address) {
            // SAFETY: a block of the system allocator, forwarded as is.
            return unsafe { System.realloc(ptr, layout, new_size) };
        }
        // The last block handed out grows (or shrinks) in place when the region has room.
        if LAST.load(Ordering::Acquire) == address && new_size <= LARGE {
            let old_end = address + layout.size().max(1);
            let new_end = address + new_size.max(1);
            let end = BASE.load(Ordering::Acquire) + REGION;
            if new_end <= end
                && NEXT
                    .compare_exchange(old_end, new_end, Ordering::AcqRel, Ordering::Relaxed)
                    .is_ok()
            {
                return ptr;
            }
        }
        if new_size <= layout.size() {
            return ptr;
        }
        // SAFETY: the new layout has the alignment of the old one and a non-zero size.
        let block =
            unsafe { self.alloc(Layout::from_size_align_unchecked(new_size, layout.align())) };
        if !block.is_null() {
            // SAFETY: both blocks are valid for the old size and do not overlap.
            unsafe { std::ptr::copy_nonoverlapping(ptr, block, layout.size()) };
        }
        block
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_are_aligned_distinct_and_grow() {
        // Tests share the process: exercise the arena through an explicit allocator.
        enable();
        let allocator = Allocator;
        unsafe {
            let a = allocator.alloc(Layout::from_size_align(3, 1).unwrap());
            let b = allocator.alloc(Layout::from_size_align(16, 16).unwrap());
            assert!(in_region(a as usize) && in_region(b as usize));
            assert_eq!(b as usize % 16, 0);
            assert!(b as usize >= a as usize + 3);
            b.write_bytes(7, 16);
            // The last block grows in place.
            let grown = allocator.realloc(b, Layout::from_size_align(16, 16).unwrap(), 64);
            assert_eq!(grown, b);
            assert_eq!(*grown.add(15), 7);
            // An older block moves, keeping its content.
            a.write_bytes(5, 3);
            let moved = allocator.realloc(a, Layout::from_size_align(3, 1).unwrap(), 100);
            assert_ne!(moved, a);
            assert_eq!(std::slice::from_raw_parts(moved, 3), [5, 5, 5]);
            // Large blocks are the system's.
            let large = Layout::from_size_align(LARGE + 1, 8).unwrap();
            let big = allocator.alloc(large);
            assert!(!in_region(big as usize));
            allocator.dealloc(big, large);
        }
    }
}
