//! Integration tests of the `mfenv` command line against real layer trees.
//!
//! Each test builds a temporary layer tree, runs the real binary in a clean
//! environment, and — for loads and unloads — evaluates the bash output in a real bash
//! and feeds the resulting environment to the next call, as a user's shell does.
//!
//! - `a9`: the layerapi2 test scenarios of reference section A9;
//! - `formats`: `layers`, `is-installed`, `is-loaded`, `home`, `completions` output;
//! - `errors`: error messages, their layout, exit codes;
//! - `semantics`: the meaning of layer files and load options;
//! - `takeover`: shells where the original tools loaded layers;
//! - `bad_input`: broken files and environments, which must never panic;
//! - `snapshots`: inline snapshots of the hook scripts and of rendered loads.

mod common;

#[path = "cli/support.rs"]
mod support;

#[path = "cli/a9.rs"]
mod a9;
#[path = "cli/bad_input.rs"]
mod bad_input;
#[path = "cli/errors.rs"]
mod errors;
#[path = "cli/formats.rs"]
mod formats;
#[path = "cli/semantics.rs"]
mod semantics;
#[path = "cli/snapshots.rs"]
mod snapshots;
#[path = "cli/takeover.rs"]
mod takeover;
