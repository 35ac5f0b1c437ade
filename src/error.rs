//! The one error type of mfenv.
//!
//! Every failure the user can act on becomes an [`Error`]: a short statement of what
//! failed, the chain of causes (innermost last) and, when we know one, a hint naming
//! what to run or check. [`Error::render`] lays it out as
//!
//! ```text
//! mfenv: error: <what>
//!   caused by: <why>
//! hint: <what to do>
//! ```
//!
//! Messages are lowercase, without a trailing period, with names and paths in
//! backticks. Colour is decided by the caller (the CLI edge), never here.

use std::fmt;
use std::io;
use std::path::Path;

/// What kind of failure this is; decides the exit code and lets tests match on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// A layer (label or home) that is not installed.
    LayerNotFound,
    /// A mandatory dependency that is not installed.
    MissingDependency,
    /// A cycle through mandatory dependencies.
    DependencyCycle,
    /// Layers that cannot be loaded together.
    Conflict,
    /// A layer file that cannot be read or parsed.
    LayerFile,
    /// An environment variable mfenv must use is unusable (not UTF-8, bad state).
    Environment,
    /// Bad command-line usage detected after parsing.
    Usage,
    /// Writing the output, running a command, other I/O.
    Io,
}

/// An error with its context, ready to be shown to a human.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    kind: ErrorKind,
    message: String,
    causes: Vec<String>,
    hint: Option<String>,
}

/// The result type used across mfenv.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// A new error of `kind` saying `message`.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error {
            kind,
            message: message.into(),
            causes: Vec::new(),
            hint: None,
        }
    }

    /// An I/O failure on `path`, e.g. `cannot read `path``, caused by the OS error.
    pub fn io(what: &str, path: &Path, err: &io::Error) -> Self {
        Error::new(ErrorKind::Io, format!("{what} `{}`", path.display())).caused_by(io_reason(err))
    }

    /// Adds one cause (shown after the previous ones).
    #[must_use]
    pub fn caused_by(mut self, cause: impl Into<String>) -> Self {
        self.causes.push(cause.into());
        self
    }

    /// Sets the hint line.
    #[must_use]
    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// Wraps this error under a new headline: the old headline becomes the first cause.
    #[must_use]
    pub fn context(self, message: impl Into<String>) -> Self {
        let mut causes = Vec::with_capacity(self.causes.len() + 1);
        causes.push(self.message);
        causes.extend(self.causes);
        Error {
            kind: self.kind,
            message: message.into(),
            causes,
            hint: self.hint,
        }
    }

    /// The headline and its causes on one line, `what: why: why` (for logs).
    pub fn one_line(&self) -> String {
        let mut line = self.message.clone();
        for cause in &self.causes {
            line.push_str(": ");
            line.push_str(cause);
        }
        line
    }

    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    pub fn message(&self) -> &str {
        &self.message
    }

    pub fn causes(&self) -> &[String] {
        &self.causes
    }

    pub fn hint(&self) -> Option<&str> {
        self.hint.as_deref()
    }

    /// The process exit code for this error: 2 for usage errors, 1 otherwise.
    pub fn exit_code(&self) -> u8 {
        match self.kind {
            ErrorKind::Usage => 2,
            _ => 1,
        }
    }

    /// The text shown on stderr, with ANSI colours when `color` is true. Ends with a newline.
    ///
    /// Control characters (a newline in a label, an escape sequence in a path) are shown
    /// escaped, so that no input can break the layout or drive the terminal.
    pub fn render(&self, color: bool) -> String {
        use owo_colors::OwoColorize;
        let mut out = String::new();
        let message = printable(&self.message);
        if color {
            out.push_str(&format!("{} {message}\n", "mfenv: error:".red().bold()));
        } else {
            out.push_str(&format!("mfenv: error: {message}\n"));
        }
        for cause in &self.causes {
            out.push_str(&format!("  caused by: {}\n", printable(cause)));
        }
        if let Some(hint) = &self.hint {
            let hint = printable(hint);
            if color {
                out.push_str(&format!("{} {hint}\n", "hint:".cyan().bold()));
            } else {
                out.push_str(&format!("hint: {hint}\n"));
            }
        }
        out
    }
}

/// `text` with control characters escaped (`\n`, `\u{1b}`).
pub fn printable(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.chars().any(char::is_control) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.render(false).trim_end())
    }
}

impl std::error::Error for Error {}

/// The OS error text without Rust's ` (os error N)` suffix, lowercased at the start.
pub fn io_reason(err: &io::Error) -> String {
    let text = err.to_string();
    let text = match text.find(" (os error") {
        Some(position) => text[..position].to_string(),
        None => text,
    };
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rendering_lists_causes_then_the_hint() {
        let error = Error::new(ErrorKind::MissingDependency, "cannot load `a@x`")
            .caused_by("`a@x -> b@x -> c@x`: `c@x` is not installed")
            .with_hint("did you mean `c@y`?");
        assert_eq!(
            error.render(false),
            "mfenv: error: cannot load `a@x`\n  caused by: `a@x -> b@x -> c@x`: `c@x` is not installed\nhint: did you mean `c@y`?\n"
        );
    }

    #[test]
    fn context_pushes_the_old_headline_down_as_a_cause() {
        let error = Error::new(ErrorKind::LayerFile, "bad line 3").context("cannot load `a`");
        assert_eq!(error.message(), "cannot load `a`");
        assert_eq!(error.causes(), ["bad line 3"]);
        assert_eq!(error.kind(), ErrorKind::LayerFile);
    }

    #[test]
    fn one_line_joins_the_headline_and_the_causes() {
        let error = Error::new(ErrorKind::Io, "cannot start")
            .caused_by("a")
            .caused_by("b");
        assert_eq!(error.one_line(), "cannot start: a: b");
        assert_eq!(Error::new(ErrorKind::Io, "x").one_line(), "x");
    }

    #[test]
    fn io_reasons_drop_the_os_error_number() {
        let err = io::Error::from_raw_os_error(2);
        assert_eq!(io_reason(&err), "no such file or directory");
    }

    #[test]
    fn control_characters_are_shown_escaped() {
        let error =
            Error::new(ErrorKind::LayerNotFound, "cannot load `a\nb\u{1b}[31m`").caused_by("x\ty");
        assert_eq!(
            error.render(false),
            "mfenv: error: cannot load `a\\nb\\u{1b}[31m`\n  caused by: x\\ty\n"
        );
    }

    #[test]
    fn usage_errors_exit_with_two() {
        assert_eq!(Error::new(ErrorKind::Usage, "x").exit_code(), 2);
        assert_eq!(Error::new(ErrorKind::Io, "x").exit_code(), 1);
    }
}
