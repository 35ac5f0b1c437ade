//! What the supervisor runs: one [`DaemonSpec`] per `[extra_daemon_NAME]` section with
//! `numprocesses > 0` of every installed or dev-linked plugin (reference E1, C3).
//!
//! Everything here is pure: the plugin configurations are read by the caller and handed
//! in, so the rules (command splitting, placeholders, limits, log file names, restart
//! backoff) are tested without processes.
//!
//! `_cmd_and_args` is split into words as a POSIX shell would split a command line with
//! no expansion (circus split it with `shlex`): quotes and backslashes group and escape,
//! `$VAR` and globs stay literal. The placeholders `{plugin_name}`, `{plugin_dir}` and
//! `{extra_name}` are replaced in each word afterwards.

use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::plugin::config::{ResolvedConfig, command_boolean, integer_or_zero};

/// The prefix of the sections that declare extra daemons.
pub const SECTION_PREFIX: &str = "extra_daemon_";

/// A resource limit of a daemon (`rlimit_*` keys; 0 means "not set").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Limit {
    /// `rlimit_as`: address space, bytes.
    AddressSpace,
    /// `rlimit_nofile`: open files.
    OpenFiles,
    /// `rlimit_stack`: stack size, bytes.
    Stack,
    /// `rlimit_fsize`: file size, bytes.
    FileSize,
}

impl Limit {
    /// Every limit with its configuration key.
    pub const ALL: [(Limit, &'static str); 4] = [
        (Limit::AddressSpace, "rlimit_as"),
        (Limit::OpenFiles, "rlimit_nofile"),
        (Limit::Stack, "rlimit_stack"),
        (Limit::FileSize, "rlimit_fsize"),
    ];
}

/// One extra daemon of one plugin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DaemonSpec {
    pub plugin: String,
    /// The section name without `extra_daemon_`.
    pub name: String,
    /// The plugin home (as the base dir lists it: a dev link is not resolved).
    pub home: PathBuf,
    /// The command and its arguments, placeholders replaced.
    pub argv: Vec<String>,
    pub numprocesses: u32,
    pub graceful_timeout: Duration,
    /// Recycle a process after this long (plus jitter); `None`: never.
    pub max_age: Option<Duration>,
    /// Limits set for the process (soft and hard), only the non-zero ones.
    pub limits: Vec<(Limit, u64)>,
    pub debug: bool,
    /// Separate `.stdout` / `.stderr` files instead of one `.log`.
    pub split_stdout_stderr: bool,
    /// One log file per worker (when there are several).
    pub split_workers: bool,
    /// The plugin home has `.autorestart_includes` or `.autorestart_excludes`.
    pub autorestart: bool,
    /// `socket`: the listening socket the supervisor holds and hands to every worker.
    pub socket: Option<ListenAddress>,
    /// `settle`: how long a new worker must stay alive before a hot swap counts it as
    /// started.
    pub settle: Duration,
    /// `readiness`: what else a new worker must do to count as started.
    pub readiness: Readiness,
    /// `readiness_timeout`: how long a hot swap waits for new workers to be started.
    pub readiness_timeout: Duration,
    /// Changes when anything that shapes the processes changes (configuration, plugin
    /// reinstalled): a changed fingerprint restarts the daemon.
    pub fingerprint: u64,
}

impl DaemonSpec {
    /// `plugin.name`, how messages and `status` name the daemon.
    pub fn id(&self) -> String {
        format!("{}.{}", self.plugin, self.name)
    }

    /// The log files of worker `index` (1-based): `(stdout, stderr)`, the same path twice
    /// when the streams share a file.
    pub fn log_files(&self, log_dir: &Path, index: u32) -> (PathBuf, PathBuf) {
        let mut prefix = format!("extra_{}_{}", self.plugin, self.name);
        if self.split_workers && self.numprocesses > 1 {
            prefix.push_str(&format!("_worker{index}"));
        }
        if self.split_stdout_stderr {
            (
                log_dir.join(format!("{prefix}.stdout")),
                log_dir.join(format!("{prefix}.stderr")),
            )
        } else {
            let file = log_dir.join(format!("{prefix}.log"));
            (file.clone(), file)
        }
    }

    /// The variables the supervisor adds to the daemon's environment (reference E1).
    pub fn extra_variables(&self, module: &str) -> Vec<(String, String)> {
        if self.debug {
            vec![
                ("MFLOG_MINIMAL_LEVEL".to_owned(), "DEBUG".to_owned()),
                (format!("{module}_LOG_MINIMAL_LEVEL"), "DEBUG".to_owned()),
                (format!("{module}_CURRENT_APP_DEBUG"), "1".to_owned()),
            ]
        } else {
            vec![(format!("{module}_CURRENT_APP_DEBUG"), "0".to_owned())]
        }
    }
}

/// A plugin as the supervisor sees it.
#[derive(Debug, Clone)]
pub struct PluginDaemons<'a> {
    pub name: &'a str,
    pub home: &'a Path,
    /// Identifies this copy of the plugin (e.g. inode and change time of its home), so
    /// that a reinstall with the same configuration still restarts its daemons.
    pub identity: u64,
    pub config: &'a ResolvedConfig,
    pub autorestart: bool,
}

/// The daemons `plugin` declares, with one warning per section that cannot run.
/// `lookup` gives the module variables the `AUTO` log settings read.
pub fn daemons_of(
    plugin: &PluginDaemons<'_>,
    module: &str,
    lookup: impl Fn(&str) -> Option<String>,
) -> (Vec<DaemonSpec>, Vec<String>) {
    let mut specs = Vec::new();
    let mut warnings = Vec::new();
    let config_hash = {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        plugin.identity.hash(&mut hasher);
        for (section, keys) in plugin.config {
            section.hash(&mut hasher);
            for (key, resolved) in keys {
                key.hash(&mut hasher);
                resolved.value.hash(&mut hasher);
            }
        }
        hasher.finish()
    };
    for (section, keys) in plugin.config {
        let Some(name) = section.strip_prefix(SECTION_PREFIX) else {
            continue;
        };
        let value = |key: &str| keys.get(key).map(|resolved| resolved.value.trim());
        let integer = |key: &str, default: i64| value(key).map_or(default, integer_or_zero);
        let boolean = |key: &str| command_boolean(key, value(key), module, &lookup);
        let numprocesses = integer("numprocesses", 0);
        if numprocesses <= 0 {
            continue;
        }
        let id = format!("{}.{name}", plugin.name);
        if !is_daemon_name(name) {
            warnings.push(format!(
                "daemon `{id}`: the name after `{SECTION_PREFIX}` may only hold letters, digits, `_`, `-` and `.`: not started"
            ));
            continue;
        }
        if numprocesses > i64::from(MAX_PROCESSES) {
            warnings.push(format!(
                "daemon `{id}`: numprocesses {numprocesses} is capped to {MAX_PROCESSES}"
            ));
        }
        let command = value("_cmd_and_args").unwrap_or("");
        let command = if command == "null" { "" } else { command };
        let words = match split_words(command) {
            Ok(words) if words.is_empty() => {
                warnings.push(format!(
                    "daemon `{id}`: `_cmd_and_args` is empty: nothing to run"
                ));
                continue;
            }
            Ok(words) => words,
            Err(reason) => {
                warnings.push(format!(
                    "daemon `{id}`: cannot read `_cmd_and_args`: {reason}"
                ));
                continue;
            }
        };
        let home = plugin.home.to_string_lossy();
        let argv = words
            .iter()
            .map(|word| {
                word.replace("{plugin_name}", plugin.name)
                    .replace("{plugin_dir}", &home)
                    .replace("{extra_name}", name)
            })
            .collect();
        let limits = Limit::ALL
            .iter()
            .filter_map(|&(limit, key)| {
                let value = integer(key, 0);
                (value > 0).then_some((limit, value as u64))
            })
            .collect();
        let max_age = integer("max_age", 0);
        let socket = match value("socket").filter(|text| !text.is_empty() && *text != "null") {
            None => None,
            Some(text) => match ListenAddress::parse(text) {
                Ok(address) => Some(address),
                Err(reason) => {
                    warnings.push(format!(
                        "daemon `{id}`: `socket = {text}`: {reason}: not started"
                    ));
                    continue;
                }
            },
        };
        let readiness = match value("readiness").unwrap_or("") {
            "" | "null" | "alive" => Readiness::Alive,
            "notify" => Readiness::Notify,
            other => {
                warnings.push(format!(
                    "daemon `{id}`: `readiness = {other}`: expected `alive` or `notify`: not started"
                ));
                continue;
            }
        };
        specs.push(DaemonSpec {
            plugin: plugin.name.to_owned(),
            name: name.to_owned(),
            home: plugin.home.to_owned(),
            argv,
            numprocesses: numprocesses.min(i64::from(MAX_PROCESSES)) as u32,
            graceful_timeout: Duration::from_secs(
                integer("graceful_timeout", 10).clamp(0, MAX_SECONDS) as u64,
            ),
            max_age: (max_age > 0).then(|| Duration::from_secs(max_age.min(MAX_SECONDS) as u64)),
            limits,
            debug: boolean("debug"),
            split_stdout_stderr: boolean("log_split_stdout_stderr"),
            split_workers: boolean("log_split_multiple_workers"),
            autorestart: plugin.autorestart,
            socket,
            settle: Duration::from_secs(integer("settle", 1).clamp(0, MAX_SECONDS) as u64),
            readiness,
            readiness_timeout: Duration::from_secs(
                integer("readiness_timeout", 60).clamp(1, MAX_SECONDS) as u64,
            ),
            fingerprint: config_hash,
        });
    }
    (specs, warnings)
}

/// When a new worker counts as started (hot swap), besides living `settle` seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Readiness {
    /// `readiness = alive` (the default): nothing more.
    Alive,
    /// `readiness = notify`: it sends `READY=1` to `$NOTIFY_SOCKET` (systemd's
    /// `sd_notify`, `Type=notify`).
    Notify,
}

/// The address of a listening socket a daemon declares (`socket = tcp:HOST:PORT` or
/// `socket = unix:PATH`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ListenAddress {
    /// A TCP address: an IP address (IPv6 between brackets) or a host name, and a port.
    Tcp { host: String, port: u16 },
    /// A Unix stream socket at an absolute path.
    Unix(PathBuf),
}

impl ListenAddress {
    /// Reads `tcp:HOST:PORT` or `unix:/PATH`.
    pub fn parse(text: &str) -> Result<ListenAddress, String> {
        if let Some(rest) = text.strip_prefix("tcp:") {
            let Some((host, port)) = rest.rsplit_once(':') else {
                return Err("expected `tcp:HOST:PORT`".to_owned());
            };
            let host = host
                .strip_prefix('[')
                .and_then(|host| host.strip_suffix(']'))
                .unwrap_or(host);
            if host.is_empty() {
                return Err(
                    "the host is empty (`tcp:127.0.0.1:PORT`, `tcp:0.0.0.0:PORT`)".to_owned(),
                );
            }
            let port = port
                .parse::<u16>()
                .map_err(|_| format!("`{port}` is not a port number (0 to 65535)"))?;
            Ok(ListenAddress::Tcp {
                host: host.to_owned(),
                port,
            })
        } else if let Some(path) = text.strip_prefix("unix:") {
            let path = Path::new(path);
            if !path.is_absolute() {
                return Err("the path of a unix socket must be absolute".to_owned());
            }
            // sockaddr_un holds 108 bytes, the final NUL included.
            if path.as_os_str().len() > 107 {
                return Err("the path of a unix socket is limited to 107 bytes".to_owned());
            }
            Ok(ListenAddress::Unix(path.to_owned()))
        } else {
            Err("expected `tcp:HOST:PORT` or `unix:/PATH`".to_owned())
        }
    }
}

impl std::fmt::Display for ListenAddress {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ListenAddress::Tcp { host, port } if host.contains(':') => {
                write!(formatter, "tcp:[{host}]:{port}")
            }
            ListenAddress::Tcp { host, port } => write!(formatter, "tcp:{host}:{port}"),
            ListenAddress::Unix(path) => write!(formatter, "unix:{}", path.display()),
        }
    }
}

/// More processes than this for one daemon is surely a typo; it is capped.
pub const MAX_PROCESSES: u32 = 1024;

/// Durations (`graceful_timeout`, `max_age`) are capped to a year: larger ones mean
/// "never" anyway, and keep clear of overflows.
pub const MAX_SECONDS: i64 = 365 * 86_400;

/// True for a daemon name usable in file names: letters, digits, `_`, `-`, `.`, and
/// not `.` or `..` (the name goes into the log file names).
pub fn is_daemon_name(name: &str) -> bool {
    !name.is_empty()
        && name != "."
        && name != ".."
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

/// Splits a command line into words the way a POSIX shell does, without any expansion.
pub fn split_words(line: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            ' ' | '\t' | '\n' | '\r' => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => word.push(c),
                        None => return Err("a single quote is not closed".to_owned()),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(c @ ('"' | '\\' | '$' | '`')) => word.push(c),
                            Some('\n') => {}
                            Some(c) => {
                                word.push('\\');
                                word.push(c);
                            }
                            None => return Err("a double quote is not closed".to_owned()),
                        },
                        Some(c) => word.push(c),
                        None => return Err("a double quote is not closed".to_owned()),
                    }
                }
            }
            '\\' => match chars.next() {
                Some('\n') => {}
                Some(c) => {
                    in_word = true;
                    word.push(c);
                }
                None => return Err("the line ends with a backslash".to_owned()),
            },
            c => {
                in_word = true;
                word.push(c);
            }
        }
    }
    if in_word {
        words.push(word);
    }
    Ok(words)
}

/// How long to wait before starting a worker again after it exited, given how many
/// times in a row it exited soon after starting (0: it had run long enough).
/// Doubles from 0.5 s up to one minute, so a crash loop does not spin.
pub fn restart_delay(quick_exits: u32) -> Duration {
    if quick_exits == 0 {
        return Duration::from_millis(100);
    }
    let millis = 500u64.saturating_mul(1u64 << (quick_exits - 1).min(16));
    Duration::from_millis(millis.min(60_000))
}

/// A process that ran less than this before exiting counts as a quick exit.
pub const QUICK_EXIT: Duration = Duration::from_secs(10);

/// The age after which a worker is recycled: `max_age` plus a jitter in `[0, max_age]`
/// (circus' `max_age_variance`), so workers started together do not all stop together.
/// `seed` picks the jitter.
pub fn recycle_after(max_age: Duration, seed: u64) -> Duration {
    let variance = max_age.as_millis() as u64;
    if variance == 0 {
        return max_age;
    }
    // splitmix64: a well-spread value from any seed.
    let mut z = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^= z >> 31;
    max_age + Duration::from_millis(z % (variance + 1))
}

/// Groups specs by plugin, sorted, for messages and status.
pub fn by_plugin(specs: &[DaemonSpec]) -> BTreeMap<&str, Vec<&DaemonSpec>> {
    let mut map: BTreeMap<&str, Vec<&DaemonSpec>> = BTreeMap::new();
    for spec in specs {
        map.entry(spec.plugin.as_str()).or_default().push(spec);
    }
    map
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugin::config::Resolved;

    fn config(sections: &[(&str, &[(&str, &str)])]) -> ResolvedConfig {
        sections
            .iter()
            .map(|(section, keys)| {
                (
                    (*section).to_owned(),
                    keys.iter()
                        .map(|(key, value)| {
                            (
                                (*key).to_owned(),
                                Resolved {
                                    value: (*value).to_owned(),
                                    file: PathBuf::from("config.ini"),
                                    line: 1,
                                    variant: None,
                                },
                            )
                        })
                        .collect(),
                )
            })
            .collect()
    }

    fn specs_of(config: &ResolvedConfig) -> (Vec<DaemonSpec>, Vec<String>) {
        let plugin = PluginDaemons {
            name: "foo",
            home: Path::new("/base/foo"),
            identity: 7,
            config,
            autorestart: false,
        };
        daemons_of(&plugin, "MFDATA", |_| None)
    }

    #[test]
    fn words_split_like_a_shell_without_expansion() {
        assert_eq!(
            split_words(r#"run.sh --name 'a b' "c \"d\" $HOME" e\ f  *.py"#).unwrap(),
            ["run.sh", "--name", "a b", r#"c "d" $HOME"#, "e f", "*.py"]
        );
        assert_eq!(split_words("  ").unwrap(), Vec::<String>::new());
        assert_eq!(split_words("a '' b").unwrap(), ["a", "", "b"]);
        assert!(split_words("a 'b").is_err());
        assert!(split_words("a \"b").is_err());
        assert!(split_words("a \\").is_err());
    }

    #[test]
    fn only_sections_with_processes_become_daemons() {
        let config = config(&[
            ("general", &[("_version", "1")]),
            (
                "extra_daemon_worker",
                &[
                    (
                        "_cmd_and_args",
                        "worker.py {plugin_name} {plugin_dir} {extra_name}",
                    ),
                    ("numprocesses", "2"),
                    ("rlimit_nofile", "100"),
                    ("rlimit_as", "junk"),
                    ("max_age", "60"),
                ],
            ),
            (
                "extra_daemon_off",
                &[("_cmd_and_args", "x"), ("numprocesses", "0")],
            ),
            ("extra_daemon_default", &[("_cmd_and_args", "x")]),
            ("app_web", &[("_cmd_and_args", "x"), ("numprocesses", "1")]),
        ]);
        let (specs, warnings) = specs_of(&config);
        assert!(warnings.is_empty());
        assert_eq!(specs.len(), 1);
        let spec = &specs[0];
        assert_eq!(spec.id(), "foo.worker");
        assert_eq!(spec.argv, ["worker.py", "foo", "/base/foo", "worker"]);
        assert_eq!(spec.numprocesses, 2);
        assert_eq!(spec.limits, [(Limit::OpenFiles, 100)]);
        assert_eq!(spec.max_age, Some(Duration::from_secs(60)));
        assert_eq!(spec.graceful_timeout, Duration::from_secs(10));
        assert!(!spec.debug && !spec.split_stdout_stderr && !spec.split_workers);
    }

    #[test]
    fn hostile_names_and_huge_values_are_contained() {
        let config = config(&[
            (
                "extra_daemon_x/../../../tmp/evil",
                &[("_cmd_and_args", "x"), ("numprocesses", "1")],
            ),
            (
                "extra_daemon_..",
                &[("_cmd_and_args", "x"), ("numprocesses", "1")],
            ),
            (
                "extra_daemon_big",
                &[
                    ("_cmd_and_args", "x"),
                    ("numprocesses", "99999999999"),
                    ("graceful_timeout", "9223372036854775807"),
                    ("max_age", "9223372036854775807"),
                ],
            ),
        ]);
        let (specs, warnings) = specs_of(&config);
        assert_eq!(specs.len(), 1, "{warnings:?}");
        assert_eq!(warnings.len(), 3, "{warnings:?}");
        assert!(warnings.iter().any(|warning| warning.contains("capped")));
        let spec = &specs[0];
        assert_eq!(spec.numprocesses, MAX_PROCESSES);
        assert_eq!(
            spec.graceful_timeout,
            Duration::from_secs(MAX_SECONDS as u64)
        );
        assert_eq!(spec.max_age, Some(Duration::from_secs(MAX_SECONDS as u64)));
        let _ = std::time::Instant::now() + recycle_after(spec.max_age.unwrap(), u64::MAX);
    }

    #[test]
    fn unusable_commands_are_warnings() {
        let config = config(&[
            (
                "extra_daemon_a",
                &[("_cmd_and_args", "null"), ("numprocesses", "1")],
            ),
            (
                "extra_daemon_b",
                &[("_cmd_and_args", "x 'y"), ("numprocesses", "1")],
            ),
        ]);
        let (specs, warnings) = specs_of(&config);
        assert!(specs.is_empty());
        assert_eq!(warnings.len(), 2, "{warnings:?}");
        assert!(warnings[0].contains("foo.a") && warnings[0].contains("empty"));
        assert!(warnings[1].contains("single quote"));
    }

    #[test]
    fn log_files_follow_the_original_names() {
        let config = config(&[(
            "extra_daemon_d",
            &[
                ("_cmd_and_args", "x"),
                ("numprocesses", "2"),
                ("log_split_stdout_stderr", "1"),
                ("log_split_multiple_workers", "AUTO"),
            ],
        )]);
        let plugin = PluginDaemons {
            name: "foo",
            home: Path::new("/base/foo"),
            identity: 1,
            config: &config,
            autorestart: true,
        };
        let (specs, _) = daemons_of(&plugin, "MFDATA", |name| {
            (name == "MFDATA_LOG_TRY_TO_SPLIT_MULTIPLE_WORKERS").then(|| "1".to_owned())
        });
        let spec = &specs[0];
        assert!(spec.split_workers && spec.split_stdout_stderr && spec.autorestart);
        assert_eq!(
            spec.log_files(Path::new("/log"), 2),
            (
                PathBuf::from("/log/extra_foo_d_worker2.stdout"),
                PathBuf::from("/log/extra_foo_d_worker2.stderr")
            )
        );
        let (specs, _) = specs_of(&config);
        assert_eq!(
            specs[0].log_files(Path::new("/log"), 2).1,
            PathBuf::from("/log/extra_foo_d.stderr")
        );
    }

    #[test]
    fn the_fingerprint_follows_the_configuration_and_the_copy() {
        let one = config(&[(
            "extra_daemon_d",
            &[("_cmd_and_args", "x"), ("numprocesses", "1")],
        )]);
        let two = config(&[
            (
                "extra_daemon_d",
                &[("_cmd_and_args", "x"), ("numprocesses", "1")],
            ),
            ("custom", &[("k", "v")]),
        ]);
        let fingerprint = |config: &ResolvedConfig, identity| {
            let plugin = PluginDaemons {
                name: "foo",
                home: Path::new("/base/foo"),
                identity,
                config,
                autorestart: false,
            };
            daemons_of(&plugin, "M", |_| None).0[0].fingerprint
        };
        assert_eq!(fingerprint(&one, 1), fingerprint(&one, 1));
        assert_ne!(fingerprint(&one, 1), fingerprint(&two, 1));
        assert_ne!(fingerprint(&one, 1), fingerprint(&one, 2));
    }

    #[test]
    fn debug_daemons_get_the_debug_variables() {
        let config = config(&[(
            "extra_daemon_d",
            &[
                ("_cmd_and_args", "x"),
                ("numprocesses", "1"),
                ("debug", "yes"),
            ],
        )]);
        let (specs, _) = specs_of(&config);
        assert!(
            specs[0]
                .extra_variables("MFDATA")
                .contains(&("MFDATA_CURRENT_APP_DEBUG".to_owned(), "1".to_owned()))
        );
    }

    #[test]
    fn socket_addresses_are_read_or_refused() {
        assert_eq!(
            ListenAddress::parse("tcp:127.0.0.1:8080"),
            Ok(ListenAddress::Tcp {
                host: "127.0.0.1".into(),
                port: 8080
            })
        );
        let v6 = ListenAddress::parse("tcp:[::1]:80").unwrap();
        assert_eq!(v6.to_string(), "tcp:[::1]:80");
        assert_eq!(
            ListenAddress::parse("unix:/run/x.sock"),
            Ok(ListenAddress::Unix("/run/x.sock".into()))
        );
        for bad in [
            "tcp:1.2.3.4",
            "tcp::80",
            "tcp:h:99999",
            "unix:rel.sock",
            "udp:h:1",
            "8080",
        ] {
            assert!(ListenAddress::parse(bad).is_err(), "{bad}");
        }
        let config = config(&[(
            "extra_daemon_web",
            &[
                ("_cmd_and_args", "x"),
                ("numprocesses", "1"),
                ("socket", "tcp:localhost"),
            ],
        )]);
        let (specs, warnings) = specs_of(&config);
        assert!(specs.is_empty());
        assert!(warnings[0].contains("foo.web") && warnings[0].contains("tcp:HOST:PORT"));
    }

    #[test]
    fn readiness_is_alive_or_notify() {
        let section = |readiness: &str| {
            config(&[(
                "extra_daemon_web",
                &[
                    ("_cmd_and_args", "x"),
                    ("numprocesses", "1"),
                    ("readiness", readiness),
                    ("readiness_timeout", "5"),
                ],
            )])
        };
        let (specs, _) = specs_of(&section("notify"));
        assert_eq!(specs[0].readiness, Readiness::Notify);
        assert_eq!(specs[0].readiness_timeout, Duration::from_secs(5));
        assert_eq!(specs[0].settle, Duration::from_secs(1));
        let (specs, _) = specs_of(&section(""));
        assert_eq!(specs[0].readiness, Readiness::Alive);
        let (specs, warnings) = specs_of(&section("tcp"));
        assert!(specs.is_empty());
        assert!(warnings[0].contains("`alive` or `notify`"), "{warnings:?}");
    }

    #[test]
    fn restarts_back_off_up_to_a_minute() {
        assert_eq!(restart_delay(0), Duration::from_millis(100));
        assert_eq!(restart_delay(1), Duration::from_millis(500));
        assert_eq!(restart_delay(2), Duration::from_secs(1));
        assert_eq!(restart_delay(5), Duration::from_secs(8));
        assert_eq!(restart_delay(40), Duration::from_secs(60));
    }

    #[test]
    fn recycling_jitter_stays_within_max_age() {
        let max_age = Duration::from_secs(10);
        let ages: Vec<Duration> = (0..50).map(|seed| recycle_after(max_age, seed)).collect();
        assert!(
            ages.iter()
                .all(|age| *age >= max_age && *age <= max_age * 2)
        );
        assert!(ages.iter().any(|age| *age != ages[0]), "jitter varies");
    }
}
