"""Importable logic behind the command-line tools in ``tools/``."""
