//! Plugin configuration files: the `config.ini` dialect (reference C1), variants (C2)
//! and the `[general]` section every plugin must have (C3).
//!
//! The dialect is Python configparser's as mfplugin set it up, read with exactly those
//! rules: `=` is the only delimiter (`:` belongs to the key), only lines starting with
//! `#` are comments (`;` is data, no inline comments), keys and section names keep their
//! case, a duplicate section or key within one file is an error, indented lines continue
//! the previous value, a key without `=` is an error, sections starting with `_` are
//! dropped. Errors name the file and the line.
//!
//! Values may hold `{{ NAME }}`, replaced by the variable's value (empty when unset).
//! That is the part of Jinja2 that plugin configurations use; filters, expressions and
//! blocks are not supported and are left as written.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::env::Env;
use crate::error::{Error, ErrorKind, Result};

/// One `key = value` of a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IniEntry {
    /// The raw key, variant included (`debug[DEV]`).
    pub key: String,
    pub value: String,
    pub line: usize,
}

/// One `[section]` of a file, entries in file order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IniSection {
    pub name: String,
    pub line: usize,
    pub entries: Vec<IniEntry>,
}

/// A parsed configuration file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IniDocument {
    pub path: PathBuf,
    pub sections: Vec<IniSection>,
}

impl IniDocument {
    pub fn section(&self, name: &str) -> Option<&IniSection> {
        self.sections.iter().find(|s| s.name == name)
    }
}

fn syntax_error(path: &Path, line: usize, what: impl Into<String>) -> Error {
    Error::new(
        ErrorKind::LayerFile,
        format!(
            "invalid configuration file `{}` at line {line}",
            path.display()
        ),
    )
    .caused_by(what.into())
}

/// Parses `text` read from `path` (the path only serves messages).
pub fn parse_ini(text: &str, path: &Path) -> Result<IniDocument> {
    let mut sections: Vec<IniSection> = Vec::new();
    let mut last_value_open = false;
    for (index, raw) in text.split('\n').enumerate() {
        let number = index + 1;
        let raw = raw.strip_suffix('\r').unwrap_or(raw);
        let stripped = raw.trim();
        if stripped.is_empty() {
            last_value_open = false;
            continue;
        }
        if stripped.starts_with('#') {
            continue;
        }
        let indented = raw.starts_with([' ', '\t']);
        if indented && last_value_open {
            if let Some(entry) = sections.last_mut().and_then(|s| s.entries.last_mut()) {
                entry.value.push('\n');
                entry.value.push_str(stripped);
            }
            continue;
        }
        if let Some(rest) = stripped.strip_prefix('[') {
            let Some(name) = rest.strip_suffix(']') else {
                return Err(syntax_error(
                    path,
                    number,
                    format!("bad section header `{stripped}`"),
                ));
            };
            if sections.iter().any(|s| s.name == name) {
                return Err(syntax_error(
                    path,
                    number,
                    format!("duplicate section `[{name}]`"),
                ));
            }
            sections.push(IniSection {
                name: name.to_owned(),
                line: number,
                entries: Vec::new(),
            });
            last_value_open = false;
            continue;
        }
        let Some(section) = sections.last_mut() else {
            return Err(syntax_error(
                path,
                number,
                "a key before any `[section]` header",
            ));
        };
        let Some((key, value)) = stripped.split_once('=') else {
            return Err(syntax_error(
                path,
                number,
                format!("`{stripped}` has no `=`"),
            ));
        };
        let key = key.trim();
        if key.is_empty() {
            return Err(syntax_error(path, number, "an empty key"));
        }
        if section.entries.iter().any(|e| e.key == key) {
            return Err(syntax_error(
                path,
                number,
                format!("duplicate key `{key}` in section `[{}]`", section.name),
            ));
        }
        section.entries.push(IniEntry {
            key: key.to_owned(),
            value: value.trim().to_owned(),
            line: number,
        });
        last_value_open = true;
    }
    sections.retain(|s| !s.name.starts_with('_'));
    Ok(IniDocument {
        path: path.to_owned(),
        sections,
    })
}

/// Reads and parses a file; `None` when it does not exist.
pub fn read_ini(path: &Path) -> Result<Option<IniDocument>> {
    match std::fs::read(path) {
        Ok(bytes) => {
            let text = String::from_utf8(bytes).map_err(|_| {
                Error::new(
                    ErrorKind::LayerFile,
                    format!("`{}` is not valid UTF-8", path.display()),
                )
            })?;
            parse_ini(&text, path).map(Some)
        }
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(err) => Err(Error::io("cannot read", path, &err)),
    }
}

/// Replaces each `{{ NAME }}` by the value of NAME (empty when unset). Anything else
/// between braces (filters, expressions) is left as written.
pub fn render(value: &str, lookup: impl Fn(&str) -> Option<String>) -> String {
    if !value.contains("{{") {
        return value.to_owned();
    }
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    while let Some(open) = rest.find("{{") {
        out.push_str(&rest[..open]);
        let after = &rest[open + 2..];
        match after.find("}}") {
            Some(close) => {
                let name = after[..close].trim();
                let is_name = !name.is_empty()
                    && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
                if is_name {
                    out.push_str(&lookup(name).unwrap_or_default());
                } else {
                    out.push_str(&rest[open..open + 2 + close + 2]);
                }
                rest = &after[close + 2..];
            }
            None => {
                out.push_str(&rest[open..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

/// A raw key split into its real key and variant (`debug[DEV]` → `debug`, `dev`).
pub fn split_variant(raw_key: &str) -> (&str, Option<String>) {
    if raw_key.ends_with(']')
        && let Some(open) = raw_key.find('[')
    {
        let variant = raw_key[open + 1..raw_key.len() - 1].to_lowercase();
        return (&raw_key[..open], Some(variant));
    }
    (raw_key, None)
}

/// How well a variant fits the configuration name (`MFCONFIG`, lower case): `None` when it
/// does not apply; otherwise higher wins (opinionated_configparser's scoring).
pub fn variant_score(variant: Option<&str>, configuration: &str) -> Option<f64> {
    let Some(variant) = variant else {
        return Some(0.5);
    };
    if variant == configuration {
        return Some(f64::INFINITY);
    }
    let parts: Vec<&str> = configuration.split('_').collect();
    (1..parts.len())
        .rev()
        .find(|&i| variant == parts[..i].join("_"))
        .map(|i| i as f64)
}

/// One resolved value and where it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Resolved {
    pub value: String,
    pub file: PathBuf,
    pub line: usize,
    /// The variant that won (`None`: the plain key).
    pub variant: Option<String>,
}

/// Section → real key → resolved value.
pub type ResolvedConfig = BTreeMap<String, BTreeMap<String, Resolved>>;

/// Merges `documents` (increasing priority: a later file replaces an identical section
/// and raw key) and resolves variants against `configuration`.
pub fn resolve(documents: &[IniDocument], configuration: &str) -> ResolvedConfig {
    // (section, raw key) → (value, file, line), later files replacing earlier ones, the
    // order of first appearance kept for ties.
    let mut merged: Vec<(String, String, String, PathBuf, usize)> = Vec::new();
    for document in documents {
        for section in &document.sections {
            for entry in &section.entries {
                match merged
                    .iter_mut()
                    .find(|m| m.0 == section.name && m.1 == entry.key)
                {
                    Some(existing) => {
                        existing.2 = entry.value.clone();
                        existing.3 = document.path.clone();
                        existing.4 = entry.line;
                    }
                    None => merged.push((
                        section.name.clone(),
                        entry.key.clone(),
                        entry.value.clone(),
                        document.path.clone(),
                        entry.line,
                    )),
                }
            }
        }
    }
    let configuration = configuration.to_lowercase();
    let mut resolved: ResolvedConfig = BTreeMap::new();
    let mut scores: BTreeMap<(String, String), f64> = BTreeMap::new();
    for (section, raw_key, value, file, line) in merged {
        let (key, variant) = split_variant(&raw_key);
        let Some(score) = variant_score(variant.as_deref(), &configuration) else {
            continue;
        };
        let slot = (section.clone(), key.to_owned());
        if scores.get(&slot).is_some_and(|best| *best >= score) {
            continue;
        }
        scores.insert(slot, score);
        resolved.entry(section).or_default().insert(
            key.to_owned(),
            Resolved {
                value,
                file,
                line,
                variant,
            },
        );
    }
    // Sections present without keys still exist.
    for document in documents {
        for section in &document.sections {
            resolved.entry(section.name.clone()).or_default();
        }
    }
    resolved
}

/// The `[general]` section of a plugin, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct General {
    pub version: String,
    pub release: String,
    pub summary: String,
    pub license: String,
    pub url: String,
    pub maintainer: String,
    pub vendor: String,
    pub add_plugin_dir_to_python_path: bool,
}

/// True for mfplugin's booleans: `1`, `true`, `yes`, `y`, `t` (any case).
pub fn is_true(value: &str) -> bool {
    matches!(
        value.trim().to_lowercase().as_str(),
        "1" | "true" | "yes" | "y" | "t"
    )
}

/// Reads and validates `[general]` of `<home>/config.ini`, values rendered with `env`
/// and variants resolved against `configuration`. Every problem is listed, one per
/// line, naming the file, section and key.
pub fn read_general(home: &Path, env: &Env, configuration: &str) -> Result<General> {
    let path = home.join("config.ini");
    let Some(document) = read_ini(&path)? else {
        return Err(Error::new(
            ErrorKind::LayerFile,
            format!("configuration file `{}` is missing", path.display()),
        ));
    };
    general_from(&[document], &path, env, configuration)
}

/// Validates `[general]` from already parsed documents (blamed on `path`).
pub fn general_from(
    documents: &[IniDocument],
    path: &Path,
    env: &Env,
    configuration: &str,
) -> Result<General> {
    let resolved = resolve(documents, configuration);
    let mut problems = Vec::new();
    let general = resolved.get("general");
    if general.is_none() {
        problems.push("[section: general] required section is missing".to_owned());
    }
    let value = |key: &str| -> Option<String> {
        general
            .and_then(|g| g.get(key))
            .map(|r| render(&r.value, |name| env.get(name).map(str::to_owned)))
    };
    let required = |key: &str, problems: &mut Vec<String>| -> String {
        match value(key) {
            Some(v) if !v.is_empty() => v,
            Some(_) if general.is_some() => {
                problems.push(format!(
                    "[section: general][key: {key}] empty values not allowed"
                ));
                String::new()
            }
            _ => {
                if general.is_some() {
                    problems.push(format!("[section: general][key: {key}] required field"));
                }
                String::new()
            }
        }
    };
    let version = required("_version", &mut problems);
    if !version.is_empty()
        && !version
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-_.".contains(&b))
    {
        problems.push(format!(
            "[section: general][key: _version] value `{version}` does not match ^[a-z0-9-_\\.]+$"
        ));
    }
    let summary = required("_summary", &mut problems);
    let license = required("_license", &mut problems);
    let url = required("_url", &mut problems);
    let maintainer = required("_maintainer", &mut problems);
    let vendor = required("_vendor", &mut problems);
    let release = match value("_release") {
        None => "1".to_owned(),
        Some(release) if release.is_empty() => "1".to_owned(),
        Some(release) if release == "null" => String::new(),
        Some(release) => release,
    };
    let add_plugin_dir_to_python_path = value("_add_plugin_dir_to_python_path")
        .map(|v| is_true(&v))
        .unwrap_or(true);
    if !problems.is_empty() {
        let mut error = Error::new(
            ErrorKind::LayerFile,
            format!("invalid configuration file `{}`", path.display()),
        );
        for problem in problems {
            error = error.caused_by(problem);
        }
        return Err(error);
    }
    Ok(General {
        version,
        release,
        summary,
        license,
        url,
        maintainer,
        vendor,
        add_plugin_dir_to_python_path,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<IniDocument> {
        parse_ini(text, Path::new("/p/config.ini"))
    }

    #[test]
    fn the_dialect_follows_mfplugin_configparser() {
        let document = parse(
            "# comment\n[general]\n_version = 1.0.0\nkey:with:colons = a ; not a comment # nor this\n\
             Mixed_Case=Value\nmulti = first\n  second\n\tthird\n\n[_private]\nx=1\n[custom]\nempty=\n",
        )
        .unwrap();
        let general = document.section("general").unwrap();
        assert_eq!(general.entries[1].key, "key:with:colons");
        assert_eq!(general.entries[1].value, "a ; not a comment # nor this");
        assert_eq!(general.entries[2].key, "Mixed_Case");
        assert_eq!(general.entries[3].value, "first\nsecond\nthird");
        assert!(document.section("_private").is_none());
        assert_eq!(document.section("custom").unwrap().entries[0].value, "");
    }

    #[test]
    fn syntax_errors_name_the_file_and_line() {
        let error = parse("[a]\nx=1\nx=2\n").unwrap_err();
        assert_eq!(
            error.message(),
            "invalid configuration file `/p/config.ini` at line 3"
        );
        assert_eq!(error.causes(), ["duplicate key `x` in section `[a]`"]);
        assert!(parse("[a]\n[a]\n").is_err());
        assert!(parse("[a]\nnoequal\n").is_err());
        assert!(parse("x=1\n").is_err());
        assert!(parse("[a\n").is_err());
    }

    #[test]
    fn rendering_replaces_names_and_leaves_the_rest() {
        let lookup = |name: &str| (name == "HOME").then(|| "/home/u".to_owned());
        assert_eq!(render("{{HOME}}/x {{ HOME }}", lookup), "/home/u/x /home/u");
        assert_eq!(render("{{UNSET}}", lookup), "");
        assert_eq!(render("{{ x | upper }} {{", lookup), "{{ x | upper }} {{");
    }

    #[test]
    fn the_eleven_variant_examples_of_the_reference_hold() {
        let text = "[s]\ndebug=0\ndebug[DEV]=1\ndebug[DEV_JOHN]=2\ndebug[DEV_PETER]=3\n\
                    debug[DEV_JOHN_MONDAY]=4\ndebug[DEV_JOHN_TUESDAY]=5\ndebug[QA]=6\n";
        let document = parse(text).unwrap();
        let cases = [
            ("FOO", "0"),
            ("DEV", "1"),
            ("DEV_JOHN_MONDAY", "4"),
            ("DEV_JOHN_FRIDAY", "2"),
            ("DEV_PETER", "3"),
            ("DEV_KATE", "1"),
            ("DEV_SMITH_FOO_BAR_1", "1"),
            ("DEV_JOHN_QA", "2"),
            ("FOO_QA", "0"),
            ("QA5", "0"),
            ("QA_5", "6"),
        ];
        for (configuration, expected) in cases {
            let resolved = resolve(std::slice::from_ref(&document), configuration);
            assert_eq!(
                resolved["s"]["debug"].value, expected,
                "MFCONFIG={configuration}"
            );
        }
    }

    #[test]
    fn a_later_file_replaces_the_same_raw_key_only() {
        let plugin = parse("[s]\nfoo=plugin\nfoo[DEV]=dev\nbar=1\n").unwrap();
        let op = parse_ini("[s]\nfoo=op\nbar=2\n", Path::new("/op.ini")).unwrap();
        let resolved = resolve(&[plugin, op], "DEV");
        assert_eq!(resolved["s"]["foo"].value, "dev");
        assert_eq!(resolved["s"]["bar"].value, "2");
        assert_eq!(resolved["s"]["bar"].file, Path::new("/op.ini"));
    }

    #[test]
    fn general_is_validated_with_every_problem_listed() {
        let document = parse("[general]\n_version=1.0-BAD\n_summary=\n").unwrap();
        let error = general_from(
            &[document],
            Path::new("/p/config.ini"),
            &Env::default(),
            "generic",
        )
        .unwrap_err();
        assert_eq!(
            error.message(),
            "invalid configuration file `/p/config.ini`"
        );
        let causes = error.causes().join("\n");
        assert!(
            causes.contains("[section: general][key: _version] value `1.0-BAD` does not match")
        );
        assert!(causes.contains("[section: general][key: _summary] empty values not allowed"));
        assert!(causes.contains("[section: general][key: _license] required field"));
        assert!(causes.contains("[section: general][key: _vendor] required field"));
    }

    #[test]
    fn general_defaults_and_rendering_apply() {
        let document = parse(
            "[general]\n_version={{V}}\n_summary=s\n_license=BSD\n_url=http://x\n_maintainer=m\n_vendor=v\n\
             _add_plugin_dir_to_python_path=no\n",
        )
        .unwrap();
        let env = Env::from_pairs([("V", "1.2.3")]);
        let general = general_from(&[document], Path::new("/p"), &env, "generic").unwrap();
        assert_eq!(general.version, "1.2.3");
        assert_eq!(general.release, "1");
        assert!(!general.add_plugin_dir_to_python_path);
    }
}
