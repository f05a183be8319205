"""model: keyword construction, and the one positional fast path kept in step with it."""
import inspect

from shmctl_cli import KINDS
from shmctl_cli.kinds import REGISTRY
from shmctl_cli.model import Attachment, Segment


def test_segment_rows_follow_init():
    """Segment.rows (the fast path of `list`) takes __init__'s fields in __init__'s order."""
    init = list(inspect.signature(Segment.__init__).parameters)[1:]
    assert list(inspect.signature(Segment._row).parameters) == init
    values = {name: f"v{i}" for i, name in enumerate(init)}
    fast = next(Segment.rows(*([v] for v in values.values())))
    assert fast == Segment(**values) and fast.orphan_unsure is False


def test_fields_only_by_keyword():
    for cls, given in ((Segment, ("sysv", "sysv:1", 1, 0, "name")), (Attachment, (1, "comm"))):
        try:
            cls(*given)
        except TypeError:
            continue
        raise AssertionError(f"{cls.__name__} took a field by position")


def test_kinds_choices_are_the_registry():
    """shmctl_cli.KINDS is the registry's names, read without importing a kind (start-up speed for --help)."""
    assert KINDS == tuple(REGISTRY)
    from shmctl_cli.fields import IPCS_KINDS
    assert IPCS_KINDS == ("sysv",)  # `list -m` is ipcs -m: the registry entry says which kinds
