
# Layer labels: installed ones (and short names) for load and exec -l, exact ones for
# is-installed, is-loaded and home,
# loaded ones for unload; collection names for collection restore, show and remove.
complete -c mfenv -n "__fish_mfenv_using_subcommand collection; and __fish_seen_subcommand_from restore show remove" -f -a '(mfenv complete collections -- (commandline -ct) 2>/dev/null)'
complete -c mfenv -n "__fish_mfenv_using_subcommand load" -f -a '(mfenv complete installed -- (commandline -ct) 2>/dev/null)'
complete -c mfenv -n "__fish_mfenv_using_subcommand is-installed" -f -a '(mfenv complete labels -- (commandline -ct) 2>/dev/null)'
complete -c mfenv -n "__fish_mfenv_using_subcommand is-loaded" -f -a '(mfenv complete labels -- (commandline -ct) 2>/dev/null)'
complete -c mfenv -n "__fish_mfenv_using_subcommand home" -f -a '(mfenv complete labels -- (commandline -ct) 2>/dev/null)'
complete -c mfenv -n "__fish_mfenv_using_subcommand unload" -f -a '(mfenv complete loaded -- (commandline -ct) 2>/dev/null)'
complete -c mfenv -n "__fish_mfenv_using_subcommand exec" -s l -l layers -x -a '(mfenv complete installed -- (commandline -ct) 2>/dev/null)'
