//! The process's memory: transparent huge pages are off, and SQLite's own allocations (page
//! caches, the temporary b-trees a query builds for `IN (…)` or `ORDER BY`, statement memory) go
//! to mimalloc, the allocator of the rest of the process. SQLite otherwise calls glibc's
//! `malloc`: every temporary b-tree then took a fresh heap block that glibc gave back to the
//! kernel when it was freed (`madvise`, a TLB shootdown across both cores, then page faults to get
//! it again) — a third of `ListProductsAsEndUser`'s CPU (docs/benchmarks.md). This is the
//! crate's only `unsafe` code: the C interface SQLite offers for the purpose,
//! `sqlite3_config(SQLITE_CONFIG_MALLOC, …)`.
#![allow(unsafe_code)]

use std::ffi::{c_int, c_void};
use std::sync::Once;

use libmimalloc_sys::{mi_free, mi_malloc, mi_realloc, mi_usable_size};
use rusqlite::ffi;

/// SQLite's alignment guarantee for every allocation.
const ALIGN: c_int = 8;

unsafe extern "C" fn x_malloc(size: c_int) -> *mut c_void {
    // SAFETY: mi_malloc accepts any size; SQLite never asks for a negative one.
    unsafe { mi_malloc(usize::try_from(size).unwrap_or(0)) }
}

unsafe extern "C" fn x_free(block: *mut c_void) {
    // SAFETY: SQLite frees only what x_malloc/x_realloc returned (or null).
    unsafe { mi_free(block) }
}

unsafe extern "C" fn x_realloc(block: *mut c_void, size: c_int) -> *mut c_void {
    // SAFETY: as above; mi_realloc keeps the contents up to the smaller size.
    unsafe { mi_realloc(block, usize::try_from(size).unwrap_or(0)) }
}

unsafe extern "C" fn x_size(block: *mut c_void) -> c_int {
    // SAFETY: `block` came from x_malloc/x_realloc; SQLite's allocations stay far below 2 GiB.
    c_int::try_from(unsafe { mi_usable_size(block) }).unwrap_or(c_int::MAX)
}

extern "C" fn x_roundup(size: c_int) -> c_int {
    size.saturating_add(ALIGN - 1) & !(ALIGN - 1)
}

extern "C" fn x_init(_: *mut c_void) -> c_int {
    ffi::SQLITE_OK
}

extern "C" fn x_shutdown(_: *mut c_void) {}

/// Sets the process up; call first thing in `main`.
///
/// Transparent huge pages go off: mimalloc reserves its arenas as large aligned mappings, which a
/// kernel with THP `always` backs with 2 MiB pages, so a few touched bytes cost 2 MiB of RSS (the
/// idle server held 40 MB instead of 22). The setting is inherited by Terraform's processes; their
/// runs are short and measured the same (docs/benchmarks.md).
pub fn init() {
    // Both are best effort and run before logging starts: a kernel without the flag keeps its
    // huge pages; a SQLite already initialised keeps the system allocator.
    let _ = nix::sys::prctl::set_thp_disable(true);
    use_mimalloc_for_sqlite();
}

/// Points SQLite at mimalloc. Must run before the process opens its first SQLite connection:
/// once SQLite is initialised it keeps the allocator it started with.
fn use_mimalloc_for_sqlite() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let methods = ffi::sqlite3_mem_methods {
            xMalloc: Some(x_malloc),
            xFree: Some(x_free),
            xRealloc: Some(x_realloc),
            xSize: Some(x_size),
            xRoundup: Some(x_roundup),
            xInit: Some(x_init),
            xShutdown: Some(x_shutdown),
            pAppData: std::ptr::null_mut(),
        };
        // SAFETY: SQLITE_CONFIG_MALLOC takes a pointer to a sqlite3_mem_methods, which SQLite
        // copies before returning. SQLite refuses (SQLITE_MISUSE) if it is already initialised,
        // and then nothing changes.
        unsafe { ffi::sqlite3_config(ffi::SQLITE_CONFIG_MALLOC, &methods as *const ffi::sqlite3_mem_methods) };
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_round_up_to_sqlite_alignment() {
        assert_eq!(x_roundup(0), 0);
        assert_eq!(x_roundup(1), 8);
        assert_eq!(x_roundup(8), 8);
        assert_eq!(x_roundup(4097), 4104);
        assert_eq!(x_roundup(c_int::MAX), c_int::MAX & !7);
    }

    #[test]
    fn blocks_report_at_least_their_size_and_survive_realloc() {
        // SAFETY: the block is allocated, written within its size, grown, read and freed here.
        unsafe {
            let block = x_malloc(100).cast::<u8>();
            assert!(!block.is_null());
            assert!(x_size(block.cast()) >= 100);
            block.write_bytes(7, 100);
            let grown = x_realloc(block.cast(), 10_000).cast::<u8>();
            assert!(x_size(grown.cast()) >= 10_000);
            assert_eq!(*grown.add(99), 7);
            x_free(grown.cast());
        }
    }
}
