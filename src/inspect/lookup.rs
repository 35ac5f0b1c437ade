//! `mfenv provides CMD` and `mfenv search WORD`: which installed layers hold a command,
//! and which match words in their label or description.
//!
//! Both walk the layers path once through the engine's catalog (plugin layers of the
//! plugins base dir included, as for every command). A layer's description is the first
//! non-empty line of its optional [`DESCRIPTION_FILE`]; an installed plugin without one
//! is described by the `summary` of its `.metadata.json`. Nothing found is an error
//! (exit 1, stdout empty), so `mfenv provides foo >/dev/null && …` works in scripts.

use std::io::Read;
use std::path::Path;

use super::{Report, json_text};
use crate::engine::Engine;
use crate::env::Env;
use crate::env::state::{marker_is_set, marker_name};
use crate::error::{Error, ErrorKind, Result, printable};
use crate::invocation::Invocation;

/// The optional file of a layer home holding a one-line description (first non-empty
/// line; the rest of the file is free text).
pub const DESCRIPTION_FILE: &str = ".layerapi2_description";

/// Description files and metadata larger than this are not read.
const MAX_DESCRIPTION_BYTES: u64 = 64 * 1024;

/// The directories of a layer home searched by `provides`, in PATH order of a load.
const BIN_DIRECTORIES: [&str; 2] = ["bin", "local/bin"];

pub const PROVIDES_EXAMPLES: &str = "\
Examples:
  mfenv provides python3           the layers whose bin/ or local/bin/ holds python3
  mfenv provides --json python3
  mfenv provides jq >/dev/null || echo \"no layer provides jq\"

Lists every installed layer of LAYERAPI2_LAYERS_PATH (and the plugins base dir) whose
bin/ or local/bin/ holds CMD, loaded or not, in the layers path's order. Exits with 1
when none does.";

pub const SEARCH_EXAMPLES: &str = "\
Examples:
  mfenv search python              labels or descriptions containing `python`
  mfenv search --json python3 devel

Words match case-insensitively, anywhere in the label or in the description; a layer
matches when every word does. The description is the first non-empty line of the
layer's .layerapi2_description file (an installed plugin without one: the summary of
its .metadata.json). Exits with 1 when nothing matches.";

/// One layer holding the command.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Provider {
    pub label: String,
    pub home: String,
    pub path: String,
    pub executable: bool,
    pub loaded: bool,
}

/// One layer matching the words.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Match {
    pub label: String,
    pub home: String,
    pub description: Option<String>,
    pub loaded: bool,
}

fn is_loaded(env: &Env, home: &str) -> bool {
    marker_is_set(env.get(&marker_name(home)))
}

/// Every installed layer as (label, home), in path order.
fn installed(engine: &mut Engine<'_>) -> Vec<(String, String)> {
    let catalog = engine.catalog();
    let ids = catalog.all().to_vec();
    ids.into_iter()
        .map(|id| {
            let layer = catalog.layer(id);
            (layer.label.clone(), layer.home.clone())
        })
        .collect()
}

/// `mfenv provides CMD`.
pub fn provides(inv: &Invocation, command: &str, json: bool) -> Result<Report> {
    let env = inv.env();
    if command.is_empty() || command.contains('/') || command == "." || command == ".." {
        return Err(Error::new(
            ErrorKind::Usage,
            format!("`{command}` is not a command name"),
        )
        .with_hint("give the name of a program, e.g. `mfenv provides python3`"));
    }
    let mut engine = Engine::new(env, inv.module(), false);
    let mut providers = Vec::new();
    for (label, home) in installed(&mut engine) {
        for directory in BIN_DIRECTORIES {
            let path = format!("{home}/{directory}/{command}");
            let Ok(metadata) = std::fs::metadata(&path) else {
                continue;
            };
            if metadata.is_dir() {
                continue;
            }
            use std::os::unix::fs::PermissionsExt;
            providers.push(Provider {
                label: label.clone(),
                home: home.clone(),
                path,
                executable: metadata.permissions().mode() & 0o111 != 0,
                loaded: is_loaded(env, &home),
            });
        }
    }
    if providers.is_empty() {
        return Err(Error::new(
            ErrorKind::LayerNotFound,
            format!("no installed layer provides `{command}`"),
        )
        .with_hint("`mfenv search WORD` searches the layer labels and descriptions"));
    }
    if json {
        return Ok(Report::stdout(json_text(&serde_json::json!(providers))));
    }
    let width = providers
        .iter()
        .map(|p| p.label.chars().count())
        .max()
        .unwrap_or(0);
    let mut out = String::new();
    for provider in &providers {
        let mut notes = Vec::new();
        if provider.loaded {
            notes.push("loaded");
        }
        if !provider.executable {
            notes.push("not executable");
        }
        let notes = if notes.is_empty() {
            String::new()
        } else {
            format!("  ({})", notes.join(", "))
        };
        out.push_str(&printable(&format!(
            "{:<width$}  {}{notes}",
            provider.label, provider.path
        )));
        out.push('\n');
    }
    Ok(Report::stdout(out))
}

/// `mfenv search WORD...`.
pub fn search(inv: &Invocation, words: &[String], json: bool) -> Result<Report> {
    let env = inv.env();
    let words: Vec<String> = words
        .iter()
        .map(|word| word.trim().to_lowercase())
        .filter(|word| !word.is_empty())
        .collect();
    if words.is_empty() {
        return Err(Error::new(ErrorKind::Usage, "nothing to search for")
            .with_hint("give a word, e.g. `mfenv search python`"));
    }
    let mut engine = Engine::new(env, inv.module(), false);
    let mut matches = Vec::new();
    for (label, home) in installed(&mut engine) {
        let description = description(Path::new(&home));
        let haystack = format!(
            "{}\n{}",
            label.to_lowercase(),
            description.as_deref().unwrap_or("").to_lowercase()
        );
        if words.iter().all(|word| haystack.contains(word.as_str())) {
            matches.push(Match {
                loaded: is_loaded(env, &home),
                label,
                home,
                description,
            });
        }
    }
    if matches.is_empty() {
        return Err(Error::new(
            ErrorKind::LayerNotFound,
            format!("no installed layer matches `{}`", words.join(" ")),
        )
        .with_hint("`mfenv layers` lists every installed layer"));
    }
    if json {
        return Ok(Report::stdout(json_text(&serde_json::json!(matches))));
    }
    let mut out = String::new();
    for found in &matches {
        let loaded = if found.loaded { " (loaded)" } else { "" };
        out.push_str(&printable(&format!(
            "{} [{}]{loaded}",
            found.label, found.home
        )));
        out.push('\n');
        if let Some(description) = &found.description {
            out.push_str(&format!("    {}\n", printable(description)));
        }
    }
    Ok(Report::stdout(out))
}

/// The description of the layer at `home` (see the module docs).
pub fn description(home: &Path) -> Option<String> {
    if let Some(text) = read_small(&home.join(DESCRIPTION_FILE)) {
        return text
            .lines()
            .map(str::trim)
            .find(|line| !line.is_empty())
            .map(str::to_owned);
    }
    let metadata = read_small(&home.join(".metadata.json"))?;
    let value: serde_json::Value = serde_json::from_str(&metadata).ok()?;
    let summary = value.get("summary")?.as_str()?.trim();
    let first = summary.lines().next()?.trim();
    (!first.is_empty()).then(|| first.to_owned())
}

/// A small regular file as text (lossy), `None` when absent, not a file or too big.
fn read_small(path: &Path) -> Option<String> {
    let metadata = std::fs::metadata(path).ok()?;
    if !metadata.is_file() || metadata.len() > MAX_DESCRIPTION_BYTES {
        return None;
    }
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .ok()?
        .take(MAX_DESCRIPTION_BYTES)
        .read_to_end(&mut bytes)
        .ok()?;
    Some(String::from_utf8_lossy(&bytes).into_owned())
}
