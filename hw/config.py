"""Attaching a validated config to a component."""

from __future__ import annotations

from golden.params import BlockConfig

__all__ = ["configure"]


def configure(component, config_class: type[BlockConfig], config, params):
    """Return ``config_class.coerce(config, **params)`` for a component's ``__init__``.

    Amaranth registers an elaboratable before ``__init__`` runs and warns when it is never
    used; a component whose parameters were rejected was never built, so it is silenced.
    """
    try:
        return config_class.coerce(config, **params)
    except (TypeError, ValueError):
        component._MustUse__silence = True
        raise
