"""The package's floors hold: who may import whom (docs: concepts, ARCHITECTURE), and no import circles.

Every `import` in `lightning_memrl/` is read from the source (function-level imports too), so a lazy import
that climbs a floor is caught like a top-level one.
"""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "lightning_memrl"
FOUNDATION = {"errors", "specs", "state", "requirements"}  # plain modules every floor may use
ALLOWED = {
    "ops": set(),
    "hippocampal": set(),
    # ops is the kernel floor: the acting step's attention read is one op for the memories and the controllers
    "memory": {"hippocampal", "ops"},
    "envs": set(),
    "encoders": set(),
    "controllers": {"ops"},
    "data": {"envs"},
    "integrations": {"hippocampal", "memory"},
    "agents": {"encoders", "controllers", "memory", "ops", "data", "envs"},
    "callbacks": {"memory", "hippocampal", "envs", "data"},
    "plugins": set(),
    "cli": {"agents", "data", "callbacks", "plugins"},
    "tools": None,  # the top floor: anything
    "__main__": {"tools"},
}
PLAIN_TORCH = ("ops", "hippocampal", "memory", "envs", "encoders", "controllers")  # reusable without Lightning


def _module(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names


def _graph() -> dict[str, set[str]]:
    modules = {_module(p): p for p in PACKAGE.rglob("*.py")}
    graph = {}
    for name, path in modules.items():
        graph[name] = {imported for imported in _imports(path) if imported in modules and imported != name}
    return graph


def _floor(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def layering_violations(graph: dict[str, set[str]]) -> list[str]:
    """`a -> b` lines for every import that the floors do not allow."""
    bad = []
    for module, imported in graph.items():
        floor = _floor(module)
        allowed = ALLOWED.get(floor, set())
        for target in imported:
            other = _floor(target)
            if other == floor or other in FOUNDATION or other == "lightning_memrl" or allowed is None:
                continue
            if other not in allowed:
                bad.append(f"{module} -> {target}")
    return sorted(bad)


def import_circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    circles = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                group.append(top)
                if top == node:
                    break
            if len(group) > 1:
                circles.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return circles


def test_every_floor_imports_only_what_it_may():
    assert layering_violations(_graph()) == []


def test_nothing_below_the_tools_imports_them_or_the_cli():
    graph = _graph()
    for module, imported in graph.items():
        if _floor(module) in ("tools", "__main__"):
            continue
        assert not {t for t in imported if _floor(t) == "tools"}, module
        if _floor(module) != "cli":
            assert not {t for t in imported if _floor(t) == "cli"}, module


def test_no_import_circles():
    assert import_circles(_graph()) == []


def test_the_reusable_floors_do_not_import_lightning():
    for path in PACKAGE.rglob("*.py"):
        if _floor(_module(path)) in PLAIN_TORCH:
            lightning = {n for n in _imports(path) if n.split(".")[0] in ("lightning", "pytorch_lightning")}
            assert not lightning, f"{path} imports {lightning}"


def test_the_checks_have_teeth():
    """A climbing import and a circle, drawn by hand, are caught."""
    graph = {
        "lightning_memrl.memory.kv": {"lightning_memrl.agents.recurrent_ppo"},
        "lightning_memrl.agents.recurrent_ppo": {"lightning_memrl.memory.kv"},
        "lightning_memrl.data.collector": {"lightning_memrl.cli"},
    }
    assert layering_violations(graph) == [
        "lightning_memrl.data.collector -> lightning_memrl.cli",
        "lightning_memrl.memory.kv -> lightning_memrl.agents.recurrent_ppo",
    ]
    assert import_circles(graph) == [["lightning_memrl.agents.recurrent_ppo", "lightning_memrl.memory.kv"]]
