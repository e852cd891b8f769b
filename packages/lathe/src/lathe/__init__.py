"""lathe: fine-tune large language models from one YAML file."""

from lathe.__about__ import __version__

__all__ = ["__version__"]
