"""Imports point one way: data -> model -> objective -> loop -> sampler -> metrics -> zoo ->
evaluation -> plots/widgets (docs/architecture.md, "Layers"). A module may import from its own
layer and the layers before it, never from a later one (lazy imports inside functions count)."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "ucgm_lab"

LAYERS: list[tuple[str, ...]] = [
    ("ucgm_lab.data", "ucgm_lab.runtime", "ucgm_lab._deprecated"),
    ("ucgm_lab.networks", "ucgm_lab.model_api", "ucgm_lab.ema"),
    (
        "ucgm_lab.transports",
        "ucgm_lab.schedules",
        "ucgm_lab.time_sensitivity",
        "ucgm_lab.objective",
        "ucgm_lab.objective_checks",
        "ucgm_lab.objective_targets",
        "ucgm_lab.objective_teachers",
        "ucgm_lab.objective_terms",
        "ucgm_lab.flow_maps",
    ),
    ("ucgm_lab.training", "ucgm_lab.recipes"),
    (
        "ucgm_lab.sampler",
        "ucgm_lab.sampler_grid",
        "ucgm_lab.sampler_output",
        "ucgm_lab.sampler_steps",
        "ucgm_lab.sampler_loop",
        "ucgm_lab.sampler_corrector",
        "ucgm_lab.sampler_tables",
        "ucgm_lab.sampler_checks",
        "ucgm_lab.adapters",
        "ucgm_lab.peers.training",
        "ucgm_lab.loading",
    ),
    (
        "ucgm_lab.metrics",
        "ucgm_lab.search",
        "ucgm_lab.recommended",
    ),  # the zoo stores searched sampler settings
    ("ucgm_lab.zoo",),
    ("ucgm_lab.evaluation", "ucgm_lab.peers"),
    (
        "ucgm_lab.viz",
        "ucgm_lab.widgets",
        "ucgm_lab.demo",
        "ucgm_lab.cli",
        "ucgm_lab.symbolic",
        "ucgm_lab.exercises",
        "ucgm_lab.site",
    ),
]
DEPRECATED = ("ucgm_lab.images", "ucgm_lab.adapters.peers")
"""Thin aliases that forward to the new places (they import from everywhere by design)."""


def layer(module: str) -> int | None:
    best, found = -1, None
    for i, prefixes in enumerate(LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > best:
                best, found = len(prefix), i
    return found


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported(path: Path, name: str) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("ucgm_lab")}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.startswith("ucgm_lab"):
                # "from . import x" imports the submodule x
                found |= {
                    f"{target}.{a.name}" if node.module is None else target for a in node.names
                }
    return found


def test_every_module_has_a_layer():
    missing = [
        module_name(p)
        for p in PACKAGE.rglob("*.py")
        if module_name(p) != "ucgm_lab"
        and layer(module_name(p)) is None
        and not module_name(p).startswith(DEPRECATED)
    ]
    assert not missing, f"modules without a layer in docs/architecture.md: {missing}"


def test_imports_point_one_way():
    wrong = []
    for path in sorted(PACKAGE.rglob("*.py")):
        name = module_name(path)
        if name == "ucgm_lab" or name.startswith(DEPRECATED):
            continue
        mine = layer(name)
        for target in imported(path, name):
            theirs = layer(target)
            if theirs is not None and not target.startswith(DEPRECATED) and theirs > mine:
                wrong.append(f"{name} (layer {mine}) imports {target} (layer {theirs})")
    assert not wrong, "imports that point back up:\n" + "\n".join(wrong)
