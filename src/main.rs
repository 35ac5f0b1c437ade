//! The `mfenv` binary: hands the arguments and environment to the CLI and turns its
//! answer into the exit code.
//!
//! The C `main` is defined here directly (`no_main`): the standard runtime's set-up
//! (finding the main thread's stack bounds through `/proc/self/maps`, an alternate
//! signal stack, stack overflow handlers) is a score of system calls on every start,
//! a visible share of a `load` that takes a few milliseconds. What mfenv needs from it
//! is done here: `SIGPIPE` is ignored (a closed pipe is an `EPIPE` error; children get
//! the default back, as the standard library does when it spawns), and standard output
//! is flushed before exiting. Deep recursion is handled by `stacker` where it can occur.

// The test harness brings its own `main`.
#![cfg_attr(not(test), no_main)]

#[cfg(not(test))]
use std::io::Write;

#[global_allocator]
static ALLOCATOR: mfenv::arena::Allocator = mfenv::arena::Allocator;

#[cfg(not(test))]
#[unsafe(no_mangle)]
extern "C" fn main(
    _argc: std::ffi::c_int,
    _argv: *const *const std::ffi::c_char,
) -> std::ffi::c_int {
    // SAFETY: setting a signal disposition to "ignore" has no memory-safety conditions.
    unsafe {
        nix::libc::signal(nix::libc::SIGPIPE, nix::libc::SIG_IGN);
    }
    let code = mfenv::cli::main();
    let _ = std::io::stdout().flush();
    std::ffi::c_int::from(code)
}
