"""The README and the docs site: every relative link resolves, every page is in the nav."""

import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).parent.parent
DOCS = ROOT / "docs"
PAGES = [ROOT / "README.md", *sorted(DOCS.glob("*.md"))]

FENCE = re.compile(r"^(```|~~~).*?^\1", re.S | re.M)
CODE = re.compile(r"`[^`\n]*`")
INLINE = re.compile(r"!?\[[^\]]*\]\(\s*(?:<([^>]+)>|([^)\s]+))(?:\s+\"[^\"]*\")?\s*\)")
REFERENCE = re.compile(r"^\s*\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)", re.M)
HTML = re.compile(r"\b(?:href|src)=\"([^\"]+)\"")


def links(page: Path) -> list[str]:
    """Link targets in a Markdown file, outside code blocks and code spans."""
    text = CODE.sub("", FENCE.sub("", page.read_text(encoding="utf-8")))
    return [
        next(g for g in m.groups() if g is not None)
        for pattern in (INLINE, REFERENCE, HTML)
        for m in pattern.finditer(text)
    ]


def is_external(target: str) -> bool:
    return bool(re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I)) or target.startswith("//")


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_point_to_existing_files(page):
    broken = []
    for target in links(page):
        if is_external(target) or target.startswith("#"):
            continue
        path = target.split("#", 1)[0].split("?", 1)[0]
        if path.startswith("/") or not (page.parent / path).exists():
            broken.append(target)
    assert broken == [], f"{page.relative_to(ROOT)}: links to missing files: {broken}"


def test_the_link_finder_sees_links_and_skips_code(tmp_path):
    sample = tmp_path / "sample.md"
    sample.write_text(
        '[a](a.md) ![img](img/b.png) [c](<c d.md> "title") [e](e.md#part)\n'
        "`[not](code.md)`\n```\n[not](fenced.md)\n```\n[ref]: ref.md\n"
    )
    assert links(sample) == ["a.md", "img/b.png", "c d.md", "e.md#part", "ref.md"]
    assert any(t.startswith("docs/") for t in links(ROOT / "README.md"))


def _nav_pages(nav) -> list[str]:
    if isinstance(nav, str):
        return [nav]
    if isinstance(nav, dict):
        return [p for value in nav.values() for p in _nav_pages(value)]
    return [p for item in nav for p in _nav_pages(item)]


def test_every_docs_page_is_in_the_mkdocs_nav_and_every_nav_entry_exists():
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text(encoding="utf-8"))
    nav = [p for p in _nav_pages(config["nav"]) if not is_external(p)]
    on_disk = sorted(p.name for p in DOCS.glob("*.md"))
    assert sorted(nav) == on_disk
    assert len(nav) == len(set(nav)), "a page listed twice in the nav"
