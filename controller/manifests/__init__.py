"""YAML manifests -> validated Corral objects; every problem named at file:line:column.

`load_paths` reads files and directories (`*.yaml`/`*.yml`, recursively, sorted,
multi-document), validates each document against its kind's pydantic model, then checks
references across the whole set. It reports every error it finds, never only the first, and
never writes a file. `load_text` does the same for one text.
"""

from controller.manifests.files import MANIFEST_SUFFIXES, iter_manifest_files
from controller.manifests.loader import load_paths, load_text
from controller.manifests.result import (
    Limits,
    LoadedObject,
    LoadResult,
    Loc,
    ManifestError,
    Origin,
    format_loc,
)

__all__ = [
    "MANIFEST_SUFFIXES",
    "Limits",
    "LoadResult",
    "LoadedObject",
    "Loc",
    "ManifestError",
    "Origin",
    "format_loc",
    "iter_manifest_files",
    "load_paths",
    "load_text",
]
