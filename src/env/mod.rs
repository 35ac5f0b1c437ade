//! The environment as data: a snapshot of variables, path lists, the state mfenv keeps
//! for exact restore, and the application of a plan to an environment.
//!
//! The snapshot is taken once by the CLI edge and passed down; nothing below reads the
//! process environment. Values are bytes: those that are not UTF-8 are carried in
//! text with [`bytes`]'s lossless mapping, and given back as the same bytes to the
//! shell or to `exec`.

pub mod bytes;
pub mod diff;
pub mod path_list;
pub mod state;

use std::collections::BTreeMap;

use crate::fasthash::FastMap;
use std::ffi::OsString;

/// A snapshot of environment variables.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Env {
    vars: BTreeMap<String, String>,
}

impl Env {
    /// A snapshot from `(name, value)` pairs as the OS gives them. Names that are not
    /// UTF-8 are left out (they cannot be variable names of a shell script).
    pub fn from_os<I: IntoIterator<Item = (OsString, OsString)>>(vars: I) -> Self {
        let mut env = Env::default();
        for (name, value) in vars {
            let Ok(name) = name.into_string() else {
                continue;
            };
            env.vars.insert(name, bytes::decode_os(value));
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
        }
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.vars.get(name).map(String::as_str)
    }

    /// Only the variables named in `names` (the set ones).
    pub fn keep_only(&self, names: &[String]) -> Env {
        let mut kept = Env::default();
        for name in names {
            if let Some(value) = self.vars.get(name) {
                kept.vars.insert(name.clone(), value.clone());
            }
        }
        kept
    }

    pub fn vars(&self) -> &BTreeMap<String, String> {
        &self.vars
    }

    pub fn set(&mut self, name: &str, value: &str) {
        self.vars.insert(name.to_owned(), value.to_owned());
    }

    pub fn unset(&mut self, name: &str) {
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
