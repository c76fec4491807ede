"""The compiled processors are used only while every source matches the build, all together or not at all."""

from __future__ import annotations

import json
import sysconfig
from pathlib import Path

import pytest

import processors.runner
from processors import native

SUFFIX = str(sysconfig.get_config_var("EXT_SUFFIX"))


def _fake_build(tmp_path: Path) -> tuple[Path, Path]:
    """Write sources for every module and a build that matches them (empty files stand in for the .so)."""
    root, build = tmp_path / "src", tmp_path / "build"
    build.mkdir()
    sources = {}
    for module in native.MODULES:
        source = native.source_of(module, root)
        source.parent.mkdir(parents=True, exist_ok=True)
        source.write_text(f"# {module}\n")
        sources[module] = native.digest(source)
        (build / f"{module}{SUFFIX}").write_bytes(b"")
    library = f"{native.GROUP}__mypyc{SUFFIX}"
    (build / library).write_bytes(b"")
    manifest = {"ext_suffix": SUFFIX, "library": library, "sources": sources}
    (build / native.MANIFEST).write_text(json.dumps(manifest))
    return build, root


def test_a_build_that_matches_every_source_serves_every_module_and_the_library(tmp_path: Path) -> None:
    build, root = _fake_build(tmp_path)
    verdict = native.check(build, root, {})
    assert set(verdict.files) == {*native.MODULES, f"{native.GROUP}__mypyc"}
    assert verdict.files["processors.runner"] == build / f"processors.runner{SUFFIX}"


def test_one_edited_source_sends_the_whole_group_back_to_python_and_names_the_file(tmp_path: Path) -> None:
    build, root = _fake_build(tmp_path)
    native.source_of("processors.drone.separation", root).write_text("# edited\n")
    verdict = native.check(build, root, {})
    assert verdict.files == {}
    assert verdict.reason == "processors/drone/separation.py changed since the build; `make native` builds it again"


@pytest.mark.parametrize(
    ("spoil", "reason"),
    [
        (lambda build, root: None, "CITY_NATIVE=0"),
        (lambda build, root: (build / native.MANIFEST).unlink(), "not built"),
        (lambda build, root: (build / native.MANIFEST).write_text("{"), "unreadable manifest"),
        (lambda build, root: (build / f"processors.sink{SUFFIX}").unlink(), "missing"),
        (
            lambda build, root: (build / native.MANIFEST).write_text(
                json.dumps(json.loads((build / native.MANIFEST).read_text()) | {"ext_suffix": ".cpython-310.so"})
            ),
            "built for .cpython-310.so",
        ),
    ],
)
def test_a_build_that_cannot_be_trusted_is_not_used_and_says_why(tmp_path: Path, spoil: object, reason: str) -> None:
    build, root = _fake_build(tmp_path)
    spoil(build, root)  # type: ignore[operator]
    environ = {"CITY_NATIVE": "0"} if reason == "CITY_NATIVE=0" else {}
    verdict = native.check(build, root, environ)
    assert verdict.files == {}
    assert verdict.reason.startswith(reason), verdict.reason


def test_this_process_runs_the_compiled_runner_when_the_tree_holds_a_matching_build() -> None:
    verdict = native.check()
    if not verdict.files:
        pytest.skip(f"no usable build here: {verdict.reason}")
    # The import hook served it: the module is the extension, not the source beside it.
    assert native.compiled()
    assert processors.runner.__file__ == str(verdict.files["processors.runner"])
