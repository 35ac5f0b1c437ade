//! The `mfenv` binary: hands the arguments and environment to the CLI and turns its
//! answer into the exit code.

use std::process::ExitCode;

fn main() -> ExitCode {
    ExitCode::from(mfenv::cli::main())
}
