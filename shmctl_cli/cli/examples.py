"""Examples of every command: the one table behind the "Examples:" section of each --help
(the first two of a command) and the EXAMPLES section of its man page (all of them).

Keyed by the command's path ("" is shmctl itself, "limits set" a subcommand); each example
is (command line, one sentence on what it does). A command line is `shmctl ...` and may be
piped into another program after ` | `: tests/test_help.py parses every one with click, so
none goes stale, and runs the safe ones for real.
"""
from __future__ import annotations

from typing import Dict, List, Tuple

EXAMPLES: Dict[str, List[Tuple[str, str]]] = {
    "": [
        ("shmctl list", "Every shared-memory segment on the system: SysV, POSIX and mmap."),
        ("shmctl help rm", "The help of one command (the same as shmctl rm --help)."),
        ("shmctl --ns 4242 list", "The segments as the container of process 4242 sees them."),
    ],
    "help": [
        ("shmctl help limits set", "How to set shmmax, shmall and shmmni."),
        ("shmctl help", "The overview: every command, address form and exit code."),
    ],
    "completion": [
        ("shmctl completion bash > ~/.local/share/bash-completion/completions/shmctl",
         "Install live completion for bash for this user, where the shell does not find pip's copy."),
        ("shmctl completion fish > ~/.config/fish/completions/shmctl.fish", "The same for fish."),
        ("shmctl completion zsh > ~/.zfunc/_shmctl", "The same for zsh (~/.zfunc in fpath)."),
    ],
    "list": [
        ("shmctl list --orphans --sort SIZE", "Segments nobody holds any more, smallest first."),
        ("shmctl list -k sysv -o ADDRESS,SIZE,OWNER,NATTCH", "SysV segments with the columns ipcs -m shows."),
        ("shmctl list --json -o ADDRESS,SIZE | jq -r '.segments[].address'",
         "Only the addresses and sizes, as JSON for a script."),
        ("shmctl list -p --user postgres", "The segments a user owns, with the processes attached."),
        ("shmctl list -u", "Totals per kind, and how much of Shmem in /proc/meminfo they explain."),
        ("shmctl list --list-columns", "Every column -o and --sort accept, with what it means."),
    ],
    "stat": [
        ("shmctl stat sysv:32769", "Everything about one SysV segment, and who has it attached."),
        ("shmctl stat --json /orders", "The POSIX object /dev/shm/orders, as JSON."),
        ("shmctl stat sysv:key=0x5eed0001", "A SysV segment found by its key."),
    ],
    "create": [
        ("shmctl create posix:/orders --size 64M", "A POSIX object of 64 MiB in /dev/shm, mode 0600."),
        ("shmctl create sysv --size 1M --mode 0640", "A private SysV segment; its address (sysv:SHMID) is printed."),
        ("shmctl create sysv:key=0x5eed0001 --size 1G --hugetlb", "A SysV segment backed by huge pages."),
        ("shmctl create posix:/config --from config.bin", "A POSIX object holding a copy of a file."),
    ],
    "attach": [
        ("shmctl attach posix:/orders --for 10m", "Keep the segment mapped for ten minutes."),
        ("shmctl attach sysv:32769 -- ./consumer --once",
         "Hold the segment while a command runs; $SHMCTL_ADDRESS tells it which."),
    ],
    "read": [
        ("shmctl read posix:/orders -o orders.bin", "Copy the whole segment into a new file."),
        ("shmctl read sysv:32769 --length 256 -x", "The first 256 bytes as a hexdump."),
        ("shmctl read /config --string", "The text up to the first NUL byte."),
    ],
    "write": [
        ("shmctl write posix:/orders orders.bin", "Copy a file into the segment (never past its end)."),
        ("shmctl write sysv:32769 --fill 0 --length 4K", "Zero the first 4 KiB."),
        ("shmctl write /config --data 'ready' --offset 128", "Write text 128 bytes in."),
        ("shmctl write posix:/log --grow -", "Write what stdin brings from the start, growing the object to take it all."),
    ],
    "rm": [
        ("shmctl rm sysv:32769 /orders", "Remove a SysV segment and a POSIX object (refused while in use)."),
        ("shmctl rm --orphans --dry-run", "Show which orphaned segments would be removed."),
        ("shmctl rm -m 32769 -M 0x5eed0001", "By shmid and by key, as ipcrm -m and -M take them."),
        ("shmctl rm --all -k posix --user alice --yes", "Every POSIX object of alice, without asking."),
        ("shmctl rm --orphans --older-than 1d --name 'Postgres.*' --yes",
         "Orphans named Postgres.* that nobody used for a day, without asking."),
        ("shmctl rm --orphans --older-than 7d --dry-run --json > plan.json",
         "A plan to review; shmctl rm --plan plan.json then removes what is still as planned."),
    ],
    "doctor": [
        ("shmctl doctor", "Check the host: findings worst first, each with its evidence and the fix."),
        ("shmctl doctor -A --expect 16G", "Every container too, and whether a 16 GiB SysV segment can be made."),
        ("shmctl doctor --json | jq -r '.findings[].summary'",
         "The findings for a script; the exit code is 0, 8 (warning) or 9 (critical)."),
        ("shmctl doctor --check orphans -v", "Only one check, saying OK when it finds nothing."),
    ],
    "limits": [
        ("shmctl limits", "The kernel limits (shmmax, shmall, shmmni), /dev/shm and huge pages, with what is in use."),
        ("shmctl limits --json", "The same for a script."),
        ("shmctl limits -A", "The limits of every IPC namespace on the host (containers too)."),
    ],
    "metrics": [
        ("shmctl metrics", "Prometheus metrics of every segment, total and limit, on stdout."),
        ("shmctl metrics --textfile-dir /var/lib/prometheus/node-exporter",
         "Write shmctl.prom for node_exporter's textfile collector, atomically."),
        ("shmctl metrics --top 10 --here", "Ten segments one by one, only in this IPC namespace and /dev/shm."),
    ],
    "watch": [
        ("shmctl watch", "A live view: new segments green, grown yellow, removed red; q quits, s sorts."),
        ("shmctl watch --events -k posix | jq -c 'select(.event == \"removed\")'",
         "Who removes POSIX objects: one JSON line per removal (\"by\" names the pid, as root)."),
        ("shmctl watch --sort NATTCH -n 500ms --log /var/log/shmctl-events.log",
         "Watch attachments twice a second, keeping every change in a log."),
    ],
    "limits set": [
        ("shmctl limits set shmmax=32G shmall=32G", "Let one segment and all of them reach 32 GiB."),
        ("shmctl limits set shmmni=8192 --persist", "Raise the segment count, and keep it across reboots."),
        ("shmctl limits set shmmax=default --dry-run", "What restoring the kernel's default would change."),
    ],
    "limits hugepages": [
        ("shmctl limits hugepages", "The huge page pools: total, free, reserved, surplus."),
        ("shmctl limits hugepages --size 2M --count 512", "Make the 2 MiB pool hold 512 pages (1 GiB)."),
    ],
    "limits recommend": [
        ("shmctl limits recommend --for 16G", "The limits a 16 GiB shared-memory workload needs."),
        ("shmctl limits recommend --for 8G --hugepages --group dba --apply",
         "Size the huge page pool for it and let group dba use it."),
    ],
}


def examples(path: str) -> List[Tuple[str, str]]:
    """The examples of a command path ("" for shmctl itself)."""
    return EXAMPLES.get(path, [])
