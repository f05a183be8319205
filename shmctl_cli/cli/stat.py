"""shmctl stat ADDRESS: everything about one segment, and every process attached to it."""
from __future__ import annotations

import click

from ..errors import Exit
from .output import is_terminal, make_style, note_hidden, print_rich
from .params import ADDRESS


@click.command("stat")
@click.argument("address", type=ADDRESS)
@click.option("--json", "as_json", is_flag=True, help="JSON: numbers as numbers, ISO 8601 times, bytes.")
@click.option("-b", "--bytes", "exact", is_flag=True, help="Sizes in bytes (the default on a pipe).")
@click.option("--numeric-ids", is_flag=True, help="User ids, not names.")
def stat_command(address, as_json, exact, numeric_ids):
    """Show one segment: its fields, status and attached processes.

    ADDRESS is sysv:SHMID, sysv:key=KEY, sysv:ftok=PATH,PROJ, posix:/NAME (or /NAME),
    mmap:/PATH or mmap:@INODE; \\xHH in it is the byte HH, as `list` prints names.
    """
    from .. import kinds as backend
    from .. import render

    view = backend.View()
    segment = backend.find(address, view)
    backend.describe_processes(segment)
    style = make_style(exact, numeric_ids)
    if as_json:
        data = render.segment_dict(segment, style)
        data["hidden_processes"] = view.maps.hidden
        click.echo(render.to_json(data), nl=False)
    elif is_terminal():
        print_rich(render.rich_detail(segment, style))
    else:
        click.echo(render.detail_text(segment, style), nl=False)
    note_hidden(view.maps.hidden)
    return Exit.OK
