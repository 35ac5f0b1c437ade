//! `mfenv man`: the manual pages, one per command, generated from the command-line
//! definition so that they always match the binary.
//!
//! Every page is rendered by clap_mangen; a page lists its subcommands as
//! `mfenv-plugin-install(1)`, and exactly those pages are generated (`help` subcommands
//! are left out everywhere, so no page names one that does not exist). On a terminal the
//! page is shown through `man -l -` (formatted, in the user's pager); otherwise the roff
//! source is printed, so `mfenv man > mfenv.1` works. `--install` writes every page
//! below a manual directory, each file written whole (temporary file, then rename).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command as Process, Stdio};

use clap::Command;

use super::Report;
use crate::env::Env;
use crate::error::{Error, ErrorKind, Result, io_reason};
use crate::invocation::Invocation;

/// Examples shown by `mfenv man --help`.
pub const MAN_EXAMPLES: &str = "\
Examples:
  mfenv man                    mfenv's page (formatted on a terminal, roff otherwise)
  mfenv man plugin install     the page of `mfenv plugin install` (mfenv-plugin-install(1))
  mfenv man --install          write every page in ~/.local/share/man/man1, then `man mfenv`
  mfenv man --install /usr/local/share/man
  mfenv man --list             the names of the pages
  mfenv man load > mfenv-load.1";

#[derive(Debug, clap::Args)]
pub struct ManArgs {
    /// The command whose page to show, e.g. `plugin install` (default: mfenv's own page)
    #[arg(value_name = "COMMAND")]
    pub command: Vec<String>,
    /// Write every page into MANDIR/man1 (default MANDIR: $XDG_DATA_HOME/man, else
    /// ~/.local/share/man) and print their paths
    #[arg(long, value_name = "MANDIR", num_args = 0..=1, conflicts_with_all = ["command", "list", "roff"])]
    pub install: Option<Option<PathBuf>>,
    /// Print the names of the pages, one a line
    #[arg(long, conflicts_with_all = ["command", "roff"])]
    pub list: bool,
    /// Print the roff source, even on a terminal
    #[arg(long)]
    pub roff: bool,
}

/// One manual page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    /// `mfenv`, `mfenv-load`, `mfenv-plugin-install`.
    pub name: String,
    /// The command's words after `mfenv` (empty for mfenv's own page).
    pub words: Vec<String>,
    /// The roff source.
    pub roff: String,
}

impl Page {
    pub fn file_name(&self) -> String {
        format!("{}.1", self.name)
    }
}

/// Every page of `cli` (the whole command line), mfenv's own first, then in command order.
pub fn pages(cli: Command) -> Vec<Page> {
    let mut cli = without_help_subcommands(cli);
    cli.build();
    let mut pages = Vec::new();
    collect(&cli, &mut Vec::new(), &mut pages);
    pages
}

fn without_help_subcommands(command: Command) -> Command {
    command
        .disable_help_subcommand(true)
        .mut_subcommands(without_help_subcommands)
}

fn collect(command: &Command, words: &mut Vec<String>, pages: &mut Vec<Page>) {
    let mut buffer = Vec::new();
    clap_mangen::Man::new(command.clone())
        .render(&mut buffer)
        .expect("rendering into memory cannot fail");
    pages.push(Page {
        name: command
            .get_display_name()
            .unwrap_or_else(|| command.get_name())
            .to_owned(),
        words: words.clone(),
        roff: String::from_utf8_lossy(&buffer).into_owned(),
    });
    for sub in command.get_subcommands().filter(|sub| !sub.is_hide_set()) {
        words.push(sub.get_name().to_owned());
        collect(sub, words, pages);
        words.pop();
    }
}

/// Runs `mfenv man`. Whether standard output is a terminal decides between showing
/// and printing.
pub fn run(args: &ManArgs, cli: Command, inv: &Invocation) -> Result<Report> {
    let env = inv.env();
    let pages = pages(cli.clone());
    if args.list {
        let mut out = String::new();
        for page in &pages {
            out.push_str(&page.name);
            out.push('\n');
        }
        return Ok(Report::stdout(out));
    }
    if let Some(dir) = &args.install {
        let dir = match dir {
            Some(dir) => dir.clone(),
            None => default_man_dir(env)?,
        };
        return install(&pages, &dir);
    }
    let Some(page) = pages.iter().find(|page| page.words == args.command) else {
        let asked = args.command.join(" ");
        return Err(Error::new(
            ErrorKind::Usage,
            format!("no manual page for `mfenv {asked}`"),
        )
        .with_hint("`mfenv man --list` lists the pages"));
    };
    if args.roff || !inv.stdout_is_terminal() {
        return Ok(Report::stdout(page.roff.clone()));
    }
    let cwd = inv.cwd().unwrap_or(Path::new("/"));
    match which::which_in("man", env.get("PATH"), cwd) {
        Ok(man) => show(&man, page),
        Err(_) => Ok(Report {
            stdout: long_help(cli, &page.words),
            stderr: vec![
                "mfenv: `man` is not installed: showing the help text instead of the manual page"
                    .to_owned(),
            ],
            status: 0,
        }),
    }
}

/// Shows `page` with `man -l -` (on the terminal, through the user's pager).
fn show(man: &Path, page: &Page) -> Result<Report> {
    let failed = |what: &str, err: &std::io::Error| {
        Error::new(ErrorKind::Io, format!("cannot {what} `{}`", man.display()))
            .caused_by(io_reason(err))
    };
    let mut child = Process::new(man)
        .args(["-l", "-"])
        .stdin(Stdio::piped())
        .spawn()
        .map_err(|err| failed("run", &err))?;
    if let Some(mut stdin) = child.stdin.take() {
        // A pager quit before reading everything closes the pipe: not an error.
        match stdin.write_all(page.roff.as_bytes()) {
            Err(err) if err.kind() != std::io::ErrorKind::BrokenPipe => {
                return Err(failed("write to", &err));
            }
            _ => {}
        }
    }
    let status = child.wait().map_err(|err| failed("wait for", &err))?;
    Ok(Report {
        status: status
            .code()
            .map_or(1, |code| u8::try_from(code).unwrap_or(1)),
        ..Report::default()
    })
}

/// The long help of the command `words` names (shown when `man` is missing).
fn long_help(cli: Command, words: &[String]) -> String {
    let mut command = without_help_subcommands(cli);
    command.build();
    let mut current = &mut command;
    for word in words {
        current = current
            .find_subcommand_mut(word)
            .expect("the page was generated from this subcommand");
    }
    current.render_long_help().to_string()
}

/// `$XDG_DATA_HOME/man`, else `~/.local/share/man`.
fn default_man_dir(env: &Env) -> Result<PathBuf> {
    if let Some(data) = env.get("XDG_DATA_HOME").filter(|dir| dir.starts_with('/')) {
        return Ok(Path::new(data).join("man"));
    }
    match env.get("HOME").filter(|home| !home.is_empty()) {
        Some(home) => Ok(Path::new(home).join(".local/share/man")),
        None => Err(
            Error::new(ErrorKind::Usage, "no manual directory to install into")
                .caused_by("neither `XDG_DATA_HOME` nor `HOME` is set")
                .with_hint("give one: `mfenv man --install /usr/local/share/man`"),
        ),
    }
}

/// Writes every page into `dir/man1`, each whole; prints the paths written.
fn install(pages: &[Page], dir: &Path) -> Result<Report> {
    let section = dir.join("man1");
    std::fs::create_dir_all(&section).map_err(|err| Error::io("cannot create", &section, &err))?;
    let mut out = String::new();
    for page in pages {
        let target = section.join(page.file_name());
        let temporary = section.join(format!(".{}.{}.tmp", page.file_name(), std::process::id()));
        let written = std::fs::write(&temporary, page.roff.as_bytes())
            .map_err(|err| Error::io("cannot write", &temporary, &err))
            .and_then(|()| {
                std::fs::rename(&temporary, &target)
                    .map_err(|err| Error::io("cannot write", &target, &err))
            });
        if let Err(error) = written {
            let _ = std::fs::remove_file(&temporary);
            return Err(error);
        }
        out.push_str(&format!("{}\n", target.display()));
    }
    Ok(Report {
        stdout: out,
        stderr: vec![format!(
            "mfenv: {} manual pages in `{}`; `man mfenv` finds them when `{}` is on MANPATH (or its `../bin` on PATH)",
            pages.len(),
            section.display(),
            dir.display()
        )],
        status: 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Command {
        Command::new("tool")
            .version("1.0")
            .subcommand(
                Command::new("group")
                    .about("A group")
                    .subcommand(Command::new("leaf").about("A leaf")),
            )
            .subcommand(Command::new("hidden").hide(true))
    }

    #[test]
    fn one_page_per_visible_command_and_no_help_pages() {
        let names: Vec<String> = pages(sample()).into_iter().map(|page| page.name).collect();
        assert_eq!(names, ["tool", "tool-group", "tool-group-leaf"]);
    }

    #[test]
    fn pages_name_only_generated_pages() {
        let pages = pages(sample());
        let top = &pages[0].roff;
        assert!(top.contains("tool\\-group(1)"), "{top}");
        assert!(!top.contains("help(1)"), "{top}");
        assert!(pages[1].roff.contains("tool\\-group\\-leaf(1)"));
    }
}
