//! mfenv: layered environments compatible with MetWork layerapi2.
//!
//! The crate is laid out as the architecture: [`layer`] reads layer files, discovers
//! layers and plans loads and unloads; [`env`] holds environment data, path lists, the
//! exact-restore state and the application of a plan; [`shell`] renders operations for
//! each shell; [`engine`] runs one invocation's work; [`cli`] is the edge that reads
//! arguments and the process environment and writes the results; [`legacy`] maps the
//! historical MetWork command names onto mfenv's; [`context`] is the module context
//! (module name, runtime and plugin directories) and [`invocation`] the facts of one
//! invocation computed once at the edge; [`inspect`] holds the commands that
//! report on the set-up (manual pages, provides/search, doctor).

pub mod arena;
pub mod cli;
pub mod collection;
pub mod context;
pub mod cronwrap;
pub mod daemon;
pub mod engine;
pub mod env;
pub mod error;
pub mod fasthash;
pub mod inspect;
pub mod invocation;
pub mod layer;
pub mod legacy;
pub mod plugin;
pub mod private;
pub mod reaper;
pub mod seconds;
pub mod shell;
