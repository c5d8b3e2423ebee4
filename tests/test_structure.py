"""The code's shape stays as shared/STYLE.md draws it: one-way floors, no import cycles, no private
imports across packages, modules under 400 lines, functions under 60 lines of code, every config field
described. All read from the source AST (nothing is imported), so a violation names its file and line."""

import ast
from collections import defaultdict
from pathlib import Path

import pytest

SRC = Path(__file__).parents[1] / "src" / "goodhart"

# Floors, bottom to top: a unit (a package under goodhart/, or a top-level module) imports only from
# lower floors, or from itself. Math and config at the bottom; the commands' work (commands/) and the CLI on top.
FLOORS = [
    {"errors", "progress"},
    {"sinks", "bon", "config", "pairs"},  # pairs: within-prompt pair enumeration (numpy only)
    {"runs"},  # the run directory: results, metrics, atomic writes (reads torchrun's env without dist)
    {"dist"},  # torchrun ranks, sharding, gathering, model wrapping
    {"device", "scoring"},  # device and precision; scoring text with a sequence-classification model
    {"report"},  # plots and HTML from results rows and stored fits
    {"sampling"},  # rollouts, pool engines, content-cached Best-of-n pools (of any world object)
    {"worlds"},  # where policy, prompts, gold and proxy backbones come from (the gao world samples its gold's data)
    {"reward"},  # Bradley–Terry training, labels, ensembles, WARM: knows nothing of policies
    {"policy"},  # the training loop and pure losses
    {"commands", "doctor"},  # the commands' work
    {"cli", "goodhart"},  # goodhart = the package's public names (__init__)
    {"cli_reference", "__main__"},  # the CLI's generated reference and `python -m goodhart`
]
FLOOR = {unit: i for i, units in enumerate(FLOORS) for unit in units}


def _modules() -> dict[str, Path]:
    out = {}
    for path in SRC.rglob("*.py"):
        parts = path.relative_to(SRC.parent).with_suffix("").parts
        out[".".join(parts).removesuffix(".__init__")] = path
    return out


def _imports(path: Path) -> list[tuple[str, list[str], int]]:
    """(imported module, names, line) for every goodhart import in the file, lazy ones included."""
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "goodhart":
            names = [a.name for a in node.names]
            if node.module == "goodhart":  # `from goodhart import dist` imports the module goodhart.dist
                out += [(f"goodhart.{n}", [], node.lineno) for n in names]
            else:
                out.append((node.module, names, node.lineno))
        elif isinstance(node, ast.Import):
            out += [(a.name, [], node.lineno) for a in node.names if a.name.split(".")[0] == "goodhart"]
    return out


def _unit(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "goodhart"


def test_every_unit_has_a_floor():
    assert {_unit(m) for m in _modules()} <= set(FLOOR), sorted({_unit(m) for m in _modules()} - set(FLOOR))


def test_imports_only_go_down_the_floors():
    bad = []
    for module, path in _modules().items():
        for target, _, line in _imports(path):
            a, b = _unit(module), _unit(target)
            if a != b and FLOOR[b] >= FLOOR[a]:
                bad.append(f"{path.relative_to(SRC)}:{line} {module} (floor {FLOOR[a]}) imports {target} "
                           f"(floor {FLOOR[b]})")
    assert not bad, "\n".join(bad)


def test_no_import_cycles_between_modules():
    modules = _modules()
    graph = defaultdict(set)
    for module, path in modules.items():
        for target, names, _ in _imports(path):
            for t in [target] + [f"{target}.{n}" for n in names]:
                if t in modules and t != module and not module.startswith(t + "."):  # a package's own __init__
                    graph[module].add(t)
    state, cycles = {}, []

    def visit(m, stack):
        state[m] = "open"
        for t in sorted(graph[m]):
            if state.get(t) == "open":
                cycles.append(" → ".join(stack[stack.index(t):] + [t]))
            elif t not in state:
                visit(t, stack + [t])
        state[m] = "done"

    for m in sorted(modules):
        if m not in state:
            visit(m, [m])
    assert not cycles, "\n".join(cycles)


def test_no_private_names_imported_across_packages():
    bad = []
    for module, path in _modules().items():
        for target, names, line in _imports(path):
            private = [n for n in names if n.startswith("_")]
            if private and _unit(module) != _unit(target):
                bad.append(f"{path.relative_to(SRC)}:{line} imports {', '.join(private)} from {target}")
    assert not bad, "\n".join(bad)


def _code_lines(node) -> int:
    """Lines of a function without its docstring."""
    lines = node.end_lineno - node.lineno + 1
    doc = node.body[0] if node.body and isinstance(node.body[0], ast.Expr) and \
        isinstance(getattr(node.body[0], "value", None), ast.Constant) and isinstance(node.body[0].value.value, str) \
        else None
    return lines - ((doc.end_lineno - doc.lineno + 1) if doc else 0)


def test_modules_and_functions_stay_short():
    """Modules ≤ 400 lines; functions ≤ 60 lines of code unless the docstring says why ("Long because")."""
    bad = []
    for path in sorted(SRC.rglob("*.py")):
        text = path.read_text()
        if len(text.splitlines()) > 400:
            bad.append(f"{path.relative_to(SRC)}: {len(text.splitlines())} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and _code_lines(node) > 60 and \
                    "Long because" not in (ast.get_docstring(node) or ""):
                bad.append(f"{path.relative_to(SRC)}:{node.lineno} {node.name}: {_code_lines(node)} lines of code")
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize("name", ["RunConfig", "RMTrainConfig", "RMSuiteConfig", "PolicyTrainConfig",
                                  "PolicyParetoConfig", "StudyConfig", "StoppingConfig", "RMTraining"])
def test_every_config_field_is_described(name):
    import goodhart.config as config

    def walk(model, prefix=""):
        for key, field in model.model_fields.items():
            yield f"{prefix}{key}", field
            sub = field.annotation
            for t in getattr(sub, "__args__", ()) or (sub,):
                if isinstance(t, type) and hasattr(t, "model_fields"):
                    yield from walk(t, f"{prefix}{key}.")

    missing = [key for key, field in walk(getattr(config, name)) if not field.description]
    assert not missing, f"{name}: fields without a description: {missing}"
