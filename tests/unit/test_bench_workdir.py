"""The throughput bench removes its work dir (broker data, logs: hundreds of MB) after a good run only."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from bench import throughput


def _fake_run(fail: bool) -> Callable[[argparse.Namespace, list[str], Path], None]:
    def run(args: argparse.Namespace, cases: list[str], tmp: Path) -> None:
        (tmp / "kafka").mkdir()
        (tmp / "worker-0.log").write_text("a worker's log\n")
        if fail:
            raise RuntimeError("worker 0 exited with code 1")

    return run


@pytest.fixture
def workdir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    made = tmp_path / "citystream-bench-x"

    def mkdtemp(prefix: str) -> str:
        made.mkdir()
        return str(made)

    monkeypatch.setattr(throughput.tempfile, "mkdtemp", mkdtemp)
    return made


def test_a_good_run_removes_its_work_dir(monkeypatch: pytest.MonkeyPatch, workdir: Path) -> None:
    monkeypatch.setattr(throughput, "run", _fake_run(fail=False))
    monkeypatch.setattr(sys, "argv", ["throughput.py", "--cases", "d"])
    throughput.main()
    assert not workdir.exists()


def test_keep_workdir_keeps_it(
    monkeypatch: pytest.MonkeyPatch, workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(throughput, "run", _fake_run(fail=False))
    monkeypatch.setattr(sys, "argv", ["throughput.py", "--cases", "d", "--keep-workdir"])
    throughput.main()
    assert (workdir / "worker-0.log").exists()
    assert str(workdir) in capsys.readouterr().err


def test_a_failed_run_keeps_its_logs_and_names_them(
    monkeypatch: pytest.MonkeyPatch, workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(throughput, "run", _fake_run(fail=True))
    monkeypatch.setattr(sys, "argv", ["throughput.py", "--cases", "d"])
    with pytest.raises(RuntimeError, match="worker 0 exited"):
        throughput.main()
    assert (workdir / "worker-0.log").read_text() == "a worker's log\n"
    assert f"logs of this run are in {workdir}" in capsys.readouterr().err
