"""shmctl stat ADDRESS: everything about one segment, and every process attached to it."""
from __future__ import annotations

import click

from ..errors import Exit
from .output import (STAT_TIME_HELP, Output, is_terminal, make_style, may_miss_holders, note_hidden, print_rich,
                     terminal_option_list)
from .params import ADDRESS


@click.command("stat")
@click.argument("address", type=ADDRESS)
@click.option("-J", "--json", "as_json", is_flag=True, help="JSON: numbers as numbers, ISO 8601 times, bytes.")
@click.option("-b", "--bytes", "exact", is_flag=True, help="Sizes in bytes (the default on a pipe).")
@click.option("--numeric-ids", is_flag=True, help="User and group ids, not names.")
@terminal_option_list(STAT_TIME_HELP)
def stat_command(address, as_json, exact, numeric_ids, human, time_format, notruncate):
    """Show one segment: its fields, status and attached processes.

    ADDRESS is sysv:SHMID, sysv:key=KEY, sysv:ftok=PATH,PROJ, posix:/NAME (or /NAME),
    mmap:/PATH or mmap:@INODE; \\xHH in it is the byte HH, as `list` prints names.
    `shmctl list -i ID` prints the same.
    """
    terminal = Output(human=human, time_format=time_format, notruncate=notruncate)
    return show_segment(address, as_json, make_style(exact, numeric_ids, terminal))


def show_segment(address, as_json: bool, style) -> Exit:
    """The one path of `stat` and `list -i`."""
    from .. import kinds as backend
    from .. import render

    view = backend.View()
    segment = backend.find(address, view)
    backend.describe_processes(segment)
    if as_json:
        data = render.segment_dict(segment, style)
        data["hidden_processes"] = view.maps.hidden
        click.echo(render.to_json(data), nl=False)
    elif is_terminal():
        print_rich(render.rich_detail(segment, style))
    else:
        click.echo(render.detail_text(segment, style), nl=False)
    if view.host.scanned and may_miss_holders(segment):  # the processes shown may miss holders
        note_hidden(view.maps.hidden_pids)
    return Exit.OK
