"""Row fingerprints: what decides a row's edit, hashed, so that a rerun over a changed catalogue edits only the rows
whose fingerprint changed.

A fingerprint covers the row's id, instruction, seed, the problem found in its record (if any), the content
identity of its image and mask, and the run's config fingerprint. The content identity of a file is what the store
says about it in a folder listing (S3's ETag, a checksum, or size + mtime + inode on a local disk), so no image is
opened: one listing per folder, never one read per row. Embedded image bytes (Parquet datasets) are hashed: there
the bytes are the row. References outside the dataset's root (``inputs.extra_roots``, ``https://``) are not listed;
they are identified by the reference alone (a file replaced there under the same name is not noticed).

Size + modification time (+ inode) is what a local disk says; a file rewritten in place with the same size and
mtime (a tool that restores the mtime, a store whose clock is coarse) keeps its identity. For such stores,
``pipeline.content_hash`` (``legoedit run --content-hash``) identifies every file inside the dataset's root by a
hash of its bytes instead: every image is read once per run (no pixel is decoded). Turning it on or off changes
every fingerprint, so the next run re-edits every row once.
"""

from __future__ import annotations

import hashlib
import json
import os
import posixpath
from collections.abc import Sequence

from legoedit_core.data.datasets import Dataset, InputRow
from legoedit_core.data.storage import Storage

# Listing keys that identify an object's content, best first (S3 / GCS / Azure / local).
CONTENT_KEYS = ("ETag", "etag", "checksum", "md5Hash", "content_md5", "crc32c")
FALLBACK_KEYS = ("size", "LastModified", "mtime", "ino", "VersionId")


def entry_identity(entry: dict) -> str:
    """A file's content identity from its listing entry: the store's checksum when it has one, else size and
    modification time (and inode: a file replaced by a rename gets a new one)."""
    for key in CONTENT_KEYS:
        if entry.get(key):
            return f"{key}={entry[key]}:{entry.get('size')}"
    return ":".join(f"{key}={entry[key]}" for key in FALLBACK_KEYS if entry.get(key) is not None)


class ContentIdentities:
    """Content identities of a dataset's files, each folder listed once (lazily, when a row names a file in it)."""

    def __init__(self, dataset: Dataset, content_hash: bool = False) -> None:
        self.storage = Storage(dataset.root, dataset.storage_options)
        self.content_hash = content_hash
        self.folders: dict[str, str] = {}  # a folder as rows name it -> as the store has it (local links resolved)
        self.listings: dict[str, dict[str, dict]] = {}  # a folder -> its files' listing entries, by name
        self.root = self._folder(self._path(self.storage.uri())).rstrip("/") + "/"

    def _path(self, reference: str) -> str:
        """The store's path of a reference (``..`` folded)."""
        local_path = self.storage.is_local and reference.startswith("/")
        return posixpath.normpath(reference if local_path else self.storage.fs._strip_protocol(reference))

    def _folder(self, folder: str) -> str:
        if folder not in self.folders:  # one realpath per folder, not per row
            self.folders[folder] = os.path.realpath(folder) if self.storage.is_local else folder
        return self.folders[folder]

    def _entry(self, folder: str, name: str) -> dict | None:
        if folder not in self.listings:
            uri = folder if self.storage.is_local else self.storage.fs.unstrip_protocol(folder)
            self.listings[folder] = {entry["name"].rsplit("/", 1)[-1]: entry for entry in self.storage.listing(uri)
                                     if entry.get("type") != "directory"}
        return self.listings[folder].get(name)

    def of(self, value: str | bytes | None) -> str | None:
        """The content identity of an image or mask value (None when the row has none)."""
        if value is None:
            return None
        if isinstance(value, bytes):
            return "bytes:" + hashlib.blake2b(value, digest_size=16).hexdigest()
        folder, name = posixpath.split(self._path(value))
        folder = self._folder(folder)
        if not (folder + "/").startswith(self.root):
            return f"ref:{value}"
        entry = self._entry(folder, name)
        if entry is not None and entry.get("islink"):  # a local link: the file it leads to, as the reader reads it
            target = os.path.realpath(posixpath.join(folder, name))
            if not target.startswith(self.root):
                return f"ref:{value}"
            entry = self._entry(*posixpath.split(target))
        if entry is None:
            return "missing"
        return self._digest(entry["name"]) if self.content_hash else entry_identity(entry)

    def _digest(self, path: str) -> str:
        """A hash of a file's bytes, read in chunks (the file as the store has it)."""
        digest = hashlib.blake2b(digest_size=16)
        uri = path if self.storage.is_local else self.storage.fs.unstrip_protocol(path)
        with self.storage.fs.open(uri, "rb") as handle:
            while chunk := handle.read(1 << 20):
                digest.update(chunk)
        return f"blake2b={digest.hexdigest()}"


def row_fingerprint(row: InputRow, identities: ContentIdentities, config_fingerprint: str) -> str:
    """The hash of what decides a row's edit (see the module's docstring)."""
    decided = [row.id, row.instruction, row.seed, row.error, identities.of(row.image), identities.of(row.mask),
               config_fingerprint]
    return hashlib.blake2b(json.dumps(decided).encode("utf-8", "surrogatepass"), digest_size=12).hexdigest()


def fingerprints(dataset: Dataset, config_fingerprint: str, rows: Sequence[InputRow] | None = None,
                 content_hash: bool = False) -> list[str]:
    """The fingerprint of every row of ``dataset``, in dataset order, from its listing and its stores' metadata
    (with ``content_hash``, from its files' bytes)."""
    rows = dataset.read_rows(0, len(dataset)) if rows is None else rows
    identities = ContentIdentities(dataset, content_hash)
    return [row_fingerprint(row, identities, config_fingerprint) for row in rows]
