"""requirements.lock: what make install/test/demo pin (see the Makefile's lock target)."""

from __future__ import annotations

import re
import tomllib

from clitools import ROOT


def _name(requirement: str) -> str:
    """A requirement's project name, normalised as pip does (PEP 503)."""
    name = re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", requirement.strip())
    assert name, requirement
    return re.sub(r"[-_.]+", "-", name.group(0)).lower()


def test_every_dependency_is_pinned_in_the_lock_file() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    extras = project["optional-dependencies"]
    wanted = [*project["dependencies"], *extras["dev"], *extras["bench"]]
    pins = {}
    for line in (ROOT / "requirements.lock").read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, version = line.partition("==")
            assert version, f"requirements.lock: {line!r} is not pinned with =="
            pins[_name(name)] = version
    missing = sorted(_name(r) for r in wanted if _name(r) not in pins)
    assert missing == [], f"not in requirements.lock: {missing}; run `make lock` and commit it"
