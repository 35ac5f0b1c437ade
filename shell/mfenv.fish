# mfenv shell integration for fish.
# Add to ~/.config/fish/config.fish:  mfenv hook fish | source

# Runs `mfenv ARGS...` and evaluates its output, only when it succeeded.
# Every line of mfenv's fish output is one complete statement.
function __mfenv_eval
    set -l __mfenv_code (@MFENV@ $argv)
    or return
    for __mfenv_line in $__mfenv_code
        eval $__mfenv_line
    end
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

function __mfenv_complete
    @MFENV@ complete $argv[1] -- (commandline -ct) 2>/dev/null
end

complete -c layer_load -f -a '(__mfenv_complete installed)'
complete -c layer_load_without_optional -f -a '(__mfenv_complete installed)'
complete -c layer_unload -f -a '(__mfenv_complete loaded)'
