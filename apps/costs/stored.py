"""Usage logs already stored on the server, in one folder per organization.

A log of tens of millions of rows is gigabytes: rather than upload it, an operator (or a sync job)
puts it under READINESS_USAGE_LOG_IMPORT_DIR/<org slug>/ and the org analyses it from there. A
name is resolved inside the org's own folder only: no "..", no absolute paths, no symlink that
leads out of it, so one org can never read another's files.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

SUFFIXES = (".csv", ".jsonl", ".ndjson", ".csv.gz", ".jsonl.gz", ".ndjson.gz")
MAX_LISTED = 500


class StoredLogError(ValueError):
    pass


def org_folder(root: Path, org_slug: str) -> Path:
    return Path(root) / org_slug


def resolve(root: Path, org_slug: str, name: str) -> Path:
    """The file `name` (a path relative to the org's folder), or StoredLogError saying why not."""
    name = (name or "").strip()
    if not name:
        raise StoredLogError("Give the name of a stored log.")
    if not name.lower().endswith(SUFFIXES):
        raise StoredLogError(f"A usage log is one of {', '.join(SUFFIXES)}.")
    folder = org_folder(root, org_slug).resolve()
    relative = Path(name)
    if relative.is_absolute() or ".." in relative.parts:
        raise StoredLogError("Give a name inside your organization's folder (no absolute path, no '..').")
    path = (folder / relative).resolve()
    if not path.is_relative_to(folder):
        raise StoredLogError("That name leads outside your organization's folder.")
    if not path.is_file():
        raise StoredLogError(f"No stored log named {name!r} in your organization's folder.")
    return path


def listing(root: Path, org_slug: str) -> list[dict]:
    """The org's stored logs, newest first: name (relative), size and modification time."""
    folder = org_folder(root, org_slug)
    if not folder.is_dir():
        return []
    resolved = folder.resolve()
    found = []
    for path in folder.rglob("*"):
        if not path.name.lower().endswith(SUFFIXES) or not path.is_file():
            continue
        if not path.resolve().is_relative_to(resolved):
            continue  # a symlink out of the folder is not this org's file
        stat = path.stat()
        found.append(
            {
                "name": path.relative_to(folder).as_posix(),
                "size_bytes": stat.st_size,
                "modified": datetime.fromtimestamp(stat.st_mtime, UTC).isoformat(),
            }
        )
    found.sort(key=lambda f: f["modified"], reverse=True)
    return found[:MAX_LISTED]
