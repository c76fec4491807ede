"""Stream processors: one package per sensor domain, plus the batch runner and Redis sink they share."""

from processors import native

native.install()  # the compiled build of the hot modules, when it matches their sources (processors/native.py)
