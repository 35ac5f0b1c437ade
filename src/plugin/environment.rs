//! The plugin environment (reference C6, C7): the variables `mfenv plugin env`,
//! `mfenv plugin wrapper` and `mfenv cron install` give a plugin's commands.
//!
//! Built in this order, later settings winning: the environments of the plugins named
//! `plugin_*` in `.layerapi2_dependencies` (recursively, without their identity
//! variables), the `${MODULE}_CURRENT_PLUGIN_<SECTION>_<KEY>` variables of the layered
//! configuration, the identity variables `${MODULE}_CURRENT_PLUGIN_NAME`, `_DIR` and
//! `_LABEL`, `TMPDIR=RUNTIME/tmp/NAME` (the directory is created), and the plugin home
//! prepended to `PYTHONPATH` unless `_add_plugin_dir_to_python_path` is false.
//!
//! The result is data ([`Setting`]s) for the engine, which records them with the
//! plugin layer's load so that unloading it restores every variable exactly. Computing
//! it reads a handful of small files: fast enough to run per command, so there is no
//! cache file (the original's cache could serve stale values).
//!
//! One deliberate difference: a dependency's home stays on `PYTHONPATH` (the original
//! replaced the dependency's `PYTHONPATH` by the plugin's own, losing it).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use crate::context::ModuleContext;
use crate::env::Env;
use crate::env::diff::Setting;
use crate::error::{Error, ErrorKind, Result};
use crate::plugin::config::{self, LayeredConfig, is_true};

/// A plugin the environment is computed for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginIdentity {
    pub name: String,
    /// The plugin home as the layer engine knows it.
    pub home: String,
    /// `plugin_<name>@<module>`.
    pub label: String,
}

/// What the environment is computed from.
pub struct EnvironmentInputs<'a> {
    pub context: &'a ModuleContext,
    pub env: &'a Env,
    /// `MFCONFIG`, lower case.
    pub configuration: &'a str,
    /// The home of an installed plugin, by name (for dependencies).
    pub find_home: &'a dyn Fn(&str) -> Option<String>,
    pub resolve_host: &'a dyn Fn(&str) -> Option<String>,
}

/// A plugin's environment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PluginEnvironment {
    /// Plain variables, by name.
    pub variables: BTreeMap<String, String>,
    /// Entries prepended to `PYTHONPATH`, in order (the last ends up first).
    pub python_path: Vec<String>,
    /// Ignored private keys of override files, one line each.
    pub warnings: Vec<String>,
}

impl PluginEnvironment {
    /// The settings for the engine: the variables, then the `PYTHONPATH` prepends.
    pub fn settings(&self) -> Vec<Setting> {
        let mut settings: Vec<Setting> = self
            .variables
            .iter()
            .map(|(name, value)| Setting::Set(name.clone(), value.clone()))
            .collect();
        settings.extend(
            self.python_path
                .iter()
                .map(|entry| Setting::Prepend("PYTHONPATH".to_owned(), entry.clone())),
        );
        settings
    }

    /// `env` with this environment applied (for rendering crontabs).
    pub fn applied_to(&self, env: &Env) -> Env {
        let mut result = env.clone();
        for (name, value) in &self.variables {
            result.set(name, value);
        }
        for entry in &self.python_path {
            let mut list =
                crate::env::path_list::PathList::parse(result.get("PYTHONPATH").unwrap_or(""));
            list.prepend(entry);
            result.set("PYTHONPATH", &list.join());
        }
        result
    }
}

/// The identity variables of `plugin`.
pub fn identity_variables(module: &str, plugin: &PluginIdentity) -> [(String, String); 3] {
    [
        (format!("{module}_CURRENT_PLUGIN_NAME"), plugin.name.clone()),
        (format!("{module}_CURRENT_PLUGIN_DIR"), plugin.home.clone()),
        (
            format!("{module}_CURRENT_PLUGIN_LABEL"),
            plugin.label.clone(),
        ),
    ]
}

/// Reads the layered configuration of `plugin`, rendered with the environment and its
/// identity variables, and validated: a plugin `mfenv plugin check` refuses (bad
/// `.plugin_format_version`, invalid configuration, an override file making it invalid)
/// is an error, so it never runs.
pub fn layered_config(
    inputs: &EnvironmentInputs<'_>,
    plugin: &PluginIdentity,
) -> Result<LayeredConfig> {
    let home = Path::new(&plugin.home);
    if let Err(problem) = crate::plugin::model::read_format_version(home) {
        return Err(Error::new(
            ErrorKind::LayerFile,
            format!("`{}` is not a valid plugin", home.display()),
        )
        .caused_by(problem));
    }
    let identity = identity_variables(&inputs.context.module, plugin);
    let lookup = |name: &str| {
        identity
            .iter()
            .find(|(variable, _)| variable == name)
            .map(|(_, value)| value.clone())
            .or_else(|| inputs.env.get(name).map(str::to_owned))
    };
    let files = config::layered_files(Path::new(&plugin.home), &plugin.name, inputs.context);
    config::read_layered(
        &files,
        inputs.configuration,
        &inputs.context.module,
        lookup,
        inputs.resolve_host,
    )
}

/// The environment of `plugin` (reference C7).
pub fn plugin_environment(
    inputs: &EnvironmentInputs<'_>,
    plugin: &PluginIdentity,
) -> Result<PluginEnvironment> {
    let mut result = PluginEnvironment::default();
    let mut visited = BTreeSet::from([plugin.name.clone()]);
    add_environment(inputs, plugin, true, &mut visited, &mut result)?;
    Ok(result)
}

fn add_environment(
    inputs: &EnvironmentInputs<'_>,
    plugin: &PluginIdentity,
    with_identity: bool,
    visited: &mut BTreeSet<String>,
    result: &mut PluginEnvironment,
) -> Result<()> {
    let module = &inputs.context.module;
    for dependency in plugin_dependencies(Path::new(&plugin.home), &inputs.context.module_lowercase)
    {
        if !visited.insert(dependency.clone()) {
            continue;
        }
        let Some(home) = (inputs.find_home)(&dependency) else {
            continue;
        };
        let identity = PluginIdentity {
            label: inputs.context.plugin_label(&dependency),
            name: dependency,
            home,
        };
        // A broken dependency is skipped, as the original does.
        let mut dependency_result = PluginEnvironment::default();
        if add_environment(inputs, &identity, false, visited, &mut dependency_result).is_ok() {
            result.variables.extend(dependency_result.variables);
            result.python_path.extend(dependency_result.python_path);
            result.warnings.extend(dependency_result.warnings);
        }
    }
    let layered = layered_config(inputs, plugin)?;
    result.warnings.extend(layered.warnings.iter().cloned());
    result.variables.extend(config::exported_variables(
        &layered.values,
        &layered.order,
        module,
        |name| inputs.env.get(name).map(str::to_owned),
    ));
    if with_identity {
        result.variables.extend(identity_variables(module, plugin));
    }
    let tmp = inputs.context.runtime_home.join("tmp").join(&plugin.name);
    if crate::private::create_dir_all(&tmp).is_ok() {
        result
            .variables
            .insert("TMPDIR".to_owned(), tmp.to_string_lossy().into_owned());
    }
    let add_to_python_path = layered
        .values
        .get("general")
        .and_then(|general| general.get("_add_plugin_dir_to_python_path"))
        .is_none_or(|resolved| is_true(&resolved.value));
    if add_to_python_path {
        result.python_path.retain(|entry| entry != &plugin.home);
        result.python_path.push(plugin.home.clone());
    }
    Ok(())
}

/// The plugin names in `<home>/.layerapi2_dependencies` (lines starting with
/// `plugin_`, optional `-` removed, `@module` suffix removed).
pub fn plugin_dependencies(home: &Path, module_lowercase: &str) -> Vec<String> {
    let Ok(text) = crate::plugin::model::read_small_file(
        &home.join(".layerapi2_dependencies"),
        crate::layer::discover::MAX_LAYER_FILE_BYTES,
    ) else {
        return Vec::new();
    };
    let suffix = format!("@{module_lowercase}");
    text.lines()
        .map(|line| line.trim().trim_start_matches('-').trim())
        .filter_map(|line| line.strip_prefix("plugin_"))
        .map(|rest| {
            rest.strip_suffix(suffix.as_str())
                .unwrap_or(rest)
                .to_owned()
        })
        .filter(|name| !name.is_empty())
        .collect()
}

/// `<base dir>/<name>` when it holds a plugin labelled `plugin_<name>@<module>`.
pub fn installed_home(context: &ModuleContext, name: &str) -> Option<PathBuf> {
    let home = context.plugins_base_dir.join(name);
    let label = crate::plugin::model::read_small_file(
        &home.join(".layerapi2_label"),
        crate::plugin::model::MAX_LABEL_SIZE,
    )
    .ok()?;
    (label.trim() == context.plugin_label(name)).then_some(home)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dependencies_are_the_plugin_lines_of_the_dependencies_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join(".layerapi2_dependencies"),
            "python3@mfext\n-plugin_opt@mfdata\n plugin_base@mfdata \nplugin_other\n",
        )
        .unwrap();
        assert_eq!(
            plugin_dependencies(dir.path(), "mfdata"),
            ["opt", "base", "other"]
        );
    }

    #[test]
    fn settings_put_the_variables_before_the_python_path() {
        let environment = PluginEnvironment {
            variables: BTreeMap::from([("A".to_owned(), "1".to_owned())]),
            python_path: vec!["/p".to_owned()],
            warnings: Vec::new(),
        };
        assert_eq!(
            environment.settings(),
            [
                Setting::Set("A".into(), "1".into()),
                Setting::Prepend("PYTHONPATH".into(), "/p".into())
            ]
        );
        let applied = environment.applied_to(&Env::from_pairs([("PYTHONPATH", "/x")]));
        assert_eq!(applied.get("PYTHONPATH"), Some("/p:/x"));
    }
}
