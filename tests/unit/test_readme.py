"""Keep the README true: every setting is documented, and the quick start is the two make targets."""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import BaseModel

from streams.settings import Settings

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


def setting_names(model: type[BaseModel], prefix: str = "CITY_") -> list[str]:
    """Return the environment variable of every leaf setting."""
    names = []
    for name, field in model.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            names += setting_names(annotation, f"{prefix}{name.upper()}__")
        else:
            names.append(f"{prefix}{name.upper()}")
    return names


def test_every_setting_is_in_the_configuration_table() -> None:
    documented = set(re.findall(r"^\| `(CITY_[A-Z_]+)` \|", README, flags=re.M))
    assert set(setting_names(Settings)) == documented


def test_quick_start_is_exactly_make_demo_and_make_test() -> None:
    quick = README.split("## Quick start", 1)[1].split("##", 1)[0]
    block = quick.split("```sh", 1)[1].split("```", 1)[0]
    commands = [line.split("#")[0].strip() for line in block.strip().splitlines()]
    assert commands == ["make demo", "make test"]
