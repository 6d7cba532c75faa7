"""Hooks and runner-side helpers (registered in ``mmseg.registry.HOOKS``)."""
