//! The module context of cron jobs: what lets a rendered crontab line run under cron's
//! own environment (`PATH=/usr/bin:/bin`, `HOME`, `SHELL=/bin/sh`, `LOGNAME`, nothing
//! else), where no profile has set `MFMODULE`, the runtime home or the layers path.
//!
//! Two placeholders are offered to plugin crontabs besides the environment:
//!
//! - `{{MFENV_BIN}}`: the absolute path of the mfenv binary that renders the crontab;
//! - `{{MFENV_CRONWRAP}}`: the absolute path of a `cronwrap.sh` that mfenv keeps in the
//!   runtime home (`RUNTIME/var/cron/bin/cronwrap.sh`, beside `plugin_wrapper`, `mfenv`
//!   and the other historical names, all links to that binary).
//!
//! When a crontab update installs at least one block, mfenv records the module context
//! (the variables of [`context_variables`], taken from the environment of that
//! update) once for each `cronwrap.sh` directory the rendered lines call: its own, and
//! the directory of every absolute `…/cronwrap.sh` word (`{{MFDATA_HOME}}/bin/cronwrap.sh`
//! of existing plugins, made by `mfenv install-aliases`). A record is the file
//! `$HOME/.local/state/mfenv/cron/<md5 of the directory>.json`: `HOME` is the one
//! variable cron gives a job that locates the user, and the directory of `cronwrap.sh`
//! (from its `argv[0]`) tells the modules of one user apart. `cronwrap.sh` started
//! without `MFMODULE_RUNTIME_HOME` loads the record of its directory (see
//! [`job_environment`]) before running the command, which is what the original's
//! sourcing of the module profile did.
//!
//! Nothing here reads the process environment: the callers pass it down. Records are
//! written whole (temporary file, then rename), mode 0600.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use md5::{Digest, Md5};
use serde::{Deserialize, Serialize};

use crate::context::ModuleContext;
use crate::env::Env;
use crate::error::{Error, ErrorKind, Result};

/// The historical name of the wrapper whose directory selects a record.
pub const CRONWRAP_SH: &str = "cronwrap.sh";
/// mfenv's own `cronwrap.sh` and historical names, below the runtime home.
pub const CRON_BIN_DIR: &str = "var/cron/bin";
/// The records, below `HOME`.
pub const RECORDS_DIR: &str = ".local/state/mfenv/cron";
/// The placeholder of the binary's absolute path.
pub const BIN_PLACEHOLDER: &str = "MFENV_BIN";
/// The placeholder of mfenv's own `cronwrap.sh`.
pub const CRONWRAP_PLACEHOLDER: &str = "MFENV_CRONWRAP";

/// The version of the record format.
pub const FORMAT: u32 = 1;

/// The module context recorded for the jobs of one `cronwrap.sh` directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    pub format: u32,
    /// The directory of the `cronwrap.sh` this record is for.
    pub cronwrap_dir: String,
    pub module: String,
    pub runtime_home: String,
    /// The variables set for the job.
    pub environment: BTreeMap<String, String>,
}

/// `dir` with repeated and trailing slashes and `.` components removed, so that the
/// key of a directory does not depend on how a line spells it.
fn normalized(dir: &Path) -> PathBuf {
    dir.components().collect()
}

/// The record file of the `cronwrap.sh` directory `dir`, below `home`.
pub fn record_path(home: &Path, dir: &Path) -> PathBuf {
    let digest = Md5::digest(normalized(dir).as_os_str().as_encoded_bytes());
    let hex: String = digest.iter().map(|byte| format!("{byte:02x}")).collect();
    home.join(RECORDS_DIR).join(format!("{hex}.json"))
}

/// The variables that make the module context of `env` (computed values for the
/// module, runtime home, plugins base dir and sysconf dir, so that the defaults
/// computed from `XDG_DATA_HOME` are pinned too): every `MFMODULE*`, `MFENV_*` and
/// `<MODULE>_*` variable but the `<MODULE>_CURRENT_PLUGIN_*` ones, `MFCONFIG`,
/// `MFHOSTNAME*`, the layers path and file-name overrides, and the python short
/// versions.
pub fn context_variables(env: &Env, context: &ModuleContext) -> BTreeMap<String, String> {
    let module_prefix = format!("{}_", context.module);
    let current_plugin = format!("{}_CURRENT_PLUGIN_", context.module);
    let mut out: BTreeMap<String, String> = env
        .vars()
        .iter()
        .filter(|(name, _)| {
            let name = name.as_str();
            (name.starts_with("MFMODULE")
                || name.starts_with("MFENV_")
                || name.starts_with("MFHOSTNAME")
                || name.starts_with(&module_prefix)
                || (name.starts_with("LAYERAPI2_LAYER_") && name.ends_with("_FILENAME"))
                || matches!(
                    name,
                    "MFCONFIG"
                        | "LAYERAPI2_LAYERS_PATH"
                        | "PYTHON3_SHORT_VERSION"
                        | "PYTHON2_SHORT_VERSION"
                ))
                && !name.starts_with(&current_plugin)
        })
        .map(|(name, value)| (name.clone(), value.clone()))
        .collect();
    let path = |path: &Path| path.to_string_lossy().into_owned();
    out.insert("MFMODULE".into(), context.module.clone());
    out.insert(
        "MFMODULE_LOWERCASE".into(),
        context.module_lowercase.clone(),
    );
    out.insert("MFMODULE_RUNTIME_HOME".into(), path(&context.runtime_home));
    out.insert(
        "MFMODULE_PLUGINS_BASE_DIR".into(),
        path(&context.plugins_base_dir),
    );
    out.insert("MFENV_SYSCONF_DIR".into(), path(&context.sysconf_dir));
    out
}

/// The directories of the absolute `…/cronwrap.sh` words of `rendered` (plain words:
/// quoted ones are not parsed), in order of appearance, without repeats.
pub fn cronwrap_dirs(rendered: &str) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = Vec::new();
    for word in rendered.split_whitespace() {
        let path = Path::new(word);
        if !word.starts_with('/') || path.file_name() != Some(CRONWRAP_SH.as_ref()) {
            continue;
        }
        if let Some(dir) = path.parent().map(normalized)
            && !out.contains(&dir)
        {
            out.push(dir);
        }
    }
    out
}

/// `path` as one word of a crontab command line: quoted for `/bin/sh` when needed,
/// `%` (a line break for cron) escaped. `None` for a path that is not UTF-8 or holds a
/// control character.
pub fn crontab_word(path: &Path) -> Option<String> {
    let text = path.to_str()?;
    if text.chars().any(char::is_control) {
        return None;
    }
    Some(shell_escape::unix::escape(text.into()).replace('%', "\\%"))
}

/// Writes `record` for its directory below `home`; returns the runtime home of the
/// record it replaced when that was another one.
pub fn write_record(home: &Path, record: &Record) -> Result<Option<String>> {
    let path = record_path(home, Path::new(&record.cronwrap_dir));
    let previous = read_record_file(&path)
        .ok()
        .flatten()
        .map(|old| old.runtime_home)
        .filter(|old| *old != record.runtime_home);
    let dir = path.parent().expect("a record path has a directory");
    std::fs::create_dir_all(dir).map_err(|err| Error::io("cannot create", dir, &err))?;
    let temporary = dir.join(format!(".{}.tmp", std::process::id()));
    let mut text = serde_json::to_string_pretty(record).expect("records always serialize");
    text.push('\n');
    crate::private::replace(&path, &temporary, text)
        .map_err(|err| Error::io("cannot write", &path, &err))?;
    Ok(previous)
}

fn read_record_file(path: &Path) -> Result<Option<Record>> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(err) => return Err(Error::io("cannot read", path, &err)),
    };
    let record: Record = serde_json::from_str(&text).map_err(|err| {
        Error::new(
            ErrorKind::Environment,
            format!("cannot read the cron module context `{}`", path.display()),
        )
        .caused_by(err.to_string())
    })?;
    if record.format != FORMAT {
        return Err(Error::new(
            ErrorKind::Environment,
            format!(
                "the cron module context `{}` has format {}, not {FORMAT}",
                path.display(),
                record.format
            ),
        )
        .with_hint("run `mfenv cron install` again with this mfenv"));
    }
    Ok(Some(record))
}

/// The record of the `cronwrap.sh` directory `dir` below `home`, if any.
pub fn read_record(home: &Path, dir: &Path) -> Result<Option<Record>> {
    read_record_file(&record_path(home, dir))
}

/// Makes `dir` hold `names`, each a symlink to `binary` (replaced in one rename when it
/// points elsewhere): the directory belongs to mfenv.
pub fn ensure_links(dir: &Path, binary: &Path, names: &[&str]) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|err| Error::io("cannot create", dir, &err))?;
    for name in names {
        let link = dir.join(name);
        if std::fs::read_link(&link).is_ok_and(|target| target == binary) {
            continue;
        }
        let temporary = dir.join(format!(".{name}.{}", std::process::id()));
        let _ = std::fs::remove_file(&temporary);
        std::os::unix::fs::symlink(binary, &temporary)
            .map_err(|err| Error::io("cannot create the symlink", &temporary, &err))?;
        std::fs::rename(&temporary, &link).map_err(|err| {
            let _ = std::fs::remove_file(&temporary);
            Error::io("cannot create the symlink", &link, &err)
        })?;
    }
    Ok(())
}

/// The variables to set for a job started through the `cronwrap.sh` of directory
/// `cronwrap_dir`, given the environment `env` it was started with: none when `env`
/// already is a module environment (`MFMODULE_RUNTIME_HOME` set); else the recorded
/// ones, and `PATH` with `cronwrap_dir` (where `plugin_wrapper` and the other
/// historical names are) and `binary_dir` first and, as the original `cronwrap.sh`
/// did, `/usr/local/sbin`, `/usr/sbin` and `/sbin` last when they exist.
/// `Ok(None)`: no record for that directory.
pub fn job_environment(
    env: &Env,
    home: &Path,
    cronwrap_dir: &Path,
    binary_dir: Option<&Path>,
) -> Result<Option<BTreeMap<String, String>>> {
    if env
        .get("MFMODULE_RUNTIME_HOME")
        .is_some_and(|value| !value.is_empty())
    {
        return Ok(Some(BTreeMap::new()));
    }
    let Some(record) = read_record(home, cronwrap_dir)? else {
        return Ok(None);
    };
    let mut out = record.environment;
    let mut entries: Vec<String> = Vec::new();
    let mut add = |entry: String| {
        if !entry.is_empty() && !entries.contains(&entry) {
            entries.push(entry);
        }
    };
    add(normalized(cronwrap_dir).to_string_lossy().into_owned());
    if let Some(dir) = binary_dir {
        add(dir.to_string_lossy().into_owned());
    }
    for entry in env.get("PATH").unwrap_or("/usr/bin:/bin").split(':') {
        add(entry.to_owned());
    }
    for entry in ["/usr/local/sbin", "/usr/sbin", "/sbin"] {
        if Path::new(entry).is_dir() {
            add(entry.to_owned());
        }
    }
    out.insert("PATH".into(), entries.join(":"));
    Ok(Some(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_context_keeps_module_variables_and_pins_computed_paths() {
        let env = Env::from_pairs([
            ("MFMODULE", "MFDATA"),
            ("MFDATA_HOME", "/opt/mfdata"),
            ("MFDATA_CURRENT_PLUGIN_NAME", "foo"),
            ("LAYERAPI2_LAYERS_PATH", "/opt/layers"),
            ("LAYERAPI2_LAYER_LABEL_FILENAME", ".label"),
            ("LAYERAPI2_LAYER_0123_LOADED", "1"),
            ("XDG_DATA_HOME", "/xdg"),
            ("TERM", "xterm"),
            ("PATH", "/x/bin"),
        ]);
        let context = ModuleContext::from_env(&env, None);
        let variables = context_variables(&env, &context);
        let names: Vec<&str> = variables.keys().map(String::as_str).collect();
        assert_eq!(
            names,
            [
                "LAYERAPI2_LAYERS_PATH",
                "LAYERAPI2_LAYER_LABEL_FILENAME",
                "MFDATA_HOME",
                "MFENV_SYSCONF_DIR",
                "MFMODULE",
                "MFMODULE_LOWERCASE",
                "MFMODULE_PLUGINS_BASE_DIR",
                "MFMODULE_RUNTIME_HOME",
            ]
        );
        assert_eq!(variables["MFMODULE_RUNTIME_HOME"], "/xdg/mfenv");
        assert_eq!(variables["MFMODULE_LOWERCASE"], "mfdata");
    }

    #[test]
    fn cronwrap_directories_come_from_absolute_words() {
        let rendered = "* * * * * /opt/m//bin/cronwrap.sh --lock -- plugin_wrapper a -- x\n\
                        0 1 * * * cronwrap.sh -- y; /opt/m/bin/cronwrap.sh -- z\n\
                        0 2 * * * '/q/cronwrap.sh' /opt/n/cronwrap.sh.bak /r/cronwrap.sh\n";
        assert_eq!(
            cronwrap_dirs(rendered),
            [PathBuf::from("/opt/m/bin"), PathBuf::from("/r")]
        );
    }

    #[test]
    fn crontab_words_are_quoted_and_percent_escaped() {
        assert_eq!(
            crontab_word(Path::new("/usr/bin/mfenv")).unwrap(),
            "/usr/bin/mfenv"
        );
        assert_eq!(
            crontab_word(Path::new("/opt/my tools/100%/mfenv")).unwrap(),
            "'/opt/my tools/100\\%/mfenv'"
        );
        assert_eq!(crontab_word(Path::new("/a\nb")), None);
    }

    #[test]
    fn a_record_is_found_by_its_directory_and_sets_path() {
        let home = tempfile::tempdir().unwrap();
        let record = Record {
            format: FORMAT,
            cronwrap_dir: "/opt/m/bin".into(),
            module: "MFDATA".into(),
            runtime_home: "/rt".into(),
            environment: BTreeMap::from([("MFMODULE".into(), "MFDATA".into())]),
        };
        assert_eq!(write_record(home.path(), &record).unwrap(), None);
        let cron_env = Env::from_pairs([("PATH", "/usr/bin:/bin")]);
        let job = job_environment(
            &cron_env,
            home.path(),
            Path::new("/opt/m/bin/"),
            Some(Path::new("/usr/bin")),
        )
        .unwrap()
        .unwrap();
        assert_eq!(job["MFMODULE"], "MFDATA");
        assert!(job["PATH"].starts_with("/opt/m/bin:/usr/bin:/bin"));
        assert_eq!(
            job_environment(&cron_env, home.path(), Path::new("/other"), None).unwrap(),
            None
        );
        // A module environment is left as it is.
        let module_env = Env::from_pairs([("MFMODULE_RUNTIME_HOME", "/mine")]);
        assert!(
            job_environment(&module_env, home.path(), Path::new("/opt/m/bin"), None)
                .unwrap()
                .unwrap()
                .is_empty()
        );
        // Another runtime home taking the directory over is reported.
        let other = Record {
            runtime_home: "/rt2".into(),
            ..record
        };
        assert_eq!(
            write_record(home.path(), &other).unwrap().as_deref(),
            Some("/rt")
        );
    }
}
