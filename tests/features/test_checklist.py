"""docs/features.md covers every line of FEATURES.md, each with a test that exists.

One test per line: each bullet of the checklist appears in docs/features.md, names
exactly one test in tests/features/, that test exists, and no feature test is left
out of the list. Every picture the page links is in the repository.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
#: The team's checklist: beside the repository, or where the project keeps it.
CHECKLISTS = (
    ROOT.parent / "shared" / "FEATURES.md",
    Path("/work/shared/FEATURES.md"),
)
FEATURES_DOC = ROOT / "docs" / "features.md"
TEST_FOLDER = ROOT / "tests" / "features"
_TEST_REF = re.compile(r"`tests/features/(test_\w+\.py)::(test_\w+)`")
_PICTURE = re.compile(r"!\[[^\]]*\]\(([^)]+)\)")


def checklist_lines() -> list[str]:
    """The first line of each bullet of FEATURES.md, without its dash."""
    found = [path for path in CHECKLISTS if path.is_file()]
    assert found, f"The checklist is in none of {[str(p) for p in CHECKLISTS]}"
    return [
        line[2:].strip()
        for line in found[0].read_text(encoding="utf-8").splitlines()
        if line.startswith("- ")
    ]


def documented_entries() -> dict[str, list[tuple[str, str]]]:
    """Each bold entry of docs/features.md with the tests its paragraph names."""
    entries: dict[str, list[tuple[str, str]]] = {}
    current: str | None = None
    for line in FEATURES_DOC.read_text(encoding="utf-8").splitlines():
        if line.startswith("- **") and line.endswith("**"):
            current = line[4:-2]
            entries[current] = []
        elif line.startswith("#") or not line.strip():
            current = None
        if current is not None:
            entries[current].extend(_TEST_REF.findall(line))
    return entries


def feature_tests() -> set[tuple[str, str]]:
    """Every (file, test function) in tests/features/ but this checklist's own."""
    found: set[tuple[str, str]] = set()
    for path in sorted(TEST_FOLDER.glob("test_*.py")):
        if path.name == Path(__file__).name:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        found.update(
            (path.name, node.name)
            for node in tree.body
            if isinstance(node, ast.FunctionDef) and node.name.startswith("test_")
        )
    return found


def test_every_checklist_line_is_documented_with_one_test() -> None:
    entries = documented_entries()
    lines = checklist_lines()

    missing = [line for line in lines if line not in entries]
    assert not missing, f"FEATURES.md lines not in docs/features.md: {missing}"
    extra = [entry for entry in entries if entry not in lines]
    assert not extra, f"docs/features.md lines not in FEATURES.md: {extra}"
    unnamed = [entry for entry, tests in entries.items() if len(tests) != 1]
    assert not unnamed, f"Entries without exactly one test: {unnamed}"


def test_each_named_test_exists_and_every_feature_test_is_named() -> None:
    named = [test for tests in documented_entries().values() for test in tests]
    existing = feature_tests()

    assert len(named) == len(set(named)), "A test is named for two lines"
    assert not set(named) - existing, f"Named but missing: {set(named) - existing}"
    assert not existing - set(named), f"Not named in the doc: {existing - set(named)}"


def test_every_picture_is_in_the_repository() -> None:
    text = FEATURES_DOC.read_text(encoding="utf-8")
    pictures = _PICTURE.findall(text)

    assert pictures, "docs/features.md shows no page"
    absent = [p for p in pictures if not (FEATURES_DOC.parent / p).is_file()]
    assert not absent, f"Pictures missing: {absent}"
