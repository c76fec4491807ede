"""Allow `python -m citystream`."""

from citystream.cli import main

raise SystemExit(main())
