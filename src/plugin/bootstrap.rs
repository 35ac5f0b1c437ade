//! Plugin templates and `mfenv plugin bootstrap list|create` (reference G).
//!
//! The templates live in `templates/<template>/` at the repository root and are embedded
//! in the binary by `build.rs` (every file, sorted by path, with its executable bit), so
//! `mfenv` alone can bootstrap a plugin.
//!
//! Placeholders: in file contents and in file paths, `{{key}}` is replaced by the value
//! of `key` among [`Variables::map`]: `name`, `python_name` (the name with `-` turned
//! into `_`), `module` (`MFMODULE_LOWERCASE`), `format_version`, `version`, `release`,
//! `summary`, `license`, `url`, `maintainer` and `vendor`. The substitution is one pass
//! with no escapes: a `{{…}}` naming no variable (`{{MFMODULE_VERSION}}` in `config.ini`,
//! rendered when the configuration is read) is kept as it is, and a value is never
//! substituted again. Files that are not UTF-8 are copied unchanged.
//!
//! Creating a plugin checks, in the order of the original: the template exists, `./NAME`
//! does not, the name is valid. The files are written into a staging directory beside
//! the target, the result is validated as `mfenv plugin check` would, and the staging
//! directory is renamed into place: a failure leaves nothing behind.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::error::{Error, ErrorKind, Result};
use crate::plugin::model::validate_name;

/// The embedded files: `(template/relative/path, contents, executable)`, sorted by path.
pub const EMBEDDED: &[(&str, &[u8], bool)] = include!(concat!(env!("OUT_DIR"), "/templates.rs"));

/// The template used when `--template` is not given.
pub const DEFAULT_TEMPLATE: &str = "default";

/// One line describing each template, for `bootstrap list`.
const DESCRIPTIONS: &[(&str, &str)] = &[
    (
        "default",
        "a shell plugin: a tool in bin/, a commented crontab, an extra daemon example",
    ),
    (
        "node",
        "a Node.js plugin: package.json (dependencies built into node_modules), index.js",
    ),
    (
        "python3",
        "a Python 3 plugin: requirements-to-freeze.txt (virtualenv in local/), a package, a daemon",
    ),
];

/// The names of the embedded templates, sorted.
pub fn template_names() -> Vec<&'static str> {
    let mut names: Vec<&str> = EMBEDDED
        .iter()
        .filter_map(|(path, _, _)| path.split('/').next())
        .collect();
    names.dedup();
    names
}

/// The one-line description of `template`.
pub fn description(template: &str) -> &'static str {
    DESCRIPTIONS
        .iter()
        .find(|(name, _)| *name == template)
        .map_or("", |(_, description)| description)
}

/// The files of `template`: `(path relative to the template, contents, executable)`.
pub fn template_files(template: &str) -> Vec<(&'static str, &'static [u8], bool)> {
    EMBEDDED
        .iter()
        .filter_map(|(path, contents, executable)| {
            let relative = path.strip_prefix(template)?.strip_prefix('/')?;
            Some((relative, *contents, *executable))
        })
        .collect()
}

/// The text of `bootstrap list`.
pub fn render_list() -> String {
    let names = template_names();
    let width = names.iter().map(|name| name.len()).max().unwrap_or(0);
    let mut text = String::from("Available plugin templates:\n");
    for name in names {
        text.push_str(&format!("  {name:width$}  {}\n", description(name)));
    }
    text
}

/// A variable set by an option or a prompt: its key, the prompt and its default.
#[derive(Debug, Clone, Copy)]
pub struct Field {
    pub key: &'static str,
    pub prompt: &'static str,
    pub default: &'static str,
}

/// The variables asked for, in prompt order, with their defaults.
pub const FIELDS: &[Field] = &[
    Field {
        key: "version",
        prompt: "version",
        default: "0.0.1",
    },
    Field {
        key: "release",
        prompt: "release",
        default: "1",
    },
    Field {
        key: "summary",
        prompt: "one-line summary",
        default: "one line summary",
    },
    Field {
        key: "license",
        prompt: "license (Proprietary, BSD, MIT, GPL, ...)",
        default: "Proprietary",
    },
    Field {
        key: "url",
        prompt: "url",
        default: "http://www.example.com",
    },
    Field {
        key: "maintainer",
        prompt: "maintainer",
        default: "Firstname Lastname <firstname.lastname@example.com>",
    },
    Field {
        key: "vendor",
        prompt: "vendor",
        default: "MetWork",
    },
];

/// Every value of the placeholders of one plugin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Variables {
    map: BTreeMap<&'static str, String>,
}

impl Variables {
    /// The variables of plugin `name` in `module_lowercase`, with `values` (by
    /// [`FIELDS`] key; missing ones take their default). `format_version` goes into
    /// `.plugin_format_version`. Each value is checked: one line, not empty, and for
    /// `version` the `_version` rule (`^[a-z0-9-_.]+$`).
    pub fn new(
        name: &str,
        module_lowercase: &str,
        format_version: &str,
        values: &BTreeMap<&'static str, String>,
    ) -> Result<Variables> {
        let mut map = BTreeMap::new();
        map.insert("name", name.to_owned());
        map.insert("python_name", name.replace('-', "_"));
        map.insert("module", module_lowercase.to_owned());
        map.insert("format_version", format_version.to_owned());
        for field in FIELDS {
            let value = values
                .get(field.key)
                .cloned()
                .unwrap_or_else(|| field.default.to_owned());
            check_value(field.key, &value)?;
            map.insert(field.key, value);
        }
        Ok(Variables { map })
    }

    /// The value of each placeholder.
    pub fn map(&self) -> &BTreeMap<&'static str, String> {
        &self.map
    }
}

fn check_value(key: &str, value: &str) -> Result<()> {
    let bad = |why: &str| {
        Error::new(
            ErrorKind::Usage,
            format!("bad value for `{key}`: `{value}`"),
        )
        .caused_by(why.to_owned())
    };
    if value.trim().is_empty() {
        return Err(bad("it must not be empty"));
    }
    if value.chars().any(char::is_control) {
        return Err(bad("it must be one line of printable text"));
    }
    if value.trim() != value {
        return Err(bad("it must not start or end with spaces"));
    }
    let version_char = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || "-_.".contains(c);
    if key == "version" && !value.chars().all(version_char) {
        return Err(bad("a version must follow ^[a-z0-9-_.]+$"));
    }
    if key == "release" && !value.chars().all(|c| c.is_ascii_alphanumeric() || c == '.') {
        return Err(bad("a release must follow ^[A-Za-z0-9.]+$"));
    }
    Ok(())
}

/// Replaces each `{{key}}` naming a variable by its value, in one pass.
pub fn substitute(text: &str, variables: &BTreeMap<&'static str, String>) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        match after
            .find("}}")
            .and_then(|end| Some((end, variables.get(&after[..end])?)))
        {
            Some((end, value)) => {
                out.push_str(value);
                rest = &after[end + 2..];
            }
            None => {
                out.push_str("{{");
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// One file of a plugin to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedFile {
    /// Relative to the plugin directory.
    pub path: PathBuf,
    pub contents: Vec<u8>,
    pub executable: bool,
}

/// The files of `template` with the placeholders of `variables` replaced.
pub fn render(template: &str, variables: &Variables) -> Vec<RenderedFile> {
    template_files(template)
        .into_iter()
        .map(|(path, contents, executable)| {
            let contents = match std::str::from_utf8(contents) {
                Ok(text) => substitute(text, variables.map()).into_bytes(),
                Err(_) => contents.to_vec(),
            };
            RenderedFile {
                path: PathBuf::from(substitute(path, variables.map())),
                contents,
                executable,
            }
        })
        .collect()
}

/// Checks the arguments of `bootstrap create` in the original's order: the template
/// exists, `target` does not, the name is valid.
pub fn check_request(template: &str, name: &str, target: &Path) -> Result<()> {
    let names = template_names();
    if !names.contains(&template) {
        return Err(Error::new(
            ErrorKind::Usage,
            format!("unknown plugin template `{template}`"),
        )
        .with_hint(format!(
            "available templates: {} (see `mfenv plugin bootstrap list`)",
            names.join(", ")
        )));
    }
    if fs::symlink_metadata(target).is_ok() {
        let parent = target.parent().unwrap_or(Path::new("."));
        return Err(Error::new(
            ErrorKind::Io,
            format!(
                "the subdirectory `{name}` already exists in `{}`",
                parent.display()
            ),
        )
        .with_hint("choose another name, or remove the directory first"));
    }
    if let Err(reason) = validate_name(name) {
        return Err(Error::new(
            ErrorKind::Usage,
            format!("the plugin name `{name}` is not valid"),
        )
        .caused_by(reason));
    }
    Ok(())
}

/// Writes `files` as the new directory `target`: into a staging directory beside it,
/// then `verify(staging)`, then one rename. On any failure nothing is left behind.
pub fn write_plugin(
    target: &Path,
    files: &[RenderedFile],
    verify: impl FnOnce(&Path) -> Result<()>,
) -> Result<()> {
    let parent = target.parent().unwrap_or(Path::new("."));
    let base = target
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    let staging = parent.join(format!(".{base}.bootstrap-{}", std::process::id()));
    fs::create_dir(&staging)
        .map_err(|err| Error::io("cannot create the directory", &staging, &err))?;
    let result = write_files(&staging, files)
        .and_then(|()| verify(&staging))
        .and_then(|()| {
            if fs::symlink_metadata(target).is_ok() {
                return Err(Error::new(
                    ErrorKind::Io,
                    format!(
                        "`{}` appeared while the plugin was created",
                        target.display()
                    ),
                ));
            }
            fs::rename(&staging, target)
                .map_err(|err| Error::io("cannot create the directory", target, &err))
        });
    if result.is_err() {
        let _ = fs::remove_dir_all(&staging);
    }
    result
}

fn write_files(root: &Path, files: &[RenderedFile]) -> Result<()> {
    for file in files {
        if file
            .path
            .components()
            .any(|part| !matches!(part, std::path::Component::Normal(_)))
        {
            return Err(Error::new(
                ErrorKind::Io,
                format!("bad template path `{}`", file.path.display()),
            ));
        }
        let path = root.join(&file.path);
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir)
                .map_err(|err| Error::io("cannot create the directory", dir, &err))?;
        }
        let write = || -> io::Result<()> {
            fs::write(&path, &file.contents)?;
            let mode = if file.executable { 0o755 } else { 0o644 };
            fs::set_permissions(&path, fs::Permissions::from_mode(mode))
        };
        write().map_err(|err| Error::io("cannot write", &path, &err))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&'static str, &str)]) -> BTreeMap<&'static str, String> {
        pairs.iter().map(|(k, v)| (*k, (*v).to_owned())).collect()
    }

    #[test]
    fn known_placeholders_are_replaced_and_unknown_ones_kept() {
        let map = vars(&[("name", "foo"), ("version", "{{name}}")]);
        assert_eq!(
            substitute("{{name}}-{{version}} {{MFMODULE_VERSION}} {{ {{name", &map),
            "foo-{{name}} {{MFMODULE_VERSION}} {{ {{name"
        );
    }

    #[test]
    fn every_embedded_template_has_a_description() {
        let names = template_names();
        assert_eq!(names, ["default", "node", "python3"]);
        for name in names {
            assert!(!description(name).is_empty(), "{name}");
        }
    }

    #[test]
    fn values_are_one_line_and_versions_follow_the_version_rule() {
        let ok = Variables::new("foo", "generic", "1.0.0", &BTreeMap::new());
        assert!(ok.is_ok());
        for (key, value) in [
            ("version", "1.0.0A"),
            ("summary", "two\nlines"),
            ("url", ""),
            ("release", "1 2"),
        ] {
            let values = vars(&[(key, value)]);
            assert!(
                Variables::new("foo", "generic", "1.0.0", &values).is_err(),
                "{key}={value:?}"
            );
        }
    }

    #[test]
    fn checks_come_in_the_original_order() {
        let missing = Path::new("/nonexistent/mfenv-bootstrap-test");
        let error = check_request("nope", "plugin_x", Path::new("/")).unwrap_err();
        assert!(error.message().contains("unknown plugin template"));
        let error = check_request("default", "plugin_x", Path::new("/")).unwrap_err();
        assert!(error.message().contains("already exists"));
        let error = check_request("default", "plugin_x", missing).unwrap_err();
        assert_eq!(error.causes(), ["A plugin name can't start with 'plugin_'"]);
        assert!(check_request("default", "ok-name_1", missing).is_ok());
    }
}
