"""The layers of shmctl_cli (issue 9): no import cycle anywhere, imports inside functions and
under TYPE_CHECKING included, so that none hides behind a late import; the CLI never reads
/proc nor calls the kernel itself, and the renderer never touches the kernel nor a kind."""
import ast
import pathlib
from typing import Dict, List, Set

import shmctl_cli

ROOT = pathlib.Path(shmctl_cli.__file__).parent


def _modules() -> Dict[str, pathlib.Path]:
    found = {}
    for path in ROOT.rglob("*.py"):
        parts = ["shmctl_cli", *path.relative_to(ROOT).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


MODULES = _modules()


def _owner(name: str) -> str:
    """The module of ours that `name` (a module or a name in one) lives in."""
    while name not in MODULES:
        name = name.rpartition(".")[0]
    return name


def _graph() -> Dict[str, Set[str]]:
    graph = {}
    for name, path in MODULES.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        deps = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package
                    for _ in range(node.level - 1):
                        base = base.rpartition(".")[0]
                    source = f"{base}.{node.module}" if node.module else base
                else:
                    source = node.module or ""
                if source.split(".")[0] != "shmctl_cli":
                    continue
                for alias in node.names:  # `from . import lock` imports the module kinds.lock
                    sub = f"{source}.{alias.name}"
                    deps.add(sub if sub in MODULES else _owner(source))
            elif isinstance(node, ast.Import):
                deps.update(_owner(a.name) for a in node.names if a.name.split(".")[0] == "shmctl_cli")
        deps.discard(name)
        graph[name] = deps
    return graph


GRAPH = _graph()


def _cycle(graph: Dict[str, Set[str]]) -> List[str]:
    """One cycle of the graph, or []."""
    state: Dict[str, int] = {}  # 1: on the path, 2: done
    path: List[str] = []

    def visit(node: str) -> List[str]:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        state[node] = 2
        path.pop()
        return []

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return []


def test_the_graph_sees_function_level_imports():
    """The graph is built right: kinds.access imports kinds.lock only inside a function."""
    assert "shmctl_cli.kinds.lock" in GRAPH["shmctl_cli.kinds.access"]
    assert "shmctl_cli.syscalls" in GRAPH["shmctl_cli.kinds.sysv.segment"]
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]


def test_no_import_cycle():
    assert _cycle(GRAPH) == []


def _reaches(name: str, forbidden) -> List[str]:
    return sorted(d for d in GRAPH[name] if any(d == f or d.startswith(f + ".") for f in forbidden))


def test_the_cli_never_parses_proc_nor_calls_the_kernel():
    for name in MODULES:
        if name == "shmctl_cli.cli" or name.startswith("shmctl_cli.cli."):
            assert _reaches(name, ("shmctl_cli.procfs", "shmctl_cli.syscalls")) == [], name


def test_the_renderer_never_touches_the_kernel():
    for name in MODULES:
        if name == "shmctl_cli.fields" or name.startswith("shmctl_cli.render"):
            assert _reaches(name, ("shmctl_cli.kinds", "shmctl_cli.procfs", "shmctl_cli.syscalls")) == [], name
