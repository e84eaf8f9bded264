"""What `lightning_memrl.integrations` advertises exists: every name its docstring lists is in the module named."""

import importlib
import re

import lightning_memrl.integrations as integrations

LINE = re.compile(r"^- `(lightning_memrl\.integrations\.\w+)`: (.+)$")


def _advertised() -> list[tuple[str, str]]:
    names = []
    for line in integrations.__doc__.splitlines():
        match = LINE.match(line.strip())
        if match:
            module, listed = match.groups()
            names += [(module, name) for name in re.findall(r"`(\w+)`", listed.split("(extra")[0])]
    return names


def test_every_advertised_name_exists():
    advertised = _advertised()
    assert len({module for module, _ in advertised}) >= 2, "the docstring lists the sb3 and hub adapters"
    missing = [f"{module}.{name}" for module, name in advertised if not hasattr(importlib.import_module(module), name)]
    assert not missing, f"advertised but missing: {missing}"
