# bash completion for shmctl: live, answered by shmctl itself (`shmctl completion bash`)
_shmctl_completion() {
    local line cur=${COMP_WORDS[COMP_CWORD]} strip= item value nospace=
    local -a items
    if [[ -n ${COMP_LINE+set} ]]; then
        line=${COMP_LINE:0:COMP_POINT}
    else
        local IFS=' '
        line="${COMP_WORDS[*]:0:COMP_CWORD+1}"
    fi
    # bash split the word at ':' or '=': keep what it holds before its own current word
    local word=${line##*[[:space:]]}
    [[ $word == *"$cur" ]] && strip=${word%"$cur"}
    mapfile -t items < <(env COMP_WORDS="$line" COMP_CWORD= _SHMCTL_COMPLETE=bash_complete "$1" 2>/dev/null)
    COMPREPLY=()
    for item in "${items[@]}"; do
        value=${item#*,}
        case ${item%%,*} in
            file) COMPREPLY=(); compopt -o default; return 0 ;;
            dir) COMPREPLY=(); compopt -o dirnames; return 0 ;;
            plain)
                [[ $value == *[:=,] ]] && nospace=1
                [[ $value == *[^A-Za-z0-9_,+:=./@%-]* ]] && printf -v value '%q' "$value"
                [[ -n $strip && $value == "$strip"* ]] && value=${value#"$strip"}
                COMPREPLY+=("$value") ;;
        esac
    done
    [[ -n $nospace ]] && compopt -o nospace 2>/dev/null
    return 0
}

complete -o nosort -F _shmctl_completion shmctl
