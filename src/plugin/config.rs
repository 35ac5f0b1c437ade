//! Plugin configuration files: the `config.ini` dialect (reference C1), variants (C2)
//! and the `[general]` section every plugin must have (C3).
//!
//! The dialect is Python configparser's as mfplugin set it up, read with exactly those
//! rules: `=` is the only delimiter (`:` belongs to the key), only lines starting with
//! `#` are comments (`;` is data, no inline comments), keys and section names keep their
//! case, a duplicate section or key within one file is an error, indented lines continue
//! the previous value, a key without `=` is an error, sections starting with `_` are
//! dropped. Errors name the file and the line. (The `rust-ini` crate cannot read this
//! dialect: it takes `:` as a delimiter and `;` as a comment, and merges duplicate keys
//! instead of refusing them.)
//!
//! Values may hold `{{ NAME }}`, replaced by the variable's value (empty when unset).
//! That is the part of Jinja2 that plugin configurations use; filters, expressions and
//! blocks are not supported and are left as written. Values are rendered once (the
//! original rendered twice, so `{{ '{{' }}HOME}}` gave HOME's value: not supported).
//!
//! A plugin's configuration is layered (reference C2, DESIGN §6): its `config.ini`, then
//! the OP override `RUNTIME/config/plugins/NAME.ini`, then the system one
//! `SYSCONF/<module>/plugins/NAME.ini`. Override files may only change keys that do not
//! start with `_` (a deliberate fix of reference H11): such keys are reported and
//! ignored. Keys named `hostname`, `*_hostname` (`hostnames`, `*_hostnames`) get a
//! derived `*_ip` (`*_ips`) key (C4), and the public keys become the
//! `${MODULE}_CURRENT_PLUGIN_<SECTION>_<KEY>` variables (C6) with the defaults of the
//! generic command schema of `[app_*]` and `[extra_daemon_*]` sections (C3).

use std::collections::BTreeMap;
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

/// A plugin's configuration, merged, resolved, rendered and with its derived keys.
#[derive(Debug, Clone, PartialEq)]
pub struct LayeredConfig {
    pub values: ResolvedConfig,
    /// The files that exist, in increasing priority.
    pub files: Vec<PathBuf>,
    /// One line per ignored private key of an override file.
    pub warnings: Vec<String>,
}

/// True for a real key (variant removed) that only the plugin's own file may set.
fn is_private(raw_key: &str) -> bool {
    split_variant(raw_key).0.starts_with('_')
}

/// Reads `files` (missing ones skipped), drops the private keys of override files (one
/// warning each), resolves the variants against `configuration` once over the merged
/// keys, renders `{{ NAME }}` with `lookup` and adds the derived `*_ip` keys, resolving
/// host names with `resolve_host`.
pub fn read_layered(
    files: &[ConfigFile],
    configuration: &str,
    lookup: impl Fn(&str) -> Option<String>,
    resolve_host: impl Fn(&str) -> Option<String>,
) -> Result<LayeredConfig> {
    let mut documents = Vec::new();
    let mut warnings = Vec::new();
    for file in files {
        let Some(mut document) = read_ini(&file.path)? else {
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
    let mut values = resolve(&documents, configuration);
    for section in values.values_mut() {
        for resolved in section.values_mut() {
            resolved.value = render(&resolved.value, &lookup);
        }
    }
    for section in values.values_mut() {
        add_derived_addresses(section, &resolve_host);
    }
    Ok(LayeredConfig {
        values,
        files: documents.into_iter().map(|d| d.path).collect(),
        warnings,
    })
}

/// Adds `<key>_ip` for `hostname` and `*_hostname` keys, `<key>_ips` for `hostnames`
/// and `*_hostnames` (`;`-separated), unless the section has them (reference C4).
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

/// The IPv4 address of `host` as mfutil gives it: local names are `127.0.0.1`, `null`
/// and paths (unix sockets) are kept, a failure is `dns_error`.
pub fn host_address(host: &str, resolve_host: &impl Fn(&str) -> Option<String>) -> String {
    let lower = host.trim().to_lowercase();
    if lower == "null" || lower.starts_with('/') {
        return host.to_owned();
    }
    if matches!(
        lower.as_str(),
        "127.0.0.1" | "localhost" | "localhost.localdomain"
    ) {
        return "127.0.0.1".to_owned();
    }
    resolve_host(&lower).unwrap_or_else(|| "dns_error".to_owned())
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

/// Keys of the generic command schema (`[app_*]`, `[extra_daemon_*]`) with their
/// defaults; `None`: a boolean whose default `AUTO` comes from a module variable.
const COMMAND_INTEGERS: [(&str, i64); 7] = [
    ("numprocesses", 0),
    ("graceful_timeout", 10),
    ("max_age", 0),
    ("rlimit_as", 0),
    ("rlimit_nofile", 0),
    ("rlimit_stack", 0),
    ("rlimit_fsize", 0),
];

/// Booleans of the command schema and the module variable their `AUTO` default reads
/// (suffix after `${MODULE}_`).
const COMMAND_BOOLEANS: [(&str, Option<&str>); 3] = [
    ("debug", None),
    (
        "log_split_stdout_stderr",
        Some("LOG_TRY_TO_SPLIT_STDOUT_STDERR"),
    ),
    (
        "log_split_multiple_workers",
        Some("LOG_TRY_TO_SPLIT_MULTIPLE_WORKERS"),
    ),
];

fn is_command_section(name: &str) -> bool {
    name.starts_with("app_") || name.starts_with("extra_daemon_")
}

fn is_exportable_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Python's `int(value)` or 0, as mfplugin coerces integers.
pub(crate) fn integer_or_zero(value: &str) -> i64 {
    value.trim().parse().unwrap_or(0)
}

/// A boolean key of the command schema (`debug`, `log_split_*`) as mfplugin coerces it:
/// `value` is the key's value in its section (`None`: the key is absent); `AUTO`, or an
/// absent key whose default is `AUTO`, reads `${module}_<variable>` through `lookup`.
pub(crate) fn command_boolean(
    key: &str,
    value: Option<&str>,
    module: &str,
    lookup: impl Fn(&str) -> Option<String>,
) -> bool {
    let auto = COMMAND_BOOLEANS
        .iter()
        .find(|(name, _)| *name == key)
        .and_then(|(_, auto)| *auto);
    let text = match (value.map(str::trim), auto) {
        (Some(value), Some(auto)) if value.eq_ignore_ascii_case("auto") => {
            lookup(&format!("{module}_{auto}")).unwrap_or_default()
        }
        (Some(value), _) => value.to_owned(),
        (None, Some(auto)) => lookup(&format!("{module}_{auto}")).unwrap_or_default(),
        (None, None) => String::new(),
    };
    is_true(&text)
}

/// The `${MODULE}_CURRENT_PLUGIN_<SECTION>_<KEY>` variables of the public keys
/// (reference C6), sorted by name. Booleans of the schema are `1`/`0`, its integers
/// numbers (0 when unreadable), everything else the text; `lookup` gives the module
/// variables `AUTO` booleans read.
pub fn exported_variables(
    values: &ResolvedConfig,
    module: &str,
    lookup: impl Fn(&str) -> Option<String>,
) -> BTreeMap<String, String> {
    let mut variables = BTreeMap::new();
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
        let command = is_command_section(section);
        for (key, resolved) in keys {
            if key.starts_with('_') || !is_exportable_name(key) {
                continue;
            }
            let integer = COMMAND_INTEGERS.iter().any(|(name, _)| name == key);
            let boolean = COMMAND_BOOLEANS.iter().any(|(name, _)| name == key);
            let value = match (command, integer, boolean) {
                (true, true, _) => integer_or_zero(&resolved.value).to_string(),
                (true, _, true) => {
                    u8::from(command_boolean(key, Some(&resolved.value), module, &lookup))
                        .to_string()
                }
                _ => resolved.value.clone(),
            };
            variables.insert(variable_name(section, key), value);
        }
        if command {
            for (key, default) in COMMAND_INTEGERS {
                if !keys.contains_key(key) {
                    variables.insert(variable_name(section, key), default.to_string());
                }
            }
            for (key, _) in COMMAND_BOOLEANS {
                if !keys.contains_key(key) {
                    variables.insert(
                        variable_name(section, key),
                        u8::from(command_boolean(key, None, module, &lookup)).to_string(),
                    );
                }
            }
        }
    }
    variables
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

/// Keys of the command sections (`[app_*]`, `[extra_daemon_*]`).
const COMMAND_KEYS: [&str; 11] = [
    "_cmd_and_args",
    "numprocesses",
    "graceful_timeout",
    "max_age",
    "rlimit_as",
    "rlimit_nofile",
    "rlimit_stack",
    "rlimit_fsize",
    "debug",
    "log_split_stdout_stderr",
    "log_split_multiple_workers",
];

/// Keys of `[extra_daemon_*]` only: the socket the supervisor holds for the daemon,
/// and when a new worker counts as started during a hot swap.
const EXTRA_DAEMON_KEYS: [&str; 4] = ["socket", "settle", "readiness", "readiness_timeout"];

/// mfserv's additions to `[general]` and `[app_*]` (reference C3, module extensions).
const MFSERV_GENERAL_KEYS: [&str; 4] = [
    "_extra_nginx_http_conf_filename",
    "_extra_nginx_server_conf_filename",
    "_extra_nginx_init_worker_by_lua_block_filename",
    "_add_plugin_dir_to_lua_path",
];
const MFSERV_APP_KEYS: [&str; 19] = [
    "smart_stop_signal",
    "smart_stop_delay",
    "smart_start_delay",
    "timeout",
    "_debug_extra_options",
    "_prefix_based_routing",
    "_virtualdomain_based_routing",
    "virtualdomain_based_routing_extra_vhosts",
    "_static_routing",
    "_static_url_prefix",
    "_static_directory",
    "prefix_based_routing_extra_routes",
    "_gateway_interface_mode",
    "_extra_nginx_conf_filename",
    "_extra_nginx_conf_static_filename",
    "_http_test_endpoint",
    "_http_test_expected_status_code",
    "_http_test_expected_body",
    "_http_test_timeout",
];

/// The schema problems of a plugin configuration (reference C3, C5): sections other than
/// `general`, `app_*`, `extra_daemon_*` and `custom*` (plus the module's own: mfserv's
/// `internal`, mfdata's `step_*` and `switch_rules*`), and unknown keys in `[general]`,
/// `[app_*]` and `[extra_daemon_*]`. One line per problem, `[section: S][key: K] ...`.
/// mfdata's `[step_*]` and every `[custom*]` accept any key.
pub fn schema_problems(documents: &[IniDocument], module: &str) -> Vec<String> {
    let mfserv = module == "MFSERV";
    let mfdata = module == "MFDATA";
    let mut problems = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for document in documents {
        for section in &document.sections {
            let name = section.name.as_str();
            let allowed_keys: Option<Vec<&str>> = if name == "general" {
                let mut keys = GENERAL_KEYS.to_vec();
                if mfserv {
                    keys.extend(MFSERV_GENERAL_KEYS);
                }
                Some(keys)
            } else if name.starts_with("extra_daemon_") {
                let mut keys = COMMAND_KEYS.to_vec();
                keys.extend(EXTRA_DAEMON_KEYS);
                Some(keys)
            } else if name.starts_with("app_") {
                let mut keys = COMMAND_KEYS.to_vec();
                if mfserv {
                    keys.extend(MFSERV_APP_KEYS);
                }
                Some(keys)
            } else if name.starts_with("custom")
                || (mfserv && name == "internal")
                || (mfdata && (name.starts_with("step_") || name.starts_with("switch_rules")))
            {
                None
            } else {
                if seen.insert(format!("section {name}")) {
                    problems.push(format!("[section: {name}] unknown field"));
                }
                continue;
            };
            let Some(allowed_keys) = allowed_keys else {
                continue;
            };
            for entry in &section.entries {
                let key = split_variant(&entry.key).0;
                if !allowed_keys.contains(&key) && seen.insert(format!("{name}/{key}")) {
                    problems.push(format!("[section: {name}][key: {key}] unknown field"));
                }
            }
        }
    }
    problems
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
    let module = env
        .get("MFMODULE")
        .filter(|m| !m.is_empty())
        .unwrap_or("GENERIC")
        .to_uppercase();
    let mut problems = schema_problems(documents, &module);
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
    fn unknown_sections_and_keys_are_listed_one_per_line() {
        let document = parse(
            "[general]\n_version=1\n_summary=s\n_license=l\n_url=u\n_maintainer=m\n_vendor=v\n\
             _typo=1\n[extra_daemon_foo]\nnumprocesses=1\nnumprocess[DEV]=2\n[custom_x]\nanything=1\n\
             [oops]\nx=1\n[step_main]\nfailure_policy=keep\n",
        )
        .unwrap();
        assert_eq!(
            schema_problems(std::slice::from_ref(&document), "GENERIC"),
            [
                "[section: general][key: _typo] unknown field",
                "[section: extra_daemon_foo][key: numprocess] unknown field",
                "[section: oops] unknown field",
                "[section: step_main] unknown field",
            ]
        );
        // mfdata knows step sections.
        assert_eq!(schema_problems(&[document], "MFDATA").len(), 3);
        let error = general_from(
            &[parse("[general]\n_version=1\n_summary=s\n_license=l\n_url=u\n_maintainer=m\n_vendor=v\n[bad]\n").unwrap()],
            Path::new("/p/config.ini"),
            &Env::default(),
            "generic",
        )
        .unwrap_err();
        assert_eq!(error.causes(), ["[section: bad] unknown field"]);
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
        std::fs::write(&plugin, "[general]\n_version=1\n[custom]\na=plugin\n").unwrap();
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
        let layered = read_layered(&files, "dev", lookup, |_| None).unwrap();
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
        let values = resolve(&[document], "generic");
        let lookup =
            |name: &str| (name == "MFDATA_LOG_TRY_TO_SPLIT_STDOUT_STDERR").then(|| "1".to_owned());
        let variables = exported_variables(&values, "MFDATA", lookup);
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
}
