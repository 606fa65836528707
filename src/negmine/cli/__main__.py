"""``python -m negmine.cli``."""

from negmine.cli.main import entry

entry()
