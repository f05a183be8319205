"""`shmctl help [COMMAND [SUB]]`, and the "Examples:" section every --help ends with."""
from __future__ import annotations

import types
from typing import Tuple

import click

from .params import command_words_completer

SHOWN_IN_HELP = 2  # examples a --help shows; the man page shows them all


def write_examples(formatter: click.HelpFormatter, path: str) -> None:
    """The first examples of a command path ("" for shmctl), each line as it is typed, its
    explanation beneath."""
    from .examples import examples
    chosen = examples(path)[:SHOWN_IN_HELP]
    if not chosen:
        return
    with formatter.section("Examples"):
        for line, why in chosen:
            formatter.write(f"{'':>{formatter.current_indent}}{line}\n")
            with formatter.indentation():
                with formatter.indentation():
                    formatter.write_text(why)


def command_path(ctx: click.Context) -> str:
    """`limits set` for `shmctl limits set` (whatever the program was called)."""
    return " ".join(ctx.command_path.split()[1:])


def _format_epilog(self: click.Command, ctx: click.Context, formatter: click.HelpFormatter) -> None:
    type(self).format_epilog(self, ctx, formatter)
    write_examples(formatter, command_path(ctx))


def add_examples(command: click.Command) -> click.Command:
    """The command's --help (and its subcommands') ends with its examples."""
    command.format_epilog = types.MethodType(_format_epilog, command)
    for sub in getattr(command, "commands", {}).values():
        add_examples(sub)
    return command


def resolve(ctx: click.Context, words: Tuple[str, ...]) -> click.Context:
    """A context for the command the words name, as if it were being run."""
    from ..errors import UsageError
    context = ctx.find_root()
    for depth, word in enumerate(words):
        command = context.command
        found = command.get_command(context, word) if isinstance(command, click.Group) else None
        if found is None:
            said = " ".join(words[:depth + 1])
            raise UsageError(f"help {said}", f"no such command '{said}'", "see 'shmctl help'")
        context = click.Context(found, info_name=word, parent=context)
    return context


@click.command("help", short_help="Show the help of shmctl or of one of its commands.")
@click.argument("words", nargs=-1, metavar="[COMMAND [SUBCOMMAND]]", shell_complete=command_words_completer)
@click.pass_context
def help_command(ctx: click.Context, words: Tuple[str, ...]):
    """Show the help of shmctl, of a command, or of a subcommand (`shmctl help limits set`
    is `shmctl limits set --help`)."""
    click.echo(resolve(ctx, words).get_help())
