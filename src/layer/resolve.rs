//! The load/unload plan: which layers get loaded and unloaded, in which order, and why.
//!
//! The planner works on layer identities only (no environment values, no shell): it asks
//! a [`LayerSource`] for labels, homes, dependencies and conflicts, and keeps its own
//! simulation of which layers are loaded. The rules are layerapi2's (reference A4, A5):
//!
//! - load: conflicts that are loaded get unloaded (the conflicts file of either side
//!   counts: a loaded layer naming the one being loaded goes too), then the fix-up;
//!   mandatory dependencies depth first in file order; the layer itself; then its
//!   optional dependencies (whose failure is ignored and leaves no trace in the plan);
//! - unload: the layer, then the fix-up;
//! - fix-up: every loaded layer with a mandatory dependency that is installed but not
//!   loaded is unloaded, until nothing changes.
//!
//! A layer met by its home outside the layers path may carry a loaded marker (the
//! original tools loaded it there): the first time the planner meets a layer it asks
//! the source, and such a layer counts as loaded from then on.
//!
//! Improvements over layerapi2: cycles are reported as cycles with their chain (no depth
//! cap), a missing dependency names the whole chain, a layer whose mandatory dependency
//! got unloaded by a later conflict fails the load instead of leaving a broken
//! environment, and a label already carried by a loaded layer refers to that layer.
//!
//! Short names: a requested name without `@` that no layer carries as its label names
//! the one layer labelled `name@…` (loaded ones first); looked up only once the exact
//! label is not found, and never for dependency or conflict entries.

use crate::fasthash::FastMap;
use std::rc::Rc;

use crate::error::{Error, ErrorKind, Result};
use crate::layer::discover::{Catalog, LayerId};
use crate::layer::model::{Dependency, LayerRef};

/// What the planner needs to know about layers.
pub trait LayerSource {
    /// Resolves a label (first in path order) or a home.
    fn find(&mut self, reference: &LayerRef) -> Result<Option<LayerId>>;
    fn label(&self, id: LayerId) -> &str;
    fn home(&self, id: LayerId) -> &str;
    fn dependencies(&mut self, id: LayerId) -> Result<Rc<[Dependency]>>;
    fn conflicts(&mut self, id: LayerId) -> Result<Rc<[LayerRef]>>;
    /// Every installed label, for "did you mean" hints.
    fn all_labels(&mut self) -> Vec<String>;
    /// Whether some installed layer carries `label` (any one: not necessarily the
    /// first in path order). Sources may answer from what they already know.
    fn has_label(&mut self, label: &str) -> Result<bool> {
        Ok(self.find(&LayerRef::Label(label.to_owned()))?.is_some())
    }
    /// Whether a layer the planner was not told is loaded carries a loaded marker: a
    /// layer the original tools loaded by its home, outside the layers path, is only
    /// known to be loaded once it is met.
    fn marked_loaded(&mut self, _id: LayerId) -> bool {
        false
    }
    /// What is wrong with the layers path (unset, empty, a missing directory, a
    /// directory holding no layer), for the errors of layers not found.
    fn path_problems(&mut self) -> Vec<String> {
        Vec::new()
    }
}

impl LayerSource for Catalog<'_> {
    fn find(&mut self, reference: &LayerRef) -> Result<Option<LayerId>> {
        Catalog::find(self, reference)
    }
    fn label(&self, id: LayerId) -> &str {
        &self.layer(id).label
    }
    fn home(&self, id: LayerId) -> &str {
        &self.layer(id).home
    }
    fn dependencies(&mut self, id: LayerId) -> Result<Rc<[Dependency]>> {
        Catalog::dependencies(self, id)
    }
    fn conflicts(&mut self, id: LayerId) -> Result<Rc<[LayerRef]>> {
        Catalog::conflicts(self, id)
    }
    fn all_labels(&mut self) -> Vec<String> {
        self.labels()
    }
    fn has_label(&mut self, label: &str) -> Result<bool> {
        Ok(self.knows_label(label) || self.find_label(label).is_some())
    }
    fn marked_loaded(&mut self, id: LayerId) -> bool {
        Catalog::marked_loaded(self, id)
    }
    fn path_problems(&mut self) -> Vec<String> {
        Catalog::path_problems(self)
    }
}

/// Load or unload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Load,
    Unload,
}

/// Why a step is in the plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// Named on the command line.
    Requested,
    /// A mandatory dependency of that layer.
    DependencyOf(LayerId),
    /// An optional dependency of that layer.
    OptionalDependencyOf(LayerId),
    /// That layer, being loaded, conflicts with this one.
    ConflictsWith(LayerId),
    /// This layer's mandatory dependency (that layer) is no longer loaded.
    LostDependency(LayerId),
}

/// One step of a plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Step {
    pub action: Action,
    pub layer: LayerId,
    pub reason: Reason,
}

/// Options of a load.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoadOptions {
    pub load_optional: bool,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions {
            load_optional: true,
        }
    }
}

/// Builds a plan against a simulation of the loaded layers.
pub struct Planner<'s, S: LayerSource> {
    source: &'s mut S,
    loaded: Vec<LayerId>,
    /// `is_loaded[id]`, kept beside `loaded` so membership is O(1) on deep chains.
    loaded_flags: Vec<bool>,
    /// Loaded layers by label, in load order.
    loaded_by_label: FastMap<String, Vec<LayerId>>,
    /// `seen[id]`: the layer was met (its marker looked at, see [`Planner::adopt`]).
    seen: Vec<bool>,
    /// Layers found loaded by their marker when met, in the order met.
    adopted: Vec<LayerId>,
    steps: Vec<Step>,
    /// Index of the first step of the request being planned.
    request_start: usize,
    debug: Option<Vec<String>>,
}

impl<'s, S: LayerSource> Planner<'s, S> {
    /// `loaded`: the layers loaded now, in load order. `debug`: collect explanations.
    pub fn new(source: &'s mut S, loaded: Vec<LayerId>, debug: bool) -> Self {
        let mut planner = Planner {
            source,
            loaded: Vec::new(),
            loaded_flags: Vec::new(),
            loaded_by_label: FastMap::default(),
            seen: Vec::new(),
            adopted: Vec::new(),
            steps: Vec::new(),
            request_start: 0,
            debug: debug.then(Vec::new),
        };
        planner.set_loaded(loaded);
        planner
    }

    /// Replaces the simulated loaded set (initially, and when rolling back).
    fn set_loaded(&mut self, loaded: Vec<LayerId>) {
        self.loaded_flags.clear();
        self.loaded_by_label.clear();
        for id in &loaded {
            self.flag(*id, true);
            self.mark_seen(*id);
            let label = self.source.label(*id).to_owned();
            self.loaded_by_label.entry(label).or_default().push(*id);
        }
        self.loaded = loaded;
    }

    fn flag(&mut self, id: LayerId, loaded: bool) {
        if self.loaded_flags.len() <= id {
            self.loaded_flags.resize(id + 1, false);
        }
        self.loaded_flags[id] = loaded;
    }

    /// Marks `id` as met; true the first time.
    fn mark_seen(&mut self, id: LayerId) -> bool {
        if self.seen.len() <= id {
            self.seen.resize(id + 1, false);
        }
        !std::mem::replace(&mut self.seen[id], true)
    }

    /// The first time a layer is met, a marker set for it makes it loaded (the
    /// original tools loaded it by its home, outside the layers path).
    fn adopt(&mut self, found: Option<LayerId>) -> Option<LayerId> {
        if let Some(id) = found
            && self.mark_seen(id)
            && !self.is_loaded(id)
            && self.source.marked_loaded(id)
        {
            self.note(|s| format!("{} is loaded (its marker is set)", s.describe(id)));
            self.mark_loaded(id);
            self.adopted.push(id);
        }
        found
    }

    /// Looks `reference` up in the source, adopting what it finds.
    fn find(&mut self, reference: &LayerRef) -> Result<Option<LayerId>> {
        let found = self.source.find(reference)?;
        Ok(self.adopt(found))
    }

    fn mark_loaded(&mut self, id: LayerId) {
        self.flag(id, true);
        self.loaded.push(id);
        let label = self.source.label(id).to_owned();
        self.loaded_by_label.entry(label).or_default().push(id);
    }

    fn mark_unloaded(&mut self, id: LayerId) {
        self.flag(id, false);
        self.loaded.retain(|other| *other != id);
        if let Some(ids) = self.loaded_by_label.get_mut(self.source.label(id)) {
            ids.retain(|other| *other != id);
        }
    }

    /// The steps planned so far.
    pub fn steps(&self) -> &[Step] {
        &self.steps
    }

    /// The layers loaded once the plan is applied, in load order.
    pub fn loaded(&self) -> &[LayerId] {
        &self.loaded
    }

    /// Explanations collected with `debug` (empty otherwise).
    pub fn debug_messages(&self) -> &[String] {
        self.debug.as_deref().unwrap_or_default()
    }

    pub fn into_parts(self) -> (Vec<Step>, Vec<LayerId>, Vec<String>) {
        (self.steps, self.loaded, self.debug.unwrap_or_default())
    }

    pub fn source(&mut self) -> &mut S {
        self.source
    }

    /// Plans the load of `reference` (and what it needs); returns the layer it names.
    ///
    /// A name without `@` that no layer carries as its label is a short name: it names
    /// the one installed (or loaded) layer whose label is `name@…`.
    pub fn load(&mut self, reference: &LayerRef, options: LoadOptions) -> Result<LayerId> {
        let id = match self.lookup(reference)? {
            Some(id) => id,
            None => self.short_name(reference, "load")?,
        };
        self.request_start = self.steps.len();
        let mut stack = Vec::new();
        self.load_recursive(id, Reason::Requested, &mut stack, options)?;
        Ok(id)
    }

    /// Fails when the steps from `from` on unloaded `layer` or a layer this request loaded
    /// before them: an optional dependency may not undo what it was loaded for.
    fn check_optional_kept_request(&self, layer: LayerId, from: usize) -> Result<()> {
        let loaded_by_request = |candidate: LayerId| {
            candidate == layer
                || self.steps[self.request_start..from]
                    .iter()
                    .any(|s| s.action == Action::Load && s.layer == candidate)
        };
        match self.steps[from..]
            .iter()
            .find(|s| s.action == Action::Unload && loaded_by_request(s.layer))
        {
            Some(step) => Err(Error::new(
                ErrorKind::Conflict,
                format!(
                    "it would unload `{}`, which this load needs",
                    self.source.label(step.layer)
                ),
            )),
            None => Ok(()),
        }
    }

    /// Plans the unload of `reference`, then the fix-up.
    pub fn unload(&mut self, reference: &LayerRef) -> Result<()> {
        let id = match self.lookup(reference)? {
            Some(id) => id,
            None => self.short_name(reference, "unload")?,
        };
        if !self.is_loaded(id) {
            self.note(|s| format!("{} is not loaded: nothing to unload", s.describe(id)));
            return Ok(());
        }
        self.unload_one(id, Reason::Requested);
        self.fix_up()
    }

    /// Plans the unload of every loaded layer (with fix-ups), latest first.
    pub fn unload_all(&mut self) -> Result<()> {
        while let Some(id) = self.loaded.last().copied() {
            self.unload_one(id, Reason::Requested);
            self.fix_up()?;
        }
        Ok(())
    }

    /// Resolves a short name (`tools` for `tools@example`) once the exact label was not
    /// found: loaded layers first, then installed ones. None or several: an error.
    fn short_name(&mut self, reference: &LayerRef, verb: &str) -> Result<LayerId> {
        let LayerRef::Label(name) = reference else {
            return Err(self.not_found(reference, verb));
        };
        if name.is_empty() || name.contains('@') {
            return Err(self.not_found(reference, verb));
        }
        let carries = |label: &str| {
            label
                .split_once('@')
                .is_some_and(|(before, _)| before == name)
        };
        let mut candidates: Vec<String> = self
            .loaded
            .iter()
            .map(|id| self.source.label(*id))
            .filter(|label| carries(label))
            .map(str::to_owned)
            .collect();
        if candidates.is_empty() {
            candidates = self
                .source
                .all_labels()
                .into_iter()
                .filter(|label| carries(label))
                .collect();
        }
        candidates.sort();
        candidates.dedup();
        match candidates.as_slice() {
            [] => Err(self.not_found(reference, verb)),
            [label] => {
                let label = LayerRef::Label(label.clone());
                match self.lookup(&label)? {
                    Some(id) => Ok(id),
                    None => Err(self.not_found(&label, verb)),
                }
            }
            several => {
                let list: Vec<String> = several.iter().map(|l| format!("`{l}`")).collect();
                Err(Error::new(
                    ErrorKind::LayerNotFound,
                    format!("cannot {verb} `{name}`: the short name is ambiguous"),
                )
                .caused_by(format!(
                    "several layers are called `{name}`: {}",
                    list.join(", ")
                ))
                .with_hint("give the whole label"))
            }
        }
    }

    pub fn is_loaded(&self, id: LayerId) -> bool {
        self.loaded_flags.get(id).copied().unwrap_or(false)
    }

    /// A loaded layer carrying `label`, else the first installed one.
    fn lookup(&mut self, reference: &LayerRef) -> Result<Option<LayerId>> {
        if let LayerRef::Label(label) = reference
            && let Some(id) = self.loaded_with_label(label)
        {
            return Ok(Some(id));
        }
        self.find(reference)
    }

    fn loaded_with_label(&self, label: &str) -> Option<LayerId> {
        self.loaded_by_label
            .get(label)
            .and_then(|ids| ids.first().copied())
    }

    /// The loaded layer a conflict entry designates, if any.
    fn loaded_conflict(&mut self, reference: &LayerRef) -> Result<Option<LayerId>> {
        match reference {
            LayerRef::Label(label) => Ok(self.loaded_with_label(label)),
            LayerRef::Home(_) => Ok(self.find(reference)?.filter(|id| self.is_loaded(*id))),
        }
    }

    /// [`Planner::load_step`] on a stack that grows as needed: dependency chains have
    /// no depth limit, and a chain of thousands must not overflow the thread's stack.
    fn load_recursive(
        &mut self,
        id: LayerId,
        reason: Reason,
        stack: &mut Vec<LayerId>,
        options: LoadOptions,
    ) -> Result<()> {
        // Finding the stack's bounds costs a read of /proc/self/maps: only deep chains
        // pay for it (a few hundred levels fit comfortably in the main thread's stack).
        if stack.len() < 256 {
            return self.load_step(id, reason, stack, options);
        }
        stacker::maybe_grow(64 * 1024, 4 * 1024 * 1024, || {
            self.load_step(id, reason, stack, options)
        })
    }

    fn load_step(
        &mut self,
        id: LayerId,
        reason: Reason,
        stack: &mut Vec<LayerId>,
        options: LoadOptions,
    ) -> Result<()> {
        if self.is_loaded(id) {
            self.note(|s| format!("{} is already loaded", s.describe(id)));
            return Ok(());
        }
        if let Some(position) = stack.iter().position(|other| *other == id) {
            let mut chain: Vec<String> = stack[position..]
                .iter()
                .map(|other| self.source.label(*other).to_owned())
                .collect();
            chain.push(self.source.label(id).to_owned());
            let chain = chain.join(" -> ");
            return Err(Error::new(
                ErrorKind::DependencyCycle,
                format!("cannot load `{}`", self.source.label(stack[0])),
            )
            .caused_by(format!("dependency cycle: `{chain}`"))
            .with_hint(
                "make one of these dependencies optional (prefix it with `-`) or remove it",
            ));
        }
        stack.push(id);

        let conflicts = self
            .source
            .conflicts(id)
            .map_err(|e| self.failing(e, stack))?;
        let mut unloaded_any = false;
        for conflict in conflicts.iter() {
            if let Some(other) = self.loaded_conflict(conflict)? {
                self.note(|s| {
                    format!(
                        "{} conflicts with loaded {}: unloading it",
                        s.describe(id),
                        s.describe(other)
                    )
                });
                self.unload_one(other, Reason::ConflictsWith(id));
                unloaded_any = true;
            }
        }
        // The conflict file of either side counts: a loaded layer naming this one goes
        // too. Only layers loaded before this plan have files not read yet (nothing when
        // nothing is loaded, as at login).
        let mut index = 0;
        while let Some(&other) = self.loaded.get(index) {
            index += 1;
            // An unreadable conflict file of a loaded layer says nothing against this load.
            let Ok(their_conflicts) = self.source.conflicts(other) else {
                continue;
            };
            let names_this_one = other != id
                && their_conflicts.iter().any(|entry| match entry {
                    LayerRef::Label(label) => label == self.source.label(id),
                    LayerRef::Home(home) => {
                        home.trim_end_matches('/') == self.source.home(id).trim_end_matches('/')
                    }
                });
            if names_this_one {
                // Taken out of `loaded`: the next one is at the same index.
                index -= 1;
                self.note(|s| {
                    format!(
                        "loaded {} conflicts with {}: unloading it",
                        s.describe(other),
                        s.describe(id)
                    )
                });
                self.unload_one(other, Reason::ConflictsWith(id));
                unloaded_any = true;
            }
        }
        if unloaded_any {
            self.fix_up()?;
        }

        let dependencies = self
            .source
            .dependencies(id)
            .map_err(|e| self.failing(e, stack))?;
        for dependency in dependencies.iter().filter(|d| !d.optional) {
            let found = match self.lookup(&dependency.target) {
                Ok(found) => found,
                Err(error) => {
                    let mut chain = self.chain(stack);
                    chain.push(dependency.target.to_string());
                    return Err(self
                        .failing(error, stack)
                        .caused_by(format!("needed through `{}`", chain.join(" -> "))));
                }
            };
            let Some(dep_id) = found else {
                return Err(self.missing(stack, &dependency.target));
            };
            if !self.is_loaded(dep_id) {
                self.note(|s| {
                    format!(
                        "{} depends on {}: loading it",
                        s.describe(id),
                        s.describe(dep_id)
                    )
                });
                self.load_recursive(dep_id, Reason::DependencyOf(id), stack, options)?;
            }
        }
        // A conflict of a later dependency may have unloaded an earlier one.
        for dependency in dependencies.iter().filter(|d| !d.optional) {
            if let Some(dep_id) = self.lookup(&dependency.target)?
                && !self.is_loaded(dep_id)
            {
                return Err(Error::new(
                    ErrorKind::Conflict,
                    format!("cannot load `{}`", self.source.label(stack[0])),
                )
                .caused_by(format!(
                    "`{}` needs `{}`, which another of its dependencies conflicts with",
                    self.source.label(id),
                    self.source.label(dep_id)
                )));
            }
        }

        if self.is_loaded(id) {
            // Loaded meanwhile, through one of its own dependencies.
            stack.pop();
            return Ok(());
        }
        self.push_step(Action::Load, id, reason);
        stack.pop();

        if options.load_optional {
            for dependency in dependencies.iter().filter(|d| d.optional) {
                // A broken optional dependency is as good as a missing one.
                let Some(dep_id) = self.lookup(&dependency.target).ok().flatten() else {
                    self.note(|s| {
                        format!(
                            "{} optionally depends on `{}`, which is not installed: ignored",
                            s.describe(id),
                            dependency.target
                        )
                    });
                    continue;
                };
                if self.is_loaded(dep_id) {
                    continue;
                }
                self.note(|s| {
                    format!(
                        "{} optionally depends on {}: loading it",
                        s.describe(id),
                        s.describe(dep_id)
                    )
                });
                let checkpoint = (self.steps.len(), self.loaded.clone(), self.adopted.len());
                // The ancestors still being loaded: an optional edge back to one of them
                // is a cycle, not a second load.
                let mut optional_stack = stack.clone();
                let outcome = self
                    .load_recursive(
                        dep_id,
                        Reason::OptionalDependencyOf(id),
                        &mut optional_stack,
                        options,
                    )
                    .and_then(|()| self.check_optional_kept_request(id, checkpoint.0));
                if let Err(error) = outcome {
                    self.steps.truncate(checkpoint.0);
                    self.set_loaded(checkpoint.1);
                    // Layers adopted meanwhile were loaded before the attempt too.
                    for index in checkpoint.2..self.adopted.len() {
                        let id = self.adopted[index];
                        if !self.is_loaded(id) {
                            self.mark_loaded(id);
                        }
                    }
                    self.note(|_| {
                        format!(
                            "optional dependency `{}` not loaded: {}",
                            dependency.target,
                            error.to_string().replace('\n', " ")
                        )
                    });
                }
            }
        }
        Ok(())
    }

    fn unload_one(&mut self, id: LayerId, reason: Reason) {
        self.push_step(Action::Unload, id, reason);
    }

    /// Appends a step and updates the simulated loaded set.
    fn push_step(&mut self, action: Action, id: LayerId, reason: Reason) {
        let verb = match action {
            Action::Load => "loading",
            Action::Unload => "unloading",
        };
        self.note(|s| format!("{verb} {}", s.describe(id)));
        self.steps.push(Step {
            action,
            layer: id,
            reason,
        });
        match action {
            Action::Load => self.mark_loaded(id),
            Action::Unload => self.mark_unloaded(id),
        }
    }

    fn fix_up(&mut self) -> Result<()> {
        'pass: loop {
            for id in self.loaded.clone() {
                let dependencies = self.source.dependencies(id)?;
                for dependency in dependencies.iter().filter(|d| !d.optional) {
                    if self.dependency_is_missing(&dependency.target)? {
                        self.note(|s| {
                            format!(
                                "{} depends on `{}`, which is not loaded any more: unloading it",
                                s.describe(id),
                                dependency.target
                            )
                        });
                        let lost = self.lost_layer(&dependency.target);
                        let reason = lost.map_or(Reason::Requested, Reason::LostDependency);
                        self.unload_one(id, reason);
                        continue 'pass;
                    }
                }
            }
            return Ok(());
        }
    }

    /// The layer a lost dependency designates: one this plan unloaded, else a lookup.
    fn lost_layer(&mut self, target: &LayerRef) -> Option<LayerId> {
        let unloaded = self.steps.iter().rev().find(|step| {
            step.action == Action::Unload
                && match target {
                    LayerRef::Label(label) => self.source.label(step.layer) == label,
                    LayerRef::Home(home) => self.source.home(step.layer) == home,
                }
        });
        match unloaded {
            Some(step) => Some(step.layer),
            None => self.source.find(target).ok().flatten(),
        }
    }

    /// True when `target` is installed but no loaded layer satisfies it.
    fn dependency_is_missing(&mut self, target: &LayerRef) -> Result<bool> {
        match target {
            LayerRef::Label(label) => {
                if self.loaded_with_label(label).is_some() {
                    return Ok(false);
                }
                self.source.has_label(label)
            }
            LayerRef::Home(_) => Ok(self.find(target)?.is_some_and(|id| !self.is_loaded(id))),
        }
    }

    fn describe(&self, id: LayerId) -> String {
        format!(
            "layer `{}` [{}]",
            self.source.label(id),
            self.source.home(id)
        )
    }

    fn note(&mut self, message: impl FnOnce(&Self) -> String) {
        if self.debug.is_some() {
            let text = message(self);
            if let Some(messages) = &mut self.debug {
                messages.push(text);
            }
        }
    }

    fn chain(&self, stack: &[LayerId]) -> Vec<String> {
        stack
            .iter()
            .map(|id| self.source.label(*id).to_owned())
            .collect()
    }

    fn failing(&self, error: Error, stack: &[LayerId]) -> Error {
        error.context(format!("cannot load `{}`", self.source.label(stack[0])))
    }

    fn missing(&mut self, stack: &[LayerId], target: &LayerRef) -> Error {
        let mut chain = self.chain(stack);
        chain.push(target.to_string());
        let error = Error::new(
            ErrorKind::MissingDependency,
            format!("cannot load `{}`", self.source.label(stack[0])),
        )
        .caused_by(format!(
            "missing dependency `{}`: `{target}` is not installed",
            chain.join(" -> ")
        ));
        match self.suggest(target) {
            Some(hint) => error.with_hint(hint),
            None => self.hint_layers(error),
        }
    }

    /// The hint of a layer not found: what is wrong with the layers path when something
    /// is, else `mfenv layers`.
    fn hint_layers(&mut self, error: Error) -> Error {
        match self.source.path_problems().first() {
            Some(problem) => error
                .caused_by(problem.clone())
                .with_hint("set `LAYERAPI2_LAYERS_PATH` to the directories holding the layers"),
            None => error.with_hint("run `mfenv layers` to see the installed layers"),
        }
    }

    fn not_found(&mut self, reference: &LayerRef, verb: &str) -> Error {
        let error = Error::new(
            ErrorKind::LayerNotFound,
            format!("cannot {verb} `{reference}`: no such layer"),
        );
        let error = match reference {
            LayerRef::Home(home) => error.caused_by(format!(
                "`{home}` is not a layer home (no label file there)"
            )),
            LayerRef::Label(_) => error,
        };
        match self.suggest(reference) {
            Some(hint) => error.with_hint(hint),
            None => self.hint_layers(error),
        }
    }

    fn suggest(&mut self, reference: &LayerRef) -> Option<String> {
        let LayerRef::Label(wanted) = reference else {
            return None;
        };
        let labels = self.source.all_labels();
        let close = closest_labels(wanted, &labels);
        if close.is_empty() {
            return None;
        }
        let list: Vec<String> = close.iter().map(|l| format!("`{l}`")).collect();
        Some(format!("did you mean {}?", list.join(" or ")))
    }
}

/// Labels close to `wanted`: same name before `@`, or a small edit distance. At most 3,
/// closest first.
pub fn closest_labels(wanted: &str, labels: &[String]) -> Vec<String> {
    let wanted_name = wanted.split('@').next().unwrap_or(wanted);
    let same_name: Vec<&String> = labels
        .iter()
        .filter(|label| label.split('@').next() == Some(wanted_name) && *label != wanted)
        .collect();
    let mut scored: Vec<(usize, &String)> = if same_name.is_empty() {
        let limit = (wanted.chars().count() / 4).max(1);
        labels
            .iter()
            .map(|label| (edit_distance(wanted, label), label))
            .filter(|(distance, _)| *distance <= limit)
            .collect()
    } else {
        same_name
            .into_iter()
            .map(|label| (edit_distance(wanted, label), label))
            .collect()
    };
    scored.sort();
    scored.dedup_by(|a, b| a.1 == b.1);
    scored.into_iter().take(3).map(|(_, l)| l.clone()).collect()
}

/// Levenshtein distance over chars (labels are short: the quadratic cost is nothing).
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut current = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(ca != *cb);
            current[j + 1] = substitution.min(previous[j + 1] + 1).min(current[j] + 1);
        }
        previous = current;
    }
    previous[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layer::model::parse_dependencies;

    /// An in-memory layer: label, home, dependencies, conflicts.
    type FakeLayer = (String, String, Rc<[Dependency]>, Rc<[LayerRef]>);

    struct Fake {
        layers: Vec<FakeLayer>,
        finds: usize,
    }

    impl Fake {
        fn new(spec: &[(&str, &str, &[&str])]) -> Self {
            let layers = spec
                .iter()
                .map(|(label, deps, conflicts)| {
                    (
                        label.to_string(),
                        format!("/layers/{label}"),
                        parse_dependencies(deps, |_| None).into(),
                        conflicts
                            .iter()
                            .map(|c| LayerRef::parse(c))
                            .collect::<Vec<_>>()
                            .into(),
                    )
                })
                .collect();
            Fake { layers, finds: 0 }
        }
        fn id(&self, label: &str) -> LayerId {
            self.layers.iter().position(|l| l.0 == label).unwrap()
        }
    }

    impl LayerSource for Fake {
        fn find(&mut self, reference: &LayerRef) -> Result<Option<LayerId>> {
            self.finds += 1;
            Ok(self.layers.iter().position(|l| match reference {
                LayerRef::Label(label) => &l.0 == label,
                LayerRef::Home(home) => &l.1 == home,
            }))
        }
        fn label(&self, id: LayerId) -> &str {
            &self.layers[id].0
        }
        fn home(&self, id: LayerId) -> &str {
            &self.layers[id].1
        }
        fn dependencies(&mut self, id: LayerId) -> Result<Rc<[Dependency]>> {
            Ok(Rc::clone(&self.layers[id].2))
        }
        fn conflicts(&mut self, id: LayerId) -> Result<Rc<[LayerRef]>> {
            Ok(Rc::clone(&self.layers[id].3))
        }
        fn all_labels(&mut self) -> Vec<String> {
            self.layers.iter().map(|l| l.0.clone()).collect()
        }
    }

    fn label(text: &str) -> LayerRef {
        LayerRef::Label(text.to_owned())
    }

    fn plan(fake: &Fake, steps: &[Step]) -> Vec<String> {
        steps
            .iter()
            .map(|step| {
                let verb = match step.action {
                    Action::Load => "+",
                    Action::Unload => "-",
                };
                format!("{verb}{}", fake.layers[step.layer].0)
            })
            .collect()
    }

    fn load(fake: &mut Fake, loaded: &[&str], target: &str) -> Result<(Vec<String>, Vec<String>)> {
        let loaded: Vec<LayerId> = loaded.iter().map(|l| fake.id(l)).collect();
        let mut planner = Planner::new(fake, loaded, false);
        planner.load(&label(target), LoadOptions::default())?;
        let (steps, now, _) = planner.into_parts();
        Ok((
            plan(fake, &steps),
            now.iter().map(|id| fake.layers[*id].0.clone()).collect(),
        ))
    }

    fn unload(
        fake: &mut Fake,
        loaded: &[&str],
        target: &str,
    ) -> Result<(Vec<String>, Vec<String>)> {
        let loaded: Vec<LayerId> = loaded.iter().map(|l| fake.id(l)).collect();
        let mut planner = Planner::new(fake, loaded, false);
        planner.unload(&label(target))?;
        let (steps, now, _) = planner.into_parts();
        Ok((
            plan(fake, &steps),
            now.iter().map(|id| fake.layers[*id].0.clone()).collect(),
        ))
    }

    #[test]
    fn a_chain_loads_deepest_first() {
        let mut fake = Fake::new(&[("a", "b", &[]), ("b", "c", &[]), ("c", "", &[])]);
        let (steps, _) = load(&mut fake, &[], "a").unwrap();
        assert_eq!(steps, ["+c", "+b", "+a"]);
    }

    #[test]
    fn a_diamond_loads_the_shared_dependency_once() {
        let mut fake = Fake::new(&[
            ("top", "left\nright", &[]),
            ("left", "base", &[]),
            ("right", "base", &[]),
            ("base", "", &[]),
        ]);
        let (steps, _) = load(&mut fake, &[], "top").unwrap();
        assert_eq!(steps, ["+base", "+left", "+right", "+top"]);
    }

    #[test]
    fn optional_dependencies_load_after_the_layer_and_may_be_missing() {
        let mut fake = Fake::new(&[
            ("a", "-b\n-missing\nc", &[]),
            ("b", "", &[]),
            ("c", "", &[]),
        ]);
        let (steps, _) = load(&mut fake, &[], "a").unwrap();
        assert_eq!(steps, ["+c", "+a", "+b"]);
    }

    #[test]
    fn optional_dependencies_are_skipped_on_request() {
        let mut fake = Fake::new(&[("a", "-b", &[]), ("b", "", &[])]);
        let mut planner = Planner::new(&mut fake, vec![], false);
        planner
            .load(
                &label("a"),
                LoadOptions {
                    load_optional: false,
                },
            )
            .unwrap();
        assert_eq!(planner.steps().len(), 1);
    }

    #[test]
    fn a_failing_optional_dependency_leaves_no_trace() {
        let mut fake = Fake::new(&[("a", "-b", &[]), ("b", "c\nmissing", &[]), ("c", "", &[])]);
        let (steps, loaded) = load(&mut fake, &[], "a").unwrap();
        assert_eq!(steps, ["+a"]);
        assert_eq!(loaded, ["a"]);
    }

    #[test]
    fn a_cycle_through_an_optional_edge_loads() {
        let mut fake = Fake::new(&[("a", "-b", &[]), ("b", "a", &[])]);
        let (steps, _) = load(&mut fake, &[], "a").unwrap();
        assert_eq!(steps, ["+a", "+b"]);
    }

    #[test]
    fn an_optional_edge_back_to_an_ancestor_does_not_load_it_twice() {
        let mut fake = Fake::new(&[("top", "x", &[]), ("x", "-top", &[])]);
        let (steps, loaded) = load(&mut fake, &[], "top").unwrap();
        assert_eq!(steps, ["+x", "+top"]);
        assert_eq!(loaded, ["x", "top"]);
        let mut fake = Fake::new(&[("top", "x", &[]), ("x", "-y", &[]), ("y", "top", &[])]);
        let (steps, _) = load(&mut fake, &[], "top").unwrap();
        assert_eq!(steps, ["+x", "+top"]);
    }

    #[test]
    fn an_optional_dependency_that_conflicts_with_its_layer_is_skipped() {
        let mut fake = Fake::new(&[("a", "-o", &[]), ("o", "", &["a"])]);
        let (steps, loaded) = load(&mut fake, &[], "a").unwrap();
        assert_eq!(steps, ["+a"]);
        assert_eq!(loaded, ["a"]);
        let mut fake = Fake::new(&[
            ("t", "s\na", &[]),
            ("s", "", &[]),
            ("a", "-o", &[]),
            ("o", "", &["s"]),
        ]);
        let (steps, _) = load(&mut fake, &[], "t").unwrap();
        assert_eq!(steps, ["+s", "+a", "+t"]);
    }

    #[test]
    fn a_mandatory_cycle_is_reported_with_its_chain() {
        let mut fake = Fake::new(&[("top", "a", &[]), ("a", "b", &[]), ("b", "a", &[])]);
        let error = load(&mut fake, &[], "top").unwrap_err();
        assert_eq!(error.kind(), ErrorKind::DependencyCycle);
        assert_eq!(error.causes(), ["dependency cycle: `a -> b -> a`"]);
    }

    #[test]
    fn a_self_dependency_is_a_cycle() {
        let mut fake = Fake::new(&[("self", "self", &[])]);
        let error = load(&mut fake, &[], "self").unwrap_err();
        assert_eq!(error.causes(), ["dependency cycle: `self -> self`"]);
    }

    #[test]
    fn a_missing_dependency_names_the_chain_and_suggests() {
        let mut fake = Fake::new(&[("a@x", "b@x", &[]), ("b@x", "c@x", &[]), ("c@y", "", &[])]);
        let error = load(&mut fake, &[], "a@x").unwrap_err();
        assert_eq!(error.kind(), ErrorKind::MissingDependency);
        assert_eq!(
            error.causes(),
            ["missing dependency `a@x -> b@x -> c@x`: `c@x` is not installed"]
        );
        assert_eq!(error.hint(), Some("did you mean `c@y`?"));
    }

    #[test]
    fn an_unknown_label_suggests_close_ones() {
        let mut fake = Fake::new(&[("python3@mfext", "", &[]), ("python2@mfext", "", &[])]);
        let error = load(&mut fake, &[], "pyton3@mfext").unwrap_err();
        assert_eq!(error.kind(), ErrorKind::LayerNotFound);
        assert_eq!(
            error.hint(),
            Some("did you mean `python3@mfext` or `python2@mfext`?")
        );
        let error = load(&mut fake, &[], "python3@mfdata").unwrap_err();
        assert_eq!(error.hint(), Some("did you mean `python3@mfext`?"));
    }

    #[test]
    fn a_short_name_loads_the_one_layer_called_so() {
        let mut fake = Fake::new(&[("tools@example", "", &[]), ("base@example", "", &[])]);
        let (steps, _) = load(&mut fake, &[], "tools").unwrap();
        assert_eq!(steps, ["+tools@example"]);
        let (steps, loaded) = unload(&mut fake, &["tools@example"], "tools").unwrap();
        assert_eq!(steps, ["-tools@example"]);
        assert!(loaded.is_empty());
    }

    #[test]
    fn an_exact_label_wins_over_a_short_name() {
        let mut fake = Fake::new(&[("tools@example", "", &[]), ("tools", "", &[])]);
        let (steps, _) = load(&mut fake, &[], "tools").unwrap();
        assert_eq!(steps, ["+tools"]);
    }

    #[test]
    fn an_ambiguous_short_name_fails_listing_the_labels() {
        let mut fake = Fake::new(&[("tools@b", "", &[]), ("tools@a", "", &[])]);
        let error = load(&mut fake, &[], "tools").unwrap_err();
        assert_eq!(error.kind(), ErrorKind::LayerNotFound);
        assert!(
            error
                .to_string()
                .contains("several layers are called `tools`: `tools@a`, `tools@b`"),
            "{error}"
        );
        // Among loaded layers the short name is not ambiguous.
        let (steps, _) = unload(&mut fake, &["tools@b"], "tools").unwrap();
        assert_eq!(steps, ["-tools@b"]);
    }

    #[test]
    fn short_names_are_not_used_for_dependencies() {
        let mut fake = Fake::new(&[("top@x", "base", &[]), ("base@x", "", &[])]);
        let error = load(&mut fake, &[], "top@x").unwrap_err();
        assert_eq!(error.kind(), ErrorKind::MissingDependency);
    }

    #[test]
    fn loading_a_layer_that_a_loaded_layer_conflicts_with_replaces_it() {
        // The conflict is written on the loaded side only.
        let mut fake = Fake::new(&[
            ("base", "", &[]),
            ("tools", "base", &[]),
            ("legacy", "", &["tools"]),
            ("user", "legacy", &[]),
        ]);
        let (steps, loaded) = load(&mut fake, &["base", "legacy", "user"], "tools").unwrap();
        assert_eq!(steps, ["-legacy", "-user", "+tools"]);
        assert_eq!(loaded, ["base", "tools"]);
    }

    #[test]
    fn loading_a_loaded_layer_plans_nothing() {
        let mut fake = Fake::new(&[("a", "b", &[]), ("b", "", &[])]);
        let (steps, _) = load(&mut fake, &["b", "a"], "a").unwrap();
        assert!(steps.is_empty());
    }

    #[test]
    fn a_conflict_unloads_the_loaded_layer_and_fixes_up_its_dependents() {
        // Reference A9 scenario 4.
        let mut fake = Fake::new(&[
            ("layer1", "", &[]),
            ("layer2", "layer1", &[]),
            ("layer3", "layer1", &[]),
            ("layer4", "layer2\n-layer3\n-foobar", &[]),
            ("layer5", "", &["layer1"]),
        ]);
        let (steps, loaded) = load(&mut fake, &[], "layer4").unwrap();
        assert_eq!(steps, ["+layer1", "+layer2", "+layer4", "+layer3"]);
        let refs: Vec<&str> = loaded.iter().map(String::as_str).collect();
        let (steps, loaded) = load(&mut fake, &refs, "layer5").unwrap();
        assert_eq!(
            steps,
            ["-layer1", "-layer2", "-layer4", "-layer3", "+layer5"]
        );
        assert_eq!(loaded, ["layer5"]);
    }

    #[test]
    fn unloading_a_dependency_unloads_its_dependents() {
        let mut fake = Fake::new(&[("layer1", "", &[]), ("layer2", "layer1", &[])]);
        let (steps, loaded) = unload(&mut fake, &["layer1", "layer2"], "layer1").unwrap();
        assert_eq!(steps, ["-layer1", "-layer2"]);
        assert!(loaded.is_empty());
    }

    #[test]
    fn unloading_a_layer_that_is_not_loaded_plans_nothing() {
        let mut fake = Fake::new(&[("a", "", &[])]);
        let (steps, _) = unload(&mut fake, &[], "a").unwrap();
        assert!(steps.is_empty());
    }

    #[test]
    fn unloading_an_unknown_layer_fails() {
        let mut fake = Fake::new(&[("a", "", &[])]);
        let error = unload(&mut fake, &[], "nope").unwrap_err();
        assert_eq!(error.kind(), ErrorKind::LayerNotFound);
    }

    #[test]
    fn a_layer_whose_dependency_is_unloaded_by_a_sibling_conflict_fails() {
        let mut fake = Fake::new(&[("top", "a\nb", &[]), ("a", "", &[]), ("b", "", &["a"])]);
        let error = load(&mut fake, &[], "top").unwrap_err();
        assert!(error.causes()[0].contains("`top` needs `a`"));
    }

    #[test]
    fn a_label_carried_by_a_loaded_layer_refers_to_it() {
        // Two layers share a label; the second one is loaded.
        let mut fake = Fake::new(&[("dup", "", &[]), ("dup", "", &[]), ("user", "dup", &[])]);
        let mut planner = Planner::new(&mut fake, vec![1], false);
        planner
            .load(&label("user"), LoadOptions::default())
            .unwrap();
        assert_eq!(planner.steps().len(), 1);
        assert_eq!(planner.steps()[0].layer, 2);
    }

    #[test]
    fn duplicate_labels_resolve_to_the_first_layer() {
        let mut fake = Fake::new(&[("dup", "", &[]), ("dup", "", &[])]);
        let mut planner = Planner::new(&mut fake, vec![], false);
        planner.load(&label("dup"), LoadOptions::default()).unwrap();
        assert_eq!(planner.steps()[0].layer, 0);
    }

    #[test]
    fn several_layers_form_one_plan() {
        let mut fake = Fake::new(&[("a", "c", &[]), ("b", "c", &[]), ("c", "", &[])]);
        let mut planner = Planner::new(&mut fake, vec![], false);
        planner.load(&label("a"), LoadOptions::default()).unwrap();
        planner.load(&label("b"), LoadOptions::default()).unwrap();
        let (steps, ..) = planner.into_parts();
        assert_eq!(plan(&fake, &steps), ["+c", "+a", "+b"]);
    }

    #[test]
    fn a_chain_of_ten_thousand_layers_loads_without_overflowing() {
        let spec: Vec<(String, String)> = (0..10_000)
            .map(|i| {
                let dependency = if i < 9_999 {
                    format!("l{}", i + 1)
                } else {
                    String::new()
                };
                (format!("l{i}"), dependency)
            })
            .collect();
        let borrowed: Vec<(&str, &str, &[&str])> = spec
            .iter()
            .map(|(l, d)| (l.as_str(), d.as_str(), &[][..]))
            .collect();
        let mut fake = Fake::new(&borrowed);
        let mut planner = Planner::new(&mut fake, vec![], false);
        planner.load(&label("l0"), LoadOptions::default()).unwrap();
        assert_eq!(planner.steps().len(), 10_000);
    }

    #[test]
    fn a_deep_chain_has_no_depth_cap() {
        let spec: Vec<(String, String)> = (0..300)
            .map(|i| {
                (
                    format!("l{i}"),
                    if i < 299 {
                        format!("l{}", i + 1)
                    } else {
                        String::new()
                    },
                )
            })
            .collect();
        let borrowed: Vec<(&str, &str, &[&str])> = spec
            .iter()
            .map(|(l, d)| (l.as_str(), d.as_str(), &[][..]))
            .collect();
        let mut fake = Fake::new(&borrowed);
        let (steps, _) = load(&mut fake, &[], "l0").unwrap();
        assert_eq!(steps.len(), 300);
        assert_eq!(steps[0], "+l299");
    }

    #[test]
    fn debug_mode_explains_decisions() {
        let mut fake = Fake::new(&[("a", "b", &[]), ("b", "", &[])]);
        let mut planner = Planner::new(&mut fake, vec![], true);
        planner.load(&label("a"), LoadOptions::default()).unwrap();
        assert!(
            planner
                .debug_messages()
                .iter()
                .any(|m| m.contains("depends on layer `b`"))
        );
    }

    #[test]
    fn close_labels_prefer_the_same_name() {
        let labels = vec![
            "foo@a".to_string(),
            "fob@b".to_string(),
            "zzz@c".to_string(),
        ];
        assert_eq!(closest_labels("foo", &labels), ["foo@a"]);
        assert!(closest_labels("qqqqqqqq", &labels).is_empty());
    }
}
