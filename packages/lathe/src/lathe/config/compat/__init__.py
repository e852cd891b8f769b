"""Configs written for Axolotl: each Axolotl key's status in lathe, and the remap that applies it.

``axolotl_keys.json`` is Axolotl's key list (facts, from ``scripts/axolotl_keys.py``); ``table.py``
holds the explicit statuses; ``status.py`` computes each key's one status; ``remap.py`` applies
them to a raw config; ``docs.py`` renders docs/axolotl-compatibility.md.
"""

from lathe.config.compat.remap import CompatWarning, remap
from lathe.config.compat.status import Status, status_of

__all__ = ["CompatWarning", "Status", "remap", "status_of"]
