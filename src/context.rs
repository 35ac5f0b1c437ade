//! The module context: which MetWork module mfenv works for and where its files live
//! (DESIGN §6), computed once from the environment snapshot.
//!
//! | variable | default when unset |
//! |---|---|
//! | `MFMODULE` / `MFMODULE_LOWERCASE` | `GENERIC` / `generic` |
//! | `MFMODULE_RUNTIME_HOME` | `$XDG_DATA_HOME/mfenv` (absolute), else `~/.local/share/mfenv`, else `/tmp/mfenv` |
//! | `MFMODULE_PLUGINS_BASE_DIR` | `RUNTIME/var/plugins` (set but empty counts as set) |
//! | `MFENV_SYSCONF_DIR` | `/etc/metwork.config.d` |
//!
//! `~` is `HOME`, else (unset or empty, as under cron and systemd) the fallback home the
//! caller passes: the password file's, see [`crate::invocation`], which computes the
//! context once per invocation for every command. Nothing here reads the process
//! environment: the caller passes the snapshot and the fallback home.

use std::path::{Path, PathBuf};

use crate::env::Env;
use crate::env::bytes::to_path;
use crate::error::{Error, ErrorKind, Result};
use crate::layer::model::is_valid_variable_name;

/// Where the module's runtime, plugins and system configuration live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModuleContext {
    /// `MFMODULE`, upper case (`MFDATA`, `GENERIC`).
    pub module: String,
    /// `MFMODULE_LOWERCASE` (`mfdata`, `generic`): the `@module` part of labels.
    pub module_lowercase: String,
    /// `MFMODULE_RUNTIME_HOME`.
    pub runtime_home: PathBuf,
    /// `MFMODULE_PLUGINS_BASE_DIR`.
    pub plugins_base_dir: PathBuf,
    /// `MFENV_SYSCONF_DIR` (`/etc/metwork.config.d` in production).
    pub sysconf_dir: PathBuf,
}

impl ModuleContext {
    /// The context described by `env`; `fallback_home` is used when `HOME` is unset.
    pub fn from_env(env: &Env, fallback_home: Option<&Path>) -> Self {
        let non_empty = |name: &str| env.get(name).filter(|v| !v.is_empty());
        let module = non_empty("MFMODULE")
            .map(str::to_uppercase)
            .unwrap_or_else(|| "GENERIC".to_owned());
        let module_lowercase = non_empty("MFMODULE_LOWERCASE")
            .map(str::to_owned)
            .unwrap_or_else(|| module.to_lowercase());
        // Values are bytes carried as text (see `env::bytes`): paths take the bytes.
        let path = |value: &str| to_path(value).into_owned();
        let runtime_home = match non_empty("MFMODULE_RUNTIME_HOME") {
            Some(runtime) => path(runtime),
            None => {
                let data_dir = non_empty("XDG_DATA_HOME")
                    .filter(|dir| dir.starts_with('/'))
                    .map(path)
                    .or_else(|| non_empty("HOME").map(|home| path(home).join(".local/share")))
                    .or_else(|| fallback_home.map(|home| home.join(".local/share")))
                    .unwrap_or_else(|| PathBuf::from("/tmp"));
                data_dir.join("mfenv")
            }
        };
        // Present even when empty, as mfplugin reads it; empty means the current directory.
        let plugins_base_dir = match env.get("MFMODULE_PLUGINS_BASE_DIR") {
            Some(dir) => path(dir),
            None => runtime_home.join("var/plugins"),
        };
        let sysconf_dir = non_empty("MFENV_SYSCONF_DIR")
            .map(path)
            .unwrap_or_else(|| PathBuf::from("/etc/metwork.config.d"));
        ModuleContext {
            module,
            module_lowercase,
            runtime_home,
            plugins_base_dir,
            sysconf_dir,
        }
    }

    /// Checks the module names of `env` before anything is built from them: `MFMODULE`
    /// becomes part of variable names (`${MODULE}_CURRENT_PLUGIN_NAME`) and
    /// `MFMODULE_LOWERCASE` part of labels and paths, so both must be
    /// `[A-Za-z_][A-Za-z0-9_]*` (unset or empty: the defaults).
    pub fn validate(env: &Env) -> Result<()> {
        for name in ["MFMODULE", "MFMODULE_LOWERCASE"] {
            if let Some(value) = env.get(name).filter(|value| !value.is_empty())
                && !is_valid_variable_name(value)
            {
                return Err(Error::new(
                    ErrorKind::Environment,
                    format!("`{name}` is not a valid module name: `{}`", value.escape_debug()),
                )
                .caused_by("module names are made of letters, digits and `_`, and do not start with a digit"));
            }
        }
        Ok(())
    }

    /// The label of plugin `name`: `plugin_<name>@<module>`.
    pub fn plugin_label(&self, name: &str) -> String {
        format!("plugin_{name}@{}", self.module_lowercase)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_follow_the_design() {
        let env = Env::from_pairs([("HOME", "/home/u")]);
        let context = ModuleContext::from_env(&env, None);
        assert_eq!(context.module, "GENERIC");
        assert_eq!(context.module_lowercase, "generic");
        assert_eq!(
            context.runtime_home,
            Path::new("/home/u/.local/share/mfenv")
        );
        assert_eq!(
            context.plugins_base_dir,
            Path::new("/home/u/.local/share/mfenv/var/plugins")
        );
        assert_eq!(context.sysconf_dir, Path::new("/etc/metwork.config.d"));
        assert_eq!(context.plugin_label("foo"), "plugin_foo@generic");
    }

    #[test]
    fn module_variables_override_the_defaults() {
        let env = Env::from_pairs([
            ("MFMODULE", "MFDATA"),
            ("MFMODULE_RUNTIME_HOME", "/rt"),
            ("MFENV_SYSCONF_DIR", "/etc/x"),
        ]);
        let context = ModuleContext::from_env(&env, None);
        assert_eq!(context.module_lowercase, "mfdata");
        assert_eq!(context.plugins_base_dir, Path::new("/rt/var/plugins"));
        assert_eq!(context.sysconf_dir, Path::new("/etc/x"));
        let env = Env::from_pairs([("MFMODULE_PLUGINS_BASE_DIR", "/p")]);
        assert_eq!(
            ModuleContext::from_env(&env, Some(Path::new("/h"))).plugins_base_dir,
            Path::new("/p")
        );
    }

    #[test]
    fn module_names_that_cannot_be_part_of_a_variable_name_are_refused() {
        for bad in ["X;./RUN_ME;Y", "1MF", "MF DATA", "a-b", "$(id)", "MFÉ"] {
            let env = Env::from_pairs([("MFMODULE", bad)]);
            let error = ModuleContext::validate(&env).unwrap_err();
            assert!(error.message().contains("`MFMODULE`"), "{bad}");
            let env = Env::from_pairs([("MFMODULE_LOWERCASE", bad)]);
            assert!(ModuleContext::validate(&env).is_err(), "{bad}");
        }
        for good in ["MFDATA", "mfserv", "_X1"] {
            let env = Env::from_pairs([("MFMODULE", good), ("MFMODULE_LOWERCASE", good)]);
            assert!(ModuleContext::validate(&env).is_ok());
        }
        assert!(ModuleContext::validate(&Env::from_pairs([("MFMODULE", "")])).is_ok());
    }

    #[test]
    fn xdg_data_home_is_used_when_absolute() {
        let env = Env::from_pairs([("XDG_DATA_HOME", "/xdg"), ("HOME", "/home/u")]);
        assert_eq!(
            ModuleContext::from_env(&env, None).runtime_home,
            Path::new("/xdg/mfenv")
        );
        let env = Env::from_pairs([("XDG_DATA_HOME", "rel"), ("HOME", "/home/u")]);
        assert_eq!(
            ModuleContext::from_env(&env, None).runtime_home,
            Path::new("/home/u/.local/share/mfenv")
        );
    }
}
