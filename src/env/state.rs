//! Loaded markers and the state variable that makes unload exact.
//!
//! Markers are layerapi2's: `LAYERAPI2_LAYER_<md5 hex of the home>_LOADED=1`, read and
//! written as is so that shells are shared with the original tools.
//!
//! The state (`__MFENV_STATE`) records, for each layer mfenv loaded, what the load did:
//! which of the 18 prepends added an entry and which moved an existing one (and from
//! where), and for each extra_env variable the value it replaced. It is one line of
//! printable text, versioned by its first field:
//!
//! ```text
//! 1:<origins>|<record>|<record>…
//! record  = home,label,steps,python2,python3[,extra]…
//! steps   = (letter a–r [digits])…   letter = prepend step, digits = moved from the end
//! extra   = KEY=<8 hex digest of the value set>(- | ~previous)   - = was unset
//! origins = codes of the path variables that were unset before mfenv first set them
//! ```
//!
//! Fields are percent-encoded. A typical layer takes well under 150 bytes, so 30 loaded
//! layers stay far below 8 KiB. Unknown versions and garbage decode to an error: the
//! caller then falls back to layerapi2's unload rule and rewrites the state.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use md5::{Digest, Md5};

/// The environment variable holding the state.
pub const STATE_VARIABLE: &str = "__MFENV_STATE";

const VERSION: &str = "1";

/// The loaded-marker variable name of a home (md5 of the exact home string).
pub fn marker_name(home: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    // The md5 of the home's bytes, which differ from its text when not UTF-8.
    let digest = Md5::digest(&*crate::env::bytes::encode(home));
    let mut name = String::with_capacity(16 + 32 + 7);
    name.push_str("LAYERAPI2_LAYER_");
    for byte in digest.iter() {
        name.push(char::from(HEX[usize::from(byte >> 4)]));
        name.push(char::from(HEX[usize::from(byte & 0x0f)]));
    }
    name.push_str("_LOADED");
    name
}

/// True when a marker value means "loaded" (layerapi2: `1` once stripped).
pub fn marker_is_set(value: Option<&str>) -> bool {
    value.is_some_and(|v| crate::layer::model::strip(v) == "1")
}

/// The short digest of a value, used to notice a value changed behind mfenv's back.
pub fn value_digest(value: &str) -> u32 {
    let digest = Md5::digest(value.as_bytes());
    u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]])
}

/// What loading one prepend step did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathChange {
    /// Index in `PREPEND_STEPS`.
    pub step: u8,
    /// Empty: the entry was added. Otherwise it existed: each copy was followed by
    /// that many entries.
    pub moved_from_end: Vec<usize>,
}

/// What loading set one extra_env variable to, and what was there before.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtraChange {
    pub key: String,
    pub previous: Option<String>,
    pub set_digest: u32,
}

/// What mfenv did when it loaded one layer.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Record {
    pub home: String,
    pub label: String,
    pub paths: Vec<PathChange>,
    pub python2: Option<String>,
    pub python3: Option<String>,
    pub extras: Vec<ExtraChange>,
}

/// Everything mfenv remembers about the layers it loaded, in load order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct State {
    pub records: Vec<Record>,
    /// Path variables that were unset before a load first set them.
    pub unset_origins: BTreeSet<String>,
}

const ORIGIN_CODES: [(char, &str); 5] = [
    ('P', "PATH"),
    ('L', "LD_LIBRARY_PATH"),
    ('K', "PKG_CONFIG_PATH"),
    ('Y', "PYTHONPATH"),
    ('N', "NODE_PATH"),
];

impl State {
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    pub fn record(&self, home: &str) -> Option<&Record> {
        self.records.iter().find(|r| r.home == home)
    }

    /// Encodes the state as one printable line.
    pub fn encode(&self) -> String {
        let mut out = String::with_capacity(64 + self.records.len() * 128);
        out.push_str(VERSION);
        out.push(':');
        for (code, name) in ORIGIN_CODES {
            if self.unset_origins.contains(name) {
                out.push(code);
            }
        }
        for record in &self.records {
            out.push('|');
            escape_into(&mut out, &record.home);
            out.push(',');
            escape_into(&mut out, &record.label);
            out.push(',');
            for change in &record.paths {
                out.push(char::from(b'a' + change.step));
                for (index, from_end) in change.moved_from_end.iter().enumerate() {
                    if index > 0 {
                        out.push('.');
                    }
                    let _ = write!(out, "{from_end}");
                }
            }
            for version in [&record.python2, &record.python3] {
                out.push(',');
                encode_version(&mut out, version.as_deref());
            }
            for extra in &record.extras {
                out.push(',');
                out.push_str(&extra.key);
                let _ = write!(out, "={:08x}", extra.set_digest);
                match &extra.previous {
                    None => out.push('-'),
                    Some(previous) => {
                        out.push('~');
                        escape_into(&mut out, previous);
                    }
                }
            }
        }
        out
    }

    /// Decodes [`State::encode`]'s output.
    pub fn decode(text: &str) -> Result<State, String> {
        let mut parts = text.split('|');
        let header = parts.next().unwrap_or_default();
        let Some((version, origins)) = header.split_once(':') else {
            return Err("no version header".to_owned());
        };
        if version != VERSION {
            return Err(format!("unknown state version `{version}`"));
        }
        let mut state = State::default();
        for code in origins.chars() {
            let Some((_, name)) = ORIGIN_CODES.iter().find(|(c, _)| *c == code) else {
                return Err(format!("unknown variable code `{code}`"));
            };
            state.unset_origins.insert((*name).to_owned());
        }
        for part in parts {
            state.records.push(decode_record(part)?);
        }
        Ok(state)
    }
}

fn decode_record(text: &str) -> Result<Record, String> {
    let mut fields = text.split(',');
    let mut next = |what: &str| {
        fields
            .next()
            .ok_or_else(|| format!("record without {what}"))
    };
    let home = unescape(next("home")?)?;
    let label = unescape(next("label")?)?;
    let paths = decode_steps(next("steps")?)?;
    let python2 = decode_version(next("python2")?)?;
    let python3 = decode_version(next("python3")?)?;
    let mut extras = Vec::new();
    for field in fields {
        let (key, rest) = field
            .split_once('=')
            .ok_or_else(|| format!("bad extra `{field}`"))?;
        let bad = || format!("bad extra `{field}`");
        // A state forged with a name the shells treat specially would make the unload
        // fail midway: refused like garbage (the layerapi2 rule applies instead).
        if !crate::layer::model::is_valid_variable_name(key)
            || crate::layer::model::reserved_reason(key).is_some()
        {
            return Err(bad());
        }
        let digest = rest.get(..8).ok_or_else(bad)?;
        let set_digest = u32::from_str_radix(digest, 16).map_err(|_| bad())?;
        let previous = match (rest.get(8..9), rest.get(9..)) {
            (Some("-"), Some("")) => None,
            (Some("~"), Some(previous)) => Some(unescape(previous)?),
            _ => return Err(bad()),
        };
        extras.push(ExtraChange {
            key: key.to_owned(),
            previous,
            set_digest,
        });
    }
    if home.is_empty() {
        return Err("record with an empty home".to_owned());
    }
    Ok(Record {
        home,
        label,
        paths,
        python2,
        python3,
        extras,
    })
}

fn decode_steps(text: &str) -> Result<Vec<PathChange>, String> {
    let mut changes: Vec<PathChange> = Vec::new();
    let mut rest = text;
    while let Some(c) = rest.chars().next() {
        if !('a'..='r').contains(&c) {
            return Err(format!("bad step `{c}`"));
        }
        rest = &rest[1..];
        let positions_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let positions = &rest[..positions_len];
        rest = &rest[positions_len..];
        let moved_from_end = if positions.is_empty() {
            Vec::new()
        } else {
            positions
                .split('.')
                .map(|p| p.parse().map_err(|_| format!("bad position `{positions}`")))
                .collect::<Result<Vec<usize>, String>>()?
        };
        changes.push(PathChange {
            step: c as u8 - b'a',
            moved_from_end,
        });
    }
    Ok(changes)
}

/// A python version: empty for unset, a lone `~` (always escaped inside values) for
/// set but empty, else the escaped version.
fn encode_version(out: &mut String, version: Option<&str>) {
    match version {
        None => {}
        Some("") => out.push('~'),
        Some(version) => escape_into(out, version),
    }
}

fn decode_version(text: &str) -> Result<Option<String>, String> {
    match text {
        "" => Ok(None),
        "~" => Ok(Some(String::new())),
        text => unescape(text).map(Some),
    }
}

fn needs_escape(c: char) -> bool {
    matches!(c, '%' | '|' | ',' | ':' | '=' | '~') || c.is_control()
}

fn escape_into(out: &mut String, text: &str) {
    for c in text.chars() {
        if needs_escape(c) {
            let mut buffer = [0u8; 4];
            for byte in c.encode_utf8(&mut buffer).bytes() {
                let _ = write!(out, "%{byte:02X}");
            }
        } else {
            out.push(c);
        }
    }
}

fn unescape(text: &str) -> Result<String, String> {
    if !text.contains('%') {
        return Ok(text.to_owned());
    }
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        if bytes[index] == b'%' {
            let hex = text
                .get(index + 1..index + 3)
                .ok_or_else(|| "truncated escape".to_owned())?;
            let byte = u8::from_str_radix(hex, 16).map_err(|_| format!("bad escape `%{hex}`"))?;
            out.push(byte);
            index += 3;
        } else {
            out.push(bytes[index]);
            index += 1;
        }
    }
    String::from_utf8(out).map_err(|_| "escape is not UTF-8".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn marker_names_match_layerapi2() {
        assert_eq!(
            marker_name("/tmp/lt/p1/a"),
            "LAYERAPI2_LAYER_0aac093de46ccfe9215ee34c1ab596a3_LOADED"
        );
    }

    #[test]
    fn markers_are_set_when_the_stripped_value_is_one() {
        assert!(marker_is_set(Some("1")));
        assert!(marker_is_set(Some(" 1\n")));
        assert!(!marker_is_set(Some("0")));
        assert!(!marker_is_set(None));
    }

    fn sample() -> State {
        State {
            records: vec![
                Record {
                    home: "/opt/a b/it's,|%:=!-~\n".into(),
                    label: "a@x".into(),
                    paths: vec![
                        PathChange {
                            step: 12,
                            moved_from_end: Vec::new(),
                        },
                        PathChange {
                            step: 9,
                            moved_from_end: vec![17, 3],
                        },
                    ],
                    // Set but empty differs from unset (it gives `lib/python/…`).
                    python2: Some(String::new()),
                    python3: Some("3.13".into()),
                    extras: vec![
                        ExtraChange {
                            key: "FOO".into(),
                            previous: None,
                            set_digest: 0xdeadbeef,
                        },
                        ExtraChange {
                            key: "BAR".into(),
                            previous: Some("old,value|é".into()),
                            set_digest: 1,
                        },
                        ExtraChange {
                            key: "EMPTY".into(),
                            previous: Some(String::new()),
                            set_digest: 2,
                        },
                    ],
                },
                Record {
                    home: "/b".into(),
                    label: "b".into(),
                    ..Record::default()
                },
            ],
            unset_origins: ["NODE_PATH".to_string(), "PYTHONPATH".to_string()].into(),
        }
    }

    #[test]
    fn the_state_round_trips() {
        let state = sample();
        let text = state.encode();
        assert!(!text.contains('\n'));
        assert_eq!(State::decode(&text).unwrap(), state);
    }

    #[test]
    fn the_empty_state_round_trips() {
        assert_eq!(State::decode("1:").unwrap(), State::default());
    }

    #[test]
    fn garbage_and_unknown_versions_are_refused() {
        assert!(State::decode("").is_err());
        assert!(State::decode("2:|/a,a,,,").is_err());
        assert!(State::decode("1:|/a").is_err());
        assert!(State::decode("1:|/a,a,z,,").is_err());
        assert!(State::decode("1:|/a,a,1a,,").is_err());
        assert!(State::decode("1:|/a,a,a1..2,,").is_err());
        assert!(State::decode("1:|/a,a,,,,FOO=12").is_err());
        assert!(State::decode("1:|/a,a,,,,FOO=1234567x-").is_err());
        assert!(State::decode("1:|/a%G0,a,,,").is_err());
        assert!(State::decode("1:|/a,a,,,,FOO=1234567é-").is_err());
        assert!(State::decode("1:|/a,a,,,,FOO=12345678é").is_err());
        assert!(State::decode("1:|/a,a,,,,FOO=12345678-").is_ok());
        assert!(State::decode("1:|/a,a,,,,OPTIND=12345678-").is_err());
        assert!(State::decode("1:|/a,a,,,,status=12345678-").is_err());
    }

    #[test]
    fn thirty_typical_layers_fit_in_8_kib() {
        let record = |i: usize| Record {
            home: format!("/home/metwork/mfext/build/opt/python3_misc_{i:02}"),
            label: format!("python3_misc_{i:02}@mfext"),
            paths: [6u8, 9, 12, 14, 16]
                .iter()
                .map(|s| PathChange {
                    step: *s,
                    moved_from_end: Vec::new(),
                })
                .collect(),
            python2: None,
            python3: Some("3.13".into()),
            extras: vec![ExtraChange {
                key: "PYTHON3_MISC_HOME".into(),
                previous: None,
                set_digest: 7,
            }],
        };
        let state = State {
            records: (0..30).map(record).collect(),
            unset_origins: BTreeSet::new(),
        };
        let size = state.encode().len();
        assert!(size < 8 * 1024, "{size} bytes");
    }

    proptest! {
        #[test]
        fn decoding_any_text_never_panics(text in "\\PC{0,60}", extra in "[0-9a-f~é-]{0,12}") {
            let _ = State::decode(&text);
            let _ = State::decode(&format!("1:|/a,a,,,,FOO={extra}"));
        }

        #[test]
        fn any_state_round_trips(
            home in "/\\PC{0,20}",
            label in "\\PC{0,10}",
            previous in proptest::option::of("\\PC{0,20}"),
            steps in proptest::collection::vec((0u8..18, proptest::collection::vec(0usize..1000, 0..3)), 0..18),
        ) {
            let state = State {
                records: vec![Record {
                    home,
                    label,
                    paths: steps.into_iter().map(|(step, moved_from_end)| PathChange { step, moved_from_end }).collect(),
                    python2: Some("2.7".into()),
                    python3: None,
                    extras: vec![ExtraChange { key: "K".into(), previous, set_digest: 3 }],
                }],
                unset_origins: BTreeSet::new(),
            };
            prop_assert_eq!(State::decode(&state.encode()).unwrap(), state);
        }
    }
}
