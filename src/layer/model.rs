//! What the `.layerapi2_*` files mean, as pure functions over their text.
//!
//! Nothing here touches the file system or the process environment: callers pass the
//! file content and a lookup for `{NAME}` substitution. The rules are layerapi2's
//! (reference A2): values are stripped of ASCII white space, `{NAME}` is replaced by the
//! variable's value (empty when unset), list files drop blank lines and `#` comments
//! (after substitution), and a leading `-` marks an optional dependency.
//!
//! It also holds the table of the 18 directory prepends of a load (A4.1) and the python
//! versions they depend on.
//!
//! Where layerapi2 accepted nonsense silently, mfenv reports it: a label must be one
//! non-empty line, and an extra_env key must be a valid variable name.

use std::fmt;

use crate::error::{Error, ErrorKind, Result};

/// The six layer files, by role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum LayerFileKind {
    Label,
    Dependencies,
    Conflicts,
    ExtraEnv,
    InteractiveProfile,
    InteractiveUnprofile,
}

impl LayerFileKind {
    pub const ALL: [LayerFileKind; 6] = [
        LayerFileKind::Label,
        LayerFileKind::Dependencies,
        LayerFileKind::Conflicts,
        LayerFileKind::ExtraEnv,
        LayerFileKind::InteractiveProfile,
        LayerFileKind::InteractiveUnprofile,
    ];

    /// The default file name, as layerapi2 names it.
    pub fn default_name(self) -> &'static str {
        match self {
            LayerFileKind::Label => ".layerapi2_label",
            LayerFileKind::Dependencies => ".layerapi2_dependencies",
            LayerFileKind::Conflicts => ".layerapi2_conflicts",
            LayerFileKind::ExtraEnv => ".layerapi2_extra_env",
            LayerFileKind::InteractiveProfile => ".layerapi2_interactive_profile",
            LayerFileKind::InteractiveUnprofile => ".layerapi2_interactive_unprofile",
        }
    }

    /// The environment variable that overrides the file name.
    pub fn override_variable(self) -> &'static str {
        match self {
            LayerFileKind::Label => "LAYERAPI2_LAYER_LABEL_FILENAME",
            LayerFileKind::Dependencies => "LAYERAPI2_LAYER_DEPENDENCIES_FILENAME",
            LayerFileKind::Conflicts => "LAYERAPI2_LAYER_CONFLICTS_FILENAME",
            LayerFileKind::ExtraEnv => "LAYERAPI2_LAYER_EXTRA_ENV_FILENAME",
            LayerFileKind::InteractiveProfile => "LAYERAPI2_LAYER_INTERACTIVE_PROFILE_FILENAME",
            LayerFileKind::InteractiveUnprofile => "LAYERAPI2_LAYER_INTERACTIVE_UNPROFILE_FILENAME",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// The file names in force (defaults, or the `LAYERAPI2_LAYER_*_FILENAME` overrides).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerFileNames {
    names: [String; 6],
}

impl Default for LayerFileNames {
    fn default() -> Self {
        LayerFileNames {
            names: LayerFileKind::ALL.map(|kind| kind.default_name().to_owned()),
        }
    }
}

impl LayerFileNames {
    /// Names from the overrides found by `lookup`; an unset override keeps the default.
    /// An empty one means the layers have no such file, as with layerapi2 (which looked
    /// for the home itself and could not read it as a file); for the label file, that
    /// no directory is a layer.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Self {
        LayerFileNames {
            names: LayerFileKind::ALL.map(|kind| match lookup(kind.override_variable()) {
                Some(name) => name,
                None => kind.default_name().to_owned(),
            }),
        }
    }

    /// The file name; empty when an empty override says there is no such file.
    pub fn get(&self, kind: LayerFileKind) -> &str {
        &self.names[kind.index()]
    }

    /// True when an empty override says the layers have no such file.
    pub fn is_disabled(&self, kind: LayerFileKind) -> bool {
        self.names[kind.index()].is_empty()
    }
}

/// How a layer is named in a list file or on the command line.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum LayerRef {
    /// A label such as `python3@mfext`.
    Label(String),
    /// An absolute layer home (the entry starts with `/`).
    Home(String),
}

impl LayerRef {
    /// A label, or a home when the text starts with `/`.
    pub fn parse(text: &str) -> Self {
        if text.starts_with('/') {
            LayerRef::Home(text.to_owned())
        } else {
            LayerRef::Label(text.to_owned())
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            LayerRef::Label(text) | LayerRef::Home(text) => text,
        }
    }
}

impl fmt::Display for LayerRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The 18 directory prepends of a layer load, in layerapi2's order (reference A4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PrependStep {
    pub sub_path: SubPath,
    pub variable: &'static str,
}

/// A path below a layer home; python paths depend on the python versions in force.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubPath {
    Fixed(&'static str),
    /// `[local/]lib/python<version>/site-packages` for python 2 or 3.
    Python {
        local: bool,
        major: u8,
    },
}

pub const PREPEND_STEPS: [PrependStep; 18] = {
    const fn fixed(sub: &'static str, variable: &'static str) -> PrependStep {
        PrependStep {
            sub_path: SubPath::Fixed(sub),
            variable,
        }
    }
    const fn python(local: bool, major: u8) -> PrependStep {
        PrependStep {
            sub_path: SubPath::Python { local, major },
            variable: "PYTHONPATH",
        }
    }
    [
        fixed("node_modules", "NODE_PATH"),
        fixed("node_modules/.bin", "PATH"),
        fixed("lib/node_modules", "NODE_PATH"),
        fixed("lib/node_modules/.bin", "PATH"),
        fixed("local/lib/node_modules", "NODE_PATH"),
        fixed("local/lib/node_modules/.bin", "PATH"),
        fixed("lib", "PYTHONPATH"),
        fixed("local/lib", "PYTHONPATH"),
        python(false, 2),
        python(false, 3),
        python(true, 2),
        python(true, 3),
        fixed("bin", "PATH"),
        fixed("local/bin", "PATH"),
        fixed("lib", "LD_LIBRARY_PATH"),
        fixed("local/lib", "LD_LIBRARY_PATH"),
        fixed("lib/pkgconfig", "PKG_CONFIG_PATH"),
        fixed("local/lib/pkgconfig", "PKG_CONFIG_PATH"),
    ]
};

/// The five path-like variables a layer load changes.
pub const PATH_VARIABLES: [&str; 5] = [
    "PATH",
    "LD_LIBRARY_PATH",
    "PKG_CONFIG_PATH",
    "PYTHONPATH",
    "NODE_PATH",
];

/// The python versions used for site-packages paths (`PYTHON{2,3}_SHORT_VERSION`).
#[derive(Debug, Clone, Default)]
pub struct PythonVersions {
    pub python2: Option<String>,
    pub python3: Option<String>,
    /// The sub-path of each of the 18 steps with these versions, rendered on first use
    /// (the load path asks for them for every layer).
    rendered: std::cell::OnceCell<Vec<Option<String>>>,
}

impl PartialEq for PythonVersions {
    fn eq(&self, other: &Self) -> bool {
        self.python2 == other.python2 && self.python3 == other.python3
    }
}

impl Eq for PythonVersions {}

impl PythonVersions {
    pub fn new(python2: Option<String>, python3: Option<String>) -> Self {
        PythonVersions {
            python2,
            python3,
            rendered: std::cell::OnceCell::new(),
        }
    }

    /// The sub-path of prepend step `index` (see [`PREPEND_STEPS`]), `None` for a python
    /// path whose version is unset.
    pub fn step_sub_path(&self, index: usize) -> Option<&str> {
        self.rendered
            .get_or_init(|| {
                PREPEND_STEPS
                    .iter()
                    .map(|step| step.sub_path.render(self))
                    .collect()
            })
            .get(index)?
            .as_deref()
    }
}

impl SubPath {
    /// The relative path, or `None` for a python path whose version is unset.
    pub fn render(self, versions: &PythonVersions) -> Option<String> {
        match self {
            SubPath::Fixed(sub) => Some(sub.to_owned()),
            SubPath::Python { local, major } => {
                let version = match major {
                    2 => versions.python2.as_deref(),
                    _ => versions.python3.as_deref(),
                }?;
                // Set but empty gives `lib/python/site-packages`, as layerapi2 does.
                let prefix = if local { "local/" } else { "" };
                Some(format!("{prefix}lib/python{version}/site-packages"))
            }
        }
    }
}

/// One entry of a dependencies file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dependency {
    pub target: LayerRef,
    pub optional: bool,
}

/// One `KEY=value` line of an extra_env file; the value is substituted at load time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtraEnvEntry {
    pub line: usize,
    pub key: String,
    pub raw_value: String,
}

/// White space as layerapi2 strips it (GLib's ASCII space class, `\v` included).
pub fn is_layer_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\x0b' | '\x0c' | '\r')
}

pub fn strip(text: &str) -> &str {
    text.trim_matches(is_layer_space)
}

/// Replaces every `{NAME}` (NAME made of ASCII letters, digits and `_`) by `lookup(NAME)`,
/// or by nothing when it returns `None`. Anything else, `{}` and `{a-b}` included, stays.
pub fn substitute<'a, F>(text: &str, lookup: F) -> String
where
    F: Fn(&str) -> Option<&'a str>,
{
    if !text.contains('{') {
        return text.to_owned();
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let name_len = after
            .bytes()
            .take_while(|b| b.is_ascii_alphanumeric() || *b == b'_')
            .count();
        if name_len > 0 && after.as_bytes().get(name_len) == Some(&b'}') {
            if let Some(value) = lookup(&after[..name_len]) {
                out.push_str(value);
            }
            rest = &after[name_len + 1..];
        } else {
            out.push('{');
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

/// Parses a label file: one non-empty line once stripped and substituted.
pub fn parse_label<'a, F>(content: &str, lookup: F) -> Result<String, String>
where
    F: Fn(&str) -> Option<&'a str>,
{
    // Stripped before substitution only, as layerapi2 does: spaces a substituted
    // value brings stay part of the label (`{LBL}` with LBL=" a@x " is " a@x ").
    let label = substitute(strip(content), lookup);
    if strip(&label).is_empty() {
        return Err("the label is empty".to_owned());
    }
    if label.contains('\n') {
        return Err("the label spans several lines".to_owned());
    }
    if label.chars().any(char::is_control) {
        return Err("the label contains control characters".to_owned());
    }
    Ok(label)
}

/// The entries of a list file (dependencies, conflicts): stripped, substituted, one per
/// line, blank lines and `#` comments dropped.
pub fn parse_list<'a, F>(content: &str, lookup: F) -> Vec<String>
where
    F: Fn(&str) -> Option<&'a str>,
{
    let whole = substitute(strip(content), lookup);
    whole
        .split('\n')
        .map(strip)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(str::to_owned)
        .collect()
}

/// A dependencies file: `-` marks an optional entry, `/…` is a home.
///
/// What follows the `-` is taken as it is, as layerapi2 does: `- b@x` names the label
/// `" b@x"`, which no layer carries (see [`spaced_optional_lines`]).
pub fn parse_dependencies<'a, F>(content: &str, lookup: F) -> Vec<Dependency>
where
    F: Fn(&str) -> Option<&'a str>,
{
    parse_list(content, lookup)
        .into_iter()
        .filter_map(|entry| match entry.strip_prefix('-') {
            Some(rest) => (!rest.is_empty()).then(|| Dependency {
                target: LayerRef::parse(rest),
                optional: true,
            }),
            None => Some(Dependency {
                target: LayerRef::parse(&entry),
                optional: false,
            }),
        })
        .collect()
}

/// True when an optional dependency has white space after its `-` (`- b@x`).
pub fn is_spaced_optional(dependency: &Dependency) -> bool {
    dependency.optional && dependency.target.as_str().starts_with(is_layer_space)
}

/// The line numbers (from 1) of the entries with white space after their `-`, for the
/// `--debug` note explaining why such a dependency is never found.
pub fn spaced_optional_lines(content: &str) -> Vec<usize> {
    content
        .split('\n')
        .enumerate()
        .filter(|(_, line)| {
            strip(line)
                .strip_prefix('-')
                .is_some_and(|rest| rest.starts_with(is_layer_space))
        })
        .map(|(index, _)| index + 1)
        .collect()
}

/// A conflicts file: entries are labels or homes; `-` is not special.
pub fn parse_conflicts<'a, F>(content: &str, lookup: F) -> Vec<LayerRef>
where
    F: Fn(&str) -> Option<&'a str>,
{
    parse_list(content, lookup)
        .iter()
        .map(|entry| LayerRef::parse(entry))
        .collect()
}

/// True for `[A-Za-z_][A-Za-z0-9_]*`.
pub fn is_valid_variable_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    matches!(bytes.next(), Some(b) if b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// Variables an extra_env may not set, by the shell that makes them special, each
/// checked in the real shell (bash 5.2, zsh 5.9, fish 3.6, dash 0.5): assigning them
/// runs the value as arithmetic (bash `OPTIND=x[$(cmd)]` runs `cmd`), fails because they
/// are read-only or typed (which aborts the evaluation midway, or kills a
/// non-interactive dash), or does not keep the value (so no unload could restore it).
/// Also mfenv's own state variable.
pub const RESERVED_VARIABLES: &[&str] = &[
    // bash: read-only
    "BASHOPTS",
    "BASH_VERSINFO",
    "EUID",
    "PPID",
    "SHELLOPTS",
    "UID",
    // bash: value evaluated as arithmetic (runs command substitutions)
    "HISTCMD",
    "OPTIND",
    "RANDOM",
    "SRANDOM",
    // bash: value not kept
    "BASHPID",
    "BASH_ARGC",
    "BASH_ARGV",
    "BASH_COMMAND",
    "BASH_LINENO",
    "BASH_SOURCE",
    "DIRSTACK",
    "EPOCHREALTIME",
    "EPOCHSECONDS",
    "FUNCNAME",
    "GROUPS",
    "LINENO",
    "SECONDS",
    // zsh: read-only
    "ARGC",
    "TTYIDLE",
    "ZSH_EVAL_CONTEXT",
    "ZSH_SUBSHELL",
    "builtins",
    "dis_builtins",
    "dis_patchars",
    "dis_reswords",
    "funcfiletrace",
    "funcsourcetrace",
    "funcstack",
    "functrace",
    "history",
    "historywords",
    "jobdirs",
    "jobstates",
    "jobtexts",
    "keymaps",
    "modules",
    "parameters",
    "patchars",
    "reswords",
    "termcap",
    "terminfo",
    "userdirs",
    "usergroups",
    "widgets",
    "zsh_scheduled_events",
    // zsh: arrays and hashes (a scalar assignment fails)
    "aliases",
    "argv",
    "cdpath",
    "commands",
    "dis_aliases",
    "dis_functions",
    "dis_galiases",
    "dis_saliases",
    "fignore",
    "fpath",
    "functions",
    "galiases",
    "mailpath",
    "manpath",
    "module_path",
    "nameddirs",
    "options",
    "path",
    "pipestatus",
    "psvar",
    "saliases",
    "signals",
    "status",
    "watch",
    "zsh_eval_context",
    // zsh: changes the shell's own identity or is recomputed (value not kept)
    "EGID",
    "ERRNO",
    "GID",
    "USERNAME",
    // zsh modules (loaded on demand): file, system and time access
    "epochtime",
    "errnos",
    "mapfile",
    "sysparams",
    // fish: read-only or scoped by fish
    "FISH_VERSION",
    "PWD",
    "SHLVL",
    "fish_kill_signal",
    "fish_killring",
    "fish_pid",
    "hostname",
    "status_generation",
    "umask",
    "version",
    // every shell: the last argument
    "_",
    // mfenv
    "__MFENV_STATE",
];

/// Why `key` may not be set by an extra_env file, if it may not.
pub fn reserved_reason(key: &str) -> Option<&'static str> {
    if RESERVED_VARIABLES.contains(&key) {
        return Some("it is a special variable of a supported shell or of mfenv");
    }
    if key.starts_with("LAYERAPI2_LAYER_") && key.ends_with("_LOADED") {
        return Some("loaded markers are managed by mfenv");
    }
    None
}

/// An extra_env file. `path` only serves error messages.
///
/// Lines are stripped; blank lines, `#` comments and lines without `=` are skipped; the
/// line is split at the first `=` and both sides stripped. A key that is not a valid
/// variable name is an error naming the file and the line.
pub fn parse_extra_env(content: &str, path: &str) -> Result<Vec<ExtraEnvEntry>> {
    let mut entries = Vec::new();
    for (index, line) in content.split('\n').enumerate() {
        let line = strip(line);
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        let key = strip(key);
        if !is_valid_variable_name(key) {
            return Err(Error::new(
                ErrorKind::LayerFile,
                format!(
                    "invalid variable name `{key}` in `{path}` at line {}",
                    index + 1
                ),
            )
            .with_hint(
                "variable names are made of letters, digits and `_`, and do not start with a digit",
            ));
        }
        if let Some(reason) = reserved_reason(key) {
            return Err(Error::new(
                ErrorKind::LayerFile,
                format!("`{key}` cannot be set in `{path}` at line {}", index + 1),
            )
            .caused_by(reason));
        }
        let value = strip(value);
        // No environment value can hold a NUL: the shells drop or refuse it, and
        // `execve` cuts the value there, so the variable could never be restored.
        if value.contains('\0') {
            return Err(Error::new(
                ErrorKind::LayerFile,
                format!(
                    "the value of `{key}` in `{path}` at line {} holds a NUL byte",
                    index + 1
                ),
            )
            .caused_by("environment values cannot contain NUL bytes"));
        }
        entries.push(ExtraEnvEntry {
            line: index + 1,
            key: key.to_owned(),
            raw_value: value.to_owned(),
        });
    }
    Ok(entries)
}

/// The valid variable names an extra_env file sets, ignoring everything else (used to
/// unload layers loaded by the original tools with their rule). Reserved names are
/// left out: unsetting them would fail or change the shell itself.
pub fn extra_env_keys_lenient(content: &str) -> Vec<String> {
    content
        .split('\n')
        .map(strip)
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| line.split_once('='))
        .map(|(key, _)| strip(key))
        .filter(|key| is_valid_variable_name(key) && reserved_reason(key).is_none())
        .map(str::to_owned)
        .collect()
}

/// The value an extra_env entry takes, given the variables set so far: values of three
/// characters or more are substituted (layerapi2's rule; shorter ones cannot hold `{X}`).
pub fn extra_env_value<'a, F>(raw_value: &str, lookup: F) -> String
where
    F: Fn(&str) -> Option<&'a str>,
{
    if raw_value.len() >= 3 {
        substitute(raw_value, lookup)
    } else {
        raw_value.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn lookup<'m>(map: &'m BTreeMap<String, String>) -> impl Fn(&str) -> Option<&'m str> {
        move |name: &str| map.get(name).map(String::as_str)
    }

    #[test]
    fn substitution_replaces_known_and_unknown_names() {
        let vars = env(&[("A", "1"), ("B_2", "two")]);
        assert_eq!(substitute("x{A}y{B_2}z{C}", lookup(&vars)), "x1ytwoz");
    }

    #[test]
    fn substitution_leaves_what_is_not_a_name() {
        let vars = env(&[("A", "1")]);
        assert_eq!(substitute("{}{a-b}{A", lookup(&vars)), "{}{a-b}{A");
        assert_eq!(substitute("{{A}}", lookup(&vars)), "{1}");
        assert_eq!(substitute("é{A}ü", lookup(&vars)), "é1ü");
    }

    #[test]
    fn substituted_values_are_not_substituted_again() {
        let vars = env(&[("A", "{B}"), ("B", "no")]);
        assert_eq!(substitute("{A}", lookup(&vars)), "{B}");
    }

    #[test]
    fn labels_are_stripped_and_substituted() {
        let vars = env(&[("MOD", "mfext")]);
        assert_eq!(
            parse_label("  foo@{MOD}\n\n", lookup(&vars)).unwrap(),
            "foo@mfext"
        );
    }

    #[test]
    fn spaces_from_a_substitution_stay_in_the_label() {
        let vars = env(&[("LBL", " a@x "), ("BLANK", "  ")]);
        assert_eq!(parse_label(" {LBL}\n", lookup(&vars)).unwrap(), " a@x ");
        assert!(parse_label("{BLANK}", lookup(&vars)).is_err());
    }

    #[test]
    fn empty_and_multi_line_labels_are_refused() {
        let vars = env(&[]);
        assert!(parse_label(" \n", lookup(&vars)).is_err());
        assert!(parse_label("{UNSET}", lookup(&vars)).is_err());
        assert!(parse_label("a\nb", lookup(&vars)).is_err());
        assert!(parse_label("a\tb", lookup(&vars)).is_err());
        assert!(parse_label("a\u{1b}[31m", lookup(&vars)).is_err());
    }

    #[test]
    fn list_files_drop_blank_lines_and_comments_after_substitution() {
        let vars = env(&[("C", "#")]);
        let content = "\n  foo \n# comment\n\n{C}hidden\n bar\nfoo2\n\n";
        assert_eq!(parse_list(content, lookup(&vars)), ["foo", "bar", "foo2"]);
    }

    #[test]
    fn dependencies_mark_optional_entries_and_homes() {
        let vars = env(&[]);
        let deps = parse_dependencies("a@x\n-b@x\n/abs/home\n- /opt/h\n-\n", lookup(&vars));
        assert_eq!(
            deps,
            vec![
                Dependency {
                    target: LayerRef::Label("a@x".into()),
                    optional: false
                },
                Dependency {
                    target: LayerRef::Label("b@x".into()),
                    optional: true
                },
                Dependency {
                    target: LayerRef::Home("/abs/home".into()),
                    optional: false
                },
                Dependency {
                    target: LayerRef::Label(" /opt/h".into()),
                    optional: true
                },
            ]
        );
        assert!(is_spaced_optional(&deps[3]) && !is_spaced_optional(&deps[1]));
        assert_eq!(
            spaced_optional_lines("a@x\n-b@x\n\n  -\tc@x\n- d\n"),
            [4, 5]
        );
    }

    #[test]
    fn a_dash_in_conflicts_is_part_of_the_label() {
        let vars = env(&[]);
        assert_eq!(
            parse_conflicts("-x\n/h", lookup(&vars)),
            vec![LayerRef::Label("-x".into()), LayerRef::Home("/h".into())]
        );
    }

    #[test]
    fn extra_env_follows_the_layerapi2_fixture() {
        let content = "VAR1=value1\nVAR2 = value2\n  VAR3=value3\nVAR4={VAR3}\n# c\nnoequal\nVAR5={UNDEFINED}\nVAR6={VAR1}:{UNDEFINED}:{VAR3}\nVAR7=\nVAR8=a\nQ=\"x\"\n";
        let entries = parse_extra_env(content, "/f").unwrap();
        let mut vars = BTreeMap::new();
        for entry in &entries {
            let value = extra_env_value(&entry.raw_value, |n| vars.get(n).map(String::as_str));
            vars.insert(entry.key.clone(), value);
        }
        let expected = env(&[
            ("VAR1", "value1"),
            ("VAR2", "value2"),
            ("VAR3", "value3"),
            ("VAR4", "value3"),
            ("VAR5", ""),
            ("VAR6", "value1::value3"),
            ("VAR7", ""),
            ("VAR8", "a"),
            ("Q", "\"x\""),
        ]);
        assert_eq!(vars, expected);
        assert_eq!(entries[3].line, 4);
    }

    #[test]
    fn extra_env_values_may_contain_equal_signs() {
        let entries = parse_extra_env("A=b=c", "/f").unwrap();
        assert_eq!(entries[0].raw_value, "b=c");
    }

    #[test]
    fn an_invalid_extra_env_key_names_the_file_and_line() {
        let error =
            parse_extra_env("OK=1\n\nBAD-KEY=2\n", "/layers/a/.layerapi2_extra_env").unwrap_err();
        assert_eq!(
            error.message(),
            "invalid variable name `BAD-KEY` in `/layers/a/.layerapi2_extra_env` at line 3"
        );
        assert!(parse_extra_env("=x", "/f").is_err());
        assert!(parse_extra_env("1A=x", "/f").is_err());
        assert!(parse_extra_env("$(touch x)=x", "/f").is_err());
    }

    #[test]
    fn shell_special_variables_are_refused_with_file_and_line() {
        for key in [
            "status",
            "path",
            "USERNAME",
            "PWD",
            "__MFENV_STATE",
            "LAYERAPI2_LAYER_ab_LOADED",
        ] {
            let error = parse_extra_env(&format!("OK=1\n{key}=x\n"), "/f").unwrap_err();
            assert_eq!(
                error.message(),
                format!("`{key}` cannot be set in `/f` at line 2")
            );
        }
        assert!(parse_extra_env("PATH={PATH}:/x\nSTATUS=1\n", "/f").is_ok());
    }

    #[test]
    fn lenient_keys_skip_what_cannot_be_a_variable() {
        assert_eq!(
            extra_env_keys_lenient("A=1\nBAD-KEY=2\n# c\nB = 3\nnoequal\n"),
            ["A", "B"]
        );
        // Unsetting these would fail or change the shell: never emitted.
        assert_eq!(
            extra_env_keys_lenient("OPTIND=1\nstatus=2\nFISH_VERSION=3\nC=4\n"),
            ["C"]
        );
    }

    #[test]
    fn variable_names_follow_the_posix_shape() {
        assert!(is_valid_variable_name("_A1"));
        assert!(!is_valid_variable_name(""));
        assert!(!is_valid_variable_name("é"));
        assert!(!is_valid_variable_name("A B"));
    }

    #[test]
    fn file_name_overrides_replace_defaults() {
        let names = LayerFileNames::from_lookup(|name| {
            (name == "LAYERAPI2_LAYER_LABEL_FILENAME").then(|| ".my_label".to_owned())
        });
        assert_eq!(names.get(LayerFileKind::Label), ".my_label");
        assert_eq!(
            names.get(LayerFileKind::Dependencies),
            ".layerapi2_dependencies"
        );
        assert!(!names.is_disabled(LayerFileKind::Dependencies));
        let names = LayerFileNames::from_lookup(|name| {
            (name == "LAYERAPI2_LAYER_EXTRA_ENV_FILENAME").then(String::new)
        });
        assert!(names.is_disabled(LayerFileKind::ExtraEnv));
        assert!(!names.is_disabled(LayerFileKind::Label));
    }

    #[test]
    fn stripping_includes_vertical_tab_but_not_unicode_spaces() {
        assert_eq!(strip("\x0b a \r\n"), "a");
        assert_eq!(strip("\u{a0}a"), "\u{a0}a");
    }
}
