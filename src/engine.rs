//! The layer engine: discovery, planning and application for one invocation.
//!
//! [`Engine`] holds the environment snapshot, the lazily walked [`Catalog`] and the
//! decoded state, and answers the layer commands: which layers are loaded, plan and apply
//! a transaction of loads and unloads, list layers. It knows nothing of shells or of the
//! command line; the CLI renders what it returns.
//!
//! Which layers are loaded comes from the markers in the environment. Layers mfenv loaded
//! are found through the state records without walking the layers path; only markers
//! that no record explains (layers loaded by the original tools) need the full walk.
//! Markers that not even the walk explains belong to layers loaded by their home
//! outside the path: the catalog is told, and the planner counts such a layer as
//! loaded when it meets it.

use std::collections::BTreeSet;

use crate::context::ModuleContext;
use crate::env::Env;
use crate::env::diff::{Applier, ApplyOptions, Change, LoadFacts, Op, Setting, UnloadFacts};
use crate::env::path_list::PathList;
use crate::env::state::{STATE_VARIABLE, State, marker_is_set, marker_name, value_digest};
use crate::error::{Error, ErrorKind, Result};
use crate::layer::discover::{Catalog, LayerId};
use crate::layer::model::{LayerFileKind, LayerFileNames, LayerRef};
use crate::layer::model::{PATH_VARIABLES, PREPEND_STEPS, PythonVersions};
use crate::layer::resolve::{Action, LoadOptions, Planner, Reason, Step};

/// One thing asked of a transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub action: Action,
    pub layer: LayerRef,
}

/// How a transaction behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TransactionOptions {
    pub load_optional: bool,
    pub force_prepend: bool,
    pub source_profiles: bool,
    /// Compute [`Transaction::changes`] (for `--dry-run`).
    pub want_changes: bool,
}

impl Default for TransactionOptions {
    fn default() -> Self {
        TransactionOptions {
            load_optional: true,
            force_prepend: false,
            source_profiles: true,
            want_changes: false,
        }
    }
}

/// A planned step with the names a human needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedStep {
    pub action: Action,
    pub label: String,
    pub home: String,
    pub reason: Reason,
    /// Label of the layer named by the reason, if any.
    pub because_of: Option<String>,
}

/// What a transaction does.
#[derive(Debug, Clone)]
pub struct Transaction {
    pub steps: Vec<PlannedStep>,
    pub ops: Vec<Op>,
    /// Each variable's change (only with `want_changes`).
    pub changes: Vec<Change>,
}

/// What `mfenv exec` asks for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExecRequest {
    /// Layers in order, with their optional flag (`-` prefix).
    pub layers: Vec<(LayerRef, bool)>,
    /// Unload every loaded layer first.
    pub empty: bool,
    /// Start from an empty environment keeping only these variables (implies `empty`).
    pub empty_env: Option<Vec<String>>,
    pub load_optional: bool,
    pub force_prepend: bool,
    /// Run in the home of the last layer.
    pub cwd: bool,
    /// Set `P_NAME`, `P_LABEL`, `P_DIR` for the last layer.
    pub extra_env_prefix: Option<String>,
    /// `(VAR, VALUE)`: prepend VALUE to VAR after the layers.
    pub prepend_env: Vec<(String, String)>,
    /// Variables set with the load of the last layer (the plugin env of `mfenv plugin
    /// wrapper`); applied after the layers when that layer was already loaded.
    pub settings: Vec<Setting>,
}

/// The environment `mfenv exec` computed.
#[derive(Debug, Clone)]
pub struct ExecEnvironment {
    /// The whole resulting environment (UTF-8 variables).
    pub env: Env,
    /// What changed from the starting environment (when not `cleared`).
    pub changes: Vec<Change>,
    /// True when the environment was emptied: `env` is all the command gets.
    pub cleared: bool,
    /// Directory to run in.
    pub cwd: Option<String>,
    /// Mandatory layers that could not be loaded.
    pub failures: Vec<crate::error::Error>,
}

/// One entry of a path list, with the loaded layer that put it there.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct WhyEntry {
    pub entry: String,
    /// Label of the layer, `None` when no loaded layer added it.
    pub layer: Option<String>,
    /// True when the entry was already there and the layer moved it to the front.
    pub moved: bool,
}

/// Where a variable's value comes from.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum WhyReport {
    /// A path list: each entry and its layer.
    PathList {
        variable: String,
        set: bool,
        entries: Vec<WhyEntry>,
    },
    /// A plain variable: the layer that set it and what it replaced.
    Value {
        variable: String,
        value: Option<String>,
        set_by: Option<String>,
        /// The value before that layer set it (`None` inside: it was unset); absent
        /// when unknown (layers loaded by the original tools).
        #[serde(skip_serializing_if = "Option::is_none")]
        replaced: Option<Option<String>>,
        /// True when the value changed after the layer set it.
        changed_since: bool,
    },
}

/// One row of `mfenv layers`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerRow {
    pub label: String,
    pub home: String,
    pub loaded: bool,
    /// False for a loaded layer that the layers path does not reach (any more).
    pub on_path: bool,
}

/// The layer engine for one invocation.
pub struct Engine<'env> {
    env: &'env Env,
    catalog: Catalog<'env>,
    state: State,
    python: PythonVersions,
    debug: Option<Vec<String>>,
    /// Settings to attach to the load of the layer at this home (consumed by it).
    pending_settings: Option<(String, Vec<Setting>)>,
}

impl<'env> Engine<'env> {
    /// An engine over the environment snapshot `env`, whose module context is `context`
    /// (computed once per invocation, see [`crate::invocation`]).
    pub fn new(env: &'env Env, context: &ModuleContext, debug: bool) -> Self {
        let names = LayerFileNames::from_lookup(|name| env.get(name).map(str::to_owned));
        // Plugin layers are found in the plugins base dir even when the path omits it.
        let plugins_base_dir = {
            use std::os::unix::ffi::OsStrExt;
            crate::env::bytes::decode(context.plugins_base_dir.as_os_str().as_bytes())
        };
        let catalog = Catalog::new(
            env,
            env.get("LAYERAPI2_LAYERS_PATH"),
            &[&plugins_base_dir],
            names,
        );
        let mut messages = debug.then(Vec::new);
        let state = match env.get(STATE_VARIABLE) {
            None => State::default(),
            Some(text) => State::decode(text).unwrap_or_else(|reason| {
                if let Some(messages) = &mut messages {
                    messages.push(format!(
                        "ignoring the unreadable `{STATE_VARIABLE}` ({reason}): layers will unload with the layerapi2 rule"
                    ));
                }
                State::default()
            }),
        };
        let python = PythonVersions::new(
            env.get("PYTHON2_SHORT_VERSION").map(str::to_owned),
            env.get("PYTHON3_SHORT_VERSION").map(str::to_owned),
        );
        Engine {
            env,
            catalog,
            state,
            python,
            debug: messages,
            pending_settings: None,
        }
    }

    pub fn catalog(&mut self) -> &mut Catalog<'env> {
        &mut self.catalog
    }

    /// Explanations gathered so far (with `debug`), discovery notes included. Walks
    /// the rest of the layers path first, so that duplicate labels and broken layers
    /// are reported even when the work stopped earlier (debug output is not hot).
    pub fn debug_messages(&mut self) -> Vec<String> {
        self.catalog.all();
        let mut messages: Vec<String> = self.catalog.notes().to_vec();
        for broken in self.catalog.broken() {
            messages.push(format!(
                "`{}` is not a usable layer: {}",
                broken.home, broken.reason
            ));
        }
        if let Some(own) = &self.debug {
            messages.extend(own.iter().cloned());
        }
        messages
    }

    fn marker_set(&self, home: &str) -> bool {
        marker_is_set(self.env.get(&marker_name(home)))
    }

    /// The loaded layers, in load order for those mfenv loaded, then in path order.
    pub fn loaded_layers(&mut self) -> Result<Vec<LayerId>> {
        let mut loaded = Vec::new();
        let mut explained = BTreeSet::new();
        let records: Vec<(String, String)> = self
            .state
            .records
            .iter()
            .map(|r| (r.home.clone(), r.label.clone()))
            .collect();
        for (home, label) in records {
            let marker = marker_name(&home);
            if !marker_is_set(self.env.get(&marker)) {
                continue;
            }
            // The state knows the label: no need to read it again (and the directory may
            // have vanished since the load, the layer must still unload).
            let id = self.catalog.remember(&home, &label);
            explained.insert(marker);
            if !loaded.contains(&id) {
                loaded.push(id);
            }
        }
        let unexplained = self.env.vars().iter().any(|(name, value)| {
            name.starts_with("LAYERAPI2_LAYER_")
                && name.ends_with("_LOADED")
                && marker_is_set(Some(value))
                && !explained.contains(name)
        });
        if unexplained {
            let all = self.catalog.all().to_vec();
            for id in all {
                let marker = marker_name(&self.catalog.layer(id).home);
                if marker_is_set(self.env.get(&marker)) {
                    explained.insert(marker);
                    if !loaded.contains(&id) {
                        loaded.push(id);
                    }
                }
            }
            // Markers of layers loaded by their home outside the path: those layers are
            // loaded too, which the planner learns when it meets them.
            let outside = self.env.vars().iter().any(|(name, value)| {
                name.starts_with("LAYERAPI2_LAYER_")
                    && name.ends_with("_LOADED")
                    && marker_is_set(Some(value))
                    && !explained.contains(name)
            });
            if outside {
                self.catalog.expect_outside_markers();
            }
        }
        Ok(loaded)
    }

    /// Whether the layer `reference` names is loaded (a loaded layer carrying the label
    /// counts, as it does for `load`).
    pub fn is_loaded(&mut self, reference: &LayerRef) -> Result<bool> {
        if let Some(id) = self.catalog.find(reference)?
            && self.marker_set(&self.catalog.layer(id).home.clone())
        {
            return Ok(true);
        }
        if let LayerRef::Label(label) = reference {
            let loaded = self.loaded_layers()?;
            return Ok(loaded
                .iter()
                .any(|id| &self.catalog.layer(*id).label == label));
        }
        Ok(false)
    }

    /// Every layer of the layers path with its loaded flag, in path order, then the
    /// loaded layers the path does not reach (loaded by their home, from a plugin
    /// source directory, or before the path changed), as the state and markers say.
    pub fn layers(&mut self) -> Vec<LayerRow> {
        let loaded = self.loaded_layers().unwrap_or_default();
        let ids = self.catalog.all().to_vec();
        let mut rows: Vec<LayerRow> = ids
            .iter()
            .map(|id| {
                let layer = self.catalog.layer(*id);
                LayerRow {
                    label: layer.label.clone(),
                    home: layer.home.clone(),
                    loaded: self.marker_set(&layer.home),
                    on_path: true,
                }
            })
            .collect();
        for id in loaded {
            let layer = self.catalog.layer(id);
            if !layer.in_layers_path {
                rows.push(LayerRow {
                    label: layer.label.clone(),
                    home: layer.home.clone(),
                    loaded: true,
                    on_path: false,
                });
            }
        }
        rows
    }

    /// What is wrong with the layers path (see [`Catalog::path_problems`]).
    pub fn path_problems(&mut self) -> Vec<String> {
        self.catalog.path_problems()
    }

    /// Which loaded layer put each entry of the path lists and each extra_env variable
    /// there. With no `variables`, the five path lists and every variable a loaded layer
    /// set.
    pub fn why(&mut self, variables: &[String]) -> Result<Vec<WhyReport>> {
        let loaded = self.loaded_layers()?;
        let records: Vec<_> = self
            .state
            .records
            .iter()
            .filter(|r| marker_is_set(self.env.get(&marker_name(&r.home))))
            .cloned()
            .collect();
        let mut owners: std::collections::HashMap<String, (String, bool)> =
            std::collections::HashMap::new();
        for record in &records {
            let versions = PythonVersions::new(record.python2.clone(), record.python3.clone());
            for change in &record.paths {
                let Some(step) = PREPEND_STEPS.get(usize::from(change.step)) else {
                    continue;
                };
                if let Some(sub) = step.sub_path.render(&versions) {
                    owners.insert(
                        format!("{}/{sub}", record.home),
                        (record.label.clone(), !change.moved_from_end.is_empty()),
                    );
                }
            }
        }
        // Layers loaded by the original tools: what lies below their home is theirs.
        let old_layers: Vec<(String, String)> = loaded
            .iter()
            .map(|id| self.catalog.layer(*id))
            .filter(|layer| !records.iter().any(|r| r.home == layer.home))
            .map(|layer| (format!("{}/", layer.home), layer.label.clone()))
            .collect();
        let mut names: Vec<String> = variables.to_vec();
        if names.is_empty() {
            names.extend(PATH_VARIABLES.iter().map(|v| (*v).to_owned()));
            for record in &records {
                for extra in &record.extras {
                    if !names.contains(&extra.key) {
                        names.push(extra.key.clone());
                    }
                }
            }
        }
        let mut reports = Vec::with_capacity(names.len());
        for name in names {
            let value = self.env.get(&name);
            if PATH_VARIABLES.contains(&name.as_str()) {
                let entries = PathList::parse(value.unwrap_or(""))
                    .elements()
                    .iter()
                    .map(|entry| {
                        let (layer, moved) = match owners.get(entry) {
                            Some((label, moved)) => (Some(label.clone()), *moved),
                            None => (
                                old_layers
                                    .iter()
                                    .find(|(prefix, _)| entry.starts_with(prefix.as_str()))
                                    .map(|(_, label)| label.clone()),
                                false,
                            ),
                        };
                        WhyEntry {
                            entry: entry.clone(),
                            layer,
                            moved,
                        }
                    })
                    .collect();
                reports.push(WhyReport::PathList {
                    variable: name,
                    set: value.is_some(),
                    entries,
                });
                continue;
            }
            let setter = records.iter().rev().find_map(|record| {
                record
                    .extras
                    .iter()
                    .rev()
                    .find(|extra| extra.key == name)
                    .map(|extra| (record.label.clone(), extra.clone()))
            });
            let report = match setter {
                Some((label, extra)) => WhyReport::Value {
                    changed_since: value.map(value_digest) != Some(extra.set_digest),
                    variable: name,
                    value: value.map(str::to_owned),
                    set_by: Some(label),
                    replaced: Some(extra.previous),
                },
                None => {
                    let mut set_by = None;
                    for id in loaded.iter().rev() {
                        if records
                            .iter()
                            .any(|r| r.home == self.catalog.layer(*id).home)
                        {
                            continue;
                        }
                        if let Ok(entries) = self.catalog.extra_env(*id)
                            && entries.iter().any(|e| e.key == name)
                        {
                            set_by = Some(self.catalog.layer(*id).label.clone());
                            break;
                        }
                    }
                    WhyReport::Value {
                        variable: name,
                        value: value.map(str::to_owned),
                        set_by,
                        replaced: None,
                        changed_since: false,
                    }
                }
            };
            reports.push(report);
        }
        Ok(reports)
    }

    /// Plans and applies `requests` as one transaction. Nothing is changed on failure.
    pub fn transaction(
        &mut self,
        requests: &[Request],
        options: TransactionOptions,
    ) -> Result<Transaction> {
        self.transaction_after(false, requests, options)
    }

    /// The labels of the loaded layers, in load order (those mfenv loaded first), for
    /// `collection save`.
    pub fn loaded_labels(&mut self) -> Result<Vec<String>> {
        let loaded = self.loaded_layers()?;
        Ok(loaded
            .into_iter()
            .map(|id| self.catalog.layer(id).label.clone())
            .collect())
    }

    /// Unloads everything, then loads `labels` in order, as one transaction (the
    /// restore of a collection). Fails, changing nothing, when a label is not
    /// installed, naming every missing one.
    pub fn restore(
        &mut self,
        labels: &[String],
        options: TransactionOptions,
    ) -> Result<Transaction> {
        let missing: Vec<String> = labels
            .iter()
            .filter(|label| self.catalog.find_label(label).is_none())
            .map(|label| format!("`{label}`"))
            .collect();
        if !missing.is_empty() {
            return Err(Error::new(
                ErrorKind::LayerNotFound,
                format!("{} of its layers are not installed", missing.len()),
            )
            .caused_by(format!("not found: {}", missing.join(", ")))
            .with_hint("run `mfenv layers` to see the installed layers"));
        }
        let requests: Vec<Request> = labels
            .iter()
            .map(|label| Request {
                action: Action::Load,
                layer: LayerRef::Label(label.clone()),
            })
            .collect();
        self.purge_then(&requests, options)
    }

    /// Unloads every loaded layer (those mfenv loaded exactly, newest first; those the
    /// original tools loaded with their rule), then applies `requests`, all as one
    /// transaction: `unload --all` and the restore of a collection.
    pub fn purge_then(
        &mut self,
        requests: &[Request],
        options: TransactionOptions,
    ) -> Result<Transaction> {
        self.transaction_after(true, requests, options)
    }

    fn transaction_after(
        &mut self,
        purge: bool,
        requests: &[Request],
        options: TransactionOptions,
    ) -> Result<Transaction> {
        let loaded = self.loaded_layers()?;
        let load_options = LoadOptions {
            load_optional: options.load_optional,
        };
        let (steps, now, requested) = self.plan(loaded, |planner| {
            if purge {
                planner.unload_all()?;
            }
            let mut requested = Vec::new();
            for request in requests {
                match request.action {
                    Action::Load => requested
                        .push((planner.load(&request.layer, load_options)?, &request.layer)),
                    Action::Unload => planner.unload(&request.layer)?,
                }
            }
            Ok(requested)
        })?;
        // A later request may have unloaded an earlier one (a conflict between them).
        if let Some((id, reference)) = requested.iter().find(|(id, _)| !now.contains(id)) {
            let label = &self.catalog.layer(*id).label;
            let culprit = steps
                .iter()
                .find(|step| step.layer == *id && step.action == Action::Unload)
                .and_then(|step| match step.reason {
                    Reason::ConflictsWith(other) | Reason::LostDependency(other) => {
                        Some(self.catalog.layer(other).label.clone())
                    }
                    _ => None,
                });
            let mut error = Error::new(
                ErrorKind::Conflict,
                format!("cannot load `{reference}` together with the other layers asked for"),
            );
            if let Some(culprit) = culprit {
                error = error.caused_by(format!("`{label}` is unloaded because of `{culprit}`"));
            }
            return Err(error);
        }
        let env = self.env;
        let mut applier = new_applier(env, self.state.clone(), options, &self.python);
        let steps = self.apply_steps(&mut applier, &steps, options)?;
        let (ops, changes) = if options.want_changes {
            applier.finish_changes()
        } else {
            (applier.finish_ops(), Vec::new())
        };
        Ok(Transaction {
            steps,
            ops,
            changes,
        })
    }

    /// Loads the layer `reference` (and what it needs) with `settings` recorded as part
    /// of its load, so that unloading it gives their previous values back exactly
    /// (`mfenv plugin env`). The layer must not be loaded already.
    pub fn load_with_settings(
        &mut self,
        reference: &LayerRef,
        settings: Vec<Setting>,
        options: TransactionOptions,
    ) -> Result<Transaction> {
        let Some(id) = self.catalog.find(reference)? else {
            return Err(Error::new(
                ErrorKind::LayerNotFound,
                format!("layer `{reference}` is not available"),
            ));
        };
        let home = self.catalog.layer(id).home.clone();
        if self.marker_set(&home) {
            return Err(Error::new(
                ErrorKind::Conflict,
                format!("layer `{reference}` is already loaded"),
            )
            .with_hint(format!(
                "unload it first: `layer_unload {}`",
                self.catalog.layer(id).label
            )));
        }
        self.pending_settings = Some((home, settings));
        let request = Request {
            action: Action::Load,
            layer: LayerRef::Home(self.catalog.layer(id).home.clone()),
        };
        let result = self.transaction(std::slice::from_ref(&request), options);
        self.pending_settings = None;
        result
    }

    /// The environment a command runs in for `mfenv exec` (the old `layer_wrapper`).
    ///
    /// Each layer of the list is its own transaction: a mandatory one that fails is
    /// reported in [`ExecEnvironment::failures`] (the caller then does not run the
    /// command), an optional one that fails is ignored. The layer list is read before
    /// the environment is emptied, so `--empty-env` needs no `LAYERAPI2_LAYERS_PATH`.
    pub fn exec_environment(&mut self, request: &ExecRequest) -> Result<ExecEnvironment> {
        let options = TransactionOptions {
            load_optional: request.load_optional,
            force_prepend: request.force_prepend,
            source_profiles: false,
            want_changes: true,
        };
        let load_options = LoadOptions {
            load_optional: request.load_optional,
        };
        let mut loaded = self.loaded_layers()?;
        let env = self.env;
        // The environment kept by --empty-env, which the applier then starts from.
        let kept: Env;
        let mut applier = new_applier(env, self.state.clone(), options, &self.python);
        if request.empty || request.empty_env.is_some() {
            let (steps, now, ()) = self.plan(loaded, |planner| planner.unload_all())?;
            self.apply_steps(&mut applier, &steps, options)?;
            loaded = now;
        }
        if let Some(keeps) = &request.empty_env {
            let (_, emptied, _) = applier.finish();
            kept = emptied.keep_only(keeps);
            applier = new_applier(&kept, State::default(), options, &self.python);
            loaded = Vec::new();
            // The markers of the starting environment are gone with it.
            self.catalog.ignore_outside_markers();
        }
        let mut failures = Vec::new();
        let mut last_layer = None;
        let last_index = request.layers.iter().rposition(|_| true);
        for (index, (reference, optional)) in request.layers.iter().enumerate() {
            if Some(index) == last_index && !request.settings.is_empty() {
                self.pending_settings = self.catalog.find(reference).ok().flatten().map(|id| {
                    (
                        self.catalog.layer(id).home.clone(),
                        request.settings.clone(),
                    )
                });
            }
            let checkpoint = applier.clone();
            let attempt = self
                .plan(loaded.clone(), |planner| {
                    planner.load(reference, load_options)
                })
                .and_then(|(steps, now, _)| {
                    self.apply_steps(&mut applier, &steps, options)?;
                    Ok(now)
                });
            match attempt {
                Ok(now) => {
                    loaded = now;
                    if Some(index) == last_index && !optional {
                        last_layer = self.catalog.find(reference).ok().flatten().or_else(|| {
                            // A loaded layer carrying the label (see the planner's rule).
                            loaded
                                .iter()
                                .copied()
                                .find(|id| self.catalog.layer(*id).label == reference.as_str())
                        });
                    }
                }
                Err(error) => {
                    applier = checkpoint;
                    self.pending_settings = None;
                    if *optional {
                        if let Some(debug) = &mut self.debug {
                            debug.push(format!(
                                "optional layer `{reference}` not loaded: {}",
                                error.message()
                            ));
                        }
                    } else {
                        failures.push(error);
                    }
                }
            }
        }
        let mut cwd = None;
        if let Some(id) = last_layer {
            let layer = self.catalog.layer(id);
            let (home, label) = (layer.home.clone(), layer.label.clone());
            if request.cwd {
                cwd = Some(home.clone());
            }
            if let Some(prefix) = &request.extra_env_prefix {
                let trimmed = home.trim_end_matches('/');
                let name = trimmed.rsplit('/').next().unwrap_or(trimmed).to_owned();
                applier.set_plain(&format!("{prefix}_NAME"), &name);
                applier.set_plain(&format!("{prefix}_LABEL"), &label);
                applier.set_plain(&format!("{prefix}_DIR"), &home);
            }
        }
        // The last layer was loaded already: its settings were not applied with it.
        if let Some((_, settings)) = self.pending_settings.take() {
            for setting in settings {
                match setting {
                    Setting::Set(name, value) => applier.set_plain(&name, &value),
                    Setting::Prepend(name, entry) => applier.prepend_plain(&name, &entry)?,
                }
            }
        }
        for (variable, value) in &request.prepend_env {
            applier.prepend_plain(variable, value)?;
        }
        let (_, env, changes) = applier.finish();
        Ok(ExecEnvironment {
            env,
            changes,
            cleared: request.empty_env.is_some(),
            cwd,
            failures,
        })
    }

    /// Runs the planner on `loaded`; returns the steps, the layers loaded afterwards and
    /// what `build` returned.
    fn plan<T>(
        &mut self,
        loaded: Vec<LayerId>,
        build: impl FnOnce(&mut Planner<'_, Catalog<'env>>) -> Result<T>,
    ) -> Result<(Vec<Step>, Vec<LayerId>, T)> {
        let debug = self.debug.is_some();
        let mut planner = Planner::new(&mut self.catalog, loaded, debug);
        let result = build(&mut planner);
        let (steps, now, messages) = planner.into_parts();
        if let Some(debug) = &mut self.debug {
            debug.extend(messages);
        }
        // A later plan of the same invocation (`exec -l a,b`) must not take a layer
        // this one unloaded for loaded because of the marker of the starting environment.
        if result.is_ok() {
            for step in steps.iter().filter(|step| step.action == Action::Unload) {
                self.catalog.forget_marker(step.layer);
            }
        }
        result.map(|value| (steps, now, value))
    }

    fn apply_steps(
        &mut self,
        applier: &mut Applier,
        steps: &[Step],
        options: TransactionOptions,
    ) -> Result<Vec<PlannedStep>> {
        // Shown in plan order; applied with each run of unloads newest-first.
        let planned: Vec<PlannedStep> = steps.iter().map(|step| self.planned_step(step)).collect();
        let ordered = newest_unloads_first(steps, |id| {
            let home = &self.catalog.layer(id).home;
            applier.state().records.iter().position(|r| &r.home == home)
        });
        for step in &ordered {
            let layer = self.catalog.layer(step.layer);
            let (label, home) = (layer.label.clone(), layer.home.clone());
            match step.action {
                Action::Load => {
                    let facts = LoadFacts {
                        existing_dirs: if options.force_prepend {
                            u32::MAX
                        } else {
                            self.catalog.existing_prepend_dirs(step.layer, &self.python)
                        },
                        profile: if options.source_profiles {
                            self.catalog
                                .existing_file(step.layer, LayerFileKind::InteractiveProfile)
                        } else {
                            None
                        },
                        extra_env: self.catalog.extra_env(step.layer)?,
                        settings: match self.pending_settings.take() {
                            Some((settings_home, settings)) if settings_home == home => settings,
                            other => {
                                self.pending_settings = other;
                                Vec::new()
                            }
                        },
                        home: home.clone(),
                        label: label.clone(),
                    };
                    applier.load(&facts)?;
                }
                Action::Unload => {
                    let extra_keys = if applier.state().record(&home).is_none() {
                        self.catalog.extra_env_keys(step.layer)
                    } else {
                        Vec::new()
                    };
                    let facts = UnloadFacts {
                        unprofile: if options.source_profiles {
                            self.catalog
                                .existing_file(step.layer, LayerFileKind::InteractiveUnprofile)
                        } else {
                            None
                        },
                        extra_keys,
                        home: home.clone(),
                        label: label.clone(),
                    };
                    applier.unload(&facts)?;
                }
            }
        }
        Ok(planned)
    }

    fn planned_step(&self, step: &Step) -> PlannedStep {
        let layer = self.catalog.layer(step.layer);
        let because_of = match step.reason {
            Reason::Requested => None,
            Reason::DependencyOf(id)
            | Reason::OptionalDependencyOf(id)
            | Reason::ConflictsWith(id)
            | Reason::LostDependency(id) => Some(self.catalog.layer(id).label.clone()),
        };
        PlannedStep {
            action: step.action,
            label: layer.label.clone(),
            home: layer.home.clone(),
            reason: step.reason,
            because_of,
        }
    }
}

/// Reorders each run of consecutive unloads so that the layer loaded last is unloaded
/// first. Unloads commute as far as which layers end up loaded, but moved path entries
/// are put back by counting from the end of the list, which is exact only when loads
/// are undone in reverse order (a cascade unloads a base layer before its dependents).
/// Layers without a record (loaded by the original tools) keep their order, last.
fn newest_unloads_first(
    steps: &[Step],
    load_order: impl Fn(LayerId) -> Option<usize>,
) -> Vec<Step> {
    let mut ordered = steps.to_vec();
    let mut start = 0;
    while start < ordered.len() {
        if ordered[start].action != Action::Unload {
            start += 1;
            continue;
        }
        let end = ordered[start..]
            .iter()
            .position(|step| step.action != Action::Unload)
            .map_or(ordered.len(), |offset| start + offset);
        ordered[start..end].sort_by_key(|step| std::cmp::Reverse(load_order(step.layer)));
        start = end;
    }
    ordered
}

fn new_applier<'a>(
    env: &'a Env,
    state: State,
    options: TransactionOptions,
    python: &PythonVersions,
) -> Applier<'a> {
    Applier::new(
        env,
        state,
        ApplyOptions {
            python: python.clone(),
            force_prepend: options.force_prepend,
            source_profiles: options.source_profiles,
        },
    )
}
