//! Applying load and unload steps to an environment: the changes as data.
//!
//! An [`Applier`] starts from a snapshot of the environment and the decoded state, and
//! applies one layer load or unload at a time (facts about the layer are gathered by the
//! caller from the catalog, so this module does no I/O). It produces [`Op`]s: variable
//! changes, coalesced, and `Source` of interactive (un)profiles, placed exactly where
//! layerapi2 sourced them so the scripts see the environment they expect.
//!
//! Unload is exact for layers mfenv loaded (DESIGN §4.2): entries the load added are
//! removed, entries it moved go back to their place, extra_env variables get their
//! previous value back unless the user changed them since; a variable that was unset
//! before the first load comes back unset. A layer loaded by the original tools (a
//! marker, no record) is unloaded with their rule: entries below its home removed,
//! extra_env keys unset.

use crate::fasthash::{FastMap, FastSet};
use std::rc::Rc;

use crate::env::path_list::{PathList, Prepend};
use crate::env::state::{
    ExtraChange, PathChange, Record, STATE_VARIABLE, State, marker_is_set, marker_name,
    value_digest,
};
use crate::env::{Env, EnvOverlay};
use crate::error::{Error, ErrorKind, Result};
use crate::layer::model::{ExtraEnvEntry, extra_env_value, is_valid_variable_name};
use crate::layer::model::{PATH_VARIABLES, PREPEND_STEPS, PythonVersions, SubPath};

/// One thing the shell must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// Export a variable with this exact value.
    Set(String, String),
    /// Remove a variable.
    Unset(String),
    /// Source a script (interactive profile or unprofile), by absolute path.
    Source(String),
}

/// What a load needs to know about a layer.
#[derive(Debug, Clone)]
pub struct LoadFacts {
    pub home: String,
    pub label: String,
    /// Bit i set: the directory of `PREPEND_STEPS[i]` exists.
    pub existing_dirs: u32,
    pub profile: Option<String>,
    pub extra_env: Rc<[ExtraEnvEntry]>,
    /// Variables set with the layer that are not in its files (the plugin env of
    /// `mfenv plugin env`), applied after `extra_env` and restored by its unload.
    pub settings: Vec<Setting>,
}

/// A variable a load sets besides the layer's own `extra_env`. Values are taken as
/// they are (no `{NAME}` substitution).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Setting {
    /// Give the variable this value.
    Set(String, String),
    /// Prepend this entry to the `:`-list (moved to the front when already there).
    Prepend(String, String),
}

/// What an unload needs to know about a layer.
#[derive(Debug, Clone)]
pub struct UnloadFacts {
    pub home: String,
    pub label: String,
    pub unprofile: Option<String>,
    /// The extra_env keys, for layers loaded by the original tools (no record).
    pub extra_keys: Vec<String>,
}

/// How loads behave.
#[derive(Debug, Clone, Default)]
pub struct ApplyOptions {
    pub python: PythonVersions,
    /// Prepend every directory, existing or not.
    pub force_prepend: bool,
    /// Source interactive (un)profiles (shell mode; never in `exec`).
    pub source_profiles: bool,
}

/// One variable's change over the whole application.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub name: String,
    pub before: Option<String>,
    pub after: Option<String>,
}

/// Applies steps to an environment and records the resulting operations.
#[derive(Debug, Clone)]
pub struct Applier<'env> {
    initial: &'env Env,
    current: EnvOverlay<'env>,
    /// Values the emitted code gave the shell so far (others are the initial ones).
    flushed: FastMap<String, Option<String>>,
    pending: Vec<String>,
    pending_names: FastSet<String>,
    touched: Vec<String>,
    touched_names: FastSet<String>,
    /// Path lists being changed by loads, parsed (see [`Applier::path_list`]).
    lists: Vec<(&'static str, PathList)>,
    state: State,
    options: ApplyOptions,
    ops: Vec<Op>,
}

impl<'env> Applier<'env> {
    /// Starts from `env` and its decoded `state`; records whose marker is gone are dropped.
    pub fn new(env: &'env Env, mut state: State, options: ApplyOptions) -> Self {
        state
            .records
            .retain(|record| marker_is_set(env.get(&marker_name(&record.home))));
        Applier {
            initial: env,
            current: EnvOverlay::new(env),
            flushed: FastMap::default(),
            pending: Vec::new(),
            pending_names: FastSet::default(),
            touched: Vec::new(),
            touched_names: FastSet::default(),
            lists: Vec::new(),
            state,
            options,
            ops: Vec::new(),
        }
    }

    pub fn state(&self) -> &State {
        &self.state
    }

    /// Applies the load of one layer.
    pub fn load(&mut self, facts: &LoadFacts) -> Result<()> {
        let mut record = Record {
            home: facts.home.clone(),
            label: facts.label.clone(),
            ..Record::default()
        };
        for (index, step) in PREPEND_STEPS.iter().enumerate() {
            if !self.options.force_prepend && facts.existing_dirs & (1 << index) == 0 {
                continue;
            }
            let versions = &self.options.python;
            let Some(sub) = versions.step_sub_path(index) else {
                continue;
            };
            let entry = {
                let mut entry = String::with_capacity(facts.home.len() + 1 + sub.len());
                entry.push_str(&facts.home);
                entry.push('/');
                entry.push_str(sub);
                entry
            };
            if let SubPath::Python { major, .. } = step.sub_path {
                match major {
                    2 => record.python2.clone_from(&versions.python2),
                    _ => record.python3.clone_from(&versions.python3),
                }
            }
            let variable = step.variable;
            let moved_from_end = match self.path_list(variable).prepend(&entry) {
                Some(Prepend::Added) => Vec::new(),
                Some(Prepend::Moved { from_ends }) => from_ends,
                None => continue,
            };
            record.paths.push(PathChange {
                step: u8::try_from(index).expect("18 steps fit in a byte"),
                moved_from_end,
            });
        }
        if !facts.extra_env.is_empty() || !facts.settings.is_empty() {
            // extra_env values and settings may read the path lists (`{PATH}`).
            self.sync_path_lists();
        }
        if self.options.source_profiles
            && let Some(profile) = &facts.profile
        {
            self.sync_path_lists();
            self.flush();
            self.ops.push(Op::Source(profile.clone()));
        }
        for entry in facts.extra_env.iter() {
            let value = extra_env_value(&entry.raw_value, |name| self.current.get(name));
            record.extras.push(ExtraChange {
                key: entry.key.clone(),
                previous: self.current.get(&entry.key).map(str::to_owned),
                set_digest: value_digest(&value),
            });
            self.set(&entry.key, &value);
        }
        for setting in &facts.settings {
            let (key, value) = match setting {
                Setting::Set(key, value) => (key, value.clone()),
                Setting::Prepend(key, entry) => {
                    let mut list = PathList::parse(self.current.get(key).unwrap_or(""));
                    list.prepend(entry);
                    (key, list.join())
                }
            };
            // Names built from plugin configuration or the module name: checked here,
            // where they are about to become shell code.
            if !is_valid_variable_name(key) || value.contains('\0') {
                return Err(Error::new(
                    ErrorKind::Environment,
                    format!(
                        "cannot set `{}` for layer `{}`",
                        key.escape_debug(),
                        facts.label
                    ),
                )
                .caused_by(if value.contains('\0') {
                    "its value holds a NUL byte"
                } else {
                    "it is not a valid variable name"
                }));
            }
            record.extras.push(ExtraChange {
                key: key.clone(),
                previous: self.current.get(key).map(str::to_owned),
                set_digest: value_digest(&value),
            });
            self.set(key, &value);
        }
        self.set(&marker_name(&facts.home), "1");
        self.state.records.retain(|r| r.home != facts.home);
        self.state.records.push(record);
        Ok(())
    }

    /// Applies the unload of one layer.
    pub fn unload(&mut self, facts: &UnloadFacts) -> Result<()> {
        self.sync_path_lists();
        let position = self.state.records.iter().position(|r| r.home == facts.home);
        match position {
            Some(index) => {
                // layerapi2's order: the unprofile sees the paths gone and the layer's
                // variables still set, so it can use them to clean up.
                // An extra_env value built on a path list (`PATH={PATH}:/x`) was set after
                // the prepends: undo it first. Then layerapi2's order: the unprofile sees
                // the paths gone and the layer's other variables still set.
                let record = self.state.records.remove(index);
                self.restore_extras(&record, index, true);
                self.restore_paths(&record);
                self.source_unprofile(facts);
                self.restore_extras(&record, index, false);
            }
            None => self.unload_like_layerapi2(facts),
        }
        self.unset(&marker_name(&facts.home));
        Ok(())
    }

    /// Sets a variable that belongs to no layer (`exec --extra-env-prefix`).
    pub fn set_plain(&mut self, name: &str, value: &str) {
        self.sync_path_lists();
        self.set(name, value);
    }

    /// Prepends `value` to the path list `name`, whether or not it exists
    /// (`exec --prepend-env`). An empty value prepends nothing but, as layerapi2's
    /// `field_prepend` does, drops the empty elements and sets the variable (`""` when
    /// it was unset).
    pub fn prepend_plain(&mut self, name: &str, value: &str) -> Result<()> {
        self.sync_path_lists();
        let mut list = PathList::parse(self.current.get(name).unwrap_or(""));
        if value.is_empty() {
            list.remove("");
        } else {
            list.prepend(value);
        }
        let joined = list.join();
        self.set(name, &joined);
        Ok(())
    }

    /// Ends the application: writes the state variable and returns the operations.
    pub fn finish(mut self) -> (Vec<Op>, Env, Vec<Change>) {
        let (ops, changes) = self.finish_changes();
        (ops, self.current.to_env(), changes)
    }

    /// Ends the application and returns only the operations (what `load` prints).
    pub fn finish_ops(&mut self) -> Vec<Op> {
        self.write_state();
        std::mem::take(&mut self.ops)
    }

    /// Like [`Applier::finish`], without building the resulting environment.
    pub fn finish_changes(&mut self) -> (Vec<Op>, Vec<Change>) {
        self.write_state();
        let changes = self
            .touched
            .iter()
            .filter_map(|name| {
                let before = self.initial.get(name);
                let after = self.current.get(name);
                (before != after).then(|| Change {
                    name: name.clone(),
                    before: before.map(str::to_owned),
                    after: after.map(str::to_owned),
                })
            })
            .collect();
        (std::mem::take(&mut self.ops), changes)
    }

    /// Restores the extra_env variables of `record` that are path lists (`path_lists`)
    /// or the others.
    fn restore_extras(&mut self, record: &Record, index: usize, path_lists: bool) {
        for extra in record.extras.iter().rev() {
            if PATH_VARIABLES.contains(&extra.key.as_str()) != path_lists {
                continue;
            }
            // A later layer that set the same variable took it over: it must give back
            // what was there before this layer, and the variable stays as it is now.
            let later = self.state.records[index..]
                .iter_mut()
                .flat_map(|r| r.extras.iter_mut())
                .find(|e| {
                    e.key == extra.key
                        && e.previous.as_deref().map(value_digest) == Some(extra.set_digest)
                });
            if let Some(later) = later {
                later.previous = extra.previous.clone();
                continue;
            }
            // Unchanged since this layer set it: restore. Changed: the user's, leave it.
            if self.current.get(&extra.key).map(value_digest) == Some(extra.set_digest) {
                match &extra.previous {
                    Some(previous) => {
                        let previous = previous.clone();
                        self.set(&extra.key, &previous);
                    }
                    None => self.unset(&extra.key),
                }
            }
        }
    }

    fn restore_paths(&mut self, record: &Record) {
        let versions = PythonVersions::new(record.python2.clone(), record.python3.clone());
        for change in record.paths.iter().rev() {
            let Some(step) = PREPEND_STEPS.get(usize::from(change.step)) else {
                continue;
            };
            let Some(sub) = step.sub_path.render(&versions) else {
                continue;
            };
            let variable = step.variable;
            let Some(current) = self.current.get(variable) else {
                continue;
            };
            let mut list = PathList::parse(current);
            let entry = format!("{}/{sub}", record.home);
            if change.moved_from_end.is_empty() {
                list.remove(&entry);
            } else {
                list.restore_positions(&entry, &change.moved_from_end);
            }
            let joined = list.join();
            if joined == current {
                continue;
            }
            if list.is_empty() && self.state.unset_origins.remove(variable) {
                self.unset(variable);
            } else {
                self.set(variable, &joined);
            }
        }
    }

    fn unload_like_layerapi2(&mut self, facts: &UnloadFacts) {
        for variable in PATH_VARIABLES {
            let Some(current) = self.current.get(variable) else {
                continue;
            };
            let mut list = PathList::parse(current);
            if list.remove_below(&facts.home) > 0 {
                let joined = list.join();
                self.set(variable, &joined);
            }
        }
        self.source_unprofile(facts);
        for key in &facts.extra_keys {
            if self.current.get(key).is_some() {
                self.unset(key);
            }
        }
    }

    fn source_unprofile(&mut self, facts: &UnloadFacts) {
        if self.options.source_profiles
            && let Some(unprofile) = &facts.unprofile
        {
            self.flush();
            self.ops.push(Op::Source(unprofile.clone()));
        }
    }

    /// The path list `variable` as being changed by loads: parsed once, then kept
    /// parsed across layers (a long PATH is not split again for every prepend) until
    /// [`Applier::sync_path_lists`] writes it back.
    fn path_list(&mut self, variable: &'static str) -> &mut PathList {
        let position = match self.lists.iter().position(|(name, _)| *name == variable) {
            Some(position) => position,
            None => {
                let current = self.current.get(variable);
                if current.is_none() {
                    self.state.unset_origins.insert(variable.to_owned());
                }
                let list = PathList::parse(current.unwrap_or(""));
                self.lists.push((variable, list));
                self.lists.len() - 1
            }
        };
        &mut self.lists[position].1
    }

    /// Writes the path lists and the state variable, and flushes the last operations.
    fn write_state(&mut self) {
        self.sync_path_lists();
        if self.state.is_empty() {
            self.state.unset_origins.clear();
            if self.current.get(STATE_VARIABLE).is_some() {
                self.unset(STATE_VARIABLE);
            }
        } else {
            let encoded = self.state.encode();
            self.set(STATE_VARIABLE, &encoded);
        }
        self.flush();
    }

    /// Writes the path lists being changed back into the environment.
    fn sync_path_lists(&mut self) {
        for (variable, list) in std::mem::take(&mut self.lists) {
            let joined = list.join();
            if self.current.get(variable) != Some(joined.as_str()) {
                self.set(variable, &joined);
            }
        }
    }

    fn touch(&mut self, name: &str) {
        if self.pending_names.insert(name.to_owned()) {
            self.pending.push(name.to_owned());
        }
        if self.touched_names.insert(name.to_owned()) {
            self.touched.push(name.to_owned());
        }
    }

    fn set(&mut self, name: &str, value: &str) {
        self.touch(name);
        self.current.set(name, value);
    }

    fn unset(&mut self, name: &str) {
        self.touch(name);
        self.current.unset(name);
    }

    /// Emits the pending variables whose value differs from what the shell has.
    fn flush(&mut self) {
        self.pending_names.clear();
        for name in std::mem::take(&mut self.pending) {
            let now = self.current.get(&name).map(str::to_owned);
            let shell_has = match self.flushed.get(&name) {
                Some(value) => value.as_deref(),
                None => self.initial.get(&name),
            };
            if now.as_deref() == shell_has {
                continue;
            }
            match &now {
                Some(value) => self.ops.push(Op::Set(name.clone(), value.clone())),
                None => self.ops.push(Op::Unset(name.clone())),
            }
            self.flushed.insert(name, now);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layer::model::parse_extra_env;

    const BIN: u32 = 1 << 12;
    const LIB_PY: u32 = 1 << 6;
    const LIB_LD: u32 = 1 << 14;

    fn facts(home: &str, dirs: u32, extra: &str) -> LoadFacts {
        LoadFacts {
            home: home.into(),
            label: home.trim_start_matches('/').into(),
            existing_dirs: dirs,
            profile: None,
            extra_env: parse_extra_env(extra, "/x").unwrap().into(),
            settings: Vec::new(),
        }
    }

    fn unload_facts(home: &str, keys: &[&str]) -> UnloadFacts {
        UnloadFacts {
            home: home.into(),
            label: home.trim_start_matches('/').into(),
            unprofile: None,
            extra_keys: keys.iter().map(|k| k.to_string()).collect(),
        }
    }

    /// Loads, returns the resulting env with the state re-decoded as a later call would.
    fn load(env: &Env, layers: &[LoadFacts]) -> Env {
        let state = env
            .get(STATE_VARIABLE)
            .map(|s| State::decode(s).unwrap())
            .unwrap_or_default();
        let mut applier = Applier::new(env, state, ApplyOptions::default());
        for layer in layers {
            applier.load(layer).unwrap();
        }
        applier.finish().1
    }

    fn unload(env: &Env, layers: &[UnloadFacts]) -> Env {
        let state = env
            .get(STATE_VARIABLE)
            .map(|s| State::decode(s).unwrap())
            .unwrap_or_default();
        let mut applier = Applier::new(env, state, ApplyOptions::default());
        for layer in layers {
            applier.unload(layer).unwrap();
        }
        applier.finish().1
    }

    #[test]
    fn load_then_unload_restores_the_environment_exactly() {
        let before = Env::from_pairs([("PATH", "/usr/bin:/bin"), ("FOO", "old")]);
        let loaded = load(
            &before,
            &[facts("/a", BIN | LIB_PY | LIB_LD, "FOO=new\nBAR=x")],
        );
        assert_eq!(loaded.get("PATH"), Some("/a/bin:/usr/bin:/bin"));
        assert_eq!(loaded.get("PYTHONPATH"), Some("/a/lib"));
        assert_eq!(loaded.get("FOO"), Some("new"));
        let after = unload(&loaded, &[unload_facts("/a", &[])]);
        assert_eq!(after, before);
    }

    #[test]
    fn settings_are_taken_as_they_are_and_restored_by_the_unload() {
        for before in [
            Env::from_pairs([("PYTHONPATH", "/x"), ("TMPDIR", "/tmp")]),
            Env::from_pairs([("PATH", "/bin")]),
        ] {
            let mut layer = facts("/a", LIB_PY, "");
            layer.settings = vec![
                Setting::Set("TMPDIR".into(), "/rt/tmp/a".into()),
                Setting::Set("RAW".into(), "{PATH} stays".into()),
                Setting::Prepend("PYTHONPATH".into(), "/a".into()),
            ];
            let loaded = load(&before, &[layer]);
            assert_eq!(loaded.get("TMPDIR"), Some("/rt/tmp/a"));
            assert_eq!(loaded.get("RAW"), Some("{PATH} stays"));
            let expected = match before.get("PYTHONPATH") {
                Some(_) => "/a:/a/lib:/x",
                None => "/a:/a/lib",
            };
            assert_eq!(loaded.get("PYTHONPATH"), Some(expected));
            let after = unload(&loaded, &[unload_facts("/a", &[])]);
            assert_eq!(after, before);
        }
    }

    #[test]
    fn an_entry_that_existed_before_the_load_returns_to_its_place() {
        let before = Env::from_pairs([("PATH", "/usr/bin:/a/bin:/bin")]);
        let loaded = load(&before, &[facts("/a", BIN, "")]);
        assert_eq!(loaded.get("PATH"), Some("/a/bin:/usr/bin:/bin"));
        let loaded = load(&loaded, &[facts("/b", BIN, "")]);
        let after = unload(&loaded, &[unload_facts("/a", &[])]);
        assert_eq!(after.get("PATH"), Some("/b/bin:/usr/bin:/a/bin:/bin"));
    }

    #[test]
    fn unloading_keeps_entries_the_user_added() {
        let before = Env::from_pairs([("PATH", "/bin")]);
        let mut loaded = load(&before, &[facts("/a", BIN, "")]);
        loaded.set("PATH", "/mine:/a/bin:/bin:/also-mine");
        let after = unload(&loaded, &[unload_facts("/a", &[])]);
        assert_eq!(after.get("PATH"), Some("/mine:/bin:/also-mine"));
    }

    #[test]
    fn a_variable_the_user_changed_after_the_load_is_left_alone() {
        let before = Env::from_pairs([("FOO", "old")]);
        let mut loaded = load(&before, &[facts("/a", 0, "FOO=new")]);
        loaded.set("FOO", "mine");
        let after = unload(&loaded, &[unload_facts("/a", &[])]);
        assert_eq!(after.get("FOO"), Some("mine"));
    }

    #[test]
    fn unset_path_variables_come_back_unset() {
        let before = Env::from_pairs([("PATH", "/bin")]);
        let loaded = load(&before, &[facts("/a", LIB_PY | LIB_LD, "")]);
        let after = unload(&loaded, &[unload_facts("/a", &[])]);
        assert_eq!(after.get("PYTHONPATH"), None);
        assert_eq!(after.get("LD_LIBRARY_PATH"), None);
        assert_eq!(after, before);
    }

    #[test]
    fn unloading_in_load_order_hands_previous_values_down() {
        let before = Env::from_pairs([("X", "orig")]);
        let loaded = load(&before, &[facts("/a", 0, "X=a"), facts("/b", 0, "X=b")]);
        let only_b = unload(&loaded, &[unload_facts("/a", &[])]);
        assert_eq!(only_b.get("X"), Some("b"));
        let after = unload(&only_b, &[unload_facts("/b", &[])]);
        assert_eq!(after, before);
    }

    #[test]
    fn two_layers_setting_the_same_value_unload_in_any_order() {
        let before = Env::from_pairs([("FOO", "orig")]);
        let loaded = load(
            &before,
            &[facts("/a", 0, "FOO=same"), facts("/b", 0, "FOO=same")],
        );
        let only_b = unload(&loaded, &[unload_facts("/a", &[])]);
        assert_eq!(only_b.get("FOO"), Some("same"));
        assert_eq!(unload(&only_b, &[unload_facts("/b", &[])]), before);
    }

    #[test]
    fn a_variable_set_twice_in_one_file_restores_the_original() {
        let before = Env::from_pairs([("X", "orig")]);
        let loaded = load(&before, &[facts("/a", 0, "X=1\nX=2\nY={X}")]);
        assert_eq!(loaded.get("Y"), Some("2"));
        assert_eq!(unload(&loaded, &[unload_facts("/a", &[])]), before);
    }

    #[test]
    fn a_path_variable_emptied_but_set_before_stays_set() {
        let before = Env::from_pairs([("NODE_PATH", "")]);
        let loaded = load(&before, &[facts("/a", 1, "")]);
        assert_eq!(loaded.get("NODE_PATH"), Some("/a/node_modules"));
        assert_eq!(unload(&loaded, &[unload_facts("/a", &[])]), before);
    }

    #[test]
    fn layers_loaded_by_the_original_tools_unload_with_its_rule() {
        let marker = marker_name("/a");
        let before = Env::from_pairs([
            ("PATH", "/a/bin:/a:/usr/bin"),
            ("FOO", "x"),
            (marker.as_str(), "1"),
        ]);
        let after = unload(&before, &[unload_facts("/a", &["FOO"])]);
        assert_eq!(after.get("PATH"), Some("/a:/usr/bin"));
        assert_eq!(after.get("FOO"), None);
        assert_eq!(after.get(&marker), None);
        assert_eq!(after.get(STATE_VARIABLE), None);
    }

    #[test]
    fn records_without_a_marker_are_forgotten() {
        let before = Env::from_pairs([("PATH", "/bin")]);
        let mut loaded = load(&before, &[facts("/a", BIN, "")]);
        loaded.unset(&marker_name("/a"));
        let applier = Applier::new(
            &loaded,
            State::decode(loaded.get(STATE_VARIABLE).unwrap()).unwrap(),
            ApplyOptions::default(),
        );
        assert!(applier.state().is_empty());
    }

    #[test]
    fn profiles_are_sourced_between_paths_and_extra_env() {
        let env = Env::from_pairs([("PATH", "/bin")]);
        let options = ApplyOptions {
            source_profiles: true,
            ..ApplyOptions::default()
        };
        let mut applier = Applier::new(&env, State::default(), options);
        let mut layer = facts("/a", BIN, "FOO=1");
        layer.profile = Some("/a/.layerapi2_interactive_profile".into());
        applier.load(&layer).unwrap();
        let (ops, ..) = applier.finish();
        assert_eq!(ops[0], Op::Set("PATH".into(), "/a/bin:/bin".into()));
        assert_eq!(
            ops[1],
            Op::Source("/a/.layerapi2_interactive_profile".into())
        );
        assert_eq!(ops[2], Op::Set("FOO".into(), "1".into()));
    }

    #[test]
    fn force_prepend_adds_missing_directories_but_no_unversioned_python_path() {
        let env = Env::from_pairs([("PATH", "/bin")]);
        let options = ApplyOptions {
            force_prepend: true,
            ..ApplyOptions::default()
        };
        let mut applier = Applier::new(&env, State::default(), options);
        applier.load(&facts("/a", 0, "")).unwrap();
        let (_, env, _) = applier.finish();
        assert_eq!(
            env.get("PATH"),
            Some(
                "/a/local/bin:/a/bin:/a/local/lib/node_modules/.bin:/a/lib/node_modules/.bin:/a/node_modules/.bin:/bin"
            )
        );
        assert_eq!(env.get("PYTHONPATH"), Some("/a/local/lib:/a/lib"));
        assert!(!env.get("PYTHONPATH").unwrap().contains("null"));
    }

    #[test]
    fn changes_list_only_what_differs_at_the_end() {
        let before = Env::from_pairs([("PATH", "/bin")]);
        let mut applier = Applier::new(&before, State::default(), ApplyOptions::default());
        applier.load(&facts("/a", BIN, "")).unwrap();
        applier.unload(&unload_facts("/a", &[])).unwrap();
        let (ops, _, changes) = applier.finish();
        assert!(changes.is_empty(), "{changes:?}");
        assert!(ops.is_empty(), "{ops:?}");
    }
}
