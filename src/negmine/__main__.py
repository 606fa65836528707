"""``python -m negmine``: the command line (same as the ``negmine`` script)."""

from negmine.cli.main import entry

entry()
