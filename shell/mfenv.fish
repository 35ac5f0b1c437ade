# mfenv shell integration for fish.
# Add to ~/.config/fish/config.fish:  mfenv hook fish | source

# Runs `mfenv ARGS...` and sources its output. mfenv prints nothing when it fails, so
# nothing runs then. (A command substitution would not honour `2>` redirections of the
# caller in fish, hence the pipe.)
function __mfenv_eval
    @MFENV@ $argv | source
    set -l __mfenv_status $pipestatus
    if test $__mfenv_status[1] -ne 0
        return $__mfenv_status[1]
    end
    return $__mfenv_status[2]
end

function layer_load --description 'Load layers into this shell'
    __mfenv_eval load --shell fish $argv
end

function layer_load_without_optional --description 'Load layers, without their optional dependencies'
    __mfenv_eval load --shell fish --dont-load-optional $argv
end

function layer_unload --description 'Unload layers from this shell'
    __mfenv_eval unload --shell fish $argv
end

function plugin_env --description 'Load a plugin environment (--exit: leave it)'
    __mfenv_eval plugin env --shell fish $argv
end

function layer_restore --description 'Unload every layer, then load a saved collection'
    __mfenv_eval collection restore --shell fish $argv
end

function __mfenv_complete
    @MFENV@ complete $argv[1] -- (commandline -ct) 2>/dev/null
end

complete -c layer_load -f -a '(__mfenv_complete installed)'
complete -c layer_load_without_optional -f -a '(__mfenv_complete installed)'
complete -c layer_unload -f -a '(__mfenv_complete loaded)'
complete -c plugin_env -f -a '(__mfenv_complete plugins)'
complete -c layer_restore -f -a '(__mfenv_complete collections)'
