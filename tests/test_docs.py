"""The repository explains itself: docs/ is checked against the code it describes.

In the manner of sqlite-utils' ``tests/test_docs.py``: the lists a reader relies on (mapping keys,
exit codes, report columns, summary keys, endpoints) are read from the code and each must appear in
its docs page; the mapping examples of ``docs/mapping.md`` go through the real loader; links
between the pages resolve; and nothing cites a file that a person who clones the repository does
not have.

Conventions of ``docs/mapping.md`` these tests rely on (say so in the page too):

* every top-level mapping key has its own section, a heading ``## `key` ``;
* every key accepted inside a block (``read.sheet``, ``phones[].label``) and every allowed value
  (lead fields, key fields, value types) appears in backticks in its parent's section;
* a ``yaml`` example loads when put into a minimal mapping (its top-level keys replace the
  minimal mapping's), unless the line above its fence is ``<!-- error -->`` (the loader must
  refuse it) or ``<!-- planned -->`` (the loader must refuse it today: when the feature lands,
  drop the mark and the example is checked like the others).
"""

from __future__ import annotations

import ast
import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from etl import errors, mapping, report
from etl.errors import EXIT_PRECEDENCE, EtlError, MappingError
from etl.mapping import load_mapping, parse_mapping
from etl.pipeline import RunOptions, run
from etl.sandbox import app as sandbox_app

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
MAPPING_DOC = DOCS / "mapping.md"

#: Citations of files outside the repository (the project's private references). Spelled so
#: that this file does not match itself.
OUTSIDE = re.compile(
    r"(?:\.\./)+shared\b"
    r"|\bshared[/\\](?:CONTRACT|API|HOUSE_STYLE|seed|cases|hooks)"
    r"|\b(?:CONTRACT|HOUSE_STYLE)\.md\b"
    r"|(?<![\w/.-])API\.md\b"
    r"|/work[/\\]"
)
TEXT_SUFFIXES = {".py", ".md", ".yaml", ".yml", ".toml", ".j2", ".cfg", ".ini", ".txt", ""}

#: The mapping every fragment of docs/mapping.md is put into.
MINIMAL = {
    "project": "Demo",
    "fields": {"name": "First Name", "surname": "Last Name", "email": "Email"},
}


def _repository_files() -> list[Path]:
    """The files of the repository (git's list when there is one, else a walk of the tree)."""
    try:
        out = subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=ROOT,
            capture_output=True,
            check=True,
        ).stdout
        files = [ROOT / name for name in out.decode("utf-8").split("\0") if name]
    except (OSError, subprocess.CalledProcessError):
        skip = {".git", ".venv", "reports", ".voiptime-etl", ".pytest_cache", "__pycache__"}
        files = [
            p for p in ROOT.rglob("*") if p.is_file() and not skip & set(p.relative_to(ROOT).parts)
        ]
    return [p for p in files if p.is_file() and p.suffix.lower() in TEXT_SUFFIXES]


def test_nothing_cites_a_file_outside_the_repository() -> None:
    found = []
    for path in _repository_files():
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue  # a data file
        for n, line in enumerate(text.splitlines(), 1):
            if OUTSIDE.search(line):
                found.append(f"{path.relative_to(ROOT)}:{n}: {line.strip()}")
    assert found == [], "cite a file of the repository (docs/...) instead:\n" + "\n".join(found)


# --- links --------------------------------------------------------------------------------------

LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)")


def _slug(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces to ``-``."""
    text = heading.strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def _anchors(path: Path) -> set[str]:
    """Every heading's anchor; a repeated one gets ``-1``, ``-2``… as on GitHub."""
    seen: dict[str, int] = {}
    out = set()
    for line in _prose_lines(path.read_text(encoding="utf-8")):
        if re.match(r"#{1,6} ", line):
            slug = _slug(line.lstrip("#"))
            n = seen.get(slug, 0)
            seen[slug] = n + 1
            out.add(slug if n == 0 else f"{slug}-{n}")
    return out


def _prose_lines(text: str) -> list[str]:
    """The lines of a page outside fenced code blocks."""
    out, fenced = [], False
    for line in text.splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
            continue
        if not fenced:
            out.append(line)
    return out


def _pages() -> list[Path]:
    return [ROOT / "README.md", *sorted(DOCS.glob("*.md"))]


def test_every_page_the_docs_name_exists() -> None:
    for name in ("mapping.md", "api.md", "exit-codes.md", "reports.md", "architecture.md"):
        assert (DOCS / name).is_file(), name


@pytest.mark.parametrize("page", _pages(), ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(page: Path) -> None:
    broken = []
    for line in _prose_lines(page.read_text(encoding="utf-8")):
        for target in LINK.findall(line):
            if re.match(r"[a-z][a-z0-9+.-]*:", target):  # https:, mailto:
                continue
            name, _, anchor = target.partition("#")
            dest = (page.parent / name).resolve() if name else page
            if not dest.exists():
                broken.append(f"{target}: no such file")
            elif anchor and dest.suffix == ".md" and anchor not in _anchors(dest):
                broken.append(f"{target}: no heading with that anchor")
    assert broken == []


# --- docs/mapping.md ----------------------------------------------------------------------------


def _sections(path: Path) -> dict[str, str]:
    """``{top-level key: text of its section}`` for every ``## `key` `` heading."""
    out: dict[str, str] = {}
    current: str | None = None
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("## "):
            match = re.match(r"## `([^`]+)`", line)
            current = match[1] if match else None
            if current is not None:
                out[current] = ""
        elif current is not None:
            out[current] += line + "\n"
    return out


def _allowed(data: dict[str, Any], path: str) -> tuple[str, ...]:
    """The keys the loader accepts at ``path``, from its own "unknown key" message."""
    with pytest.raises(MappingError) as caught:
        parse_mapping(data)
    for problem in caught.value.problems:
        if problem.startswith(f"{path}.zz_unknown: unknown key (allowed: "):
            return tuple(problem.split("(allowed: ", 1)[1].rstrip(")").split(", "))
    raise AssertionError(f"no 'unknown key' message for {path}: {caught.value.problems}")


def _accepted_keys() -> dict[str, tuple[str, ...]]:
    """Every key (and listed value) the mapping model accepts, by top-level section."""
    column_spec = {"column": "X", "zz_unknown": 1}
    return {
        "read": mapping._READ_KEYS,
        "defaults": (*mapping._DEFAULT_KEYS, *mapping.AMBIGUOUS_ZONE_POLICIES),
        "key": mapping.KEY_FIELDS,
        "fields": (
            *mapping.LEAD_FIELDS,
            *_allowed({**MINIMAL, "fields": {"name": column_spec}}, "fields.name"),
        ),
        "phones": _allowed({**MINIMAL, "phones": [column_spec]}, "phones[0]"),
        "dynamicData": (
            *_allowed({**MINIMAL, "dynamicData": {"x": column_spec}}, "dynamicData.x"),
            *mapping.VALUE_TYPES,
        ),
        "comments": _allowed({**MINIMAL, "comments": [column_spec]}, "comments[0]"),
        "status": _allowed({**MINIMAL, "status": column_spec}, "status"),
        "source": _allowed({**MINIMAL, "source": column_spec}, "source"),
        "callback": (
            *_allowed({**MINIMAL, "callback": column_spec}, "callback"),
            *mapping.PAST_POLICIES,
        ),
        "meeting": _allowed(
            {**MINIMAL, "meeting": {"start": "S", "end": "E", "zz_unknown": 1}}, "meeting"
        ),
    }


def test_every_top_level_mapping_key_has_its_section() -> None:
    sections = _sections(MAPPING_DOC)
    assert [k for k in mapping._TOP_KEYS if k not in sections] == []


def test_every_mapping_key_and_value_is_documented_in_its_section() -> None:
    sections = _sections(MAPPING_DOC)
    missing = [
        f"{parent}: {key}"
        for parent, keys in _accepted_keys().items()
        for key in keys
        if f"`{key}`" not in sections.get(parent, "") and f".{key}`" not in sections.get(parent, "")
    ]
    assert missing == []


def _yaml_examples(path: Path) -> list[tuple[int, str, str]]:
    """``(line, mark, text)`` of each ``yaml`` block; ``mark``: ``planned``, ``error`` or ``""``."""
    lines = path.read_text(encoding="utf-8").splitlines()
    out = []
    i = 0
    while i < len(lines):
        if lines[i].strip() == "```yaml":
            before = [line.strip() for line in lines[:i] if line.strip()]
            mark = re.fullmatch(r"<!-- (planned|error) -->", before[-1]) if before else None
            end = next(j for j in range(i + 1, len(lines)) if lines[j].strip() == "```")
            out.append((i + 1, mark[1] if mark else "", "\n".join(lines[i + 1 : end])))
            i = end
        i += 1
    return out


def _load_example(text: str, tmp_path: Path, line: int) -> Any:
    data = yaml.safe_load(text)
    assert isinstance(data, dict), f"line {line}: an example must be a mapping of keys"
    file = tmp_path / f"example-{line}.yaml"
    file.write_text(yaml.safe_dump({**MINIMAL, **data}, allow_unicode=True), encoding="utf-8")
    return load_mapping(file)


def test_mapping_examples_load_with_the_mapping_loader(tmp_path: Path) -> None:
    examples = _yaml_examples(MAPPING_DOC)
    assert len([e for e in examples if e[1] == ""]) >= 10
    for line, mark, text in examples:
        if mark == "":
            _load_example(text, tmp_path, line)  # raises MappingError when the docs are wrong
        else:
            with pytest.raises(MappingError):
                _load_example(text, tmp_path, line)
                raise AssertionError(
                    f"docs/mapping.md line {line} is marked {mark}, but the loader accepts it"
                    + (": the feature has landed, drop the mark" if mark == "planned" else "")
                )


def test_the_sample_mappings_load() -> None:
    samples = sorted((ROOT / "mappings").glob("*.yaml"))
    assert samples
    for path in samples:
        load_mapping(path)


# --- docs/exit-codes.md -------------------------------------------------------------------------


def _error_classes() -> list[type[EtlError]]:
    found = [getattr(errors, name) for name in errors.__all__]
    return [c for c in found if isinstance(c, type) and issubclass(c, EtlError)]


def test_every_exit_code_is_documented() -> None:
    text = (DOCS / "exit-codes.md").read_text(encoding="utf-8")
    rows = set(re.findall(r"^\| `?(\d+)`? \|", text, flags=re.MULTILINE))
    codes = {getattr(errors, n) for n in errors.__all__ if n.startswith("EXIT_")}
    codes |= {c.exit_code for c in _error_classes()} | set(EXIT_PRECEDENCE)
    codes |= {130, 143}  # SIGINT, SIGTERM (etl.load.Cancel)
    assert sorted(c for c in codes if str(c) not in rows) == []
    assert ", ".join(map(str, EXIT_PRECEDENCE)) in text
    assert [c.__name__ for c in _error_classes() if f"`{c.__name__}`" not in text] == []


# --- docs/reports.md ----------------------------------------------------------------------------


def _summary_keys(tmp_path: Path) -> list[str]:
    """The keys a real ``validate`` run writes to summary.json (offline, one small file)."""
    source = tmp_path / "leads.csv"
    source.write_text(
        "First Name,Last Name,Email,Phone\nAda,Lovelace,ada@example.com,+14155552671\n"
        "Bob,,bob@example,+14155552672\n",
        encoding="utf-8",
    )
    mapping_file = tmp_path / "map.yaml"
    mapping_file.write_text(
        "project: 1\n"
        "defaults: {timezone: America/New_York}\n"
        "fields: {name: First Name, surname: Last Name, email: Email}\n"
        "phones: [{column: Phone}]\n",
        encoding="utf-8",
    )
    options = RunOptions(
        sources=[source], mapping=mapping_file, command="validate", report_dir=tmp_path / "r"
    )
    result = run(options)
    assert result.exit_code == 3  # Bob is rejected
    summary: dict[str, Any] = json.loads((tmp_path / "r" / "summary.json").read_text())
    keys = list(summary)
    keys += [f"timings.{k}" for k in summary["timings"]]
    keys += [f"files[].{k}" for k in summary["files"][0]]
    return keys


def test_every_report_column_and_summary_key_is_documented(tmp_path: Path) -> None:
    text = (DOCS / "reports.md").read_text(encoding="utf-8")
    names = [*report.REJECT_COLUMNS, *report.LOADED_COLUMNS, *_summary_keys(tmp_path)]
    assert [n for n in names if f"`{n}`" not in text] == []


# --- docs/api.md --------------------------------------------------------------------------------


def test_every_endpoint_the_sandbox_serves_is_documented() -> None:
    text = (DOCS / "api.md").read_text(encoding="utf-8")
    served = [
        f"{method} {template}" for template, _, methods in sandbox_app._ROUTES for method in methods
    ]
    assert len(served) == 13
    assert [e for e in served if f"`{e}" not in text] == []


# --- docs/architecture.md -----------------------------------------------------------------------


def _unit(module: str) -> str | None:
    """The layer unit of a dotted name under ``etl``: ``etl.sandbox.app`` → ``sandbox``;
    ``None`` for the package itself and for names that are not modules (``etl.__version__``)."""
    parts = module.split(".")
    if parts[0] != "etl" or len(parts) == 1:
        return None
    name = parts[1]
    is_module = (ROOT / "etl" / f"{name}.py").exists() or (ROOT / "etl" / name).is_dir()
    return name if is_module and name not in ("__init__", "__main__") else None


def _imports() -> dict[str, set[str]]:
    """``{unit: units of etl it imports}`` from the source (imports inside functions too)."""
    out: dict[str, set[str]] = {}
    for path in sorted((ROOT / "etl").rglob("*.py")):
        unit = _unit(".".join(path.relative_to(ROOT).with_suffix("").parts))
        if unit is None:
            continue
        found = out.setdefault(unit, set())
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names: list[str] = []
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            found |= {u for u in map(_unit, names) if u is not None and u != unit}
    return out


def test_imports_follow_the_layers_of_architecture_md() -> None:
    text = (DOCS / "architecture.md").read_text(encoding="utf-8")
    layer = {
        name: int(n)
        for n, names in re.findall(r"^layer (\d+)\s+(.+)$", text, flags=re.MULTILINE)
        for name in names.split()
    }
    imports = _imports()
    assert sorted(set(imports) - set(layer)) == [], "modules missing from the layers"
    upward = [
        f"{unit} (layer {layer[unit]}) imports {target} (layer {layer[target]})"
        for unit, targets in imports.items()
        for target in sorted(targets)
        if layer[target] >= layer[unit]
    ]
    assert upward == []
    assert [u for u in imports if f"`{u}" not in text] == [], "modules missing from the tables"


def _imports_table(text: str) -> dict[str, set[str]]:
    """The table ``| module | imports from `etl` |`` of architecture.md: ``{unit: units}``
    (a row may name several modules; words in parentheses are notes, not modules)."""
    table = text.split("| module | imports from `etl` |", 1)[1].split("\n\n", 1)[0]
    out: dict[str, set[str]] = {}
    for line in table.strip().splitlines()[1:]:
        modules, imported = (c.strip() for c in line.strip().strip("|").split("|"))
        names = set(re.findall(r"[a-z_]+", re.sub(r"\([^)]*\)", "", imported)))
        for module in re.findall(r"`(\w+)`", modules):
            out[module] = names
    return out


def test_the_imports_table_of_architecture_md_is_what_each_module_imports() -> None:
    table = _imports_table((DOCS / "architecture.md").read_text(encoding="utf-8"))
    wrong = {
        unit: (sorted(table.get(unit, set()) - targets), sorted(targets - table.get(unit, set())))
        for unit, targets in _imports().items()
        if table.get(unit, set()) != targets
    }
    assert wrong == {}, "module: (listed, not imported), (imported, not listed)"
