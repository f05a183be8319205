# bash completion for shmctl: live, answered by shmctl itself (`shmctl completion bash`)
_shmctl_completion() {
    local line item nospace=
    local -a items
    if [[ -n ${COMP_LINE+set} ]]; then
        line=${COMP_LINE:0:COMP_POINT}
    else
        local IFS=' '
        line="${COMP_WORDS[*]:0:COMP_CWORD+1}"
    fi
    # shmctl answers with what replaces bash's current word, quoted already
    mapfile -t items < <(env COMP_WORDS="$line" COMP_CWORD= COMP_WORDBREAKS="$COMP_WORDBREAKS" \
_SHMCTL_COMPLETE=bash_complete "$1" 2>/dev/null)
    COMPREPLY=()
    for item in "${items[@]}"; do
        case ${item%%,*} in
            file) COMPREPLY=(); compopt -o default; return 0 ;;
            dir) COMPREPLY=(); compopt -o dirnames; return 0 ;;
            command) mapfile -t COMPREPLY < <(compgen -c -- "${COMP_WORDS[COMP_CWORD]}"); return 0 ;;
            plain)
                item=${item#*,}
                [[ $item == *[:=,] ]] && nospace=1
                COMPREPLY+=("$item") ;;
        esac
    done
    [[ -n $nospace ]] && compopt -o nospace 2>/dev/null
    return 0
}

complete -o nosort -F _shmctl_completion shmctl
