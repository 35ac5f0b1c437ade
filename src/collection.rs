//! Collections: named sets of loaded layers, saved and restored (Lmod's `module save`,
//! `module restore`, `module savelist`).
//!
//! A collection is a plain text file `<config dir>/mfenv/collections/<NAME>`, where the
//! config dir is `$XDG_CONFIG_HOME` (when absolute) or `~/.config` (`~` is `HOME`, else
//! the home directory of the password file, as for the module context): one layer label per
//! line, in load order; empty lines and lines starting with `#` are ignored. Users may
//! write or edit these files by hand.
//!
//! This module owns the files only (names, reading, writing whole through a rename,
//! listing, removing); which layers are loaded and the restore transaction are the
//! engine's. It never touches a file outside the collections directory: names are
//! checked before any path is built from them.

use std::fs;
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};

use crate::env::Env;
use crate::env::bytes::{decode, encode, to_path};
use crate::error::{Error, ErrorKind, Result, io_reason};

/// The collection used when no name is given.
pub const DEFAULT_NAME: &str = "default";

/// Where the collections live, from the environment snapshot; `fallback_home` is used
/// when `HOME` is unset or empty.
pub fn directory(env: &Env, fallback_home: Option<&Path>) -> Result<PathBuf> {
    let home = match env.get("HOME").filter(|home| !home.is_empty()) {
        Some(home) => Some(to_path(home).into_owned()),
        None => fallback_home.map(Path::to_path_buf),
    };
    let base = match env.get("XDG_CONFIG_HOME") {
        Some(dir) if dir.starts_with('/') => PathBuf::from(&*to_path(dir)),
        _ => match home {
            Some(home) if home.is_absolute() => home.join(".config"),
            _ => {
                return Err(Error::new(
                    ErrorKind::Environment,
                    "cannot find where collections are kept",
                )
                .caused_by("neither `XDG_CONFIG_HOME` nor `HOME` is an absolute path")
                .with_hint("set `HOME` (or `XDG_CONFIG_HOME`)"));
            }
        },
    };
    Ok(base.join("mfenv").join("collections"))
}

/// Checks a collection name: letters, digits, `.`, `_`, `-`, not starting with `.`.
pub fn check_name(name: &str) -> Result<()> {
    let valid = !name.is_empty()
        && name.len() <= 200
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if valid {
        Ok(())
    } else {
        Err(Error::new(
            ErrorKind::Usage,
            format!("`{name}` is not a valid collection name"),
        )
        .caused_by(
            "a name is made of letters, digits, `.`, `_` and `-`, and does not start with `.`",
        ))
    }
}

fn path_of(env: &Env, home: Option<&Path>, name: &str) -> Result<PathBuf> {
    check_name(name)?;
    Ok(directory(env, home)?.join(name))
}

fn shown(path: &std::path::Path) -> String {
    use std::os::unix::ffi::OsStrExt;
    decode(path.as_os_str().as_bytes()).into_owned()
}

/// Writes the collection `name` (whole: a temporary file renamed over it); returns its
/// path.
pub fn save(env: &Env, home: Option<&Path>, name: &str, labels: &[String]) -> Result<PathBuf> {
    let path = path_of(env, home, name)?;
    let failed = |err: &io::Error, path: &std::path::Path| {
        Error::new(
            ErrorKind::Io,
            format!("cannot save the collection `{name}` to `{}`", shown(path)),
        )
        .caused_by(io_reason(err))
    };
    let mut text =
        format!("# mfenv collection `{name}`: one layer label per line, loaded in this order\n");
    for label in labels {
        if label.is_empty() || label.contains('\n') || label.starts_with('#') {
            return Err(Error::new(
                ErrorKind::Usage,
                format!("cannot save the collection `{name}`"),
            )
            .caused_by(format!(
                "the label `{label}` cannot be written one per line"
            )));
        }
        text.push_str(label);
        text.push('\n');
    }
    let dir = path.parent().expect("a collection path has a parent");
    fs::create_dir_all(dir).map_err(|err| failed(&err, dir))?;
    let temporary = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let written = (|| {
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&temporary)?;
        file.write_all(&encode(&text))?;
        file.sync_all()?;
        fs::rename(&temporary, &path)
    })();
    if let Err(err) = written {
        let _ = fs::remove_file(&temporary);
        return Err(failed(&err, &path));
    }
    Ok(path)
}

/// The labels of the collection `name`, in order.
pub fn read(env: &Env, home: Option<&Path>, name: &str) -> Result<Vec<String>> {
    let path = path_of(env, home, name)?;
    let bytes = fs::read(&path).map_err(|err| {
        let error = Error::new(
            ErrorKind::Io,
            format!("cannot read the collection `{name}`"),
        );
        if err.kind() == io::ErrorKind::NotFound {
            error
                .caused_by(format!("`{}` does not exist", shown(&path)))
                .with_hint("`mfenv collection list` shows the saved collections")
        } else {
            error.caused_by(format!("`{}`: {}", shown(&path), io_reason(&err)))
        }
    })?;
    Ok(decode(&bytes)
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(str::to_owned)
        .collect())
}

/// The names of the saved collections, sorted.
pub fn list(env: &Env, home: Option<&Path>) -> Result<Vec<String>> {
    let dir = directory(env, home)?;
    let entries = match fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(err) => {
            return Err(Error::new(
                ErrorKind::Io,
                format!("cannot list the collections in `{}`", shown(&dir)),
            )
            .caused_by(io_reason(&err)));
        }
    };
    let mut names: Vec<String> = entries
        .flatten()
        .filter(|entry| entry.file_type().is_ok_and(|t| t.is_file()))
        .filter_map(|entry| entry.file_name().into_string().ok())
        .filter(|name| check_name(name).is_ok())
        .collect();
    names.sort();
    Ok(names)
}

/// Removes the collection `name`; returns its path.
pub fn remove(env: &Env, home: Option<&Path>, name: &str) -> Result<PathBuf> {
    let path = path_of(env, home, name)?;
    fs::remove_file(&path).map_err(|err| {
        let error = Error::new(
            ErrorKind::Io,
            format!("cannot remove the collection `{name}`"),
        );
        if err.kind() == io::ErrorKind::NotFound {
            error.caused_by(format!("`{}` does not exist", shown(&path)))
        } else {
            error.caused_by(format!("`{}`: {}", shown(&path), io_reason(&err)))
        }
    })?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_could_leave_the_directory_are_refused() {
        for name in ["", ".", "..", "../x", "a/b", ".hidden", "a b", "a\nb"] {
            assert!(check_name(name).is_err(), "{name:?}");
        }
        for name in ["default", "work-2", "a.b_c"] {
            assert!(check_name(name).is_ok(), "{name:?}");
        }
    }
}
