//! The `mfenv` binary: hands the arguments and environment to the CLI and turns its
//! answer into the exit code.

use std::process::ExitCode;

#[global_allocator]
static ALLOCATOR: mfenv::arena::Allocator = mfenv::arena::Allocator;

fn main() -> ExitCode {
    ExitCode::from(mfenv::cli::main())
}
