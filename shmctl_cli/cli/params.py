"""click parameter types over units.py and address.py; their errors are our exit-2 errors."""
from __future__ import annotations

import click


class SizeParam(click.ParamType):
    name = "size"

    def __init__(self, minimum: int = 0):
        self.minimum = minimum

    def convert(self, value, param, ctx):
        if isinstance(value, int):
            return value
        from ..units import parse_size_note
        size, note = parse_size_note(value)
        if note:
            click.echo(f"shmctl: note: {note}", err=True)
        if size < self.minimum:
            from ..errors import UsageError
            raise UsageError(f"invalid size '{value}'", f"must be at least {self.minimum}")
        return size


class AddressParam(click.ParamType):
    name = "address"

    def __init__(self, allow_new: bool = False):
        self.allow_new = allow_new

    def convert(self, value, param, ctx):
        from ..address import parse_address
        if not isinstance(value, str):
            return value
        address = parse_address(value, self.allow_new)
        if address.ftok is not None:
            _ftok_note(address.ftok[1])
        return address

    def shell_complete(self, ctx, param, incomplete):
        """The addresses of the segments that exist now (completion.py), seen from --ns PID's
        namespaces when it was given before the word; none already on the line."""
        from .completion import addresses
        return addresses(ctx, param, incomplete)


class AddressWordParam(AddressParam):
    """An ADDRESS argument of a command that also takes other words in its place (rm: ipcrm's
    `shm ID...`): kept as typed, completed as an address; the command parses it (parse_address)."""

    def convert(self, value, param, ctx):
        return value


class FtokParam(click.ParamType):
    """--ftok PATH,PROJ: checked here (exit 2), with the note on a project id whose low byte is 0."""
    name = "path,proj"

    def convert(self, value, param, ctx):
        from ..address import parse_proj
        from ..errors import UsageError
        path, sep, proj = value.rpartition(",")
        if not sep or not path:
            raise UsageError(f"invalid --ftok '{value}'", "expected PATH,PROJ")
        _ftok_note(parse_proj(proj))
        return value


def _ftok_note(proj: int) -> None:
    from ..address import ftok_note
    note = ftok_note(proj)
    if note:
        click.echo(f"shmctl: {note}", err=True)


class DurationParam(click.ParamType):
    name = "duration"

    def convert(self, value, param, ctx):
        from ..units import parse_duration
        return value if isinstance(value, float) else parse_duration(value)


class ModeParam(click.ParamType):
    name = "mode"

    def convert(self, value, param, ctx):
        from ..units import parse_mode
        return value if isinstance(value, int) else parse_mode(value)


class NumberParam(click.ParamType):
    """A whole number (pid, shmid, page count) in ASCII digits, within bounds. Never click's
    INT or IntRange: int() takes `١٢` as 12. Out of range or not a number: exit 2."""
    name = "integer"

    def __init__(self, what: str, minimum: int = 0, maximum=None):
        self.what, self.minimum, self.maximum = what, minimum, maximum

    def convert(self, value, param, ctx):
        if isinstance(value, int):
            return value
        from ..units import parse_count
        return parse_count(value, self.what, self.minimum, self.maximum)


class FileParam(click.ParamType):
    """A local file (or, `directory`, a directory) named by the user: taken as given (the
    command checks it and says why it cannot use it); the shell completes file names (or
    only directories)."""
    name = "file"

    def __init__(self, directory: bool = False):
        self.directory = directory

    def convert(self, value, param, ctx):
        return value

    def shell_complete(self, ctx, param, incomplete):
        from .completion import directories, files
        return (directories if self.directory else files)(ctx, param, incomplete)


# completers for options whose values are words of the system (shell_complete=...): each
# imports completion.py only when a shell asks
def _completer(name: str):
    def complete(ctx, param, incomplete):
        from . import completion
        return getattr(completion, name)(ctx, param, incomplete)
    complete.__name__ = f"complete_{name}"
    return complete


complete_columns = _completer("columns")
complete_users = _completer("users")
complete_groups = _completer("groups")
complete_sysctl = _completer("sysctl_assignments")
complete_segment_ids = _completer("segment_ids")
complete_shmids = _completer("shmids")
complete_shm_keys = _completer("shm_keys")
complete_posix_names = _completer("posix_names")
complete_all_kinds = _completer("all_kinds")
complete_pids = _completer("pids")
complete_attach_command = _completer("attach_command")


SIZE = SizeParam()
ADDRESS = AddressParam()
DURATION = DurationParam()
MODE = ModeParam()
FILE = FileParam()
DIR = FileParam(directory=True)
PID = NumberParam("pid", minimum=1)
SHMID = NumberParam("shmid", maximum=0x7FFFFFFF)


def command_words_completer(ctx, param, incomplete):
    from .completion import command_words
    return command_words(ctx, param, incomplete)
