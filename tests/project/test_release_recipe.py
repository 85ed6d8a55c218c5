"""What can be checked here of the Windows/macOS/GPU release recipe, which cannot run here.

The workflow parses and names only scripts, files and backends that exist; the PyInstaller
spec compiles and names files that exist; every backend in build.toml is built by the matrix.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import yaml

_REPO = Path(__file__).resolve().parents[2]
_WORKFLOW = _REPO / ".github" / "workflows" / "release.yml"


def _workflow() -> dict:
    return yaml.safe_load(_WORKFLOW.read_text())


def test_the_workflow_builds_every_os_and_every_backend() -> None:
    wf = _workflow()
    matrix = wf["jobs"]["build"]["strategy"]["matrix"]["include"]
    backends = set(tomllib.loads((_REPO / "packaging/llama/build.toml").read_text())["backends"])
    assert {m["backend"] for m in matrix} == backends
    assert {m["os_name"] for m in matrix} == {"linux", "windows", "macos"}
    assert {"cuda", "vulkan"} <= {m["backend"] for m in matrix if m["os_name"] == "windows"}
    assert {m["backend"] for m in matrix if m["os_name"] == "macos"} == {"metal", "cpu"}
    assert wf["jobs"]["release"]["needs"] == "build"


def test_every_path_the_workflow_runs_exists() -> None:
    text = "\n".join(step.get("run", "") for step in _workflow()["jobs"]["build"]["steps"])
    paths = set(re.findall(r"packaging/[\w./-]+", text)) | {".python-version"}
    assert {"packaging/build.sh", "packaging/llama/build.py", "packaging/hearth.spec"} <= paths
    for p in paths:
        assert (_REPO / p).exists(), p
    for key in ("python-version-file",):
        (setup,) = [
            s for s in _workflow()["jobs"]["build"]["steps"] if s.get("uses", "").startswith("actions/setup-python")
        ]
        assert (_REPO / setup["with"][key]).is_file()


def test_the_spec_compiles_and_names_files_that_exist() -> None:
    source = (_REPO / "packaging" / "hearth.spec").read_text()
    compile(source, "hearth.spec", "exec")
    for rel in re.findall(r'ROOT / "([^"]+)" / "([^"]+)"(?: / "([^"]+)")?', source):
        path = _REPO.joinpath(*[part for part in rel if part])
        assert path.exists(), path
    assert "hearth_main.py" in source and (_REPO / "packaging" / "hearth_main.py").is_file()
    for platform_branch in ("darwin", "BUNDLE("):
        assert platform_branch in source
