//! mfenv: layered environments compatible with MetWork layerapi2.
//!
//! `main` only hands the arguments and environment to the CLI and turns its answer into
//! the exit code. The crate is laid out as: `layer/` (files, discovery, planning),
//! `env/` (environment data, path lists, state, diff), `shell/` (rendering per shell),
//! `engine` (one invocation's work), `cli` (the edge).

mod cli;
mod engine;
mod env;
mod error;
mod layer;
mod shell;

use std::process::ExitCode;

fn main() -> ExitCode {
    ExitCode::from(cli::main())
}
