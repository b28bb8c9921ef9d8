"""The seams hold: rnnx's subpackages import each other without a cycle, packaging is chosen by the target's
packager and not by comparing strings, and no module grows past the size one person reads at once."""
import ast
from pathlib import Path

import rnnx

PACKAGE = Path(rnnx.__file__).parent
MODULES = sorted(PACKAGE.rglob("*.py"))


def _unit(path: Path) -> str:
    """The subpackage (or top-level module) a file belongs to: `compiler`, `manifest`, ..."""
    return path.relative_to(PACKAGE).parts[0].removesuffix(".py")


def _imported_units(path: Path) -> set[str]:
    """The units `path` imports, at any depth of the file (an import inside a function counts too)."""
    units = set()
    package = path.relative_to(PACKAGE).parent.parts
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = package[:len(package) - node.level + 1]
            parts = [*base, *(node.module.split(".") if node.module else [])]
            targets = [parts[0]] if parts else [alias.name for alias in node.names]
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            targets = [n.split(".")[1] for n in names if n.startswith("rnnx.")]
        else:
            continue
        units |= {t for t in targets if (PACKAGE / t).is_dir() or (PACKAGE / f"{t}.py").is_file()}
    return units - {_unit(path)}


def test_subpackages_import_each_other_without_a_cycle():
    graph = {}
    for path in MODULES:
        graph.setdefault(_unit(path), set()).update(_imported_units(path))
    done, path_ = set(), []

    def visit(unit):
        if unit in path_:
            raise AssertionError("import cycle: " + " -> ".join(path_[path_.index(unit):] + [unit]))
        if unit in done:
            return
        path_.append(unit)
        for other in sorted(graph.get(unit, ())):
            visit(other)
        path_.pop()
        done.add(unit)

    for unit in sorted(graph):
        visit(unit)


def test_no_module_compares_packaging_or_runtime_names():
    """Packaging is a strategy (`rnnx.packaging`): only the registry itself may name the kinds."""
    found = []
    for path in MODULES:
        if _unit(path) in ("targets", "packaging"):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Compare) and any(
                    isinstance(side, ast.Attribute) and side.attr in ("packaging", "runtime")
                    for side in [node.left, *node.comparators]):
                found.append(f"{path.relative_to(PACKAGE)}:{node.lineno}")
    assert not found, found


def test_no_module_is_over_400_lines():
    sizes = {str(p.relative_to(PACKAGE)): len(p.read_text().splitlines()) for p in MODULES}
    assert not {p: n for p, n in sizes.items() if n > 400}
