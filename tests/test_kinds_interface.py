"""The shape issue 9 fixed, pinned: every registered kind implements the whole Kind
interface, and the commands never ask which kind a segment is."""
import ast
import inspect
import os
import textwrap

import pytest

from shmctl_cli import kinds
from shmctl_cli.address import Address, parse_address
from shmctl_cli.kinds import base

CLI = os.path.join(os.path.dirname(kinds.__file__), os.pardir, "cli")


def _abstract(function) -> bool:
    """Whether a method's body (past its docstring) is only `raise NotImplementedError`."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(function)))
    body = tree.body[0].body
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
        body = body[1:]
    return (len(body) == 1 and isinstance(body[0], ast.Raise)
            and "NotImplementedError" in ast.unparse(body[0].exc))


def _methods(cls) -> dict:
    return {name: value for name, value in vars(cls).items()
            if inspect.isfunction(value) and not name.startswith("_")}


def test_the_interface_has_its_methods():
    assert {"collect", "find", "resolve", "check_create_options", "create", "open_segment", "check_growth",
            "users", "in_use", "not_shared_memory", "check_removable", "remove", "in_use_refusal",
            "removed_note"} <= set(_methods(base.Kind))


@pytest.mark.parametrize("name", list(kinds.REGISTRY))
def test_every_kind_implements_every_method(name):
    kind = kinds.kind(name)
    assert isinstance(kind, base.Kind) and kind.name == name
    cls = type(kind)
    # every method of Kind, and of any base between (FileKind), with the base's parameters
    for ancestor in cls.__mro__[1:]:
        if not issubclass(ancestor, base.Kind):
            continue
        for method, declared in _methods(ancestor).items():
            implemented = getattr(cls, method)
            assert callable(implemented), (name, method)
            if _abstract(declared):
                assert not _abstract(implemented), f"{name} does not implement {ancestor.__name__}.{method}"
            assert list(inspect.signature(implemented).parameters) == list(inspect.signature(declared).parameters), \
                (name, method)


def _kind_comparisons(path: str):
    """Comparisons in a module that ask a kind's name: `x.kind == ...`, `... != "sysv"`,
    `kind in ("posix", "mmap")`, `"sysv" not in chosen`."""
    names = set(kinds.REGISTRY)
    tree = ast.parse(open(path).read(), path)
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare):
            operands = [node.left, *node.comparators]
            asks_kind = any(isinstance(o, ast.Attribute) and o.attr == "kind" for o in operands)
            # any comparison with a kind's name: ==, !=, is, and `"sysv" in chosen` / `not in`
            literal = any(isinstance(o, ast.Constant) and o.value in names for o in operands)
            in_names = any(isinstance(o, (ast.Tuple, ast.List, ast.Set))
                           and any(isinstance(e, ast.Constant) and e.value in names for e in o.elts)
                           for o in node.comparators)
            if asks_kind or literal or in_names:
                yield f"{os.path.basename(path)}:{node.lineno}: {ast.unparse(node)}"
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "Address":
            yield f"{os.path.basename(path)}:{node.lineno}: {ast.unparse(node)} (use Address's constructors)"
        elif isinstance(node, ast.Match):
            yield f"{os.path.basename(path)}:{node.lineno}: match"


def test_no_command_branches_on_a_kind_name():
    found = [hit for module in sorted(os.listdir(CLI)) if module.endswith(".py")
             for hit in _kind_comparisons(os.path.join(CLI, module))]
    assert found == []


def test_the_checker_sees_what_it_forbids(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text('if seg.kind == "x": pass\nif kind != "sysv": pass\nif k in ("posix", "mmap"): pass\n'
                   'a = Address("sysv", shmid=1)\nif "mmap" == k: pass\nif "sysv" not in chosen: pass\n'
                   'if "posix" in kinds: pass\n')
    assert len(list(_kind_comparisons(str(bad)))) == 7


def test_address_constructors_are_the_parsed_forms():
    assert Address.sysv_shmid(32769) == parse_address("sysv:32769")
    assert Address.sysv_key(0x5EED0001) == parse_address("sysv:key=0x5eed0001")
    assert Address.posix("db") == parse_address("posix:/db") == parse_address("/db")
