
# Layer labels: installed ones (and short names) for load and exec -l, exact ones for
# is-installed, is-loaded and home,
# loaded ones for unload; collection names for collection restore, show and remove.
(( $+functions[_mfenv_complete_installed] )) || _mfenv_complete_installed() {
    local -a labels
    labels=("${(@f)$(mfenv complete installed 2>/dev/null)}")
    labels=(${labels:#})
    compadd -a labels
}
(( $+functions[_mfenv_complete_labels] )) || _mfenv_complete_labels() {
    local -a labels
    labels=("${(@f)$(mfenv complete labels 2>/dev/null)}")
    labels=(${labels:#})
    compadd -a labels
}
(( $+functions[_mfenv_complete_collections] )) || _mfenv_complete_collections() {
    local -a names
    names=("${(@f)$(mfenv complete collections 2>/dev/null)}")
    names=(${names:#})
    compadd -a names
}
(( $+functions[_mfenv_complete_loaded] )) || _mfenv_complete_loaded() {
    local -a labels
    labels=("${(@f)$(mfenv complete loaded 2>/dev/null)}")
    labels=(${labels:#})
    compadd -a labels
}
