"""The compiled processors are used only while every source matches the build, all together or not at all."""

from __future__ import annotations

import json
import sysconfig
from pathlib import Path

import pytest

import processors.traffic.detectors
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
    assert verdict.files["processors.traffic.detectors"] == build / f"processors.traffic.detectors{SUFFIX}"


def test_one_edited_source_sends_the_whole_group_back_to_python_and_names_the_file(tmp_path: Path) -> None:
    build, root = _fake_build(tmp_path)
    native.source_of("processors.drone.detectors", root).write_text("# edited\n")
    verdict = native.check(build, root, {})
    assert verdict.files == {}
    assert verdict.reason == "processors/drone/detectors.py changed since the build; `make native` builds it again"


@pytest.mark.parametrize(
    ("spoil", "reason"),
    [
        (lambda build, root: None, "CITY_NATIVE=0"),
        (lambda build, root: (build / native.MANIFEST).unlink(), "not built"),
        (lambda build, root: (build / native.MANIFEST).write_text("{"), "unreadable manifest"),
        (lambda build, root: (build / f"processors.outcome{SUFFIX}").unlink(), "missing"),
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


def test_no_compiled_module_defines_or_drives_a_coroutine() -> None:
    # A mypyc-compiled coroutine can crash the interpreter when an exception is thrown into it (a worker died
    # so while Redis was down); the modules that await stay Python.
    found = {module: native.coroutine_lines(native.source_of(module)) for module in native.MODULES}
    assert {module: lines for module, lines in found.items() if lines} == {}


@pytest.mark.parametrize("line", ["async def f():\n    pass", "g = lambda x: [y async for y in x]"])
def test_the_build_refuses_a_module_with_coroutine_code_and_keeps_the_old_build(tmp_path: Path, line: str) -> None:
    build, root = _fake_build(tmp_path)
    native.source_of("processors.energy.feeder", root).write_text(f"import asyncio\n\n{line}\n")
    with pytest.raises(native.NativeBuildError, match=r"processors.energy.feeder has coroutine code at line\(s\) 3"):
        native.build(build, root)
    assert native.check(build, root, {}).files == {}  # the edited source no longer matches ...
    assert (build / native.MANIFEST).exists()  # ... but the previous build is still there


def test_this_process_runs_the_compiled_modules_when_the_tree_holds_a_matching_build() -> None:
    verdict = native.check()
    if not verdict.files:
        pytest.skip(f"no usable build here: {verdict.reason}")
    # The import hook served it: the module is the extension, not the source beside it.
    assert native.install().files == verdict.files
    assert processors.traffic.detectors.__file__ == str(verdict.files["processors.traffic.detectors"])
