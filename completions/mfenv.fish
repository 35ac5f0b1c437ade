# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_mfenv_global_optspecs
    string join \n h/help V/version
end

function __fish_mfenv_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_mfenv_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_mfenv_using_subcommand
    set -l cmd (__fish_mfenv_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c mfenv -n "__fish_mfenv_needs_command" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c mfenv -n "__fish_mfenv_needs_command" -s V -l version -d 'Print version'
complete -c mfenv -n "__fish_mfenv_needs_command" -f -a "load" -d 'Print shell code that loads layers (and their dependencies)'
complete -c mfenv -n "__fish_mfenv_needs_command" -f -a "exec" -d 'Run a command with layers loaded (the old `layer_wrapper`)'
complete -c mfenv -n "__fish_mfenv_needs_command" -f -a "unload" -d 'Print shell code that unloads layers (and the layers that depend on them)'
complete -c mfenv -n "__fish_mfenv_needs_command" -f -a "layers" -d 'List installed layers'
complete -c mfenv -n "__fish_mfenv_needs_command" -f -a "cronwrap" -d 'Run a command from cron: lock, timeout, niceness, log file (the old `cronwrap`)'
complete -c mfenv -n "__fish_mfenv_needs_command" -f -a "why" -d 'Show which loaded layer put each PATH entry and each variable there'
complete -c mfenv -n "__fish_mfenv_needs_command" -f -a "is-installed" -d 'Print 1 if the layer (label or home) is installed, else 0'
complete -c mfenv -n "__fish_mfenv_needs_command" -f -a "is-loaded" -d 'Print 1 if the layer (label or home) is loaded, else 0'
complete -c mfenv -n "__fish_mfenv_needs_command" -f -a "home" -d 'Print the home directory of the layer with this label'
complete -c mfenv -n "__fish_mfenv_needs_command" -f -a "hook" -d 'Print the shell integration: layer_load, layer_unload, layer_load_without_optional'
complete -c mfenv -n "__fish_mfenv_needs_command" -f -a "completions" -d 'Print the completion script of mfenv itself'
complete -c mfenv -n "__fish_mfenv_needs_command" -f -a "plugin" -d 'Build, install and manage plugins (`.plugin` packages)'
complete -c mfenv -n "__fish_mfenv_needs_command" -f -a "install-aliases" -d 'Create symlinks named after the historical MetWork commands (layers, layer_wrapper, is_layer_loaded, ...) pointing to this binary'
complete -c mfenv -n "__fish_mfenv_needs_command" -f -a "man" -d 'Print the manual page (roff)'
complete -c mfenv -n "__fish_mfenv_needs_command" -f -a "complete" -d 'Print layer labels for shell completion (used by the hook)'
complete -c mfenv -n "__fish_mfenv_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c mfenv -n "__fish_mfenv_using_subcommand load" -l shell -d 'Shell to write code for' -r -f -a "bash\t''
zsh\t''
fish\t''
sh\t''"
complete -c mfenv -n "__fish_mfenv_using_subcommand load" -s d -l debug -d 'Explain each decision on stderr'
complete -c mfenv -n "__fish_mfenv_using_subcommand load" -l dry-run -d 'Print the plan (layers and variables) for a human instead of code'
complete -c mfenv -n "__fish_mfenv_using_subcommand load" -l json -d 'With --dry-run: print the plan as JSON'
complete -c mfenv -n "__fish_mfenv_using_subcommand load" -l dont-load-optional -d 'Do not load optional dependencies (`-` entries of .layerapi2_dependencies)'
complete -c mfenv -n "__fish_mfenv_using_subcommand load" -s f -l force-prepend -d 'Prepend every layer directory, even those that do not exist'
complete -c mfenv -n "__fish_mfenv_using_subcommand load" -s h -l help -d 'Print help'
complete -c mfenv -n "__fish_mfenv_using_subcommand load" -s V -l version -d 'Print version'
complete -c mfenv -n "__fish_mfenv_using_subcommand exec" -s l -l layers -d 'Comma-separated layer labels or homes; a `-` prefix makes one optional' -r
complete -c mfenv -n "__fish_mfenv_using_subcommand exec" -s k -l empty-env-keeps -d 'Comma-separated variables kept by --empty-env' -r
complete -c mfenv -n "__fish_mfenv_using_subcommand exec" -s x -l extra-env-prefix -d 'Set PREFIX_NAME, PREFIX_LABEL and PREFIX_DIR for the last layer' -r
complete -c mfenv -n "__fish_mfenv_using_subcommand exec" -s p -l prepend-env -d '`VAR,VALUE`: prepend VALUE to the `:`-list VAR, after the layers (repeatable)' -r
complete -c mfenv -n "__fish_mfenv_using_subcommand exec" -s e -l empty -d 'Unload every loaded layer first'
complete -c mfenv -n "__fish_mfenv_using_subcommand exec" -s E -l empty-env -d 'Start from an empty environment (implies --empty)'
complete -c mfenv -n "__fish_mfenv_using_subcommand exec" -s c -l cwd -d 'Run the command in the home of the last layer'
complete -c mfenv -n "__fish_mfenv_using_subcommand exec" -s f -l force-prepend -d 'Prepend every layer directory, even those that do not exist'
complete -c mfenv -n "__fish_mfenv_using_subcommand exec" -l dont-load-optional -d 'Do not load optional dependencies'
complete -c mfenv -n "__fish_mfenv_using_subcommand exec" -s d -l debug -d 'Explain each decision on stderr'
complete -c mfenv -n "__fish_mfenv_using_subcommand exec" -s h -l help -d 'Print help'
complete -c mfenv -n "__fish_mfenv_using_subcommand exec" -s V -l version -d 'Print version'
complete -c mfenv -n "__fish_mfenv_using_subcommand unload" -l shell -d 'Shell to write code for' -r -f -a "bash\t''
zsh\t''
fish\t''
sh\t''"
complete -c mfenv -n "__fish_mfenv_using_subcommand unload" -s d -l debug -d 'Explain each decision on stderr'
complete -c mfenv -n "__fish_mfenv_using_subcommand unload" -l dry-run -d 'Print the plan (layers and variables) for a human instead of code'
complete -c mfenv -n "__fish_mfenv_using_subcommand unload" -l json -d 'With --dry-run: print the plan as JSON'
complete -c mfenv -n "__fish_mfenv_using_subcommand unload" -s h -l help -d 'Print help'
complete -c mfenv -n "__fish_mfenv_using_subcommand unload" -s V -l version -d 'Print version'
complete -c mfenv -n "__fish_mfenv_using_subcommand layers" -s m -l loaded-filter -d 'Only loaded (yes) or not loaded (no) layers' -r -f -a "yes\t''
no\t''"
complete -c mfenv -n "__fish_mfenv_using_subcommand layers" -s r -l raw -d 'One `label home` line per layer'
complete -c mfenv -n "__fish_mfenv_using_subcommand layers" -l json -d 'A JSON array of {label, home, loaded}'
complete -c mfenv -n "__fish_mfenv_using_subcommand layers" -s d -l debug -d 'Explain discovery decisions on stderr'
complete -c mfenv -n "__fish_mfenv_using_subcommand layers" -s h -l help -d 'Print help'
complete -c mfenv -n "__fish_mfenv_using_subcommand layers" -s V -l version -d 'Print version'
complete -c mfenv -n "__fish_mfenv_using_subcommand cronwrap" -s t -l timeout -d 'Kill the command (and all it started) after this many seconds and exit 12; 0: never' -r
complete -c mfenv -n "__fish_mfenv_using_subcommand cronwrap" -s r -l random-sleep -d 'Sleep a random number of seconds between 0 and this first' -r
complete -c mfenv -n "__fish_mfenv_using_subcommand cronwrap" -s b -l lock-timeout-behaviour -d 'Where to say that the lock is busy' -r -f -a "print-stdout\t''
print-stderr\t''
nothing\t''"
complete -c mfenv -n "__fish_mfenv_using_subcommand cronwrap" -s w -l wait-for-lock-timeout -d 'Accepted for compatibility (the lock is taken without waiting)' -r
complete -c mfenv -n "__fish_mfenv_using_subcommand cronwrap" -s f -l load-env-file -d 'File sourced by --load-env' -r -F
complete -c mfenv -n "__fish_mfenv_using_subcommand cronwrap" -s s -l shell -d 'Shell used by --load-env' -r -F
complete -c mfenv -n "__fish_mfenv_using_subcommand cronwrap" -s n -l nice -d 'Run with this niceness increment' -r
complete -c mfenv -n "__fish_mfenv_using_subcommand cronwrap" -s i -l ionice -d 'Run with this I/O scheduling class (1 realtime, 2 best-effort, 3 idle)' -r
complete -c mfenv -n "__fish_mfenv_using_subcommand cronwrap" -l log-capture-to -d 'Append the command\'s stdout and stderr to FILE (relative to RUNTIME/log; NULL discards)' -r
complete -c mfenv -n "__fish_mfenv_using_subcommand cronwrap" -s l -l lock -d 'Do nothing (exit 0) if the same command is already running'
complete -c mfenv -n "__fish_mfenv_using_subcommand cronwrap" -s e -l load-env -d 'Source a file (see --load-env-file) in --shell before the command'
complete -c mfenv -n "__fish_mfenv_using_subcommand cronwrap" -l low -d 'Same as --nice 19 --ionice 3'
complete -c mfenv -n "__fish_mfenv_using_subcommand cronwrap" -s h -l help -d 'Print help'
complete -c mfenv -n "__fish_mfenv_using_subcommand cronwrap" -s V -l version -d 'Print version'
complete -c mfenv -n "__fish_mfenv_using_subcommand why" -l json -d 'Machine-readable output'
complete -c mfenv -n "__fish_mfenv_using_subcommand why" -s h -l help -d 'Print help'
complete -c mfenv -n "__fish_mfenv_using_subcommand why" -s V -l version -d 'Print version'
complete -c mfenv -n "__fish_mfenv_using_subcommand is-installed" -s h -l help -d 'Print help'
complete -c mfenv -n "__fish_mfenv_using_subcommand is-installed" -s V -l version -d 'Print version'
complete -c mfenv -n "__fish_mfenv_using_subcommand is-loaded" -s h -l help -d 'Print help'
complete -c mfenv -n "__fish_mfenv_using_subcommand is-loaded" -s V -l version -d 'Print version'
complete -c mfenv -n "__fish_mfenv_using_subcommand home" -s h -l help -d 'Print help'
complete -c mfenv -n "__fish_mfenv_using_subcommand home" -s V -l version -d 'Print version'
complete -c mfenv -n "__fish_mfenv_using_subcommand hook" -s h -l help -d 'Print help'
complete -c mfenv -n "__fish_mfenv_using_subcommand hook" -s V -l version -d 'Print version'
complete -c mfenv -n "__fish_mfenv_using_subcommand completions" -s h -l help -d 'Print help'
complete -c mfenv -n "__fish_mfenv_using_subcommand completions" -s V -l version -d 'Print version'
complete -c mfenv -n "__fish_mfenv_using_subcommand plugin; and not __fish_seen_subcommand_from list info hash check install uninstall develop release repackage provision help" -s h -l help -d 'Print help'
complete -c mfenv -n "__fish_mfenv_using_subcommand plugin; and not __fish_seen_subcommand_from list info hash check install uninstall develop release repackage provision help" -s V -l version -d 'Print version'
complete -c mfenv -n "__fish_mfenv_using_subcommand plugin; and not __fish_seen_subcommand_from list info hash check install uninstall develop release repackage provision help" -f -a "list" -d 'List installed and dev-linked plugins'
complete -c mfenv -n "__fish_mfenv_using_subcommand plugin; and not __fish_seen_subcommand_from list info hash check install uninstall develop release repackage provision help" -f -a "info" -d 'Show the metadata and files of an installed plugin or a `.plugin` file'
complete -c mfenv -n "__fish_mfenv_using_subcommand plugin; and not __fish_seen_subcommand_from list info hash check install uninstall develop release repackage provision help" -f -a "hash" -d 'Print the hash provisioning compares (installed plugin or `.plugin` file)'
complete -c mfenv -n "__fish_mfenv_using_subcommand plugin; and not __fish_seen_subcommand_from list info hash check install uninstall develop release repackage provision help" -f -a "check" -d 'Validate a plugin source tree (default: the current directory)'
complete -c mfenv -n "__fish_mfenv_using_subcommand plugin; and not __fish_seen_subcommand_from list info hash check install uninstall develop release repackage provision help" -f -a "install" -d 'Install a `.plugin` file'
complete -c mfenv -n "__fish_mfenv_using_subcommand plugin; and not __fish_seen_subcommand_from list info hash check install uninstall develop release repackage provision help" -f -a "uninstall" -d 'Uninstall a plugin'
complete -c mfenv -n "__fish_mfenv_using_subcommand plugin; and not __fish_seen_subcommand_from list info hash check install uninstall develop release repackage provision help" -f -a "develop" -d 'Dev-link a plugin source tree into the plugins base dir'
complete -c mfenv -n "__fish_mfenv_using_subcommand plugin; and not __fish_seen_subcommand_from list info hash check install uninstall develop release repackage provision help" -f -a "release" -d 'Build NAME-VERSION-RELEASE.metwork.<module>.plugin in the current directory'
complete -c mfenv -n "__fish_mfenv_using_subcommand plugin; and not __fish_seen_subcommand_from list info hash check install uninstall develop release repackage provision help" -f -a "repackage" -d 'Build a `.plugin` of an installed plugin with its OP overrides baked in'
complete -c mfenv -n "__fish_mfenv_using_subcommand plugin; and not __fish_seen_subcommand_from list info hash check install uninstall develop release repackage provision help" -f -a "provision" -d 'Install or update every `*.plugin` of a directory'
complete -c mfenv -n "__fish_mfenv_using_subcommand plugin; and not __fish_seen_subcommand_from list info hash check install uninstall develop release repackage provision help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c mfenv -n "__fish_mfenv_using_subcommand plugin; and __fish_seen_subcommand_from list" -l raw -d 'One `name~~~version~~~release~~~home` line per plugin'
complete -c mfenv -n "__fish_mfenv_using_subcommand plugin; and __fish_seen_subcommand_from list" -l json -d 'A JSON array of {name, release, version, home}'
complete -c mfenv -n "__fish_mfenv_using_subcommand plugin; and __fish_seen_subcommand_from list" -s h -l help -d 'Print help'
complete -c mfenv -n "__fish_mfenv_using_subcommand plugin; and __fish_seen_subcommand_from list" -s V -l version -d 'Print version'
complete -c mfenv -n "__fish_mfenv_using_subcommand plugin; and __fish_seen_subcommand_from info" -l just-home -d 'Print only the plugin home'
complete -c mfenv -n "__fish_mfenv_using_subcommand plugin; and __fish_seen_subcommand_from info" -l json -d 'Machine-readable output'
complete -c mfenv -n "__fish_mfenv_using_subcommand plugin; and __fish_seen_subcommand_from info" -s h -l help -d 'Print help'
complete -c mfenv -n "__fish_mfenv_using_subcommand plugin; and __fish_seen_subcommand_from info" -s V -l version -d 'Print version'
complete -c mfenv -n "__fish_mfenv_using_subcommand plugin; and __fish_seen_subcommand_from hash" -s h -l help -d 'Print help'
complete -c mfenv -n "__fish_mfenv_using_subcommand plugin; and __fish_seen_subcommand_from hash" -s V -l version -d 'Print version'
complete -c mfenv -n "__fish_mfenv_using_subcommand plugin; and __fish_seen_subcommand_from check" -s h -l help -d 'Print help'
complete -c mfenv -n "__fish_mfenv_using_subcommand plugin; and __fish_seen_subcommand_from check" -s V -l version -d 'Print version'
complete -c mfenv -n "__fish_mfenv_using_subcommand plugin; and __fish_seen_subcommand_from install" -l new-name -d 'Install under another name (rewrites the label)' -r
complete -c mfenv -n "__fish_mfenv_using_subcommand plugin; and __fish_seen_subcommand_from install" -s f -l force -d 'Replace the plugin if it is already installed'
complete -c mfenv -n "__fish_mfenv_using_subcommand plugin; and __fish_seen_subcommand_from install" -s h -l help -d 'Print help'
complete -c mfenv -n "__fish_mfenv_using_subcommand plugin; and __fish_seen_subcommand_from install" -s V -l version -d 'Print version'
complete -c mfenv -n "__fish_mfenv_using_subcommand plugin; and __fish_seen_subcommand_from uninstall" -l clean -d 'Also delete the OP override `RUNTIME/config/plugins/NAME.ini`'
complete -c mfenv -n "__fish_mfenv_using_subcommand plugin; and __fish_seen_subcommand_from uninstall" -s h -l help -d 'Print help'
complete -c mfenv -n "__fish_mfenv_using_subcommand plugin; and __fish_seen_subcommand_from uninstall" -s V -l version -d 'Print version'
complete -c mfenv -n "__fish_mfenv_using_subcommand plugin; and __fish_seen_subcommand_from develop" -s h -l help -d 'Print help'
complete -c mfenv -n "__fish_mfenv_using_subcommand plugin; and __fish_seen_subcommand_from develop" -s V -l version -d 'Print version'
complete -c mfenv -n "__fish_mfenv_using_subcommand plugin; and __fish_seen_subcommand_from release" -s h -l help -d 'Print help'
complete -c mfenv -n "__fish_mfenv_using_subcommand plugin; and __fish_seen_subcommand_from release" -s V -l version -d 'Print version'
complete -c mfenv -n "__fish_mfenv_using_subcommand plugin; and __fish_seen_subcommand_from repackage" -s h -l help -d 'Print help'
complete -c mfenv -n "__fish_mfenv_using_subcommand plugin; and __fish_seen_subcommand_from repackage" -s V -l version -d 'Print version'
complete -c mfenv -n "__fish_mfenv_using_subcommand plugin; and __fish_seen_subcommand_from provision" -l dir -d 'Default: `<sysconf>/<module>/plugins` (`/etc/metwork.config.d/<module>/plugins`)' -r -F
complete -c mfenv -n "__fish_mfenv_using_subcommand plugin; and __fish_seen_subcommand_from provision" -s h -l help -d 'Print help'
complete -c mfenv -n "__fish_mfenv_using_subcommand plugin; and __fish_seen_subcommand_from provision" -s V -l version -d 'Print version'
complete -c mfenv -n "__fish_mfenv_using_subcommand plugin; and __fish_seen_subcommand_from help" -f -a "list" -d 'List installed and dev-linked plugins'
complete -c mfenv -n "__fish_mfenv_using_subcommand plugin; and __fish_seen_subcommand_from help" -f -a "info" -d 'Show the metadata and files of an installed plugin or a `.plugin` file'
complete -c mfenv -n "__fish_mfenv_using_subcommand plugin; and __fish_seen_subcommand_from help" -f -a "hash" -d 'Print the hash provisioning compares (installed plugin or `.plugin` file)'
complete -c mfenv -n "__fish_mfenv_using_subcommand plugin; and __fish_seen_subcommand_from help" -f -a "check" -d 'Validate a plugin source tree (default: the current directory)'
complete -c mfenv -n "__fish_mfenv_using_subcommand plugin; and __fish_seen_subcommand_from help" -f -a "install" -d 'Install a `.plugin` file'
complete -c mfenv -n "__fish_mfenv_using_subcommand plugin; and __fish_seen_subcommand_from help" -f -a "uninstall" -d 'Uninstall a plugin'
complete -c mfenv -n "__fish_mfenv_using_subcommand plugin; and __fish_seen_subcommand_from help" -f -a "develop" -d 'Dev-link a plugin source tree into the plugins base dir'
complete -c mfenv -n "__fish_mfenv_using_subcommand plugin; and __fish_seen_subcommand_from help" -f -a "release" -d 'Build NAME-VERSION-RELEASE.metwork.<module>.plugin in the current directory'
complete -c mfenv -n "__fish_mfenv_using_subcommand plugin; and __fish_seen_subcommand_from help" -f -a "repackage" -d 'Build a `.plugin` of an installed plugin with its OP overrides baked in'
complete -c mfenv -n "__fish_mfenv_using_subcommand plugin; and __fish_seen_subcommand_from help" -f -a "provision" -d 'Install or update every `*.plugin` of a directory'
complete -c mfenv -n "__fish_mfenv_using_subcommand plugin; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c mfenv -n "__fish_mfenv_using_subcommand install-aliases" -l force -d 'Replace existing files with those names'
complete -c mfenv -n "__fish_mfenv_using_subcommand install-aliases" -s h -l help -d 'Print help'
complete -c mfenv -n "__fish_mfenv_using_subcommand install-aliases" -s V -l version -d 'Print version'
complete -c mfenv -n "__fish_mfenv_using_subcommand man" -s h -l help -d 'Print help'
complete -c mfenv -n "__fish_mfenv_using_subcommand man" -s V -l version -d 'Print version'
complete -c mfenv -n "__fish_mfenv_using_subcommand complete" -s h -l help -d 'Print help'
complete -c mfenv -n "__fish_mfenv_using_subcommand complete" -s V -l version -d 'Print version'
complete -c mfenv -n "__fish_mfenv_using_subcommand help; and not __fish_seen_subcommand_from load exec unload layers cronwrap why is-installed is-loaded home hook completions plugin install-aliases man complete help" -f -a "load" -d 'Print shell code that loads layers (and their dependencies)'
complete -c mfenv -n "__fish_mfenv_using_subcommand help; and not __fish_seen_subcommand_from load exec unload layers cronwrap why is-installed is-loaded home hook completions plugin install-aliases man complete help" -f -a "exec" -d 'Run a command with layers loaded (the old `layer_wrapper`)'
complete -c mfenv -n "__fish_mfenv_using_subcommand help; and not __fish_seen_subcommand_from load exec unload layers cronwrap why is-installed is-loaded home hook completions plugin install-aliases man complete help" -f -a "unload" -d 'Print shell code that unloads layers (and the layers that depend on them)'
complete -c mfenv -n "__fish_mfenv_using_subcommand help; and not __fish_seen_subcommand_from load exec unload layers cronwrap why is-installed is-loaded home hook completions plugin install-aliases man complete help" -f -a "layers" -d 'List installed layers'
complete -c mfenv -n "__fish_mfenv_using_subcommand help; and not __fish_seen_subcommand_from load exec unload layers cronwrap why is-installed is-loaded home hook completions plugin install-aliases man complete help" -f -a "cronwrap" -d 'Run a command from cron: lock, timeout, niceness, log file (the old `cronwrap`)'
complete -c mfenv -n "__fish_mfenv_using_subcommand help; and not __fish_seen_subcommand_from load exec unload layers cronwrap why is-installed is-loaded home hook completions plugin install-aliases man complete help" -f -a "why" -d 'Show which loaded layer put each PATH entry and each variable there'
complete -c mfenv -n "__fish_mfenv_using_subcommand help; and not __fish_seen_subcommand_from load exec unload layers cronwrap why is-installed is-loaded home hook completions plugin install-aliases man complete help" -f -a "is-installed" -d 'Print 1 if the layer (label or home) is installed, else 0'
complete -c mfenv -n "__fish_mfenv_using_subcommand help; and not __fish_seen_subcommand_from load exec unload layers cronwrap why is-installed is-loaded home hook completions plugin install-aliases man complete help" -f -a "is-loaded" -d 'Print 1 if the layer (label or home) is loaded, else 0'
complete -c mfenv -n "__fish_mfenv_using_subcommand help; and not __fish_seen_subcommand_from load exec unload layers cronwrap why is-installed is-loaded home hook completions plugin install-aliases man complete help" -f -a "home" -d 'Print the home directory of the layer with this label'
complete -c mfenv -n "__fish_mfenv_using_subcommand help; and not __fish_seen_subcommand_from load exec unload layers cronwrap why is-installed is-loaded home hook completions plugin install-aliases man complete help" -f -a "hook" -d 'Print the shell integration: layer_load, layer_unload, layer_load_without_optional'
complete -c mfenv -n "__fish_mfenv_using_subcommand help; and not __fish_seen_subcommand_from load exec unload layers cronwrap why is-installed is-loaded home hook completions plugin install-aliases man complete help" -f -a "completions" -d 'Print the completion script of mfenv itself'
complete -c mfenv -n "__fish_mfenv_using_subcommand help; and not __fish_seen_subcommand_from load exec unload layers cronwrap why is-installed is-loaded home hook completions plugin install-aliases man complete help" -f -a "plugin" -d 'Build, install and manage plugins (`.plugin` packages)'
complete -c mfenv -n "__fish_mfenv_using_subcommand help; and not __fish_seen_subcommand_from load exec unload layers cronwrap why is-installed is-loaded home hook completions plugin install-aliases man complete help" -f -a "install-aliases" -d 'Create symlinks named after the historical MetWork commands (layers, layer_wrapper, is_layer_loaded, ...) pointing to this binary'
complete -c mfenv -n "__fish_mfenv_using_subcommand help; and not __fish_seen_subcommand_from load exec unload layers cronwrap why is-installed is-loaded home hook completions plugin install-aliases man complete help" -f -a "man" -d 'Print the manual page (roff)'
complete -c mfenv -n "__fish_mfenv_using_subcommand help; and not __fish_seen_subcommand_from load exec unload layers cronwrap why is-installed is-loaded home hook completions plugin install-aliases man complete help" -f -a "complete" -d 'Print layer labels for shell completion (used by the hook)'
complete -c mfenv -n "__fish_mfenv_using_subcommand help; and not __fish_seen_subcommand_from load exec unload layers cronwrap why is-installed is-loaded home hook completions plugin install-aliases man complete help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c mfenv -n "__fish_mfenv_using_subcommand help; and __fish_seen_subcommand_from plugin" -f -a "list" -d 'List installed and dev-linked plugins'
complete -c mfenv -n "__fish_mfenv_using_subcommand help; and __fish_seen_subcommand_from plugin" -f -a "info" -d 'Show the metadata and files of an installed plugin or a `.plugin` file'
complete -c mfenv -n "__fish_mfenv_using_subcommand help; and __fish_seen_subcommand_from plugin" -f -a "hash" -d 'Print the hash provisioning compares (installed plugin or `.plugin` file)'
complete -c mfenv -n "__fish_mfenv_using_subcommand help; and __fish_seen_subcommand_from plugin" -f -a "check" -d 'Validate a plugin source tree (default: the current directory)'
complete -c mfenv -n "__fish_mfenv_using_subcommand help; and __fish_seen_subcommand_from plugin" -f -a "install" -d 'Install a `.plugin` file'
complete -c mfenv -n "__fish_mfenv_using_subcommand help; and __fish_seen_subcommand_from plugin" -f -a "uninstall" -d 'Uninstall a plugin'
complete -c mfenv -n "__fish_mfenv_using_subcommand help; and __fish_seen_subcommand_from plugin" -f -a "develop" -d 'Dev-link a plugin source tree into the plugins base dir'
complete -c mfenv -n "__fish_mfenv_using_subcommand help; and __fish_seen_subcommand_from plugin" -f -a "release" -d 'Build NAME-VERSION-RELEASE.metwork.<module>.plugin in the current directory'
complete -c mfenv -n "__fish_mfenv_using_subcommand help; and __fish_seen_subcommand_from plugin" -f -a "repackage" -d 'Build a `.plugin` of an installed plugin with its OP overrides baked in'
complete -c mfenv -n "__fish_mfenv_using_subcommand help; and __fish_seen_subcommand_from plugin" -f -a "provision" -d 'Install or update every `*.plugin` of a directory'

# Layer labels: installed ones for load, exec -l, is-installed, is-loaded and home,
# loaded ones for unload.
complete -c mfenv -n "__fish_mfenv_using_subcommand load" -f -a '(mfenv complete installed -- (commandline -ct) 2>/dev/null)'
complete -c mfenv -n "__fish_mfenv_using_subcommand is-installed" -f -a '(mfenv complete installed -- (commandline -ct) 2>/dev/null)'
complete -c mfenv -n "__fish_mfenv_using_subcommand is-loaded" -f -a '(mfenv complete installed -- (commandline -ct) 2>/dev/null)'
complete -c mfenv -n "__fish_mfenv_using_subcommand home" -f -a '(mfenv complete installed -- (commandline -ct) 2>/dev/null)'
complete -c mfenv -n "__fish_mfenv_using_subcommand unload" -f -a '(mfenv complete loaded -- (commandline -ct) 2>/dev/null)'
complete -c mfenv -n "__fish_mfenv_using_subcommand exec" -s l -l layers -x -a '(mfenv complete installed -- (commandline -ct) 2>/dev/null)'
