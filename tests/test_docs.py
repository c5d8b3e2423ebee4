"""The README a newcomer lands on: one page, the same install line CI runs, and no dead links in it or docs/."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LINK = re.compile(r"\]\(([^)\s]+)\)")


def _anchors(md: Path) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens."""
    heads = re.findall(r"^#+ (.+)$", md.read_text(), flags=re.M)
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in heads}


def test_readme_is_one_page_with_the_ci_install_line():
    readme = (ROOT / "README.md").read_text().splitlines()
    assert len(readme) <= 150, len(readme)
    ci = [line.strip() for line in (ROOT / ".ci/run").read_text().splitlines() if line.strip().startswith("pip install")]
    block = readme[readme.index("```bash") + 1:]
    assert block[0] == ci[0], (block[0], ci[0])  # the first set-up command is exactly what CI installs
    assert block[1] == "goodhart run"


def test_links_in_readme_and_docs_resolve():
    dead = []
    for md in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), ROOT / "benchmarks/README.md"]:
        for target in LINK.findall(md.read_text()):
            if re.match(r"[a-z]+:", target):  # http(s), mailto: not checked offline
                continue
            path, _, anchor = target.partition("#")
            dest = (md.parent / path).resolve() if path else md
            if not dest.exists():
                dead.append(f"{md.relative_to(ROOT)} → {target}")
            elif anchor and dest.suffix == ".md" and anchor not in _anchors(dest):
                dead.append(f"{md.relative_to(ROOT)} → {target} (no such heading)")
    assert not dead, dead


def _build_site(docs: Path, site: Path):
    import os
    import subprocess
    import sys

    cfg = (ROOT / "mkdocs.yml").read_text().replace("docs_dir: docs", f"docs_dir: {docs}")
    site.parent.mkdir(parents=True, exist_ok=True)
    (site.parent / "mkdocs.yml").write_text(cfg)
    return subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(site.parent / "mkdocs.yml"),
                           "-d", str(site)], capture_output=True, text=True, env=os.environ | {"NO_MKDOCS_2_WARNING": "1"})


def test_docs_site_builds_strict_with_the_figure_and_tables_rendered(tmp_path):
    """mkdocs (material) over docs/ with --strict: every page in the nav builds, a link to a missing page
    fails the build; the lab-world page renders its figure and its tables as HTML."""
    res = _build_site(ROOT / "docs", tmp_path / "site")
    assert res.returncode == 0, res.stderr[-2000:]
    page = (tmp_path / "site" / "lab_world" / "index.html").read_text()
    assert 'src="../img/run_lab.png"' in page and "<table>" in page and "<h2 id=\"the-default-run\">" in page
    assert (tmp_path / "site" / "img" / "run_lab.png").is_file()
    import shutil

    broken = tmp_path / "docs"
    shutil.copytree(ROOT / "docs", broken)
    (broken / "index.md").write_text((broken / "index.md").read_text() + "\n[gone](no_such_page.md)\n")
    res = _build_site(broken, tmp_path / "broken" / "site")
    assert res.returncode != 0 and "no_such_page.md" in res.stderr


def _cells(line: str) -> int:
    """Cells of a markdown table row: its unescaped pipes, less the outer one."""
    return len(re.findall(r"(?<!\\)\|", line)) - 1


def test_every_table_row_in_the_docs_has_its_header_s_cell_count():
    """A literal `|` inside a cell (e.g. `|x|`) splits it on GitHub: every row must have its header's cells."""
    bad = []
    for md in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), ROOT / "benchmarks/README.md"]:
        header, in_code = None, False
        for i, line in enumerate(md.read_text().splitlines(), 1):
            in_code ^= line.lstrip().startswith("```")
            if in_code or not line.startswith("|"):
                header = None
                continue
            if header is None:
                header = _cells(line)
            elif _cells(line) != header:
                bad.append(f"{md.relative_to(ROOT)}:{i} has {_cells(line)} cells, its header {header}")
    assert not bad, bad[:5]
