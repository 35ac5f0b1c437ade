//! Plugin configuration files: the `config.ini` dialect (reference C1), variants (C2),
//! rendering, and the schema every plugin must pass (C3).
//!
//! The dialect is Python configparser's as mfplugin set it up, read with exactly its
//! algorithm: `=` is the only delimiter (`:` belongs to the key), only lines starting
//! with `#` are comments (`;` is data, no inline comments), keys and section names keep
//! their case, a duplicate section or key within one file is an error, a line indented
//! more than its key continues the value (blank lines inside belong to it), white space
//! is Python's (`str.isspace`), lines end at `\n`, `\r\n` or `\r`, a section header runs
//! to the last `]`, a key without `=` is an error, sections starting with `_` are
//! dropped. Errors name the file and the line. A file holds at most [`MAX_KEYS`] keys
//! and [`MAX_FILE_SIZE`] bytes; every step is linear. (The `rust-ini` crate cannot read
//! this dialect: it takes `:` as a delimiter and `;` as a comment, and merges duplicate
//! keys instead of refusing them.)
//!
//! Values may hold `{{ NAME }}` (the variable's value, empty when unset) and
//! `{{ 'text' }}`: the part of Jinja2 plugin configurations use. Any other expression,
//! filter or block is an error naming the file and line ([`try_render`]). Values are
//! rendered once (the original rendered twice, so `{{ '{{' }}HOME}}` gave HOME's value;
//! here it gives `{{HOME}}`).
//!
//! A plugin's configuration is layered (reference C2, DESIGN §6): its `config.ini`, then
//! the OP override `RUNTIME/config/plugins/NAME.ini`, then the system one
//! `SYSCONF/<module>/plugins/NAME.ini`. Override files may only change keys that do not
//! start with `_` (a deliberate fix of reference H11): such keys are reported and
//! ignored. Variants are resolved once over the merged keys; sections left without keys
//! disappear; the result is validated against the module's schema (generic `[general]`,
//! `[app_*]`, `[extra_daemon_*]`, `[custom*]`, mfserv's apps, mfdata's steps), blaming
//! the file that made it invalid. Keys named `hostname`, `*_hostname` (`hostnames`,
//! `*_hostnames`) get a derived `*_ip` (`*_ips`) key (C4), and the public keys become
//! the `${MODULE}_CURRENT_PLUGIN_<SECTION>_<KEY>` variables (C6) with the schema's
//! defaults and derived values.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};

use crate::context::ModuleContext;
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

/// The most keys one configuration file, and a plugin's layered configuration, may
/// hold. Real plugins have a few dozen; the limit keeps every command's cost bounded and
/// the plugin environment within what one `exec` can pass.
pub const MAX_KEYS: usize = 2_000;

/// The largest configuration file read, in bytes.
pub const MAX_FILE_SIZE: u64 = 1024 * 1024;

/// True for the characters Python's `str.isspace` (and `re`'s `\s`) accepts: Unicode
/// white space plus the separators `\x1c`–`\x1f`.
pub fn is_python_space(c: char) -> bool {
    c.is_whitespace() || ('\x1c'..='\x1f').contains(&c)
}

/// `text.strip()` as Python does it.
pub fn python_strip(text: &str) -> &str {
    text.trim_matches(is_python_space)
}

/// The lines of `text` as Python's universal newlines split them (`\n`, `\r\n`, `\r`).
pub fn python_lines(text: &str) -> impl Iterator<Item = &str> {
    let mut rest = text;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let end = rest.find(['\n', '\r']).unwrap_or(rest.len());
        let line = &rest[..end];
        let skip = if rest[end..].starts_with("\r\n") {
            2
        } else {
            usize::from(end < rest.len())
        };
        rest = &rest[end + skip..];
        Some(line)
    })
}

/// Parses `text` read from `path` (the path only serves messages), line by line as
/// Python's `configparser` does with mfplugin's settings: a line is a continuation when
/// it is indented more than the line of its key (any Unicode white space indents),
/// blank lines inside a value belong to it, comment lines are skipped without ending it,
/// a section header is `[` up to the last `]` (text after it is ignored).
pub fn parse_ini(text: &str, path: &Path) -> Result<IniDocument> {
    let mut sections: Vec<IniSection> = Vec::new();
    let mut section_names: HashSet<String> = HashSet::new();
    let mut section_keys: HashSet<String> = HashSet::new();
    let mut key_count = 0usize;
    // The open value (lines joined at the end) and the indent of its key's line.
    let mut value_lines: Vec<&str> = Vec::new();
    let mut has_key = false;
    let mut indent_level = 0usize;
    let close_value = |sections: &mut Vec<IniSection>, lines: &mut Vec<&str>| {
        if let Some(entry) = sections.last_mut().and_then(|s| s.entries.last_mut())
            && !lines.is_empty()
        {
            let joined = lines.join("\n");
            entry.value = joined.trim_end_matches(is_python_space).to_owned();
        }
        lines.clear();
    };
    for (index, raw) in python_lines(text).enumerate() {
        let number = index + 1;
        let stripped = python_strip(raw);
        if stripped.starts_with('#') {
            continue;
        }
        if stripped.is_empty() {
            if has_key {
                value_lines.push("");
            }
            continue;
        }
        let indent = raw.chars().take_while(|c| is_python_space(*c)).count();
        if has_key && indent > indent_level {
            value_lines.push(stripped);
            continue;
        }
        indent_level = indent;
        close_value(&mut sections, &mut value_lines);
        has_key = false;
        if let Some(rest) = stripped.strip_prefix('[')
            && let Some(close) = rest.rfind(']')
            && close > 0
        {
            let name = &rest[..close];
            if !section_names.insert(name.to_owned()) {
                return Err(syntax_error(
                    path,
                    number,
                    format!("duplicate section `[{name}]`"),
                ));
            }
            section_keys.clear();
            sections.push(IniSection {
                name: name.to_owned(),
                line: number,
                entries: Vec::new(),
            });
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
            let what = if stripped.starts_with('[') {
                format!("bad section header `{stripped}`")
            } else {
                format!("`{stripped}` has no `=`")
            };
            return Err(syntax_error(path, number, what));
        };
        let key = key.trim_end_matches(is_python_space);
        if key.is_empty() {
            return Err(syntax_error(path, number, "an empty key"));
        }
        if !section_keys.insert(key.to_owned()) {
            return Err(syntax_error(
                path,
                number,
                format!("duplicate key `{key}` in section `[{}]`", section.name),
            ));
        }
        key_count += 1;
        if key_count > MAX_KEYS {
            return Err(syntax_error(
                path,
                number,
                format!("too many keys: a configuration file may hold at most {MAX_KEYS} keys"),
            ));
        }
        section.entries.push(IniEntry {
            key: key.to_owned(),
            value: String::new(),
            line: number,
        });
        value_lines.push(python_strip(value));
        has_key = true;
    }
    close_value(&mut sections, &mut value_lines);
    sections.retain(|s| !s.name.starts_with('_'));
    Ok(IniDocument {
        path: path.to_owned(),
        sections,
    })
}

/// Reads and parses a file; `None` when it does not exist. Files over
/// [`MAX_FILE_SIZE`] are refused.
pub fn read_ini(path: &Path) -> Result<Option<IniDocument>> {
    // Only a regular file is read (a fifo is refused, not waited on), up to a limit.
    let bytes = match crate::plugin::model::read_small_bytes(path, MAX_FILE_SIZE) {
        Ok(bytes) => bytes,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(err) if err.kind() == std::io::ErrorKind::InvalidData => {
            return Err(Error::new(
                ErrorKind::LayerFile,
                format!("configuration file `{}` is too big", path.display()),
            )
            .caused_by(format!(
                "a configuration file may hold at most {MAX_FILE_SIZE} bytes"
            )));
        }
        Err(err) => return Err(Error::io("cannot read", path, &err)),
    };
    let text = String::from_utf8(bytes).map_err(|_| {
        Error::new(
            ErrorKind::LayerFile,
            format!("`{}` is not valid UTF-8", path.display()),
        )
    })?;
    parse_ini(&text, path).map(Some)
}

/// Renders the `{{ … }}` of a configuration value the way Jinja2 does for the forms
/// plugin configurations use: `{{ NAME }}` (a variable name: its value, empty when
/// unset) and `{{ 'text' }}` / `{{ "text" }}` (the text as written, e.g. `{{ '{{' }}`
/// for a literal `{{`). Any other expression, a filter, a `{% … %}` block, a `{# … #}`
/// comment or an unclosed `{{` is an error (the reason is returned): mfenv never
/// guesses what Jinja2 would have printed.
pub fn try_render(
    value: &str,
    lookup: impl Fn(&str) -> Option<String>,
) -> std::result::Result<String, String> {
    if !value.contains('{') {
        return Ok(value.to_owned());
    }
    for block in ["{%", "{#"] {
        if value.contains(block) {
            return Err(format!(
                "`{block}` starts a Jinja2 block or comment, which mfenv does not render"
            ));
        }
    }
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    while let Some(open) = rest.find("{{") {
        out.push_str(&rest[..open]);
        let after = &rest[open + 2..];
        let Some(close) = find_expression_end(after) else {
            return Err("`{{` is not closed by `}}`".to_owned());
        };
        let expression = python_strip(&after[..close]);
        out.push_str(&render_expression(expression, &lookup)?);
        rest = &after[close + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Where the `}}` closing an expression is, skipping quoted strings (`{{ '}}' }}`).
fn find_expression_end(text: &str) -> Option<usize> {
    let mut quote: Option<char> = None;
    for (index, c) in text.char_indices() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if c == '\'' || c == '"' => quote = Some(c),
            None if text[index..].starts_with("}}") => return Some(index),
            None => {}
        }
    }
    None
}

fn render_expression(
    expression: &str,
    lookup: &impl Fn(&str) -> Option<String>,
) -> std::result::Result<String, String> {
    let is_name = expression
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && expression
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_');
    // Jinja2's own constants are not variables.
    const CONSTANTS: [&str; 6] = ["true", "false", "none", "True", "False", "None"];
    if is_name && !CONSTANTS.contains(&expression) {
        return Ok(lookup(expression).unwrap_or_default());
    }
    for quote in ['\'', '"'] {
        if let Some(text) = expression
            .strip_prefix(quote)
            .and_then(|rest| rest.strip_suffix(quote))
            && !text.contains(quote)
            && !text.contains('\\')
        {
            return Ok(text.to_owned());
        }
    }
    Err(format!(
        "`{{{{ {expression} }}}}` is not supported: only `{{{{ NAME }}}}` and `{{{{ 'text' }}}}` are rendered"
    ))
}

/// A raw key split into its real key and variant (`debug[DEV]` → `debug`, `dev`).
pub fn split_variant(raw_key: &str) -> (&str, Option<String>) {
    if raw_key.ends_with(']')
        && let Some(open) = raw_key.find('[')
    {
        let variant = raw_key[open + 1..raw_key.len() - 1].to_lowercase();
        // `k[]` is the default variant: the plain key.
        return (&raw_key[..open], Some(variant).filter(|v| !v.is_empty()));
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

/// The (section, real key) pairs of a resolved configuration in the order Python's
/// configparser keeps them (first appearance across the files): the order in which
/// the original exported them, so the last of two keys giving the same variable wins.
pub type KeyOrder = Vec<(String, String)>;

/// Merges `documents` (increasing priority: a later file replaces an identical section
/// and raw key) and resolves variants against `configuration`.
pub fn resolve(documents: &[IniDocument], configuration: &str) -> ResolvedConfig {
    resolve_ordered(documents, configuration).0
}

/// [`resolve`], with the order of the keys. A section left without keys (none, or only
/// unselected variants) disappears, as with opinionated_configparser. Linear in the
/// number of keys.
pub fn resolve_ordered(
    documents: &[IniDocument],
    configuration: &str,
) -> (ResolvedConfig, KeyOrder) {
    struct Merged<'a> {
        section: &'a str,
        raw_key: &'a str,
        entry: &'a IniEntry,
        file: &'a Path,
    }
    // (section, raw key) → position in `merged`; later files replace the value, the
    // position of first appearance is kept.
    let mut positions: HashMap<(&str, &str), usize> = HashMap::new();
    let mut merged: Vec<Merged<'_>> = Vec::new();
    for document in documents {
        for section in &document.sections {
            for entry in &section.entries {
                let item = Merged {
                    section: &section.name,
                    raw_key: &entry.key,
                    entry,
                    file: &document.path,
                };
                match positions.get(&(section.name.as_str(), entry.key.as_str())) {
                    Some(&at) => merged[at] = item,
                    None => {
                        positions.insert((&section.name, &entry.key), merged.len());
                        merged.push(item);
                    }
                }
            }
        }
    }
    let configuration = configuration.to_lowercase();
    let mut resolved: ResolvedConfig = BTreeMap::new();
    let mut best: HashMap<(&str, &str), f64> = HashMap::new();
    let mut order = KeyOrder::new();
    for item in &merged {
        let (key, variant) = split_variant(item.raw_key);
        let Some(score) = variant_score(variant.as_deref(), &configuration) else {
            continue;
        };
        match best.get_mut(&(item.section, key)) {
            Some(current) if *current >= score => continue,
            Some(current) => *current = score,
            None => {
                best.insert((item.section, key), score);
                order.push((item.section.to_owned(), key.to_owned()));
            }
        }
        resolved.entry(item.section.to_owned()).or_default().insert(
            key.to_owned(),
            Resolved {
                value: item.entry.value.clone(),
                file: item.file.to_owned(),
                line: item.entry.line,
                variant,
            },
        );
    }
    (resolved, order)
}

/// One file of a plugin's configuration layering.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigFile {
    pub path: PathBuf,
    /// An OP or system override: keys starting with `_` are refused.
    pub is_override: bool,
}

/// The files of plugin `name` at `home`, in increasing priority.
pub fn layered_files(home: &Path, name: &str, context: &ModuleContext) -> Vec<ConfigFile> {
    vec![
        ConfigFile {
            path: home.join("config.ini"),
            is_override: false,
        },
        ConfigFile {
            path: context
                .runtime_home
                .join("config/plugins")
                .join(format!("{name}.ini")),
            is_override: true,
        },
        ConfigFile {
            path: context
                .sysconf_dir
                .join(&context.module_lowercase)
                .join("plugins")
                .join(format!("{name}.ini")),
            is_override: true,
        },
    ]
}

/// A plugin's configuration, merged, resolved, rendered, validated and with its derived
/// keys.
#[derive(Debug, Clone, PartialEq)]
pub struct LayeredConfig {
    pub values: ResolvedConfig,
    /// The keys in the order of the files (see [`KeyOrder`]).
    pub order: KeyOrder,
    /// The files that exist, in increasing priority.
    pub files: Vec<PathBuf>,
    /// One line per ignored private key of an override file.
    pub warnings: Vec<String>,
}

/// True for a real key (variant removed) that only the plugin's own file may set.
fn is_private(raw_key: &str) -> bool {
    split_variant(raw_key).0.starts_with('_')
}

/// Reads `files` (missing override files skipped), drops the private keys of override
/// files (one warning each), resolves the variants against `configuration` once over
/// the merged keys, renders the values with `lookup` ([`try_render`]), validates the
/// result against the schema of `module` (an invalid configuration is an error blaming
/// the file that made it invalid) and adds the derived `*_ip` keys, resolving host names
/// with `resolve_host`.
pub fn read_layered(
    files: &[ConfigFile],
    configuration: &str,
    module: &str,
    lookup: impl Fn(&str) -> Option<String>,
    resolve_host: impl Fn(&str) -> Option<String>,
) -> Result<LayeredConfig> {
    let mut documents = Vec::new();
    let mut warnings = Vec::new();
    for file in files {
        let Some(mut document) = read_ini(&file.path)? else {
            if !file.is_override {
                return Err(Error::new(
                    ErrorKind::LayerFile,
                    format!("configuration file `{}` is missing", file.path.display()),
                ));
            }
            continue;
        };
        if file.is_override {
            for section in &mut document.sections {
                section.entries.retain(|entry| {
                    if !is_private(&entry.key) {
                        return true;
                    }
                    warnings.push(format!(
                        "mfenv: warning: `{}` line {}: key `{}` of section `[{}]` starts with `_`: only the plugin's `config.ini` may set it, ignored",
                        document.path.display(),
                        entry.line,
                        entry.key,
                        section.name
                    ));
                    false
                });
            }
        }
        documents.push(document);
    }
    let (mut values, order) = resolve_ordered(&documents, configuration);
    if order.len() > MAX_KEYS {
        let names: Vec<String> = documents
            .iter()
            .map(|d| format!("`{}`", d.path.display()))
            .collect();
        return Err(Error::new(
            ErrorKind::LayerFile,
            format!("the configuration of {} is too big", names.join(" and ")),
        )
        .caused_by(format!(
            "too many keys: a configuration may hold at most {MAX_KEYS} keys"
        )));
    }
    render_all(&mut values, &lookup)?;
    if let Err(problems) = validate(&values, module) {
        return Err(blame(&documents, configuration, module, &lookup, problems));
    }
    for section in values.values_mut() {
        add_derived_addresses(section, &resolve_host);
    }
    Ok(LayeredConfig {
        values,
        order,
        files: documents.into_iter().map(|d| d.path).collect(),
        warnings,
    })
}

/// Renders every value ([`try_render`]); what cannot be rendered is an error naming
/// the file, the line, the section and the key.
fn render_all(values: &mut ResolvedConfig, lookup: &impl Fn(&str) -> Option<String>) -> Result<()> {
    for (section, keys) in values.iter_mut() {
        for (key, resolved) in keys.iter_mut() {
            resolved.value = try_render(&resolved.value, lookup).map_err(|reason| {
                Error::new(
                    ErrorKind::LayerFile,
                    format!(
                        "cannot render key `{key}` of section `[{section}]` in `{}` at line {}",
                        resolved.file.display(),
                        resolved.line
                    ),
                )
                .caused_by(reason)
            })?;
        }
    }
    Ok(())
}

/// The error for an invalid layered configuration (reference C5): the plugin's own
/// file when it is invalid alone, else the first override file that makes it invalid
/// (alone on top of the plugin's file), else all the files.
fn blame(
    documents: &[IniDocument],
    configuration: &str,
    module: &str,
    lookup: &impl Fn(&str) -> Option<String>,
    problems: Vec<String>,
) -> Error {
    let problems_of = |subset: &[IniDocument]| -> Vec<String> {
        let mut values = resolve(subset, configuration);
        if render_all(&mut values, lookup).is_err() {
            return Vec::new();
        }
        validate(&values, module).err().unwrap_or_default()
    };
    let with_causes = |message: String, causes: Vec<String>| {
        causes
            .into_iter()
            .fold(Error::new(ErrorKind::LayerFile, message), Error::caused_by)
    };
    let Some((plugin, overrides)) = documents.split_first() else {
        return with_causes("invalid configuration".to_owned(), problems);
    };
    let alone = problems_of(std::slice::from_ref(plugin));
    if !alone.is_empty() {
        return with_causes(
            format!("invalid configuration file `{}`", plugin.path.display()),
            alone,
        );
    }
    for document in overrides {
        let with_override = problems_of(&[plugin.clone(), document.clone()]);
        if !with_override.is_empty() {
            return with_causes(
                format!(
                    "invalid configuration, please fix `{}`",
                    document.path.display()
                ),
                with_override,
            );
        }
    }
    let names: Vec<String> = documents
        .iter()
        .map(|d| format!("`{}`", d.path.display()))
        .collect();
    with_causes(
        format!("invalid configuration, please fix {}", names.join(" or ")),
        problems,
    )
}

/// Adds `<key>_ip` for `hostname` and `*_hostname` keys, `<key>_ips` for `hostnames`
/// and `*_hostnames` (`;`-separated, not stripped), unless the section has them
/// (reference C4).
fn add_derived_addresses(
    section: &mut BTreeMap<String, Resolved>,
    resolve_host: &impl Fn(&str) -> Option<String>,
) {
    let mut derived = Vec::new();
    for (key, resolved) in section.iter() {
        let (suffix, value) = if key == "hostname" || key.ends_with("_hostname") {
            ("_ip", host_address(&resolved.value, resolve_host))
        } else if key == "hostnames" || key.ends_with("_hostnames") {
            let addresses: Vec<String> = resolved
                .value
                .split(';')
                .map(|host| host_address(host, resolve_host))
                .collect();
            ("_ips", addresses.join(";"))
        } else {
            continue;
        };
        let name = format!("{key}{suffix}");
        if !section.contains_key(&name) {
            derived.push((
                name,
                Resolved {
                    value,
                    file: resolved.file.clone(),
                    line: resolved.line,
                    variant: resolved.variant.clone(),
                },
            ));
        }
    }
    section.extend(derived);
}

/// The IPv4 address of `host` as mfutil gives it with Python's `gethostbyname`: local
/// names are `127.0.0.1`, `null` and paths (unix sockets) are kept, the empty name is
/// `0.0.0.0` and `<broadcast>` `255.255.255.255` (as CPython resolves them), a failure is
/// `dns_error`. The name is not stripped (` db` does not resolve).
pub fn host_address(host: &str, resolve_host: &impl Fn(&str) -> Option<String>) -> String {
    let lower = host.to_lowercase();
    if lower == "null" || lower.starts_with('/') {
        return host.to_owned();
    }
    match lower.as_str() {
        "127.0.0.1" | "localhost" | "localhost.localdomain" => "127.0.0.1".to_owned(),
        "" => "0.0.0.0".to_owned(),
        "<broadcast>" => "255.255.255.255".to_owned(),
        _ => resolve_host(&lower).unwrap_or_else(|| "dns_error".to_owned()),
    }
}

/// Resolves a host name to its first IPv4 address with the system resolver.
pub fn system_resolve_host(host: &str) -> Option<String> {
    use std::net::ToSocketAddrs;
    if host.is_empty() {
        return None;
    }
    (host, 0)
        .to_socket_addrs()
        .ok()?
        .find(|address| address.is_ipv4())
        .map(|address| address.ip().to_string())
}

/// The type of a schema key, with its default.
#[derive(Debug, Clone, Copy)]
enum KeyType {
    /// Python `int(value)`, 0 when unreadable.
    Integer(i64),
    /// Python `float(value)`, 0.0 when unreadable.
    Float(f64),
    /// A boolean; `Some(variable)`: its default `AUTO` reads `${MODULE}_<variable>`.
    Boolean(Option<&'static str>),
    /// Text, `null` meaning empty.
    Text(&'static str),
}

/// The public keys of the generic command schema (`[app_*]`, `[extra_daemon_*]`).
const COMMAND_SCHEMA: [(&str, KeyType); 10] = [
    ("numprocesses", KeyType::Integer(0)),
    ("graceful_timeout", KeyType::Integer(10)),
    ("max_age", KeyType::Integer(0)),
    ("rlimit_as", KeyType::Integer(0)),
    ("rlimit_nofile", KeyType::Integer(0)),
    ("rlimit_stack", KeyType::Integer(0)),
    ("rlimit_fsize", KeyType::Integer(0)),
    ("debug", KeyType::Boolean(None)),
    (
        "log_split_stdout_stderr",
        KeyType::Boolean(Some("LOG_TRY_TO_SPLIT_STDOUT_STDERR")),
    ),
    (
        "log_split_multiple_workers",
        KeyType::Boolean(Some("LOG_TRY_TO_SPLIT_MULTIPLE_WORKERS")),
    ),
];

/// mfserv's public additions to `[app_*]`.
const MFSERV_APP_SCHEMA: [(&str, KeyType); 6] = [
    ("smart_stop_signal", KeyType::Integer(15)),
    ("smart_stop_delay", KeyType::Integer(3)),
    ("smart_start_delay", KeyType::Integer(3)),
    ("timeout", KeyType::Integer(0)),
    (
        "virtualdomain_based_routing_extra_vhosts",
        KeyType::Text(""),
    ),
    ("prefix_based_routing_extra_routes", KeyType::Text("")),
];

/// mfdata's public additions to `[step_*]` (on top of the command schema).
const MFDATA_STEP_SCHEMA: [(&str, KeyType); 8] = [
    (
        "watched_directories",
        KeyType::Text("{MFDATA_CURRENT_STEP_DIR}"),
    ),
    ("failure_policy", KeyType::Text("keep")),
    ("failure_policy_move_dest_dir", KeyType::Text("")),
    ("timeout", KeyType::Integer(600)),
    ("retry_total", KeyType::Integer(0)),
    ("retry_min_wait", KeyType::Float(10.0)),
    ("retry_max_wait", KeyType::Float(120.0)),
    ("retry_backoff", KeyType::Float(0.0)),
];

/// The values mfdata's `failure_policy` accepts.
const FAILURE_POLICIES: [&str; 3] = ["keep", "delete", "move"];

/// What a section is to the schema of a module.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SectionKind {
    General,
    /// `[app_*]` (`mfserv`: with mfserv's keys) and `[extra_daemon_*]`.
    Command {
        mfserv_app: bool,
    },
    /// mfdata's `[step_*]`: the command schema and mfdata's keys, any other key allowed.
    Step,
    /// `[custom*]` and the module's free sections: any key, kept as text.
    Free,
    Unknown,
}

fn section_kind(name: &str, module: &str) -> SectionKind {
    let mfserv = module == "MFSERV";
    let mfdata = module == "MFDATA";
    if name == "general" {
        SectionKind::General
    } else if name.starts_with("extra_daemon_") {
        SectionKind::Command { mfserv_app: false }
    } else if name.starts_with("app_") {
        SectionKind::Command { mfserv_app: mfserv }
    } else if mfdata && name.starts_with("step_") {
        SectionKind::Step
    } else if name.starts_with("custom")
        || (mfserv && name == "internal")
        || (mfdata && name.starts_with("switch_rules"))
    {
        SectionKind::Free
    } else {
        SectionKind::Unknown
    }
}

/// The typed public keys of a section kind.
fn typed_keys(kind: SectionKind) -> Vec<(&'static str, KeyType)> {
    let mut keys = Vec::new();
    match kind {
        SectionKind::Command { mfserv_app } => {
            keys.extend(COMMAND_SCHEMA);
            if mfserv_app {
                keys.extend(MFSERV_APP_SCHEMA);
            }
        }
        SectionKind::Step => {
            keys.extend(COMMAND_SCHEMA);
            keys.extend(MFDATA_STEP_SCHEMA);
        }
        _ => {}
    }
    keys
}

fn is_exportable_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The code point of the digit 0 of each run of ten Unicode decimal digits (category
/// Nd, Unicode 14 as in Python 3.11): the digits Python's `int()` and `float()` read.
const DECIMAL_ZEROS: [u32; 66] = [
    0x30, 0x660, 0x6F0, 0x7C0, 0x966, 0x9E6, 0xA66, 0xAE6, 0xB66, 0xBE6, 0xC66, 0xCE6, 0xD66,
    0xDE6, 0xE50, 0xED0, 0xF20, 0x1040, 0x1090, 0x17E0, 0x1810, 0x1946, 0x19D0, 0x1A80, 0x1A90,
    0x1B50, 0x1BB0, 0x1C40, 0x1C50, 0xA620, 0xA8D0, 0xA900, 0xA9D0, 0xA9F0, 0xAA50, 0xABF0, 0xFF10,
    0x104A0, 0x10D30, 0x11066, 0x110F0, 0x11136, 0x111D0, 0x112F0, 0x11450, 0x114D0, 0x11650,
    0x116C0, 0x11730, 0x118E0, 0x11950, 0x11C50, 0x11D50, 0x11DA0, 0x16A60, 0x16AC0, 0x16B50,
    0x1D7CE, 0x1D7D8, 0x1D7E2, 0x1D7EC, 0x1D7F6, 0x1E140, 0x1E2F0, 0x1E950, 0x1FBF0,
];

/// The value of a Unicode decimal digit.
fn decimal_value(c: char) -> Option<u8> {
    let code = u32::from(c);
    let index = DECIMAL_ZEROS.partition_point(|zero| *zero <= code);
    let zero = DECIMAL_ZEROS[index.checked_sub(1)?];
    u8::try_from(code - zero).ok().filter(|digit| *digit < 10)
}

/// `digits` (Unicode decimal digits, single `_` between them) in ASCII.
fn python_digits(digits: &str) -> Option<String> {
    let mut out = String::with_capacity(digits.len());
    let mut after_digit = false;
    for c in digits.chars() {
        if c == '_' {
            if !after_digit {
                return None;
            }
            after_digit = false;
            continue;
        }
        out.push(char::from(b'0' + decimal_value(c)?));
        after_digit = true;
    }
    after_digit.then_some(out)
}

/// Python's `int(value)` in decimal text (any size), `None` when Python raises.
pub fn python_int(value: &str) -> Option<String> {
    let text = python_strip(value);
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    let digits = python_digits(digits)?;
    let digits = match digits.trim_start_matches('0') {
        "" => "0",
        trimmed => trimmed,
    };
    Some(if negative && digits != "0" {
        format!("-{digits}")
    } else {
        digits.to_owned()
    })
}

/// Python's `float(value)`, `None` when Python raises.
pub fn python_float(value: &str) -> Option<f64> {
    let text = python_strip(value);
    let lower = text.to_ascii_lowercase();
    let unsigned = lower.trim_start_matches(['+', '-']);
    if lower.len() - unsigned.len() <= 1 && matches!(unsigned, "inf" | "infinity" | "nan") {
        return lower.parse().ok();
    }
    // Digits (Unicode ones too, `_` between two of them) around `.`, `e`, signs.
    let mut ascii = String::with_capacity(text.len());
    let mut run = String::new();
    let flush = |run: &mut String, ascii: &mut String| -> Option<()> {
        if !run.is_empty() {
            ascii.push_str(&python_digits(run)?);
            run.clear();
        }
        Some(())
    };
    for c in text.chars() {
        if c == '_' || decimal_value(c).is_some() {
            run.push(c);
        } else {
            flush(&mut run, &mut ascii)?;
            ascii.push(c);
        }
    }
    flush(&mut run, &mut ascii)?;
    if ascii.contains(['i', 'I', 'n', 'N']) {
        return None;
    }
    ascii.parse().ok()
}

/// A float as Python's `repr` writes it (`10.0`, `1e+16`, `1e-05`).
pub fn python_float_repr(value: f64) -> String {
    if value.is_nan() {
        return "nan".to_owned();
    }
    if value.is_infinite() {
        return if value > 0.0 { "inf" } else { "-inf" }.to_owned();
    }
    if value == 0.0 {
        return if value.is_sign_negative() {
            "-0.0"
        } else {
            "0.0"
        }
        .to_owned();
    }
    let scientific = format!("{value:e}");
    let (mantissa, exponent) = scientific.split_once('e').unwrap_or((&scientific, "0"));
    let exponent: i64 = exponent.parse().unwrap_or(0);
    let sign = if mantissa.starts_with('-') { "-" } else { "" };
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let body = if (-4..16).contains(&exponent) {
        let point = exponent + 1;
        if point <= 0 {
            format!("0.{}{digits}", "0".repeat(point.unsigned_abs() as usize))
        } else {
            let point = point as usize;
            if point >= digits.len() {
                format!("{digits}{}.0", "0".repeat(point - digits.len()))
            } else {
                format!("{}.{}", &digits[..point], &digits[point..])
            }
        }
    } else {
        let (first, rest) = digits.split_at(1);
        let fraction = if rest.is_empty() {
            String::new()
        } else {
            format!(".{rest}")
        };
        let exponent_sign = if exponent < 0 { '-' } else { '+' };
        format!(
            "{first}{fraction}e{exponent_sign}{:02}",
            exponent.unsigned_abs()
        )
    };
    format!("{sign}{body}")
}

/// Python's `int(value)` or 0, as mfplugin coerces integers (0 too when it does not fit
/// 64 bits).
pub(crate) fn integer_or_zero(value: &str) -> i64 {
    python_int(value)
        .and_then(|text| text.parse().ok())
        .unwrap_or(0)
}

/// A boolean key of the command schema (`debug`, `log_split_*`) as mfplugin coerces it:
/// `value` is the key's value in its section (`None`: the key is absent); `AUTO` (that
/// exact text), or an absent key whose default is `AUTO`, reads `${module}_<variable>`
/// through `lookup`.
pub(crate) fn command_boolean(
    key: &str,
    value: Option<&str>,
    module: &str,
    lookup: impl Fn(&str) -> Option<String>,
) -> bool {
    let auto = COMMAND_SCHEMA.iter().find_map(|(name, kind)| match kind {
        KeyType::Boolean(auto) if *name == key => *auto,
        _ => None,
    });
    let text = match (value, auto) {
        (Some("AUTO"), Some(auto)) | (None, Some(auto)) => {
            lookup(&format!("{module}_{auto}")).unwrap_or_default()
        }
        (Some(value), _) => value.to_owned(),
        (None, None) => String::new(),
    };
    is_true(&text)
}

/// A key's exported text by its schema type (`value`: `None` when absent).
fn typed_text(
    key: &str,
    kind: KeyType,
    value: Option<&str>,
    module: &str,
    lookup: &impl Fn(&str) -> Option<String>,
) -> String {
    match kind {
        KeyType::Integer(default) => match value {
            Some(value) => python_int(value).unwrap_or_else(|| "0".to_owned()),
            None => default.to_string(),
        },
        KeyType::Float(default) => {
            python_float_repr(value.map_or(Some(default), python_float).unwrap_or(0.0))
        }
        KeyType::Boolean(_) => u8::from(command_boolean(key, value, module, lookup)).to_string(),
        KeyType::Text(default) => match value {
            Some(value) if value.eq_ignore_ascii_case("null") => String::new(),
            Some(value) => value.to_owned(),
            None => default.to_owned(),
        },
    }
}

/// `a + b + c` on Python integers in decimal text (`None` past 128 bits).
fn add_integers(terms: &[&str]) -> Option<String> {
    terms
        .iter()
        .try_fold(0i128, |sum, term| sum.checked_add(term.parse().ok()?))
        .map(|sum| sum.to_string())
}

/// The public keys of one section with the module's schema applied: typed values,
/// defaults of absent keys and derived values (mfserv apps: `timeout` ≤ 0 is
/// `MFSERV_NGINX_TIMEOUT`, `graceful_timeout` is `timeout + smart_stop_delay + 10`, debug
/// apps run one process without recycling; mfdata steps: `graceful_timeout` is
/// `timeout`). The keys given are marked `true`.
fn section_values(
    name: &str,
    keys: &BTreeMap<String, Resolved>,
    module: &str,
    lookup: &impl Fn(&str) -> Option<String>,
) -> BTreeMap<String, (bool, String)> {
    let kind = section_kind(name, module);
    let typed = typed_keys(kind);
    let mut values: BTreeMap<String, (bool, String)> = BTreeMap::new();
    for (key, resolved) in keys {
        let text = match typed.iter().find(|(name, _)| name == key) {
            Some((_, key_type)) => {
                typed_text(key, *key_type, Some(&resolved.value), module, lookup)
            }
            None => resolved.value.clone(),
        };
        values.insert(key.clone(), (true, text));
    }
    for (key, key_type) in &typed {
        if !values.contains_key(*key) {
            let text = typed_text(key, *key_type, None, module, lookup);
            values.insert((*key).to_owned(), (false, text));
        }
    }
    let get = |values: &BTreeMap<String, (bool, String)>, key: &str| {
        values
            .get(key)
            .map(|(_, text)| text.clone())
            .unwrap_or_default()
    };
    let set = |values: &mut BTreeMap<String, (bool, String)>, key: &str, text: String| {
        if let Some(slot) = values.get_mut(key) {
            slot.1 = text;
        }
    };
    match kind {
        SectionKind::Command { mfserv_app: true } => {
            if get(&values, "timeout").starts_with('-') || get(&values, "timeout") == "0" {
                let nginx = lookup("MFSERV_NGINX_TIMEOUT")
                    .and_then(|value| python_int(&value))
                    .unwrap_or_else(|| "0".to_owned());
                set(&mut values, "timeout", nginx);
            }
            let timeout = get(&values, "timeout");
            let delay = get(&values, "smart_stop_delay");
            if let Some(sum) = add_integers(&[&timeout, &delay, "10"]) {
                set(&mut values, "graceful_timeout", sum);
            }
            if get(&values, "debug") == "1" {
                set(&mut values, "numprocesses", "1".to_owned());
                set(&mut values, "max_age", "0".to_owned());
            }
        }
        SectionKind::Step => {
            let timeout = get(&values, "timeout");
            set(&mut values, "graceful_timeout", timeout);
        }
        _ => {}
    }
    values
}

/// The `${MODULE}_CURRENT_PLUGIN_<SECTION>_<KEY>` variables of the public keys
/// (reference C6), sorted by name: values typed by the module's schema (booleans
/// `1`/`0`, integers as Python's `int()` reads them, 0 when unreadable), defaults of
/// absent schema keys and derived values included. When two keys give the same variable
/// (they differ by case or `-`/`_`), the later one in `order` wins, as in the original.
pub fn exported_variables(
    values: &ResolvedConfig,
    order: &[(String, String)],
    module: &str,
    lookup: impl Fn(&str) -> Option<String>,
) -> BTreeMap<String, String> {
    let rank: HashMap<(&str, &str), usize> = order
        .iter()
        .enumerate()
        .map(|(index, (section, key))| ((section.as_str(), key.as_str()), index))
        .collect();
    let mut variables: BTreeMap<String, (usize, String)> = BTreeMap::new();
    let variable_name = |section: &str, key: &str| {
        format!(
            "{module}_CURRENT_PLUGIN_{}_{}",
            section.to_uppercase().replace('-', "_"),
            key.to_uppercase().replace('-', "_")
        )
    };
    for (section, keys) in values {
        if !is_exportable_name(section) {
            continue;
        }
        for (key, (given, text)) in section_values(section, keys, module, &lookup) {
            if key.starts_with('_') || !is_exportable_name(&key) {
                continue;
            }
            // Keys given come in file order; defaults and derived keys after them.
            let position = if given {
                rank.get(&(section.as_str(), key.as_str()))
                    .copied()
                    .unwrap_or(usize::MAX)
            } else {
                usize::MAX
            };
            let name = variable_name(section, &key);
            match variables.get(&name) {
                Some((existing, _)) if *existing > position => {}
                _ => {
                    variables.insert(name, (position, text));
                }
            }
        }
    }
    variables
        .into_iter()
        .map(|(name, (_, text))| (name, text))
        .collect()
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

/// Keys of `[general]` (mfplugin's generic schema).
const GENERAL_KEYS: [&str; 8] = [
    "_version",
    "_release",
    "_summary",
    "_license",
    "_url",
    "_maintainer",
    "_vendor",
    "_add_plugin_dir_to_python_path",
];

/// Keys of `[extra_daemon_*]` only: the socket the supervisor holds for the daemon,
/// and when a new worker counts as started during a hot swap.
const EXTRA_DAEMON_KEYS: [&str; 4] = ["socket", "settle", "readiness", "readiness_timeout"];

/// mfserv's additions to `[general]` (reference C3, module extensions).
const MFSERV_GENERAL_KEYS: [&str; 4] = [
    "_extra_nginx_http_conf_filename",
    "_extra_nginx_server_conf_filename",
    "_extra_nginx_init_worker_by_lua_block_filename",
    "_add_plugin_dir_to_lua_path",
];

/// mfserv's private additions to `[app_*]`.
const MFSERV_APP_PRIVATE_KEYS: [&str; 13] = [
    "_debug_extra_options",
    "_prefix_based_routing",
    "_virtualdomain_based_routing",
    "_static_routing",
    "_static_url_prefix",
    "_static_directory",
    "_gateway_interface_mode",
    "_extra_nginx_conf_filename",
    "_extra_nginx_conf_static_filename",
    "_http_test_endpoint",
    "_http_test_expected_status_code",
    "_http_test_expected_body",
    "_http_test_timeout",
];

/// The keys a section kind allows (`None`: any key).
fn allowed_keys(kind: SectionKind, module: &str) -> Option<Vec<&'static str>> {
    match kind {
        SectionKind::General => {
            let mut keys = GENERAL_KEYS.to_vec();
            if module == "MFSERV" {
                keys.extend(MFSERV_GENERAL_KEYS);
            }
            Some(keys)
        }
        SectionKind::Command { mfserv_app } => {
            let mut keys = vec!["_cmd_and_args"];
            keys.extend(typed_keys(kind).iter().map(|(name, _)| *name));
            if mfserv_app {
                keys.extend(MFSERV_APP_PRIVATE_KEYS);
            }
            Some(keys)
        }
        SectionKind::Step | SectionKind::Free | SectionKind::Unknown => None,
    }
}

/// The schema problems of a resolved (selected, rendered) configuration (reference C3,
/// C5), one line per problem, `[section: S][key: K] ...`: sections other than `general`,
/// `app_*`, `extra_daemon_*` and `custom*` (plus the module's own: mfserv's `internal`,
/// mfdata's `step_*` and `switch_rules*`), unknown keys in `[general]`, `[app_*]` and
/// `[extra_daemon_*]`, and the values of mfdata's `[step_*]` (`failure_policy` among
/// `keep`, `delete`, `move`; retries and waits not negative). mfdata's `[step_*]` and
/// every `[custom*]` accept any key. Only the selected variants count: an unknown key of
/// an unselected variant is no problem.
pub fn schema_problems(values: &ResolvedConfig, module: &str) -> Vec<String> {
    let mut problems = Vec::new();
    for (name, keys) in values {
        let kind = section_kind(name, module);
        if kind == SectionKind::Unknown {
            problems.push(format!("[section: {name}] unknown field"));
            continue;
        }
        if let Some(mut allowed) = allowed_keys(kind, module) {
            if name.starts_with("extra_daemon_") {
                allowed.extend(EXTRA_DAEMON_KEYS);
            }
            for key in keys.keys() {
                if !allowed.contains(&key.as_str()) {
                    problems.push(format!("[section: {name}][key: {key}] unknown field"));
                }
            }
        }
        if kind == SectionKind::Step {
            let value = |key: &str| keys.get(key).map(|resolved| resolved.value.as_str());
            if let Some(policy) = value("failure_policy")
                && !FAILURE_POLICIES.contains(&policy)
            {
                problems.push(format!(
                    "[section: {name}][key: failure_policy] unallowed value {policy}"
                ));
            }
            if value("retry_total")
                .and_then(python_int)
                .is_some_and(|total| total.starts_with('-'))
            {
                problems.push(format!(
                    "[section: {name}][key: retry_total] min value is 0"
                ));
            }
            for key in ["retry_min_wait", "retry_max_wait", "retry_backoff"] {
                if value(key)
                    .and_then(python_float)
                    .is_some_and(|wait| wait < 0.0)
                {
                    problems.push(format!("[section: {name}][key: {key}] min value is 0"));
                }
            }
        }
    }
    problems
}

/// Validates a resolved, rendered configuration against the schema of `module`: its
/// `[general]`, or every problem, one per line.
pub fn validate(
    values: &ResolvedConfig,
    module: &str,
) -> std::result::Result<General, Vec<String>> {
    let mut problems = schema_problems(values, module);
    let general = values.get("general");
    if general.is_none() {
        problems.push("[section: general] required section is missing".to_owned());
    }
    let value = |key: &str| -> Option<&str> {
        general
            .and_then(|g| g.get(key))
            .map(|resolved| resolved.value.as_str())
    };
    let required = |key: &str, problems: &mut Vec<String>| -> String {
        match value(key) {
            Some(v) if !v.is_empty() => v.to_owned(),
            Some(_) => {
                problems.push(format!(
                    "[section: general][key: {key}] empty values not allowed"
                ));
                String::new()
            }
            None => {
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
        None | Some("") => "1".to_owned(),
        Some("null") => String::new(),
        Some(release) => release.to_owned(),
    };
    let add_plugin_dir_to_python_path = value("_add_plugin_dir_to_python_path")
        .map(is_true)
        .unwrap_or(true);
    if !problems.is_empty() {
        return Err(problems);
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

/// Reads and validates `<home>/config.ini`, values rendered with `env` and variants
/// resolved against `configuration`. Every problem is listed, one per line, naming the
/// file, section and key.
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

/// Validates already parsed documents (blamed on `path`) and gives their `[general]`.
pub fn general_from(
    documents: &[IniDocument],
    path: &Path,
    env: &Env,
    configuration: &str,
) -> Result<General> {
    let mut values = resolve(documents, configuration);
    render_all(&mut values, &|name: &str| env.get(name).map(str::to_owned))?;
    let module = env
        .get("MFMODULE")
        .filter(|m| !m.is_empty())
        .unwrap_or("GENERIC")
        .to_uppercase();
    validate(&values, &module).map_err(|problems| {
        problems.into_iter().fold(
            Error::new(
                ErrorKind::LayerFile,
                format!("invalid configuration file `{}`", path.display()),
            ),
            Error::caused_by,
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const GENERAL: &str =
        "[general]\n_version=1\n_summary=s\n_license=l\n_url=u\n_maintainer=m\n_vendor=v\n";

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
    fn unknown_sections_and_keys_are_listed_one_per_line() {
        let document = parse(
            "[general]\n_version=1\n_summary=s\n_license=l\n_url=u\n_maintainer=m\n_vendor=v\n\
             _typo=1\n[extra_daemon_foo]\nnumprocesses=1\nnumprocess[DEV]=2\n[custom_x]\nanything=1\n\
             [oops]\nx=1\n[step_main]\nfailure_policy=keep\n",
        )
        .unwrap();
        let values = resolve(std::slice::from_ref(&document), "generic");
        assert_eq!(
            schema_problems(&values, "GENERIC"),
            [
                "[section: general][key: _typo] unknown field",
                "[section: oops] unknown field",
                "[section: step_main] unknown field",
            ]
        );
        // The unknown key of a variant counts only when the variant is selected.
        let dev = resolve(std::slice::from_ref(&document), "dev");
        assert!(
            schema_problems(&dev, "GENERIC")
                .contains(&"[section: extra_daemon_foo][key: numprocess] unknown field".to_owned())
        );
        // mfdata knows step sections.
        assert_eq!(schema_problems(&values, "MFDATA").len(), 2);
        let check = |text: &str| {
            general_from(
                &[parse(&format!("{GENERAL}{text}")).unwrap()],
                Path::new("/p/config.ini"),
                &Env::default(),
                "generic",
            )
        };
        let error = check("[bad]\nx=1\n").unwrap_err();
        assert_eq!(error.causes(), ["[section: bad] unknown field"]);
        // A section without selected keys disappears: empty, or only other variants.
        check("[bad]\n").unwrap();
        check("[bad]\nx[QA]=1\n[general2]\n# nothing\n").unwrap();
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

    #[test]
    fn override_files_may_not_set_private_keys() {
        let dir = tempfile::tempdir().unwrap();
        let plugin = dir.path().join("config.ini");
        let op = dir.path().join("op.ini");
        std::fs::write(&plugin, format!("{GENERAL}[custom]\na=plugin\n")).unwrap();
        std::fs::write(&op, "[general]\n_version[DEV]=2\n[custom]\na=op {{ X }}\n").unwrap();
        let files = [
            ConfigFile {
                path: plugin,
                is_override: false,
            },
            ConfigFile {
                path: op.clone(),
                is_override: true,
            },
            ConfigFile {
                path: dir.path().join("missing.ini"),
                is_override: true,
            },
        ];
        let lookup = |name: &str| (name == "X").then(|| "x".to_owned());
        let layered = read_layered(&files, "dev", "GENERIC", lookup, |_| None).unwrap();
        assert_eq!(layered.values["general"]["_version"].value, "1");
        assert_eq!(layered.values["custom"]["a"].value, "op x");
        assert_eq!(layered.values["custom"]["a"].file, op);
        assert_eq!(layered.files.len(), 2);
        assert_eq!(layered.warnings.len(), 1);
        assert!(layered.warnings[0].contains("line 2: key `_version[DEV]` of section `[general]`"));
    }

    #[test]
    fn host_addresses_follow_mfutil() {
        let resolve = |host: &str| (host == "db.example").then(|| "10.1.2.3".to_owned());
        assert_eq!(host_address("LocalHost", &resolve), "127.0.0.1");
        assert_eq!(host_address("localhost.localdomain", &resolve), "127.0.0.1");
        assert_eq!(host_address("Null", &resolve), "Null");
        assert_eq!(host_address("/run/s.sock", &resolve), "/run/s.sock");
        assert_eq!(host_address("DB.example", &resolve), "10.1.2.3");
        assert_eq!(host_address("nowhere", &resolve), "dns_error");
    }

    #[test]
    fn exported_variables_follow_the_schema_and_names_rules() {
        let document = parse(
            "[custom-x]\nmy-key=v\n_hidden=h\nflag=yes\nbad key=1\n[app_web]\ndebug=TRUE\nmax_age=12x\n\
             log_split_stdout_stderr=AUTO\n[bad section]\nk=v\n",
        )
        .unwrap();
        let (values, order) = resolve_ordered(&[document], "generic");
        let lookup =
            |name: &str| (name == "MFDATA_LOG_TRY_TO_SPLIT_STDOUT_STDERR").then(|| "1".to_owned());
        let variables = exported_variables(&values, &order, "MFDATA", lookup);
        let get = |name: &str| variables.get(name).map(String::as_str);
        assert_eq!(get("MFDATA_CURRENT_PLUGIN_CUSTOM_X_MY_KEY"), Some("v"));
        assert_eq!(get("MFDATA_CURRENT_PLUGIN_CUSTOM_X_FLAG"), Some("yes"));
        assert_eq!(get("MFDATA_CURRENT_PLUGIN_APP_WEB_DEBUG"), Some("1"));
        assert_eq!(get("MFDATA_CURRENT_PLUGIN_APP_WEB_MAX_AGE"), Some("0"));
        assert_eq!(get("MFDATA_CURRENT_PLUGIN_APP_WEB_NUMPROCESSES"), Some("0"));
        assert_eq!(
            get("MFDATA_CURRENT_PLUGIN_APP_WEB_GRACEFUL_TIMEOUT"),
            Some("10")
        );
        assert_eq!(
            get("MFDATA_CURRENT_PLUGIN_APP_WEB_LOG_SPLIT_STDOUT_STDERR"),
            Some("1")
        );
        assert_eq!(
            get("MFDATA_CURRENT_PLUGIN_APP_WEB_LOG_SPLIT_MULTIPLE_WORKERS"),
            Some("0")
        );
        assert!(
            !variables
                .keys()
                .any(|name| name.contains("HIDDEN") || name.contains(' '))
        );
    }

    /// A small deterministic generator (xorshift) for the generated files.
    struct Generator(u64);

    impl Generator {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn pick<'a>(&mut self, choices: &[&'a str]) -> &'a str {
            choices[(self.next() % choices.len() as u64) as usize]
        }
    }

    /// A random file of the dialect's hard cases: every kind of indentation and white
    /// space, blank and comment lines inside values, headers with trailing text, `;` and
    /// `#` in values, the three line ends, duplicates.
    fn generated_file(generator: &mut Generator) -> String {
        let spaces = [
            "", " ", "  ", "\t", "\u{a0}", "\x0c", "\x1c", "\x1f", "\u{2003}", "\x0b", "\u{85}",
        ];
        let ends = ["\n", "\n", "\n", "\r\n", "\r"];
        let mut text = String::new();
        if !generator.next().is_multiple_of(4) {
            text.push_str("[custom]\n");
        }
        let lines = 2 + generator.next() % 10;
        for _ in 0..lines {
            let indent = generator.pick(&spaces);
            let line = match generator.next() % 8 {
                0 => format!(
                    "{}[{}]{}",
                    generator.pick(&["", " "]),
                    generator.pick(&["custom_a", "custom_b", "Custom_a", "_priv", "", "x]y"]),
                    generator.pick(&["", " # note", "x", " ]", "="])
                ),
                1 => format!("{indent}{}{}", generator.pick(&["#", ";", " #"]), "c = 1"),
                2 => generator.pick(&spaces).to_owned(),
                _ => format!(
                    "{indent}{}{}={}{}{}",
                    generator.pick(&["a", "b", "A", "k:x", "k;y", "k z", "c[]", "=", ""]),
                    generator.pick(&spaces),
                    generator.pick(&spaces),
                    generator.pick(&["1", "v ; c", "v # c", "", "x=y", "\u{a0}w"]),
                    generator.pick(&spaces)
                ),
            };
            text.push_str(&line);
            text.push_str(generator.pick(&ends));
        }
        text
    }

    /// The sections and keys of `document` as the Python script prints them.
    fn as_python_json(document: &IniDocument) -> serde_json::Value {
        serde_json::Value::Array(
            document
                .sections
                .iter()
                .map(|section| {
                    let entries: Vec<serde_json::Value> = section
                        .entries
                        .iter()
                        .map(|entry| serde_json::json!([entry.key, entry.value]))
                        .collect();
                    serde_json::json!([section.name, entries])
                })
                .collect(),
        )
    }

    const PYTHON_READER: &str = r##"
import configparser, json, sys
out = []
for path in sys.argv[1:]:
    parser = configparser.ConfigParser(
        delimiters=("=",), comment_prefixes=("#",), inline_comment_prefixes=None,
        strict=True, interpolation=None, default_section="__no_default_section__")
    parser.optionxform = str
    try:
        parser.read(path, encoding="utf-8")
        out.append([[s, [[k, v] for k, v in parser.items(s, raw=True)]]
                    for s in parser.sections() if not s.startswith("_")])
    except configparser.Error:
        out.append(None)
print(json.dumps(out))
"##;

    #[test]
    fn generated_files_read_as_python_configparser_reads_them() {
        let dir = tempfile::tempdir().unwrap();
        let mut generator = Generator(0x9e37_79b9_7f4a_7c15);
        let mut paths = Vec::new();
        let mut texts = Vec::new();
        for index in 0..600 {
            let text = generated_file(&mut generator);
            let path = dir.path().join(format!("{index}.ini"));
            std::fs::write(&path, &text).unwrap();
            paths.push(path);
            texts.push(text);
        }
        let output = std::process::Command::new("python3")
            .arg("-c")
            .arg(PYTHON_READER)
            .args(&paths)
            .output()
            .expect("python3 runs");
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let expected: Vec<serde_json::Value> = serde_json::from_slice(&output.stdout).unwrap();
        let mut read = 0;
        for ((path, text), python) in paths.iter().zip(&texts).zip(expected) {
            let ours = read_ini(path).unwrap_or(None).map(|d| as_python_json(&d));
            let python = (!python.is_null()).then_some(python);
            assert_eq!(ours, python, "{text:?}");
            read += usize::from(python.is_some());
        }
        // Enough files are valid for the comparison of values to mean something.
        assert!(read > 150, "only {read} valid files");
    }

    #[test]
    fn continuation_needs_more_indent_and_keeps_blank_lines() {
        let document = parse(
            "[s]\n  a=1\n  b=2\nc=1\n\n  more\n\n# comment\n\tlast\nd = x\u{1c}\u{1f} \n\
             e=1\u{a0}\n\u{a0}nbsp\nf=1\x0c\n\x0cff\rg=cr\r\nh=crlf\n",
        )
        .unwrap();
        let entries: Vec<(&str, &str)> = document.sections[0]
            .entries
            .iter()
            .map(|e| (e.key.as_str(), e.value.as_str()))
            .collect();
        assert_eq!(
            entries,
            [
                ("a", "1"),
                ("b", "2"),
                ("c", "1\n\nmore\n\nlast"),
                ("d", "x"),
                ("e", "1\nnbsp"),
                ("f", "1\nff"),
                ("g", "cr"),
                ("h", "crlf"),
            ]
        );
        assert_eq!(document.sections[0].entries[6].line, 15);
    }

    #[test]
    fn section_headers_end_at_the_last_bracket() {
        let document = parse("[custom] # x\na=1\n[custom_b]x\nb=1\n[a]b]\nc=1\n").unwrap();
        let names: Vec<&str> = document.sections.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["custom", "custom_b", "a]b"]);
        let error = parse("[custom]\n[]\n").unwrap_err();
        assert_eq!(error.causes(), ["bad section header `[]`"]);
        assert!(parse("[]\n").is_err());
    }

    #[test]
    fn an_empty_variant_is_the_plain_key() {
        let document = parse("[s]\nk[]=default\nk[DEV]=dev\n").unwrap();
        let generic = resolve(std::slice::from_ref(&document), "generic");
        assert_eq!(generic["s"]["k"].value, "default");
        assert_eq!(generic["s"]["k"].variant, None);
        assert_eq!(resolve(&[document], "dev")["s"]["k"].value, "dev");
    }

    #[test]
    fn keys_and_file_size_are_bounded_with_a_clear_error() {
        let mut text = String::from("[custom]\n");
        for index in 0..MAX_KEYS {
            text.push_str(&format!("k{index}=v\n"));
        }
        let document = parse(&text).unwrap();
        let (values, order) = resolve_ordered(std::slice::from_ref(&document), "generic");
        assert_eq!(order.len(), MAX_KEYS);
        assert_eq!(
            exported_variables(&values, &order, "GENERIC", |_| None).len(),
            MAX_KEYS
        );
        text.push_str("one_more=v\n");
        let error = parse(&text).unwrap_err();
        assert_eq!(
            error.message(),
            format!(
                "invalid configuration file `/p/config.ini` at line {}",
                MAX_KEYS + 2
            )
        );
        assert!(error.causes()[0].contains("at most 2000 keys"));
        let dir = tempfile::tempdir().unwrap();
        let big = dir.path().join("config.ini");
        let line = format!("[custom]\nk={}\n", "x".repeat(MAX_FILE_SIZE as usize));
        std::fs::write(&big, line).unwrap();
        let error = read_ini(&big).unwrap_err();
        assert!(
            error.message().contains("is too big"),
            "{}",
            error.message()
        );
    }

    #[test]
    fn what_cannot_be_rendered_is_an_error() {
        let lookup = |name: &str| (name == "HOME").then(|| "/home/u".to_owned());
        assert_eq!(
            try_render("{{ HOME }}/{{UNSET}}{{ '{{' }}x{{ \"}}\" }}", lookup).unwrap(),
            "/home/u/{{x}}"
        );
        for bad in [
            "{{ 42 }}",
            "{{ none }}",
            "{{ HOME | upper }}",
            "{{ HOME ~ 'x' }}",
            "{{ a.b }}",
            "{{ HOME",
            "{% if x %}y{% endif %}",
            "{# c #}",
            "{{ }}",
        ] {
            assert!(try_render(bad, lookup).is_err(), "{bad}");
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.ini");
        std::fs::write(
            &path,
            format!("{GENERAL}[custom]\n\nanswer = {{{{ 42 }}}}\n"),
        )
        .unwrap();
        let files = [ConfigFile {
            path: path.clone(),
            is_override: false,
        }];
        let error = read_layered(&files, "generic", "GENERIC", lookup, |_| None).unwrap_err();
        assert_eq!(
            error.message(),
            format!(
                "cannot render key `answer` of section `[custom]` in `{}` at line 10",
                path.display()
            )
        );
        assert!(error.causes()[0].contains("`{{ 42 }}` is not supported"));
    }

    #[test]
    fn numbers_parse_as_python_int_and_float() {
        for (text, expected) in [
            ("1_000", Some("1000")),
            (" 0010 ", Some("10")),
            ("-0", Some("0")),
            ("+7", Some("7")),
            (
                "123456789012345678901234567890",
                Some("123456789012345678901234567890"),
            ),
            ("\u{664}\u{662}", Some("42")),
            ("\u{ff11}\u{ff10}", Some("10")),
            ("1__0", None),
            ("_1", None),
            ("1_", None),
            ("1.0", None),
            ("0x10", None),
            ("", None),
            ("- 1", None),
        ] {
            assert_eq!(python_int(text).as_deref(), expected, "{text:?}");
        }
        assert_eq!(integer_or_zero("1_000"), 1000);
        assert_eq!(integer_or_zero("99999999999999999999"), 0);
        for (value, expected) in [
            (10.0, "10.0"),
            (0.1, "0.1"),
            (1e16, "1e+16"),
            (1.5e-5, "1.5e-05"),
            (0.0001, "0.0001"),
            (123456.789, "123456.789"),
            (-2.5, "-2.5"),
        ] {
            assert_eq!(python_float_repr(value), expected);
        }
        assert_eq!(python_float("1_0.5"), Some(10.5));
        assert_eq!(python_float(" 3 "), Some(3.0));
        assert_eq!(python_float("1__0"), None);
        assert_eq!(python_float("abc"), None);
    }

    #[test]
    fn only_the_exact_auto_reads_the_module_variable() {
        let lookup = |_: &str| Some("1".to_owned());
        assert!(command_boolean(
            "log_split_stdout_stderr",
            Some("AUTO"),
            "M",
            lookup
        ));
        assert!(command_boolean(
            "log_split_stdout_stderr",
            None,
            "M",
            lookup
        ));
        assert!(!command_boolean(
            "log_split_stdout_stderr",
            Some("auto"),
            "M",
            lookup
        ));
        assert!(!command_boolean(
            "log_split_stdout_stderr",
            Some("Auto"),
            "M",
            lookup
        ));
    }

    #[test]
    fn empty_and_unstripped_host_names_resolve_as_gethostbyname_does() {
        let resolve = |host: &str| (host == "db").then(|| "10.0.0.1".to_owned());
        assert_eq!(host_address("", &resolve), "0.0.0.0");
        assert_eq!(host_address(" db", &resolve), "dns_error");
        assert_eq!(host_address("localhost ", &resolve), "dns_error");
        let document = parse("[custom]\nhostname=\nhostnames=db; db;localhost\n").unwrap();
        let mut values = resolve_values(&document);
        add_derived_addresses(values.get_mut("custom").unwrap(), &resolve);
        assert_eq!(values["custom"]["hostname_ip"].value, "0.0.0.0");
        assert_eq!(
            values["custom"]["hostnames_ips"].value,
            "10.0.0.1;dns_error;127.0.0.1"
        );
    }

    fn resolve_values(document: &IniDocument) -> ResolvedConfig {
        resolve(std::slice::from_ref(document), "generic")
    }

    #[test]
    fn keys_giving_the_same_variable_keep_the_last_in_file_order() {
        let document =
            parse("[custom]\nfoo=first\nFoo=second\nb-c=1\nb_c=2\nB_C=3\nlast=x\n").unwrap();
        let (values, order) = resolve_ordered(std::slice::from_ref(&document), "generic");
        let variables = exported_variables(&values, &order, "M", |_| None);
        assert_eq!(variables["M_CURRENT_PLUGIN_CUSTOM_FOO"], "second");
        assert_eq!(variables["M_CURRENT_PLUGIN_CUSTOM_B_C"], "3");
        // Sections too: `[custom-a]` then `[custom_a]`.
        let document = parse("[custom_a]\nk=1\n[custom-a]\nk=2\n").unwrap();
        let (values, order) = resolve_ordered(std::slice::from_ref(&document), "generic");
        let variables = exported_variables(&values, &order, "M", |_| None);
        assert_eq!(variables["M_CURRENT_PLUGIN_CUSTOM_A_K"], "2");
    }

    #[test]
    fn mfdata_steps_get_their_defaults_derived_values_and_checks() {
        let document = parse(
            "[step_main]\ntimeout=1_200\nretry_min_wait=1\narg_foo=bar\nfailure_policy_move_dest_dir=null\n\
             [step_other]\nfailure_policy=explode\nretry_total=-1\nretry_max_wait=-0.5\n",
        )
        .unwrap();
        let (values, order) = resolve_ordered(std::slice::from_ref(&document), "generic");
        let variables = exported_variables(&values, &order, "MFDATA", |_| None);
        let get = |key: &str| variables[&format!("MFDATA_CURRENT_PLUGIN_STEP_MAIN_{key}")].as_str();
        assert_eq!(get("TIMEOUT"), "1200");
        assert_eq!(get("GRACEFUL_TIMEOUT"), "1200");
        assert_eq!(get("RETRY_MIN_WAIT"), "1.0");
        assert_eq!(get("RETRY_MAX_WAIT"), "120.0");
        assert_eq!(get("RETRY_BACKOFF"), "0.0");
        assert_eq!(get("RETRY_TOTAL"), "0");
        assert_eq!(get("FAILURE_POLICY"), "keep");
        assert_eq!(get("FAILURE_POLICY_MOVE_DEST_DIR"), "");
        assert_eq!(get("WATCHED_DIRECTORIES"), "{MFDATA_CURRENT_STEP_DIR}");
        assert_eq!(get("ARG_FOO"), "bar");
        assert_eq!(get("NUMPROCESSES"), "0");
        assert_eq!(
            schema_problems(&values, "MFDATA"),
            [
                "[section: step_other][key: failure_policy] unallowed value explode",
                "[section: step_other][key: retry_total] min value is 0",
                "[section: step_other][key: retry_max_wait] min value is 0",
            ]
        );
    }

    #[test]
    fn mfserv_apps_get_their_defaults_and_derived_timeouts() {
        let document = parse(
            "[app_main]\ntimeout=0\nsmart_stop_delay=5\nprefix_based_routing_extra_routes=null\n\
             [app_debug]\ndebug=1\nnumprocesses=8\nmax_age=60\ntimeout=30\n",
        )
        .unwrap();
        let (values, order) = resolve_ordered(std::slice::from_ref(&document), "generic");
        let lookup = |name: &str| (name == "MFSERV_NGINX_TIMEOUT").then(|| "120".to_owned());
        let variables = exported_variables(&values, &order, "MFSERV", lookup);
        let get = |key: &str| variables[&format!("MFSERV_CURRENT_PLUGIN_{key}")].as_str();
        assert_eq!(get("APP_MAIN_TIMEOUT"), "120");
        assert_eq!(get("APP_MAIN_GRACEFUL_TIMEOUT"), "135");
        assert_eq!(get("APP_MAIN_SMART_STOP_SIGNAL"), "15");
        assert_eq!(get("APP_MAIN_SMART_START_DELAY"), "3");
        assert_eq!(get("APP_MAIN_PREFIX_BASED_ROUTING_EXTRA_ROUTES"), "");
        assert_eq!(get("APP_MAIN_VIRTUALDOMAIN_BASED_ROUTING_EXTRA_VHOSTS"), "");
        assert_eq!(get("APP_DEBUG_GRACEFUL_TIMEOUT"), "43");
        assert_eq!(get("APP_DEBUG_NUMPROCESSES"), "1");
        assert_eq!(get("APP_DEBUG_MAX_AGE"), "0");
        assert!(schema_problems(&values, "MFSERV").is_empty());
        // Other modules know no `timeout` in apps.
        assert_eq!(
            schema_problems(&values, "MFDATA"),
            [
                "[section: app_debug][key: timeout] unknown field",
                "[section: app_main][key: prefix_based_routing_extra_routes] unknown field",
                "[section: app_main][key: smart_stop_delay] unknown field",
                "[section: app_main][key: timeout] unknown field",
            ]
        );
    }
}
