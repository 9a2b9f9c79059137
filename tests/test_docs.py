"""The README and docs/*.md: links, anchors, repository paths and the tests Safety cites."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = ROOT / "docs"
PAGES = [README, *sorted(DOCS.glob("*.md"))]
PACKAGE = ROOT / "custom_components" / "loadshed_ven"

FENCE = re.compile(r"^\s*(```|~~~)\s*([\w-]*)")
HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")
CODE_SPAN = re.compile(r"(`+)(.+?)\1")
LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
SHELL = {"bash", "sh", "shell", "console"}
# Bare file names that name a file of the repository (at its root or in the integration).
FILE_NAME = re.compile(r"^[\w.@-]+\.(?:py|json|yaml|yml|txt|toml|md|png)$")


def _blocks(text: str) -> tuple[list[str], list[tuple[str, list[str]]]]:
    """The prose lines of a page, and its fenced code blocks with their language."""
    prose: list[str] = []
    blocks: list[tuple[str, list[str]]] = []
    current: tuple[str, list[str]] | None = None
    for line in text.splitlines():
        fence = FENCE.match(line)
        if current is None and fence:
            current = (fence.group(2).lower(), [])
        elif current is not None and fence and not fence.group(2):
            blocks.append(current)
            current = None
        elif current is not None:
            current[1].append(line)
        else:
            prose.append(line)
    assert current is None, "a code block is not closed"
    return prose, blocks


def _slug(title: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces to hyphens."""
    title = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", title)
    title = re.sub(r"[^\w\- ]", "", title.lower())
    return title.replace(" ", "-")


def _anchors(page: Path) -> set[str]:
    seen: Counter[str] = Counter()
    anchors: set[str] = set()
    for line in _blocks(page.read_text(encoding="utf-8"))[0]:
        if match := HEADING.match(line):
            slug = _slug(match.group(2))
            anchors.add(f"{slug}-{seen[slug]}" if seen[slug] else slug)
            seen[slug] += 1
    return anchors


def _links(page: Path) -> list[str]:
    prose = _blocks(page.read_text(encoding="utf-8"))[0]
    return [
        target
        for line in prose
        for target in LINK.findall(CODE_SPAN.sub("", line))
        if not re.match(r"^[a-z][a-z0-9+.-]*:", target)  # https:, mailto: ...
    ]


def _resolve(page: Path, target: str) -> tuple[Path, str]:
    path, _, anchor = target.partition("#")
    return ((page.parent / path).resolve() if path else page), anchor


def _top_level() -> set[str]:
    """The repository's own top-level folders (not .venv, caches or a local config)."""
    return {p.name for p in ROOT.iterdir() if p.is_dir() and not p.name.startswith(".")} | {".ci"}


def _repo_paths(page: Path) -> list[str]:
    """Everything in the page that reads as a path in this repository."""
    prose, blocks = _blocks(page.read_text(encoding="utf-8"))
    candidates = [span for line in prose for _, span in CODE_SPAN.findall(line)]
    candidates += [
        line
        for lang, lines in blocks
        if lang in SHELL
        for line in lines
        if line.strip() and not line.lstrip().startswith("#")
    ]
    top = _top_level()
    paths = []
    for candidate in candidates:
        token = candidate.split()[0] if candidate.split() else ""
        if "/" in token:
            if token.split("/", 1)[0] in top:
                paths.append(token)
        elif FILE_NAME.match(token):
            in_root = (ROOT / token).exists()
            paths.append(token if in_root else f"{PACKAGE.relative_to(ROOT)}/{token}")
    return paths


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_resolves(page: Path) -> None:
    def resolves(target: str) -> bool:
        path, anchor = _resolve(page, target)
        if not path.exists() or not path.is_relative_to(ROOT):
            return False
        return not anchor or (path.suffix == ".md" and anchor in _anchors(path))

    broken = [target for target in _links(page) if not resolves(target)]
    assert not broken, broken


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_repository_path_exists(page: Path) -> None:
    paths = _repo_paths(page)
    missing = [p for p in paths if not (ROOT / p).exists()]
    assert not missing, missing


def test_the_path_check_sees_paths() -> None:
    """Guards the check above against finding nothing to check."""
    found = {path for page in PAGES for path in _repo_paths(page)}
    assert "scripts/demo" in found
    assert "custom_components/loadshed_ven/engine/shed.py" in found
    assert "custom_components/loadshed_ven/manifest.json" in found


def test_every_docs_page_is_linked_from_the_readme() -> None:
    linked = {_resolve(README, target)[0] for target in _links(README)}
    assert DOCS.glob("*.md")
    assert not [p.name for p in DOCS.glob("*.md") if p.resolve() not in linked]


def test_github_slugs() -> None:
    assert _slug("Step 1: Connect to the VTN") == "step-1-connect-to-the-vtn"
    assert _slug("`loadshed_ven.shed`") == "loadshed_venshed"
    assert _slug("The simulated building and the demo") == "the-simulated-building-and-the-demo"


def test_readme_first_screen_has_the_screenshot_and_hacs() -> None:
    first_screen = "\n".join(README.read_text(encoding="utf-8").splitlines()[:60])
    assert "](docs/images/dashboard.png)" in first_screen
    assert "### Through HACS" in first_screen
    assert "**Custom repositories**" in first_screen


def test_the_safety_page_names_tests_that_exist() -> None:
    """Every test the Safety page cites as proof is a test in this repository."""
    safety = (DOCS / "safety.md").read_text(encoding="utf-8")
    proofs = safety.split("## Guarantees and the tests that prove them", 1)[1].split("\n## ", 1)[0]
    cited = set(re.findall(r"`(test_[a-z0-9_]+)`", proofs))
    assert len(cited) >= 30
    defined = {
        name
        for path in (ROOT / "tests").rglob("test_*.py")
        for name in re.findall(r"^(?:async )?def (test_[a-z0-9_]+)", path.read_text(), re.M)
    }
    assert cited <= defined, sorted(cited - defined)
