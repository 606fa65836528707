"""The ``negmine`` command line: ``main(argv) -> exit code``."""
