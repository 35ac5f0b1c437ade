//! Commands that tell the user about the set-up rather than change it: the manual pages
//! ([`man`]), which layer provides a command and layer search ([`lookup`]), and the
//! set-up check ([`doctor`]).
//!
//! They read layers only through the [`crate::layer::discover::Catalog`] of an
//! [`crate::engine::Engine`] (one pass over the layers path, as every command), never
//! run on the load path, and build their whole output in memory: a failure leaves
//! stdout empty.

pub mod doctor;
pub mod lookup;
pub mod man;

/// What one of these commands produces.
#[derive(Debug, Default)]
pub struct Report {
    pub stdout: String,
    pub stderr: Vec<String>,
    pub status: u8,
}

impl Report {
    fn stdout(stdout: String) -> Report {
        Report {
            stdout,
            ..Report::default()
        }
    }
}

/// Pretty JSON with a final newline.
fn json_text(value: &serde_json::Value) -> String {
    let mut text = serde_json::to_string_pretty(value).expect("JSON values always serialize");
    text.push('\n');
    text
}
