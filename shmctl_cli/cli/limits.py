"""shmctl limits: shmmax, shmall, shmmni, /dev/shm, memory and the huge page pools in one
place (ipcs -l, lsipc -g, sysctl, /proc/meminfo and hugeadm together), and the commands
that change them: set, hugepages, recommend."""
from __future__ import annotations

from typing import List, Optional, Tuple

import click

from ..errors import Exit
from . import OPTIONAL_COMMAND
from .output import data, is_terminal, note, print_rich, terminal_option_list
from .params import FILE, SIZE, NumberParam, SizeParam, complete_columns, complete_groups, complete_sysctl

JSON_HELP = "JSON: numbers as numbers, sizes in bytes."
NOTRUNCATE_HELP = ("Never cut or drop a column to fit the terminal. Without it, a narrow terminal cuts the "
                   "prose with '…' and then drops the least important columns; NAME stays whole.")
PERSIST_HELP = ("Also write the values to a sysctl.d file so that they survive a reboot: FILE, or "
                "/etc/sysctl.d/60-shmctl.conf (SHMCTL_SYSCTL_DIR overrides the directory); other lines are kept.")


def _style(out):
    """Sizes and the terminal's width as for `list` (cli/output.style_options): human sizes
    and a fitted table on a terminal, bytes elsewhere; -b, --human and -W override."""
    from ..render import Style
    from .output import style_options
    return Style(**style_options(out.exact, out))


def _plain_style(exact: bool = False, notruncate: bool = False):
    """The style of a subcommand's table: -b and -W, the rest as on this stdout."""
    from .output import Output
    return _style(Output(exact=exact, notruncate=notruncate))


def _system():
    """The one System of this run: every step of a limits command reads and writes its roots."""
    from ..system import System
    return System()


def _collect(system):
    from ..limits.collect import collect
    return collect(system)


@click.group("limits", invoke_without_command=True, subcommand_metavar=OPTIONAL_COMMAND, short_help="Show the kernel's shared-memory limits and their use.")
@click.option("-J", "--json", "as_json", is_flag=True,
              help=JSON_HELP + " With -o or --output-all: the rows of the tables, with those columns.")
@click.option("-b", "--bytes", "exact", is_flag=True, help="Sizes in bytes (the default on a pipe).")
@click.option("-r", "--raw", is_flag=True, help="Unaligned, one space between columns.")
@click.option("-n", "--noheadings", is_flag=True, help="No header lines.")
@click.option("-e", "--export", "export", is_flag=True,
              help='One line per row of COLUMN="value" pairs (lsipc -g -e), safe for eval.')
@click.option("-y", "--shell", "shell", is_flag=True,
              help="With --export/--newline: column names usable as shell variables (USE% -> USE_PCT).")
@click.option("--newline", is_flag=True,
              help='Each COLUMN="value" on a line of its own, a blank line between rows (lsipc -n).')
@click.option("-o", "--output", "columns", metavar="COLS", shell_complete=complete_columns,
              help="Comma-separated columns; '+COLS' adds to the defaults (NAME,VALUE,USED,USE%,UNIT, and "
                   "DESCRIPTION on a terminal). lsipc -g's RESOURCE, DESCRIPTION, LIMIT, USED and USE% are "
                   "columns too; POOL, TOTAL, FREE, ... are the huge page pools'. --list-columns lists them all.")
@click.option("--output-all", is_flag=True, help="Every column of both tables.")
@click.option("--list-columns", is_flag=True, help="List the columns -o accepts, and exit.")
@terminal_option_list(notruncate=True, times=False)
@click.option("-A", "--all-namespaces", "everywhere", is_flag=True,
              help="Also every other IPC namespace (SysV use) and every /dev/shm (capacity, promised, "
                   "committed), one line each with its container: which container's /dev/shm is about to "
                   "be full. Root sees them all.")
@click.pass_context
def limits_command(ctx, everywhere, list_columns, **options):
    """Show the kernel limits on shared memory, with what is in use and USE%: SHMMAX, SHMALL
    (in pages and bytes), SHMMNI, SHMMIN, shm_rmid_forced, the /dev/shm tmpfs, MemTotal,
    Shmem, Hugetlb, RLIMIT_MEMLOCK, vm.hugetlb_shm_group and every huge page pool.
    For /dev/shm also what sparse files promise (size beyond what they occupy: tmpfs
    allocates on first write) and what is committed (used + promised) against its size.

    Subcommands: `limits set NAME=VALUE...` (shmmax, shmall, shmmni, shm_rmid_forced;
    --persist [FILE], --dry-run, --force), `limits hugepages [--size 2M] [--count N]
    [--overcommit N] [--persist [FILE]]`, `limits recommend --for SIZE [--hugepages]
    [--huge-size 2M] [--segments N] [--group GROUP] [--apply]`. See `shmctl limits COMMAND --help`.
    """
    if ctx.invoked_subcommand is not None:
        return None
    if list_columns:
        from ..render.limits import column_help
        click.echo(column_help(), nl=False)
        return Exit.OK
    from .output import Output
    return show_limits(Output(time_format=None, **options), everywhere)  # the limits hold no times


def show_limits(out, everywhere: bool, command: str = "limits") -> int:
    """`limits` and `list -l`/`list -g`: the output options of `out` (cli/output.Output) in
    the forms of `list`; `command` names the one typed, in usage errors."""
    check_forms(out, everywhere, command)
    from ..render import limits as render
    system = _system()
    limits = _collect(system)
    others = _other_namespaces(system) if everywhere else []
    for warning in limits.warnings():
        note(f"warning: {warning}")
    for namespace, theirs in others:
        for warning in theirs.warnings():
            note(f"warning: {namespace.label} ({namespace.container or f'pid {namespace.pid}'}): {warning}")
    text_form = out.raw or out.noheadings or out.export or out.newline
    rich = is_terminal() and not (out.as_json or text_form)
    choice = render.choose_columns(out.columns, out.output_all, terminal=rich)
    style = _style(out)
    if out.as_json:
        data(render.to_json(_json(render, limits, choice, others)))
    elif out.export or out.newline:
        data(render.limits_export(limits, style, choice, shell=out.shell, newline=out.newline))
    elif rich:
        print_rich(render.limits_rich(limits, style, choice))
    else:
        data(render.limits_text(limits, style, choice, raw=out.raw, headings=not out.noheadings))
    if others and not out.as_json:
        data("\n" + render.namespace_limits_text(others, style))
    return Exit.OK


def _json(render, limits, choice, others) -> dict:
    """The document (grouped by subject), or with -o/--output-all the rows of those columns."""
    if choice.rows:
        return render.limits_rows_dict(limits, choice)
    document = render.limits_dict(limits)
    if others:
        document["namespaces"] = render.namespace_limits_dicts(others)
    return document


def check_forms(out, everywhere: bool, command: str = "limits") -> None:
    """Options that cannot both hold, or that mean nothing for the limits (`list -l --time-format`):
    a usage error, never one silently ignored."""
    from ..errors import UsageError
    from .output import check_output_conflicts
    check_output_conflicts(out, command)  # as for `list`: one output form, -y with -e, ...
    chosen = [flag for flag, on in (("-o", out.columns), ("--output-all", out.output_all), ("--export", out.export),
                                    ("--newline", out.newline)) if on]
    if everywhere and chosen:
        raise UsageError(command, f"-A conflicts with {chosen[0]}", "-A adds tables of its own columns: drop one")
    for flag, attr, what in (("--time-format", "time_format", "times"), ("-P", "numeric_perms", "permissions"),
                             ("--numeric-ids", "numeric_ids", "user or group names")):
        if getattr(out, attr, None):  # `list` has them; the limits hold none of these
            raise UsageError(command, f"-l/-g conflicts with {flag}", f"the limits show no {what}: drop {flag}")


def _other_namespaces(system) -> list:
    from ..limits.collect import collect_namespaces
    return collect_namespaces(system)


def _split_persist(assignments: Tuple[str, ...], persist: Optional[str]) -> Tuple[List[str], Optional[str]]:
    """`--persist shmmax=1G`: click hands the assignment to --persist as its FILE."""
    from ..limits.setting import is_assignment
    if persist and is_assignment(persist):
        return [persist, *assignments], ""
    return list(assignments), persist


@limits_command.command("set", short_help="Set shmmax, shmall, shmmni or shm_rmid_forced.")
@click.argument("assignments", nargs=-1, metavar="NAME=VALUE...", shell_complete=complete_sysctl)
@click.option("--persist", is_flag=False, flag_value="", default=None, type=FILE, metavar="[FILE]", help=PERSIST_HELP)
@click.option("--dry-run", is_flag=True, help="Print the sysctl lines and what would change; change nothing.")
@click.option("--force", is_flag=True, help="Set shmall or shmmni below what is in use, or shm_rmid_forced=1 "
                                            "though it destroys orphaned segments.")
@click.option("-J", "--json", "as_json", is_flag=True, help=JSON_HELP)
def set_command(assignments, persist, dry_run, force, as_json):
    """Set shmmax (bytes: 32G), shmall (pages, or a size: 32G), shmmni, shm_rmid_forced in
    the caller's IPC namespace. Everything is checked before anything is written; every
    value is read back. `default` restores the kernel's default."""
    import os
    from ..errors import UsageError
    from ..limits import persist as persisting
    from ..limits import setting
    texts, persist = _split_persist(assignments, persist)
    if not texts:
        raise UsageError("limits set", "nothing to set", "give NAME=VALUE, e.g. shmmax=32G")
    changes, notes = setting.parse_assignments(texts, os.sysconf("SC_PAGE_SIZE"))
    for text in notes:
        note(text)
    system = _system()
    limits = _collect(system)
    for warning in setting.validate(changes, limits, force):
        note(f"warning: {warning}")
    if not dry_run:
        setting.require_writable([c.key for c in changes], system)
    plan = persisting.plan(persisting.target_path(persist, system), {c.key: c.value for c in changes}, system) \
        if persist is not None else None
    if not dry_run:
        setting.apply_and_persist(changes, plan, system)
    _report_changes(changes, plan, dry_run, as_json)
    wrong = setting.not_kept(changes)
    if wrong:
        from ..errors import ShmctlError
        raise ShmctlError(wrong[0].key, f"asked {wrong[0].value}, the kernel kept {wrong[0].kept}")
    return Exit.OK


def _report_changes(changes, plan, dry_run: bool, as_json: bool) -> None:
    from ..render import limits as render
    for c in changes:
        if not c.changes:
            note(f"{c.key} is {c.value} already")
        else:
            note(f"{'would change' if dry_run else 'changed'} {c.key}: {c.old} -> {c.value}")
    for line in plan.describe(dry_run) if plan else ():
        note(line)
    if as_json:
        click.echo(render.to_json(render.changes_dict(changes, plan.path if plan else None, dry_run)), nl=False)
    else:
        click.echo(render.sysctl_lines(changes), nl=False)


@limits_command.command("hugepages", short_help="Show the huge page pools, or size one.")
@click.option("--size", type=SIZE, metavar="SIZE", help="The pool's page size (2M, 1G); default: Hugepagesize.")
@click.option("--count", type=NumberParam("--count"), help="Pages the pool should hold (its nr_hugepages).")
@click.option("--overcommit", type=NumberParam("--overcommit"),
              help="Surplus pages the kernel may add on demand (nr_overcommit_hugepages).")
@click.option("--persist", is_flag=False, flag_value="", default=None, type=FILE, metavar="[FILE]",
              help="Also write vm.nr_hugepages (default page size) to sysctl.d, as for `limits set`; "
                   "for other sizes, print the kernel command line to use.")
@click.option("-J", "--json", "as_json", is_flag=True, help=JSON_HELP)
@click.option("-W", "--notruncate", is_flag=True, help=NOTRUNCATE_HELP)
def hugepages_command(size, count, overcommit, persist, as_json, notruncate):
    """Show the huge page pools, or size one: --count N sets its nr_hugepages and reports
    how many pages the kernel really allocated (fewer than asked: exit 6)."""
    from ..errors import UsageError
    from ..limits import hugepages as hp
    from ..limits import persist as persisting
    from ..render import limits as render
    system = _system()
    limits = _collect(system)
    pool = hp.choose_pool(limits, size)
    if count is None and overcommit is None:
        if persist is not None:
            raise UsageError("--persist", "nothing to persist", "give --count or --overcommit")
        return _show_pools(limits, size, as_json, notruncate)
    if count is not None:
        hp.check_memory(limits, pool, count)
    hp.require_writable(pool, system)
    plan, cannot = hp.persist_plan(pool, count, overcommit, persist, system)
    if cannot:
        note(cannot)
    if plan is not None:
        persisting.require_writable(plan.path)
    result = hp.set_pool(pool, count, overcommit, system)
    if plan is not None:
        try:
            persisting.write(plan)
        except BaseException:  # nothing half-done: the pool goes back to what it was
            hp.set_pool(pool, pool.total if count is not None else None,
                        pool.overcommit if overcommit is not None else None, system)
            raise
        for line in plan.describe():
            note(line)
    if as_json:
        click.echo(render.to_json(render.pool_result_dict(result, plan.path if plan else None)), nl=False)
    else:
        data(render.pools_text([result.pool], _plain_style(notruncate=notruncate)))
    if hp.surplus_note(result):
        note(hp.surplus_note(result))
    if result.short:
        raise hp.shortfall_error(result)
    return Exit.OK


def _show_pools(limits, size, as_json: bool, notruncate: bool) -> int:
    from ..render import limits as render
    pools = [p for p in limits.pools if size is None or p.size == size]
    if as_json:
        click.echo(render.to_json({"pools": [render.pool_dict(p) for p in pools]}), nl=False)
    else:
        data(render.pools_text(pools, _plain_style(notruncate=notruncate)))
    return Exit.OK


def _resolve_group(text: Optional[str]) -> Optional[int]:
    from ..units import is_ascii_digits
    if text is None or is_ascii_digits(text):
        return None if text is None else int(text)
    import grp
    try:
        return grp.getgrnam(text).gr_gid
    except KeyError:
        from ..errors import UsageError
        raise UsageError(f"unknown group '{text}'", "no such group name", "give a name or a numeric gid") from None


@limits_command.command("recommend", short_help="Recommend the limits a workload of SIZE needs.")
@click.option("--for", "size", type=SizeParam(minimum=1), required=True, metavar="SIZE",
              help="Shared memory the workload needs (PostgreSQL shared_buffers, an Oracle SGA, ...).")
@click.option("--segments", type=NumberParam("--segments", minimum=1), default=1, show_default=True,
              help="How many segments the workload makes.")
@click.option("--hugepages", is_flag=True, help="The workload uses huge pages (SHM_HUGETLB).")
@click.option("--huge-size", type=SIZE, metavar="SIZE", help="Their page size (implies --hugepages); "
                                                            "default: Hugepagesize.")
@click.option("--group", metavar="GROUP", shell_complete=complete_groups, help="The workload's group, for vm.hugetlb_shm_group (with --hugepages).")
@click.option("--apply", is_flag=True, help="Make the changes (root): limits set, the pool, hugetlb_shm_group.")
@click.option("-J", "--json", "as_json", is_flag=True, help=JSON_HELP)
@click.option("-b", "--bytes", "exact", is_flag=True, help="Sizes in bytes (the default on a pipe).")
@click.option("-W", "--notruncate", is_flag=True, help=NOTRUNCATE_HELP)
def recommend_command(size, segments, hugepages, huge_size, group, apply, as_json, exact, notruncate):
    """What a workload needing SIZE of shared memory needs of shmmax, shmall, shmmni,
    nr_hugepages, memlock and hugetlb_shm_group, against what is set now, and the
    commands that get there. Changes nothing unless --apply."""
    from ..errors import UsageError
    from ..limits import hugepages as hp
    from ..limits.recommend import recommend
    from ..render import limits as render
    hugepages = hugepages or huge_size is not None
    gid = _resolve_group(group)
    if gid is not None and not hugepages:
        raise UsageError("--group", "only matters with --hugepages", "add --hugepages")
    system = _system()
    limits = _collect(system)
    pool = hp.choose_pool(limits, huge_size) if hugepages else None
    rec = recommend(limits, size, segments, pool, gid)
    if apply:
        from ..limits.recommend import require_apply_rights
        require_apply_rights(rec, system)
    style = _plain_style(exact, notruncate)
    if as_json:
        click.echo(render.to_json(render.recommendation_dict(rec, apply)), nl=False)
    elif is_terminal():
        print_rich(render.recommendation_rich(rec, style))
        data(render.commands_text(rec))
    else:
        click.echo(render.recommendation_text(rec, style), nl=False)
    _recommend_notes(rec, apply)
    if apply:
        _apply(rec, limits, system)
    return Exit.OK


def _recommend_notes(rec, apply: bool) -> None:
    from ..limits.recommend import GROUP_ADVICE, MEMLOCK_ADVICE
    if rec.item("memlock").enough is False:
        note(f"memlock: {MEMLOCK_ADVICE}")
    group = rec.item("hugetlb_shm_group")
    if group is not None and group.enough is None:
        note(f"hugetlb_shm_group: {GROUP_ADVICE}")
    if rec.commands and not apply:
        note("run the commands above (as root), or --apply; add --persist to keep them after a reboot")


def _apply(rec, limits, system) -> None:
    from ..limits import hugepages as hp
    from ..limits.recommend import apply
    notes, result = apply(rec, limits, system)
    for text in notes:
        note(text)
    if result is not None and result.short:
        raise hp.shortfall_error(result)
