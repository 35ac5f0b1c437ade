//! The plugin model: names and labels (reference B2), the files every plugin home holds
//! (B1), `.metadata.json` and the plugin hash (B3, B4), and the validation of a plugin
//! source tree (`mfenv plugin check`).
//!
//! This module reads a few small files of one plugin home and nothing else: no base-dir
//! scan, no archive, no writes. Its invariants:
//!
//! - a plugin name always passes [`validate_name`] (the original's rules and messages);
//! - a label is one line `plugin_<name>@<module>` whose name holds no `@` (the original
//!   took the text up to the first `@`, so `plugin_a@b@mod` meant `a`: mfenv refuses it);
//! - the hash is mfplugin's: md5 of `build_host, build_date, size, version, release`, so
//!   provisioning decisions agree with installs made by the original tools.
//! - the files of a plugin home are read only when they are regular files, and only up
//!   to their limit ([`read_small_file`]): a fifo never blocks, a huge file is refused;
//! - metadata within its limits ([`Metadata::check`]) is all install, list and release
//!   accept.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::env::Env;
use crate::error::{Error, ErrorKind, Result};
use crate::plugin::config::{self, General};
use crate::plugin::table::printable;

/// The single top directory of a `.plugin` archive.
pub const TOP_DIRECTORY: &str = "metwork_plugin";
/// The label file: the plugin name comes only from here.
pub const LABEL_FILE: &str = ".layerapi2_label";
/// The format version file (`X.Y.Z`, at least three dot-separated parts).
pub const FORMAT_VERSION_FILE: &str = ".plugin_format_version";
/// Written by release, present in installed plugins.
pub const METADATA_FILE: &str = ".metadata.json";
/// Written by release: the non-directory entries of the plugin.
pub const FILES_FILE: &str = ".files.json";
/// The plugin configuration.
pub const CONFIG_FILE: &str = "config.ini";
/// Gitignore-style exclusions applied by release.
pub const RELEASEIGNORE_FILE: &str = ".releaseignore";
/// The executable run after install and develop.
pub const POSTINSTALL_FILE: &str = "postinstall";
/// Version and release of a dev-linked plugin.
pub const DEV_LINK: &str = "dev_link";
/// Build host, date and size of a plugin without metadata.
pub const UNKNOWN: &str = "unknown";

/// The longest plugin name, in bytes (it names a directory, `NAME.ini.new` and a
/// `.plugin` file).
pub const MAX_NAME_BYTES: usize = 100;
/// The largest `.layerapi2_label` read.
pub const MAX_LABEL_SIZE: u64 = 4096;
/// The largest `config.ini`, override file, `crontab` or other small file of a plugin
/// read whole.
pub const MAX_CONFIG_SIZE: u64 = 16 << 20;
/// The largest `.metadata.json`.
pub const MAX_METADATA_SIZE: u64 = 64 << 10;
/// The largest `.files.json`.
pub const MAX_FILES_LIST_SIZE: u64 = 64 << 20;
/// The longest `version` and `release` (they are part of the `.plugin` file name).
pub const MAX_VERSION_BYTES: usize = 128;
/// The longest other metadata value.
pub const MAX_METADATA_VALUE_BYTES: usize = 4096;

/// What a file that is not a regular file is, for messages.
fn file_type_name(file_type: fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if file_type.is_dir() {
        "a directory"
    } else if file_type.is_fifo() {
        "a fifo"
    } else if file_type.is_socket() {
        "a socket"
    } else if file_type.is_char_device() || file_type.is_block_device() {
        "a device"
    } else {
        "not a regular file"
    }
}

/// Opens the regular file `path` for reading. A fifo or a device is refused without
/// blocking (an `InvalidInput` error saying what it is): the file is opened
/// non-blocking, which changes nothing for a regular file, and checked through the
/// descriptor, so it cannot be swapped between the check and the read.
pub fn open_regular_file(path: &Path) -> io::Result<File> {
    use nix::fcntl::OFlag;
    let file = OpenOptions::new()
        .read(true)
        .custom_flags((OFlag::O_NONBLOCK | OFlag::O_NOCTTY).bits())
        .open(path)?;
    let file_type = file.metadata()?.file_type();
    if !file_type.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "it is {} (only regular files are read)",
                file_type_name(file_type)
            ),
        ));
    }
    Ok(file)
}

/// The text of the regular file `path`, refused when larger than `limit` bytes or not
/// UTF-8.
pub fn read_small_file(path: &Path, limit: u64) -> io::Result<String> {
    String::from_utf8(read_small_bytes(path, limit)?)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "it is not UTF-8"))
}

/// The bytes of the regular file `path` (see [`open_regular_file`]), refused when
/// larger than `limit` bytes.
pub fn read_small_bytes(path: &Path, limit: u64) -> io::Result<Vec<u8>> {
    let file = open_regular_file(path)?;
    let mut data = Vec::new();
    file.take(limit + 1).read_to_end(&mut data)?;
    if data.len() as u64 > limit {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("it is larger than {limit} bytes"),
        ));
    }
    Ok(data)
}

/// Checks a plugin name against the original's rules, in its order, with its messages.
pub fn validate_name(name: &str) -> std::result::Result<(), &'static str> {
    if name.starts_with("plugin_") {
        return Err("A plugin name can't start with 'plugin_'");
    }
    if name.starts_with("__") {
        return Err("A plugin name can't start with '__'");
    }
    if name == "base" {
        return Err("A plugin name can't be 'base'");
    }
    if name == "config" {
        return Err("A plugin name can't be 'config'");
    }
    let allowed = |b: u8| b.is_ascii_alphanumeric() || b == b'_' || b == b'-';
    if name.is_empty() || !name.bytes().all(allowed) {
        return Err("A plugin name must follow ^[A-Za-z0-9_-]+$");
    }
    if name.len() > MAX_NAME_BYTES {
        return Err("A plugin name can't be longer than 100 characters");
    }
    Ok(())
}

/// The error for a bad plugin name given on the command line.
pub fn bad_name_error(name: &str, reason: &str) -> Error {
    Error::new(ErrorKind::Usage, format!("bad plugin name `{name}`")).caused_by(reason.to_owned())
}

/// The plugin name in a label file's content (`plugin_<name>@<module>`).
pub fn name_from_label(text: &str, module_lowercase: &str) -> std::result::Result<String, String> {
    let label = text.trim();
    // Quoted in the messages: nothing of it may reach a terminal raw.
    let shown = printable(label);
    if label.contains('\n') {
        return Err(format!(
            "bad layerapi2_label: `{shown}` => a plugin label is a single line"
        ));
    }
    let Some(rest) = label.strip_prefix("plugin_") else {
        return Err(format!(
            "bad layerapi2_label: {shown} => is it really a plugin? (it must start with 'plugin_')"
        ));
    };
    let suffix = format!("@{module_lowercase}");
    let Some(name) = rest.strip_suffix(&suffix) else {
        return Err(format!(
            "bad layerapi2_label: {shown} => is it really a plugin? (it must end with '{suffix}')"
        ));
    };
    if name.contains('@') {
        return Err(format!(
            "bad layerapi2_label: {shown} => a plugin name can't contain '@'"
        ));
    }
    validate_name(name).map_err(str::to_owned)?;
    Ok(name.to_owned())
}

/// Reads `<home>/.layerapi2_label`; returns `(label, name)`.
pub fn read_label(home: &Path, module_lowercase: &str) -> Result<(String, String)> {
    let path = home.join(LABEL_FILE);
    let text = read_small_file(&path, MAX_LABEL_SIZE)
        .map_err(|err| Error::io("cannot read", &path, &err))?;
    let name = name_from_label(&text, module_lowercase).map_err(|reason| {
        Error::new(
            ErrorKind::LayerFile,
            format!("bad plugin label in `{}`", path.display()),
        )
        .caused_by(reason)
    })?;
    Ok((text.trim().to_owned(), name))
}

/// Checks `<home>/.plugin_format_version`; returns its first three parts (non-numbers
/// count as 9999, as in the original).
pub fn read_format_version(home: &Path) -> std::result::Result<[u32; 3], String> {
    let path = home.join(FORMAT_VERSION_FILE);
    let text = match read_small_file(&path, MAX_LABEL_SIZE) {
        Ok(text) => text,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            return Err(format!(
                "{} is missing => this is probably an old and incompatible plugin => please migrate it!",
                path.display()
            ));
        }
        Err(_) => return Err(format!("bad {} format!", path.display())),
    };
    let parts: Vec<&str> = text.trim().split('.').collect();
    if parts.len() < 3 {
        return Err(format!("bad {} format!", path.display()));
    }
    let number = |part: &str| part.parse::<u32>().unwrap_or(9999);
    Ok([number(parts[0]), number(parts[1]), number(parts[2])])
}

/// `.metadata.json`: the ten string keys, in mfplugin's order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Metadata {
    pub version: String,
    pub release: String,
    pub build_host: String,
    pub build_date: String,
    pub size: String,
    pub summary: String,
    pub license: String,
    pub packager: String,
    pub vendor: String,
    pub url: String,
}

impl Metadata {
    /// Parses `.metadata.json` text: a JSON object with the ten keys, all strings
    /// (other keys are ignored), within the limits of [`Metadata::check`].
    pub fn parse(text: &str) -> std::result::Result<Metadata, String> {
        if text.len() as u64 > MAX_METADATA_SIZE {
            return Err(format!("it is larger than {MAX_METADATA_SIZE} bytes"));
        }
        let metadata: Metadata =
            serde_json::from_str(text.trim()).map_err(|err| err.to_string())?;
        metadata.check()?;
        Ok(metadata)
    }

    /// Reads `<home>/.metadata.json`; `None` when there is none.
    pub fn read(home: &Path) -> std::result::Result<Option<Metadata>, String> {
        let path = home.join(METADATA_FILE);
        match read_small_file(&path, MAX_METADATA_SIZE) {
            Ok(text) => Metadata::parse(&text)
                .map(Some)
                .map_err(|reason| format!("can't decode `{}`: {reason}", path.display())),
            Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(err) => Err(format!(
                "can't read `{}`: {}",
                path.display(),
                crate::error::io_reason(&err)
            )),
        }
    }

    /// Checks the limits: `version` and `release` name files, so they are at most
    /// [`MAX_VERSION_BYTES`] long, without `/` or control characters; the other values
    /// are at most [`MAX_METADATA_VALUE_BYTES`] long.
    pub fn check(&self) -> std::result::Result<(), String> {
        for (key, value) in [("version", &self.version), ("release", &self.release)] {
            if value.len() > MAX_VERSION_BYTES {
                return Err(format!(
                    "the {key} is longer than {MAX_VERSION_BYTES} bytes ({} bytes)",
                    value.len()
                ));
            }
            if value.contains('/') || value.chars().any(char::is_control) {
                return Err(format!(
                    "the {key} `{}` holds a `/` or a control character",
                    printable(value)
                ));
            }
        }
        let others = [
            ("build_host", &self.build_host),
            ("build_date", &self.build_date),
            ("size", &self.size),
            ("summary", &self.summary),
            ("license", &self.license),
            ("packager", &self.packager),
            ("vendor", &self.vendor),
            ("url", &self.url),
        ];
        for (key, value) in others {
            if value.len() > MAX_METADATA_VALUE_BYTES {
                return Err(format!(
                    "the {key} is longer than {MAX_METADATA_VALUE_BYTES} bytes ({} bytes)",
                    value.len()
                ));
            }
        }
        Ok(())
    }

    /// The plugin hash of these metadata (B3).
    pub fn hash(&self) -> String {
        plugin_hash(
            &self.build_host,
            &self.build_date,
            &self.size,
            &self.version,
            &self.release,
        )
    }
}

/// Parses `.files.json` text: a JSON list of strings.
pub fn parse_files_list(text: &str) -> std::result::Result<Vec<String>, String> {
    if text.len() as u64 > MAX_FILES_LIST_SIZE {
        return Err(format!("it is larger than {MAX_FILES_LIST_SIZE} bytes"));
    }
    serde_json::from_str::<Vec<String>>(text.trim()).map_err(|err| err.to_string())
}

/// Reads `<home>/.files.json`.
pub fn read_files_list(home: &Path) -> std::result::Result<Vec<String>, String> {
    let path = home.join(FILES_FILE);
    read_small_file(&path, MAX_FILES_LIST_SIZE)
        .map_err(|err| crate::error::io_reason(&err))
        .and_then(|text| parse_files_list(&text))
        .map_err(|reason| format!("can't read `{}`: {reason}", path.display()))
}

/// mfplugin's plugin hash: md5 hex of `build_host, build_date, size, version, release`.
pub fn plugin_hash(
    build_host: &str,
    build_date: &str,
    size: &str,
    version: &str,
    release: &str,
) -> String {
    md5_hex(format!("{build_host}, {build_date}, {size}, {version}, {release}").as_bytes())
}

/// The hash of a dev-linked plugin.
pub fn dev_link_hash() -> String {
    plugin_hash(UNKNOWN, UNKNOWN, UNKNOWN, DEV_LINK, DEV_LINK)
}

/// Lowercase hex md5 of `bytes`.
pub fn md5_hex(bytes: &[u8]) -> String {
    use md5::{Digest, Md5};
    Md5::digest(bytes)
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// JSON as Python's `json.dumps(value, indent=4)` lays it out (no trailing newline).
pub fn to_json_indented<T: Serialize>(value: &T) -> String {
    let mut out = Vec::new();
    let formatter = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut serializer = serde_json::Serializer::with_formatter(&mut out, formatter);
    value
        .serialize(&mut serializer)
        .expect("serialising strings and lists to memory cannot fail");
    String::from_utf8(out).expect("serde_json writes UTF-8")
}

/// The environment the configuration of plugin `name` at `home` is rendered with:
/// the caller's, plus `${MODULE}_CURRENT_PLUGIN_NAME`, `_DIR` and `_LABEL` (reference C2).
pub fn plugin_env(env: &Env, module: &str, name: &str, home: &Path, label: &str) -> Env {
    let mut env = env.clone();
    env.set(&format!("{module}_CURRENT_PLUGIN_NAME"), name);
    env.set(
        &format!("{module}_CURRENT_PLUGIN_DIR"),
        &home.to_string_lossy(),
    );
    env.set(&format!("{module}_CURRENT_PLUGIN_LABEL"), label);
    env
}

/// A plugin source tree that passed every check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceTree {
    pub home: PathBuf,
    pub label: String,
    pub name: String,
    pub format_version: [u32; 3],
    pub general: General,
}

/// What identifies the module a plugin belongs to, for validation.
#[derive(Debug, Clone, Copy)]
pub struct ModuleNames<'a> {
    /// `MFMODULE` (`GENERIC`): prefix of the plugin env variables.
    pub module: &'a str,
    /// `MFMODULE_LOWERCASE` (`generic`): the `@module` of labels.
    pub module_lowercase: &'a str,
}

/// Validates the plugin at `home` in full (label, name, format version, `config.ini`
/// and its `[general]` section), listing every problem found.
pub fn check_source(
    home: &Path,
    names: ModuleNames<'_>,
    env: &Env,
    configuration: &str,
) -> Result<SourceTree> {
    let mut problems: Vec<String> = Vec::new();
    if !home.is_dir() {
        return Err(Error::new(
            ErrorKind::LayerFile,
            format!("`{}` is not a directory", home.display()),
        ));
    }
    let label = match read_label(home, names.module_lowercase) {
        Ok(label) => Some(label),
        Err(error) => {
            problems.push(flatten(&error));
            None
        }
    };
    let format_version = match read_format_version(home) {
        Ok(version) => Some(version),
        Err(problem) => {
            problems.push(problem);
            None
        }
    };
    let (label_text, name) = label.clone().unwrap_or_default();
    let render_env = plugin_env(env, names.module, &name, home, &label_text);
    let general = match config::read_general(home, &render_env, configuration) {
        Ok(general) => Some(general),
        Err(error) => {
            problems.push(flatten(&error));
            None
        }
    };
    match (label, format_version, general) {
        (Some((label, name)), Some(format_version), Some(general)) if problems.is_empty() => {
            Ok(SourceTree {
                home: home.to_owned(),
                label,
                name,
                format_version,
                general,
            })
        }
        _ => {
            let mut error = Error::new(
                ErrorKind::LayerFile,
                format!("`{}` is not a valid plugin", home.display()),
            );
            for problem in problems {
                error = error.caused_by(problem);
            }
            Err(error)
        }
    }
}

/// An error's headline and causes on one line (`what: cause; cause`).
pub fn flatten(error: &Error) -> String {
    let mut text = error.message().to_owned();
    for (index, cause) in error.causes().iter().enumerate() {
        text.push_str(if index == 0 { ": " } else { "; " });
        text.push_str(cause);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_original_rules_in_order() {
        assert_eq!(
            validate_name("plugin_x"),
            Err("A plugin name can't start with 'plugin_'")
        );
        assert_eq!(
            validate_name("__x"),
            Err("A plugin name can't start with '__'")
        );
        assert_eq!(validate_name("base"), Err("A plugin name can't be 'base'"));
        assert_eq!(
            validate_name("config"),
            Err("A plugin name can't be 'config'")
        );
        assert_eq!(
            validate_name("a.b"),
            Err("A plugin name must follow ^[A-Za-z0-9_-]+$")
        );
        assert_eq!(
            validate_name(""),
            Err("A plugin name must follow ^[A-Za-z0-9_-]+$")
        );
        assert_eq!(validate_name("Foo_bar-2"), Ok(()));
    }

    #[test]
    fn labels_give_names_and_extra_at_signs_are_refused() {
        assert_eq!(
            name_from_label("plugin_foo@generic\n", "generic"),
            Ok("foo".into())
        );
        let error = name_from_label("foo@generic", "generic").unwrap_err();
        assert!(error.contains("it must start with 'plugin_'"), "{error}");
        let error = name_from_label("plugin_foo@mfdata", "generic").unwrap_err();
        assert!(error.contains("it must end with '@generic'"), "{error}");
        let error = name_from_label("plugin_a@b@generic", "generic").unwrap_err();
        assert!(error.contains("can't contain '@'"), "{error}");
        assert!(name_from_label("plugin_a@generic\nplugin_b@generic", "generic").is_err());
        assert_eq!(
            name_from_label("plugin_base@generic", "generic"),
            Err("A plugin name can't be 'base'".into())
        );
    }

    #[test]
    fn the_hash_is_md5_of_the_five_fields() {
        assert_eq!(
            plugin_hash("unknown", "unknown", "unknown", "dev_link", "dev_link"),
            md5_hex(b"unknown, unknown, unknown, dev_link, dev_link")
        );
        assert_eq!(md5_hex(b""), "d41d8cd98f00b204e9800998ecf8427e");
    }

    #[test]
    fn metadata_needs_the_ten_string_keys() {
        let text = r#"{"version": "1", "release": "1", "build_host": "h", "build_date": "d",
            "size": "3", "summary": "s", "license": "l", "packager": "p", "vendor": "v",
            "url": "u", "extra": 5}"#;
        assert_eq!(Metadata::parse(text).unwrap().packager, "p");
        assert!(Metadata::parse(r#"{"version": "1"}"#).is_err());
        let with_number = text.replace(r#""size": "3""#, r#""size": 3"#);
        assert!(Metadata::parse(&with_number).is_err());
    }

    #[test]
    fn json_is_laid_out_like_python_with_indent_four() {
        assert_eq!(
            to_json_indented(&vec!["a", "b"]),
            "[\n    \"a\",\n    \"b\"\n]"
        );
        assert_eq!(to_json_indented(&Vec::<String>::new()), "[]");
    }

    #[test]
    fn format_versions_need_three_parts() {
        let dir = tempfile::tempdir().unwrap();
        let error = read_format_version(dir.path()).unwrap_err();
        assert!(error.ends_with(
            "is missing => this is probably an old and incompatible plugin => please migrate it!"
        ));
        std::fs::write(dir.path().join(FORMAT_VERSION_FILE), "1.0\n").unwrap();
        assert!(
            read_format_version(dir.path())
                .unwrap_err()
                .starts_with("bad ")
        );
        std::fs::write(dir.path().join(FORMAT_VERSION_FILE), "1.x.3.4\n").unwrap();
        assert_eq!(read_format_version(dir.path()), Ok([1, 9999, 3]));
    }
}
