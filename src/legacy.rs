//! The historical MetWork command names, for a binary invoked through a symlink.
//!
//! `plugins.hotswap FILE` is `mfenv plugin hotswap FILE` (mfserv's options about circus
//! and nginx waits have no meaning there and are refused).
//!
//! `layers`, `is_layer_installed`, `is_layer_loaded`, `get_layer_home`, `layer_wrapper`,
//! `layer_load_bash_cmds`, `layer_unload_bash_cmds`, `cronwrap`, `cronwrap.sh`,
//! `plugin_wrapper` and
//! `plugins.{list,install,uninstall,info,hash,check}` accept their original options
//! (GLib style: `--opt=value` or `--opt value`, options after positional arguments) and
//! are translated into the equivalent mfenv command line. As with the originals, bad
//! usage prints the help on stdout and exits with 1, an option given twice is accepted
//! (a flag stays set, the last value of a string option wins, `--prepend-env`
//! accumulates) and `layers` ignores arguments. `mfenv install-aliases DIR` makes
//! the symlinks.

use std::ffi::OsString;

use clap::{Parser, error::ErrorKind as ClapErrorKind};

/// Every historical name mfenv answers to.
pub const NAMES: [&str; 17] = [
    "cronwrap",
    "cronwrap.sh",
    "plugin_wrapper",
    "plugins.list",
    "plugins.install",
    "plugins.uninstall",
    "plugins.info",
    "plugins.hash",
    "plugins.check",
    "plugins.hotswap",
    "layers",
    "is_layer_installed",
    "is_layer_loaded",
    "get_layer_home",
    "layer_wrapper",
    "layer_load_bash_cmds",
    "layer_unload_bash_cmds",
];

/// What to do for a historical invocation.
#[derive(Debug, PartialEq, Eq)]
pub enum Translation {
    /// Run mfenv with these arguments (argv[0] included). `errors_exit_1`: like the
    /// original, any failure of mfenv itself exits with 1 (not 2, 126 or 127).
    Run {
        args: Vec<OsString>,
        errors_exit_1: bool,
    },
    /// Print this on stdout and exit with this code.
    Exit(String, u8),
}

/// list installed layers
#[derive(Debug, Parser)]
#[command(
    name = "layers",
    disable_version_flag = true,
    args_override_self = true
)]
struct Layers {
    /// raw output
    #[arg(short, long)]
    raw: bool,
    /// Loaded layer filter (default: no filter, possible values: yes, no)
    #[arg(short = 'm', long)]
    loaded_filter: Option<String>,
    /// Ignored, as the original ignores arguments
    #[arg(hide = true, value_parser = clap::value_parser!(OsString))]
    ignored: Vec<OsString>,
}

/// output 1 is the given layer is installed
#[derive(Debug, Parser)]
#[command(
    name = "is_layer_installed",
    disable_version_flag = true,
    args_override_self = true
)]
struct IsLayerInstalled {
    #[arg(value_name = "LAYER LABEL", value_parser = clap::value_parser!(OsString))]
    layer: OsString,
}

/// output 1 is the given layer is already loaded
#[derive(Debug, Parser)]
#[command(
    name = "is_layer_loaded",
    disable_version_flag = true,
    args_override_self = true
)]
struct IsLayerLoaded {
    #[arg(value_name = "LAYER LABEL OR LAYER HOME", value_parser = clap::value_parser!(OsString))]
    layer: OsString,
}

/// print corresponding layer home
#[derive(Debug, Parser)]
#[command(
    name = "get_layer_home",
    disable_version_flag = true,
    args_override_self = true
)]
struct GetLayerHome {
    #[arg(value_name = "LAYER LABEL", value_parser = clap::value_parser!(OsString))]
    label: OsString,
}

/// output bash commands to eval to load the given layer
#[derive(Debug, Parser)]
#[command(
    name = "layer_load_bash_cmds",
    disable_version_flag = true,
    args_override_self = true
)]
struct LayerLoadBashCmds {
    /// debug mode
    #[arg(short, long)]
    debug: bool,
    /// don't load optional layers
    #[arg(long)]
    dont_load_optional: bool,
    /// do not check existing paths in prepend
    #[arg(short, long)]
    force_prepend: bool,
    #[arg(
        required = true,
        value_name = "LAYER_LABEL OR LAYER_HOME",
        value_parser = clap::value_parser!(OsString)
    )]
    layers: Vec<OsString>,
}

/// output bash commands to eval to unload the given layer
#[derive(Debug, Parser)]
#[command(
    name = "layer_unload_bash_cmds",
    disable_version_flag = true,
    args_override_self = true
)]
struct LayerUnloadBashCmds {
    /// debug mode
    #[arg(short, long)]
    debug: bool,
    #[arg(
        required = true,
        value_name = "LAYER_LABEL OR LAYER_HOME",
        value_parser = clap::value_parser!(OsString)
    )]
    layers: Vec<OsString>,
}

/// wrapper to execute the given command in a process with some specific layers loaded
#[derive(Debug, Parser)]
#[command(
    name = "layer_wrapper",
    disable_version_flag = true,
    args_override_self = true
)]
struct LayerWrapper {
    /// debug mode
    #[arg(short, long)]
    debug: bool,
    /// unload all layers before
    #[arg(short, long)]
    empty: bool,
    /// change working directory to the last layer home
    #[arg(short, long)]
    cwd: bool,
    /// if set, add three environnement variables {PREFIX}_NAME, {PREFIX}_LABEL and {PREFIX}_DIR
    #[arg(short = 'x', long)]
    extra_env_prefix: Option<String>,
    /// empty environnement (imply --empty)
    #[arg(short = 'E', long)]
    empty_env: bool,
    /// coma separated list of env var to keep with --empty-env
    #[arg(short = 'k', long)]
    empty_env_keeps: Option<String>,
    /// coma separated list of layers labels/homes ('-' before the name of the layer means 'optional dependency')
    #[arg(short, long, allow_hyphen_values = true, value_parser = clap::value_parser!(OsString))]
    layers: Option<OsString>,
    /// ENV_VAR,VALUE string to prepend VALUE in : separated ENV_VAR (like PATH) (can be used multiple times)
    #[arg(short, long)]
    prepend_env: Vec<String>,
    /// do not check existing paths in prepend
    #[arg(short, long)]
    force_prepend: bool,
    /// don't load optional layers
    #[arg(long)]
    dont_load_optional: bool,
    #[arg(
        required = true,
        trailing_var_arg = true,
        value_name = "COMMAND",
        value_parser = clap::value_parser!(OsString)
    )]
    command: Vec<OsString>,
}

/// run a command in the environment of a plugin
#[derive(Debug, Parser)]
#[command(
    name = "plugin_wrapper",
    disable_version_flag = true,
    args_override_self = true
)]
struct PluginWrapper {
    /// change working directory to the plugin home
    #[arg(long)]
    cwd: bool,
    /// unload all layers before
    #[arg(long)]
    empty: bool,
    /// accepted for compatibility (mfenv keeps no cache)
    #[arg(long, hide = true)]
    ignore_cache: bool,
    /// plugin name, or plugin home (with a `/`)
    plugin: String,
    #[arg(
        required = true,
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "COMMAND",
        value_parser = clap::value_parser!(OsString)
    )]
    command: Vec<OsString>,
}

/// The historical name `argv0` designates, if any.
pub fn historical_name(argv0: &OsString) -> Option<&'static str> {
    let name = std::path::Path::new(argv0).file_name()?.to_str()?;
    NAMES.iter().copied().find(|known| *known == name)
}

/// Translates a historical invocation into mfenv arguments.
pub fn translate(name: &str, args: &[OsString]) -> Translation {
    let mut out: Vec<OsString> = vec!["mfenv".into()];
    let push = |out: &mut Vec<OsString>, items: &[&str]| {
        out.extend(items.iter().map(OsString::from));
    };
    match name {
        "plugin_wrapper" => match parse::<PluginWrapper>(args) {
            Ok(parsed) => {
                push(&mut out, &["plugin", "wrapper"]);
                if parsed.cwd {
                    push(&mut out, &["--cwd"]);
                }
                if parsed.empty {
                    push(&mut out, &["--empty"]);
                }
                push(&mut out, &[&parsed.plugin, "--"]);
                out.extend(parsed.command);
            }
            Err(exit) => return exit,
        },
        // `plugins.list` is `mfenv plugin list`, and so on, with the same options.
        plugins if plugins.starts_with("plugins.") => {
            push(&mut out, &["plugin", &plugins["plugins.".len()..]]);
            out.extend(args.iter().skip(1).cloned());
        }
        // Same options as `mfenv cronwrap`.
        "cronwrap" => {
            push(&mut out, &["cronwrap"]);
            out.extend(args.iter().skip(1).cloned());
        }
        // `MODULE_HOME/bin/cronwrap.sh` loaded the module profile first: here the module
        // context recorded for the directory it is called from.
        "cronwrap.sh" => {
            push(&mut out, &["cronwrap", "--invoked-as"]);
            out.push(args[0].clone());
            out.extend(args.iter().skip(1).cloned());
        }
        "layers" => match parse::<Layers>(args) {
            Ok(layers) => {
                // The original lists nothing with status 0: the problems are warnings.
                push(&mut out, &["layers", "--empty-ok"]);
                if layers.raw {
                    push(&mut out, &["--raw"]);
                }
                match layers.loaded_filter.as_deref() {
                    None => {}
                    Some(filter @ ("yes" | "no")) => push(&mut out, &["-m", filter]),
                    // The original prints nothing for any other filter.
                    Some(_) => return Translation::Exit(String::new(), 0),
                }
            }
            Err(exit) => return exit,
        },
        "is_layer_installed" => match parse::<IsLayerInstalled>(args) {
            Ok(parsed) => {
                push(&mut out, &["is-installed", "--"]);
                out.push(parsed.layer);
            }
            Err(exit) => return exit,
        },
        "is_layer_loaded" => match parse::<IsLayerLoaded>(args) {
            Ok(parsed) => {
                push(&mut out, &["is-loaded", "--"]);
                out.push(parsed.layer);
            }
            Err(exit) => return exit,
        },
        "get_layer_home" => match parse::<GetLayerHome>(args) {
            Ok(parsed) => {
                push(&mut out, &["home", "--"]);
                out.push(parsed.label);
            }
            Err(exit) => return exit,
        },
        "layer_load_bash_cmds" => match parse::<LayerLoadBashCmds>(args) {
            Ok(parsed) => {
                push(&mut out, &["load", "--shell", "bash"]);
                if parsed.debug {
                    push(&mut out, &["--debug"]);
                }
                if parsed.dont_load_optional {
                    push(&mut out, &["--dont-load-optional"]);
                }
                if parsed.force_prepend {
                    push(&mut out, &["--force-prepend"]);
                }
                push(&mut out, &["--"]);
                out.extend(parsed.layers);
            }
            Err(exit) => return exit,
        },
        "layer_unload_bash_cmds" => match parse::<LayerUnloadBashCmds>(args) {
            Ok(parsed) => {
                push(&mut out, &["unload", "--shell", "bash"]);
                if parsed.debug {
                    push(&mut out, &["--debug"]);
                }
                push(&mut out, &["--"]);
                out.extend(parsed.layers);
            }
            Err(exit) => return exit,
        },
        "layer_wrapper" => match parse::<LayerWrapper>(args) {
            Ok(parsed) => {
                push(&mut out, &["exec"]);
                let flags = [
                    (parsed.debug, "--debug"),
                    (parsed.empty, "--empty"),
                    (parsed.cwd, "--cwd"),
                    (parsed.empty_env, "--empty-env"),
                    (parsed.force_prepend, "--force-prepend"),
                    (parsed.dont_load_optional, "--dont-load-optional"),
                ];
                for (set, flag) in flags {
                    if set {
                        push(&mut out, &[flag]);
                    }
                }
                if let Some(prefix) = &parsed.extra_env_prefix {
                    out.push(format!("--extra-env-prefix={prefix}").into());
                }
                if let Some(keeps) = &parsed.empty_env_keeps {
                    out.push(format!("--empty-env-keeps={keeps}").into());
                }
                if let Some(layers) = parsed.layers {
                    let mut option = OsString::from("--layers=");
                    option.push(layers);
                    out.push(option);
                }
                for entry in &parsed.prepend_env {
                    out.push(format!("--prepend-env={entry}").into());
                }
                push(&mut out, &["--"]);
                out.extend(parsed.command);
            }
            Err(exit) => return exit,
        },
        _ => unreachable!("historical_name only returns known names"),
    }
    Translation::Run {
        args: out,
        errors_exit_1: matches!(name, "layer_wrapper" | "plugin_wrapper"),
    }
}

/// Parses with the original conventions: help on stdout with exit 0 when asked, the
/// help on stdout with exit 1 on bad usage.
fn parse<P: Parser>(args: &[OsString]) -> Result<P, Translation> {
    P::try_parse_from(args).map_err(|error| match error.kind() {
        ClapErrorKind::DisplayHelp => Translation::Exit(error.render().to_string(), 0),
        _ => {
            let mut command = P::command();
            Translation::Exit(command.render_help().to_string(), 1)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(items: &[&str]) -> Vec<OsString> {
        items.iter().map(OsString::from).collect()
    }

    fn run(name: &str, items: &[&str]) -> Vec<String> {
        match translate(name, &args(items)) {
            Translation::Run { args, .. } => {
                args.into_iter().map(|a| a.into_string().unwrap()).collect()
            }
            Translation::Exit(text, code) => vec![format!("exit {code}"), text],
        }
    }

    #[test]
    fn names_are_recognised_from_any_path() {
        assert_eq!(
            historical_name(&"/usr/bin/layer_wrapper".into()),
            Some("layer_wrapper")
        );
        assert_eq!(historical_name(&"mfenv".into()), None);
    }

    #[test]
    fn layers_options_translate() {
        assert_eq!(
            run("layers", &["layers", "-r", "--loaded-filter=yes"]),
            ["mfenv", "layers", "--empty-ok", "--raw", "-m", "yes"]
        );
        assert_eq!(run("layers", &["layers", "-m", "maybe"]), ["exit 0", ""]);
    }

    #[test]
    fn wrong_argument_counts_print_help_and_exit_1() {
        let out = run("is_layer_installed", &["is_layer_installed"]);
        assert_eq!(out[0], "exit 1");
        assert!(out[1].contains("Usage"));
        assert_eq!(
            run("is_layer_loaded", &["is_layer_loaded", "a", "b"])[0],
            "exit 1"
        );
    }

    #[test]
    fn layer_wrapper_options_may_follow_the_layers_and_precede_the_command() {
        assert_eq!(
            run(
                "layer_wrapper",
                &["layer_wrapper", "--layers=a,-b", "-c", "--", "ls", "-l"]
            ),
            ["mfenv", "exec", "--cwd", "--layers=a,-b", "--", "ls", "-l"]
        );
        assert_eq!(
            run(
                "layer_wrapper",
                &["layer_wrapper", "-l", "a", "-x", "P", "env", "-i"]
            ),
            [
                "mfenv",
                "exec",
                "--extra-env-prefix=P",
                "--layers=a",
                "--",
                "env",
                "-i"
            ]
        );
    }

    #[test]
    fn options_given_twice_are_accepted_the_last_value_winning() {
        assert_eq!(
            run(
                "layers",
                &["layers", "-r", "-r", "-m", "yes", "-m", "no", "extra"]
            ),
            ["mfenv", "layers", "--empty-ok", "--raw", "-m", "no"]
        );
        assert_eq!(
            run(
                "layer_load_bash_cmds",
                &["layer_load_bash_cmds", "--debug", "--debug", "-d", "x"]
            ),
            ["mfenv", "load", "--shell", "bash", "--debug", "--", "x"]
        );
        assert_eq!(
            run(
                "layer_unload_bash_cmds",
                &["layer_unload_bash_cmds", "--debug", "-d", "x"]
            ),
            ["mfenv", "unload", "--shell", "bash", "--debug", "--", "x"]
        );
        assert_eq!(
            run(
                "layer_wrapper",
                &[
                    "layer_wrapper",
                    "-c",
                    "-c",
                    "--layers=a",
                    "--layers=b",
                    "-x",
                    "P",
                    "-x",
                    "Q",
                    "-p",
                    "A,1",
                    "-p",
                    "B,2",
                    "--",
                    "true"
                ]
            ),
            [
                "mfenv",
                "exec",
                "--cwd",
                "--extra-env-prefix=Q",
                "--layers=b",
                "--prepend-env=A,1",
                "--prepend-env=B,2",
                "--",
                "true"
            ]
        );
    }

    #[test]
    fn layer_wrapper_refuses_unknown_options() {
        assert_eq!(
            run("layer_wrapper", &["layer_wrapper", "--bogus", "--", "true"])[0],
            "exit 1"
        );
    }

    #[test]
    fn plugin_names_become_plugin_subcommands() {
        assert_eq!(
            run(
                "plugin_wrapper",
                &["plugin_wrapper", "--cwd", "foo", "ls", "-l"]
            ),
            [
                "mfenv", "plugin", "wrapper", "--cwd", "foo", "--", "ls", "-l"
            ]
        );
        assert_eq!(
            run("plugin_wrapper", &["plugin_wrapper", "foo", "--", "ls"]),
            ["mfenv", "plugin", "wrapper", "foo", "--", "ls"]
        );
        assert_eq!(
            run(
                "cronwrap.sh",
                &[
                    "/opt/m/bin/cronwrap.sh",
                    "--lock",
                    "--",
                    "plugin_wrapper",
                    "a"
                ]
            ),
            [
                "mfenv",
                "cronwrap",
                "--invoked-as",
                "/opt/m/bin/cronwrap.sh",
                "--lock",
                "--",
                "plugin_wrapper",
                "a"
            ]
        );
        assert_eq!(
            run("plugins.list", &["plugins.list", "--raw"]),
            ["mfenv", "plugin", "list", "--raw"]
        );
        assert_eq!(
            run(
                "plugins.install",
                &["plugins.install", "f.plugin", "--force"]
            ),
            ["mfenv", "plugin", "install", "f.plugin", "--force"]
        );
        assert_eq!(
            run("plugins.hotswap", &["plugins.hotswap", "f.plugin"]),
            ["mfenv", "plugin", "hotswap", "f.plugin"]
        );
    }

    #[test]
    fn bash_cmds_become_load_and_unload() {
        assert_eq!(
            run(
                "layer_load_bash_cmds",
                &["layer_load_bash_cmds", "x", "--debug"]
            ),
            ["mfenv", "load", "--shell", "bash", "--debug", "--", "x"]
        );
        assert_eq!(
            run("layer_unload_bash_cmds", &["layer_unload_bash_cmds", "x"]),
            ["mfenv", "unload", "--shell", "bash", "--", "x"]
        );
    }
}
