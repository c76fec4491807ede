"""The worker's hot modules compiled to C with mypyc, loaded only while they match their sources.

    citystream native build     # compile them (make does; needs a C compiler and Python's headers)
    citystream native status    # say whether the worker runs them compiled, and if not, why

The rules, timeliness checks and window arithmetic spend a worker's CPU in the interpreter's dispatch, not
in any one call (a flat profile), and no per-event cut there gains much. mypyc compiles the same typed source
to C extension modules (see bench/RESULTS.md for what it saves).

Only synchronous modules are compiled. An exception thrown into a mypyc-compiled coroutine can crash the
interpreter (python/mypy#12867, still open; litestar-org/sqlspec#691 met it on a database error): when the
runner and sink were compiled, a worker died of a segmentation fault while Redis was down. So the modules
that await (the runner, the sink, the window store, the separation check's Redis reads) stay Python, and
`build` refuses a module with `async def`, `await`, `async for` or `async with` in it.

The compiled modules are one mypyc group: they call each other directly in C, so they are used all
together or not at all. They live in `processors/_native/` beside a manifest of their sources' SHA-256; the
package's `__init__` installs an import hook that serves them only if every source still matches. Edit one
module and the package runs as plain Python (with a warning naming the file) until the next build, so a
stale build can never run code that is no longer in the tree. `CITY_NATIVE=0` runs plain Python on purpose.
"""

from __future__ import annotations

import ast
import hashlib
import importlib.abc
import importlib.machinery
import importlib.util
import json
import logging
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from streams.exceptions import CitystreamError

log = logging.getLogger(__name__)

PACKAGE_DIR = Path(__file__).resolve().parent
ROOT = PACKAGE_DIR.parent
BUILD_DIR = PACKAGE_DIR / "_native"
MANIFEST = "manifest.json"
GROUP = "citystream_native"  # the name of the group's shared library module (<GROUP>__mypyc)

# The synchronous modules a batch runs through; the runner, the sink, the window store, the separation check's
# reads (they await Redis) and the worker's frame (intake, worker, metrics) stay Python.
MODULES = (
    "processors.alerts",
    "processors.baselines",
    "processors.outcome",
    "processors.peers",
    "processors.silence",
    "processors.timeliness",
    "processors.drone.aggregations",
    "processors.drone.airspace",
    "processors.drone.detectors",
    "processors.drone.processor",
    "processors.drone.separation",
    "processors.energy.aggregations",
    "processors.energy.detectors",
    "processors.energy.feeder",
    "processors.energy.processor",
    "processors.traffic.aggregations",
    "processors.traffic.anomaly",
    "processors.traffic.detectors",
    "processors.traffic.processor",
    "processors.traffic.sites",
)


def source_of(module: str, root: Path = ROOT) -> Path:
    """Return the source file of one of the modules."""
    return root.joinpath(*module.split(".")).with_suffix(".py")


def coroutine_lines(source: Path) -> list[int]:
    """Return the lines of `source` that define or drive a coroutine (which mypyc must not compile)."""
    tree = ast.parse(source.read_text(), filename=str(source))
    kinds = (ast.AsyncFunctionDef, ast.Await, ast.AsyncFor, ast.AsyncWith)
    lines = {node.lineno for node in ast.walk(tree) if isinstance(node, kinds)}
    lines |= {node.target.lineno for node in ast.walk(tree) if isinstance(node, ast.comprehension) and node.is_async}
    return sorted(lines)


def digest(path: Path) -> str:
    """Return the SHA-256 of a file, in hex."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


@dataclass(frozen=True)
class Verdict:
    """Whether the compiled modules may be used, and if not, why (for the log and `status`)."""

    files: dict[str, Path]  # module name (and the group's library) -> extension file; empty: use Python
    reason: str


def check(build_dir: Path = BUILD_DIR, root: Path = ROOT, environ: dict[str, str] | None = None) -> Verdict:
    """Decide whether the build in `build_dir` matches the sources under `root` and this interpreter."""
    env = os.environ if environ is None else environ
    if env.get("CITY_NATIVE", "1") == "0":
        return Verdict({}, "CITY_NATIVE=0")
    manifest_path = build_dir / MANIFEST
    if not manifest_path.exists():
        return Verdict({}, f"not built (`citystream native build` or make builds {build_dir})")
    try:
        manifest = json.loads(manifest_path.read_text())
        suffix, sources, library = manifest["ext_suffix"], manifest["sources"], manifest["library"]
    except (ValueError, KeyError, TypeError) as exc:
        return Verdict({}, f"unreadable manifest {manifest_path}: {exc!r}; `make native` builds it again")
    if suffix != sysconfig.get_config_var("EXT_SUFFIX"):
        return Verdict({}, f"built for {suffix}, this interpreter loads {sysconfig.get_config_var('EXT_SUFFIX')}")
    if sorted(sources) != sorted(MODULES):
        return Verdict({}, "built for another module list; `make native` builds it again")
    files = {f"{GROUP}__mypyc": build_dir / library}
    for module, expected in sorted(sources.items()):
        source = source_of(module, root)
        if not source.exists() or digest(source) != expected:
            return Verdict({}, f"{source.relative_to(root)} changed since the build; `make native` builds it again")
        files[module] = build_dir / f"{module}{suffix}"
    missing = [str(path) for path in files.values() if not path.exists()]
    if missing:
        return Verdict({}, f"missing {', '.join(missing)}; `make native` builds it again")
    return Verdict(files, f"{len(MODULES)} modules compiled with mypyc")


class _Finder(importlib.abc.MetaPathFinder):
    """Serve the compiled modules from the build directory, ahead of their sources."""

    def __init__(self, files: dict[str, Path]) -> None:
        self.files = files

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        file = self.files.get(fullname)
        if file is None:
            return None
        loader = importlib.machinery.ExtensionFileLoader(fullname, str(file))
        return importlib.util.spec_from_file_location(fullname, file, loader=loader)


_verdict: Verdict | None = None


class NativeBuildError(CitystreamError):
    """The compiled modules could not be built (the processors then run as plain Python)."""


def install() -> Verdict:
    """Install the import hook if the build is usable (once per process); return the verdict."""
    global _verdict
    if _verdict is None:
        _verdict = check()
        loaded = [m for m in MODULES if m in sys.modules]
        if _verdict.files and loaded:  # too late: some modules already run as Python
            _verdict = Verdict({}, f"{', '.join(loaded)} imported before the hook")
        if _verdict.files:
            sys.meta_path.insert(0, _Finder(_verdict.files))
        elif not _verdict.reason.startswith(("CITY_NATIVE=0", "not built")):
            log.warning("running the processors as plain Python: %s", _verdict.reason)
    return _verdict


def build(build_dir: Path = BUILD_DIR, root: Path = ROOT, jobs: int | None = None) -> None:
    """Compile the modules with mypyc into `build_dir` and write its manifest (the old build goes first)."""
    began = time.monotonic()
    for module in MODULES:
        lines = coroutine_lines(source_of(module, root))
        if lines:
            raise NativeBuildError(
                f"{module} has coroutine code at line(s) {', '.join(map(str, lines))}; mypyc-compiled coroutines "
                "can crash when an exception is thrown into them, so move it to a module that stays Python"
            )
    shutil.rmtree(build_dir, ignore_errors=True)
    suffix = sysconfig.get_config_var("EXT_SUFFIX")
    sources = {module: digest(source_of(module, root)) for module in MODULES}
    with tempfile.TemporaryDirectory(prefix="citystream-native-") as tmp:
        stage = Path(tmp)
        # mypy reads the imported packages for their types; the copy keeps the build out of the tree.
        for package in ("processors", "streams", "geo"):
            shutil.copytree(
                root / package, stage / package, ignore=shutil.ignore_patterns("__pycache__", "_native", "*.so")
            )
        files = [str(source_of(module, stage).relative_to(stage)) for module in MODULES]
        # The types mypyc compiles against are the ones `make typecheck` checks (the pydantic plugin included);
        # the imported packages are read for their types only.
        (stage / "mypy.ini").write_text(
            "[mypy]\nplugins = pydantic.mypy\nignore_missing_imports = True\nfollow_imports = silent\n"
        )
        options = ["--config-file", "mypy.ini", *files]
        (stage / "setup.py").write_text(
            "from setuptools import setup\n"
            "from mypyc.build import mypycify\n"
            f"setup(name={GROUP!r}, ext_modules=mypycify({options!r}, opt_level='3', group_name={GROUP!r}))\n"
        )
        print(f"compiling {len(MODULES)} modules with mypyc (a minute or two) ...", file=sys.stderr, flush=True)
        command = [sys.executable, "setup.py", "build_ext", "--inplace", f"-j{jobs or os.cpu_count() or 1}"]
        done = subprocess.run(command, cwd=stage, capture_output=True, text=True)
        if done.returncode != 0:
            raise NativeBuildError(
                f"mypyc build failed (exit {done.returncode}); the processors stay plain Python:\n"
                f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
            )
        build_dir.mkdir(parents=True)
        library = f"{GROUP}__mypyc{suffix}"
        shutil.copy2(stage / library, build_dir / library)
        for module in MODULES:
            shutil.copy2(source_of(module, stage).with_suffix(suffix), build_dir / f"{module}{suffix}")
    manifest = {"ext_suffix": suffix, "library": library, "sources": sources}
    (build_dir / MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    print(f"compiled {len(MODULES)} modules into {build_dir} in {time.monotonic() - began:.0f}s", file=sys.stderr)
