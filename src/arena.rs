//! The memory allocator of the binary: the system allocator, plus an arena that short
//! commands (`load`, `unload`, `exec`, …) switch on.
//!
//! Those commands make thousands of small allocations and exit a few milliseconds
//! later; the system allocator's bookkeeping (splitting, merging, consolidating) was
//! about a third of their instructions. Once [`enable`] is called, blocks come from
//! one reserved region: small ones (up to 64 KiB) in power-of-two size classes, each
//! class with a free list so that memory is reused (touching fresh pages costs more
//! than the allocation itself), larger ones by bumping a pointer (the last of those
//! grows in place). Blocks allocated before the switch, or that do not fit in what is
//! left of the region, are the system allocator's, and freeing one goes back to it.
//!
//! Large blocks are never given back, which suits a process that exits at once and not
//! a long-lived one: the daemon supervisor and the plugin commands never switch the
//! arena on.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// The size of the region reserved (address space only: pages are committed when first
/// touched).
const REGION: usize = 256 << 20;
/// Blocks larger than this go to the system allocator.
const LARGE: usize = 1 << 20;
/// How much of the region is committed up front, in one system call instead of one
/// page fault per page (about what a load of 100 layers uses).
const PREFAULT: usize = 384 << 10;
/// Size classes: 16, 32, …, 64 KiB.
const CLASSES: usize = 13;
const SMALLEST_SHIFT: u32 = 4;
/// The alignment of every block of a size class.
const CLASS_ALIGN: usize = 16;

/// Start of the region (0: not enabled).
static BASE: AtomicUsize = AtomicUsize::new(0);
/// The next free byte.
static NEXT: AtomicUsize = AtomicUsize::new(0);
/// Where the last large block handed out starts (it may grow in place).
static LAST: AtomicUsize = AtomicUsize::new(0);
/// The free list of each size class: the address of the first free block (0: empty);
/// each free block holds the address of the next one.
static FREE: [AtomicUsize; CLASSES] = [const { AtomicUsize::new(0) }; CLASSES];
/// Guards the free lists (uncontended in practice: these commands are single-threaded).
static LOCK: AtomicBool = AtomicBool::new(false);

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
        nix::libc::madvise(region.as_ptr(), PREFAULT, nix::libc::MADV_POPULATE_WRITE);
    }
    NEXT.store(base, Ordering::Release);
    BASE.store(base, Ordering::Release);
}

fn in_region(address: usize) -> bool {
    let base = BASE.load(Ordering::Acquire);
    base != 0 && address >= base && address < base + REGION
}

/// The size class of `layout` and its block size, for small blocks.
fn class_of(layout: Layout) -> Option<(usize, usize)> {
    if layout.align() > CLASS_ALIGN || layout.size() > 1 << (SMALLEST_SHIFT + CLASSES as u32 - 1) {
        return None;
    }
    let size = layout.size().max(1 << SMALLEST_SHIFT).next_power_of_two();
    Some(((size.trailing_zeros() - SMALLEST_SHIFT) as usize, size))
}

fn lock() {
    while LOCK
        .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
        .is_err()
    {
        std::hint::spin_loop();
    }
}

fn unlock() {
    LOCK.store(false, Ordering::Release);
}

/// `size` bytes aligned to `align` from the untouched part of the region.
fn bump(size: usize, align: usize) -> Option<usize> {
    let base = BASE.load(Ordering::Acquire);
    if base == 0 {
        return None;
    }
    let end = base + REGION;
    let mut next = NEXT.load(Ordering::Relaxed);
    loop {
        let start = next.checked_add(align - 1)? & !(align - 1);
        let stop = start.checked_add(size.max(1))?;
        if stop > end {
            return None;
        }
        match NEXT.compare_exchange_weak(next, stop, Ordering::AcqRel, Ordering::Relaxed) {
            Ok(_) => return Some(start),
            Err(current) => next = current,
        }
    }
}

/// A block for `layout` from the region, or `None` (not enabled, too large, full).
fn arena_alloc(layout: Layout) -> Option<*mut u8> {
    if BASE.load(Ordering::Acquire) == 0 {
        return None;
    }
    if let Some((class, size)) = class_of(layout) {
        lock();
        let head = FREE[class].load(Ordering::Relaxed);
        if head != 0 {
            // SAFETY: a free block of this class holds the address of the next one.
            let next = unsafe { (head as *const usize).read() };
            FREE[class].store(next, Ordering::Relaxed);
        }
        unlock();
        if head != 0 {
            return Some(head as *mut u8);
        }
        return bump(size, CLASS_ALIGN).map(|block| block as *mut u8);
    }
    if layout.size() > LARGE {
        return None;
    }
    let block = bump(layout.size(), layout.align())?;
    LAST.store(block, Ordering::Release);
    Some(block as *mut u8)
}

/// Gives a block of the region back (small blocks go to their free list).
fn arena_free(address: usize, layout: Layout) {
    if let Some((class, _)) = class_of(layout) {
        lock();
        // SAFETY: the block is at least 16 bytes, aligned, and no longer in use.
        unsafe { (address as *mut usize).write(FREE[class].load(Ordering::Relaxed)) };
        FREE[class].store(address, Ordering::Relaxed);
        unlock();
    }
}

// SAFETY: blocks never overlap (the bump pointer only moves forward under a CAS, and a
// small block is on at most one free list, only while it is free), are aligned as
// asked, and blocks outside the region are handled by `System` alone.
unsafe impl GlobalAlloc for Allocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        match arena_alloc(layout) {
            Some(block) => block,
            // SAFETY: forwarded as is.
            None => unsafe { System.alloc(layout) },
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if in_region(ptr as usize) {
            arena_free(ptr as usize, layout);
        } else {
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
        // SAFETY: the alignment of a valid layout with a size that realloc accepts.
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        match (class_of(layout), class_of(new_layout)) {
            // Same class: the block already has room.
            (Some((old, _)), Some((new, _))) if old == new => return ptr,
            // The last large block grows (or shrinks) in place when the region has room.
            (None, None) if LAST.load(Ordering::Acquire) == address && new_size <= LARGE => {
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
            _ => {}
        }
        // SAFETY: `new_layout` is valid (see above).
        let block = unsafe { self.alloc(new_layout) };
        if !block.is_null() {
            // SAFETY: both blocks are valid for the smaller size and do not overlap.
            unsafe {
                std::ptr::copy_nonoverlapping(ptr, block, layout.size().min(new_size));
                self.dealloc(ptr, layout);
            }
        }
        block
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_are_aligned_distinct_reused_and_grow() {
        // The test binary's own allocator is the system one: the arena is exercised
        // through an explicit `Allocator`.
        enable();
        let allocator = Allocator;
        let small = |size: usize, align: usize| Layout::from_size_align(size, align).unwrap();
        unsafe {
            let a = allocator.alloc(small(3, 1));
            let b = allocator.alloc(small(16, 16));
            assert!(in_region(a as usize) && in_region(b as usize));
            assert_eq!(b as usize % 16, 0);
            assert_ne!(a, b);
            b.write_bytes(7, 16);
            // Growing within the class keeps the block; beyond, the content moves.
            a.write_bytes(5, 3);
            assert_eq!(allocator.realloc(a, small(3, 1), 16), a);
            let moved = allocator.realloc(a, small(16, 1), 100);
            assert_ne!(moved, a);
            assert_eq!(std::slice::from_raw_parts(moved, 3), [5, 5, 5]);
            assert_eq!(*b.add(15), 7, "other blocks are untouched");
            // A freed block is handed out again for its class.
            allocator.dealloc(b, small(16, 16));
            let again = allocator.alloc(small(10, 8));
            assert_eq!(again, b);
            // Large blocks: the last one grows in place.
            let big = allocator.alloc(small(100_000, 8));
            assert!(in_region(big as usize));
            big.write_bytes(9, 100_000);
            let grown = allocator.realloc(big, small(100_000, 8), 200_000);
            assert_eq!(grown, big);
            assert_eq!(*grown.add(99_999), 9);
            // Huge blocks are the system's.
            let huge = small(LARGE + 1, 8);
            let system = allocator.alloc(huge);
            assert!(!in_region(system as usize));
            allocator.dealloc(system, huge);
        }
    }

    #[test]
    fn classes_round_up_to_powers_of_two() {
        let class =
            |size: usize, align: usize| class_of(Layout::from_size_align(size, align).unwrap());
        assert_eq!(class(0, 1), Some((0, 16)));
        assert_eq!(class(16, 16), Some((0, 16)));
        assert_eq!(class(17, 8), Some((1, 32)));
        assert_eq!(class(4096, 8), Some((8, 4096)));
        assert_eq!(class(65_536, 8), Some((12, 65_536)));
        assert_eq!(class(65_537, 8), None);
        assert_eq!(class(64, 32), None, "stronger alignment: not a class block");
    }
}
