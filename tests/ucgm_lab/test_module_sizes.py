"""Small modules with one job: a module of ucgm_lab past the size limit must be listed here with
the reason it stays whole (the project's rule: split a module past ~400 lines unless it is one
cohesive thing)."""

from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "ucgm_lab"
LIMIT = 450
"""Lines; "~400" with room for a docstring or two."""

KNOWN_LARGE: dict[str, str] = {}


def _lines(path: Path) -> int:
    return len(path.read_text(encoding="utf-8").splitlines())


def test_modules_past_the_limit_are_listed():
    large = {
        str(p.relative_to(PACKAGE)): _lines(p) for p in PACKAGE.rglob("*.py") if _lines(p) > LIMIT
    }
    unlisted = {name: n for name, n in large.items() if name not in KNOWN_LARGE}
    assert not unlisted, (
        f"modules past {LIMIT} lines: {unlisted}; split them into modules with one job each, or "
        "list them in KNOWN_LARGE with the reason they stay whole"
    )


def test_the_list_names_only_large_modules():
    """A module that was split or shrank leaves the list (so the list stays true)."""
    stale = [name for name in KNOWN_LARGE if not (PACKAGE / name).is_file()]
    stale += [
        name
        for name in KNOWN_LARGE
        if (PACKAGE / name).is_file() and _lines(PACKAGE / name) <= LIMIT
    ]
    assert not stale, (
        f"no longer past {LIMIT} lines (or gone): {stale}; remove them from KNOWN_LARGE"
    )
