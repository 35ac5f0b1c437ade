//! The environment as data: a snapshot of variables, path lists, the state mfenv keeps
//! for exact restore, and the application of a plan to an environment.
//!
//! The snapshot is taken once by the CLI edge and passed down; nothing below reads the
//! process environment. Variables whose value is not UTF-8 are kept aside: mfenv
//! leaves them alone and refuses to change them.

pub mod diff;
pub mod path_list;
pub mod state;

use std::collections::{BTreeMap, BTreeSet};

use crate::fasthash::FastMap;
use std::ffi::OsString;

/// A snapshot of environment variables.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Env {
    vars: BTreeMap<String, String>,
    not_utf8: BTreeSet<String>,
}

impl Env {
    /// A snapshot from `(name, value)` pairs as the OS gives them.
    pub fn from_os<I: IntoIterator<Item = (OsString, OsString)>>(vars: I) -> Self {
        let mut env = Env::default();
        for (name, value) in vars {
            let Ok(name) = name.into_string() else {
                continue;
            };
            match value.into_string() {
                Ok(value) => {
                    env.vars.insert(name, value);
                }
                Err(_) => {
                    env.not_utf8.insert(name);
                }
            }
        }
        env
    }

    /// A snapshot from UTF-8 pairs (tests, `exec --empty-env`).
    pub fn from_pairs<I, K, V>(vars: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        Env {
            vars: vars
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
            not_utf8: BTreeSet::new(),
        }
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.vars.get(name).map(String::as_str)
    }

    /// True when the variable is set but its value is not UTF-8.
    pub fn is_not_utf8(&self, name: &str) -> bool {
        self.not_utf8.contains(name)
    }

    /// Only the variables named in `names` (set ones, UTF-8 or not).
    pub fn keep_only(&self, names: &[String]) -> Env {
        let mut kept = Env::default();
        for name in names {
            if let Some(value) = self.vars.get(name) {
                kept.vars.insert(name.clone(), value.clone());
            } else if self.not_utf8.contains(name) {
                kept.not_utf8.insert(name.clone());
            }
        }
        kept
    }

    pub fn vars(&self) -> &BTreeMap<String, String> {
        &self.vars
    }

    pub fn set(&mut self, name: &str, value: &str) {
        self.not_utf8.remove(name);
        self.vars.insert(name.to_owned(), value.to_owned());
    }

    pub fn unset(&mut self, name: &str) {
        self.not_utf8.remove(name);
        self.vars.remove(name);
    }
}

/// Changes over a borrowed snapshot: reads fall through to the snapshot, so applying a
/// plan never copies the whole environment.
#[derive(Debug, Clone)]
pub struct EnvOverlay<'base> {
    base: &'base Env,
    changes: FastMap<String, Option<String>>,
}

impl<'base> EnvOverlay<'base> {
    pub fn new(base: &'base Env) -> Self {
        EnvOverlay {
            base,
            changes: FastMap::default(),
        }
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        match self.changes.get(name) {
            Some(value) => value.as_deref(),
            None => self.base.get(name),
        }
    }

    /// True when the variable is unchanged and its snapshot value is not UTF-8.
    pub fn is_not_utf8(&self, name: &str) -> bool {
        !self.changes.contains_key(name) && self.base.is_not_utf8(name)
    }

    pub fn set(&mut self, name: &str, value: &str) {
        self.changes.insert(name.to_owned(), Some(value.to_owned()));
    }

    pub fn unset(&mut self, name: &str) {
        self.changes.insert(name.to_owned(), None);
    }

    /// The snapshot with the changes applied.
    pub fn to_env(&self) -> Env {
        let mut env = self.base.clone();
        for (name, value) in &self.changes {
            match value {
                Some(value) => env.set(name, value),
                None => env.unset(name),
            }
        }
        env
    }
}
