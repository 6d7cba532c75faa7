"""Imported first by every tool: make the checkout importable and load the plugin.

``import mmseg_ext`` checks the environment; when it is broken this prints the one-line
message (problem + fix) and exits with status 2 instead of a traceback.
"""
import os.path as osp
import sys

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

try:
    import mmseg_ext  # noqa: F401  (registers the plugin's modules)
except ImportError as exc:
    if type(exc).__name__ != 'EnvironmentCheckError':
        raise
    print(f'error: {exc}', file=sys.stderr)
    sys.exit(2)
