"""Object storage through fsspec (local paths, ``s3://``, ``memory://`` alike), with retries for transient failures.

Every read and write of the pipeline goes through ``Storage`` so that one retry policy (tenacity, exponential
backoff) covers them all. For ``s3://`` the client's own retry loops are turned off, so that a flaky endpoint is
retried in one place, with one log line per retry, and a permanent failure surfaces as a ``StorageError`` that
names the operation and the key.
"""

from __future__ import annotations

import errno
import functools
import logging
import os
import posixpath
import uuid
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Any

import fsspec
from fsspec.core import url_to_fs
from fsspec.implementations.local import LocalFileSystem
from tenacity import Retrying, before_sleep_log, retry_if_exception, stop_after_attempt, wait_exponential

log = logging.getLogger(__name__)

# Errors that mean "this key or this request is wrong": retrying cannot help.
_PERMANENT = (FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError, FileExistsError)
# Libraries whose own errors (EndpointConnectionError, ClientConnectorError, ...) are network trouble.
_NETWORK_LIBRARIES = {"botocore", "aiobotocore", "aiohttp", "urllib3", "requests"}
_S3 = ("s3", "s3a")
_FULL = (errno.ENOSPC, errno.EDQUOT)  # a full disk or quota: retrying at once cannot help
TEMPORARY_SUFFIX = ".tmp"  # local writes go through ``.<name>.<random>.tmp`` files (a dot name: readers skip it)


class StorageError(OSError):
    """The object store kept failing (or refused) an operation; the message names the operation and the key."""


class TooLarge(ValueError):
    """An object that is not a regular file, or is larger than the caller allows."""


def is_transient(error: BaseException) -> bool:
    """Whether an object-store error is worth retrying: network trouble and server errors, not missing keys nor a
    full disk."""
    if isinstance(error, _PERMANENT) or getattr(error, "errno", None) in _FULL:
        return False
    if isinstance(error, OSError):  # s3fs maps 5xx / throttling to OSError(EIO, EBUSY); sockets raise ConnectionError
        return True
    return type(error).__module__.partition(".")[0] in _NETWORK_LIBRARIES


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently a transient failure is retried (exponential backoff, capped).

    The defaults come from ``LEGOEDIT_STORAGE_ATTEMPTS`` / ``LEGOEDIT_STORAGE_WAIT`` when set, so that every
    worker of a cluster picks up the same policy from its environment.
    """

    attempts: int = field(default_factory=lambda: int(os.environ.get("LEGOEDIT_STORAGE_ATTEMPTS", "5")))
    initial_wait: float = field(default_factory=lambda: float(os.environ.get("LEGOEDIT_STORAGE_WAIT", "0.5")))
    max_wait: float = 10.0

    def retrying(self) -> Retrying:
        return Retrying(
            stop=stop_after_attempt(self.attempts),
            wait=wait_exponential(multiplier=self.initial_wait, max=self.max_wait),
            retry=retry_if_exception(is_transient),
            before_sleep=before_sleep_log(log, logging.WARNING),
            reraise=True,
        )


def _client_options(protocol: str, options: dict[str, Any]) -> dict[str, Any]:
    """Turn off botocore's own retries (unless the caller set them): ours are the only ones."""
    if protocol not in _S3:
        return options
    config = dict(options.get("config_kwargs") or {})
    config.setdefault("retries", {"max_attempts": 1, "mode": "standard"})
    return dict(options, config_kwargs=config)


def _temporary(path: str) -> str:
    """A fresh temporary name beside ``path``: a dot name, so Parquet readers skip it if a crash leaves it."""
    return posixpath.join(posixpath.dirname(path), f".{posixpath.basename(path)}.{uuid.uuid4().hex}{TEMPORARY_SUFFIX}")


class Storage:
    """A root location (directory or prefix) in some fsspec filesystem, with retried operations.

    Paths given to the methods are relative to the root unless they carry a protocol (``s3://b/k``) or are
    absolute; ``uri`` turns a path back into a full URI.
    """

    def __init__(self, root: str, storage_options: dict[str, Any] | None = None,
                 retry: RetryPolicy | None = None) -> None:
        protocol = fsspec.utils.get_protocol(root)
        self.storage_options = dict(storage_options or {})
        self.fs, self.root = url_to_fs(root, **_client_options(protocol, self.storage_options))
        self.root = self.root.rstrip("/") or "/"
        self.retry = retry or RetryPolicy()
        self.is_local = isinstance(self.fs, LocalFileSystem)
        if protocol in _S3:
            self.fs.retries = 1  # s3fs's own retry loop (a class setting, not a constructor option): ours instead

    def path(self, *parts: str) -> str:
        """The filesystem path of ``parts`` joined under the root (an absolute path or full URI is kept as is)."""
        if parts and ("://" in parts[0] or parts[0].startswith("/")):
            return self.fs._strip_protocol(posixpath.join(*parts))
        return posixpath.join(self.root, *parts)

    def uri(self, *parts: str) -> str:
        """The full URI of a path, with its protocol (local paths stay plain paths)."""
        path = self.path(*parts)
        return path if self.is_local else self.fs.unstrip_protocol(path)

    def _call(self, operation: str, path: str, function, *args: Any) -> Any:
        try:
            for attempt in self.retry.retrying():
                with attempt:
                    return function(*args)
        except _PERMANENT:
            raise
        except Exception as error:
            tries = self.retry.attempts if is_transient(error) else 1
            full = " (the disk is full)" if getattr(error, "errno", None) in _FULL else ""
            raise StorageError(f"object store: {operation} {path} failed after {tries} attempt(s){full}: "
                               f"{type(error).__name__}: {error}") from error
        raise AssertionError("unreachable")

    def read_bytes(self, *parts: str) -> bytes:
        path = self.path(*parts)
        return self._call("read", path, self.fs.cat_file, path)

    def read_capped(self, limit: int, *parts: str) -> bytes:
        """A regular object's bytes, refused (``ValueError``) when it is not one or holds more than ``limit`` bytes.

        The size the store reports is checked before anything is read, and only that many bytes are asked for (a
        ranged read), so an object that grows meanwhile cannot make us read more.
        """
        path = self.path(*parts)
        info = self._call("check", path, self.fs.info, path)
        if info.get("type") not in (None, "file"):
            raise TooLarge(f"{self.uri(*parts)}: refused: not a regular file ({info.get('type')})")
        size = info.get("size")
        if (size or 0) > limit:
            raise TooLarge(f"{self.uri(*parts)}: refused: {size} bytes, above {limit}")
        if size == 0:
            return b""
        # A range within the reported size; limit + 1 when the store reports no size, so that more than ``limit``
        # bytes show up as too many. (Keywords: s3fs's cat_file takes a version id before start and end.)
        read_range = functools.partial(self.fs.cat_file, start=0, end=size if size else limit + 1)
        data = self._call("read", path, read_range, path)
        if len(data) > limit:
            raise TooLarge(f"{self.uri(*parts)}: refused: more than {limit} bytes")
        return data

    def write_bytes(self, data: bytes, *parts: str) -> None:
        """Write a whole object. On object stores a single PUT is atomic; locally it goes through a rename."""
        path = self.path(*parts)
        if self.is_local:
            self._call("write", path, self._write_local, _temporary(path), path, data)
        else:
            self._call("write", path, self.fs.pipe_file, path, data)

    def create_bytes(self, data: bytes, *parts: str) -> None:
        """Write a whole object only if none is there yet (a conditional put), else ``FileExistsError``.

        On S3 this is a PUT with ``If-None-Match: *`` (AWS, moto, SeaweedFS and MinIO honour it); locally a hard
        link of a complete temporary file, which fails if the name exists. A retried PUT whose first try landed
        also answers ``FileExistsError``: callers read the object back to tell their own write from another's.
        """
        path = self.path(*parts)
        if self.is_local:
            self._call("create", path, self._create_local, _temporary(path), path, data)
        else:
            self._call("create", path, functools.partial(self.fs.pipe_file, mode="create"), path, data)

    def _create_local(self, temporary: str, path: str, data: bytes) -> None:
        self.fs.makedirs(posixpath.dirname(path), exist_ok=True)
        try:
            self.fs.pipe_file(temporary, data)
            os.link(temporary, path)
        finally:
            with suppress(FileNotFoundError):
                os.unlink(temporary)

    def delete(self, *parts: str) -> None:
        """Remove an object; one that is already gone is fine."""
        path = self.path(*parts)
        with suppress(FileNotFoundError):
            self._call("delete", path, self.fs.rm_file, path)

    def _write_local(self, temporary: str, path: str, data: bytes) -> None:
        self.fs.makedirs(posixpath.dirname(path), exist_ok=True)
        try:
            self.fs.pipe_file(temporary, data)
            os.replace(temporary, path)
        finally:  # a failed write (a full disk) leaves no partial temporary behind
            with suppress(FileNotFoundError):
                os.unlink(temporary)

    def remove_temporaries(self) -> list[str]:
        """Delete the temporary files that killed writers left under the root (local disks only; call while
        holding the output's lease, so that no live writer owns one); the paths removed."""
        if not self.is_local:
            return []
        removed = []
        for folder, _, names in os.walk(self.root):
            for name in names:
                if name.startswith(".") and name.endswith(TEMPORARY_SUFFIX):
                    with suppress(FileNotFoundError):
                        os.unlink(os.path.join(folder, name))
                        removed.append(os.path.join(folder, name))
        return removed

    def exists(self, *parts: str) -> bool:
        path = self.path(*parts)
        return self._call("check", path, self.fs.exists, path)

    def listing(self, *parts: str) -> list[dict[str, Any]]:
        """The store's metadata of each object in a folder (name, size, ETag or mtime, ...), fresh, nothing read;
        an empty list for a folder that does not exist."""
        path = self.path(*parts)
        self.fs.invalidate_cache(path)
        try:
            return self._call("list", path, functools.partial(self.fs.ls, detail=True), path)
        except FileNotFoundError:
            return []

    def glob(self, pattern: str) -> list[str]:
        """Full URIs of the matching objects, sorted (a stable order for sharding)."""
        path = self.path(pattern)
        self.fs.invalidate_cache()
        found = self._call("list", path, self.fs.glob, path)
        return sorted(p if self.is_local else self.fs.unstrip_protocol(p) for p in found)

    def url(self, *parts: str, expires: int = 7 * 24 * 3600) -> str | None:
        """A URL a browser can open (presigned on S3), or None when the store has no such thing."""
        path = self.path(*parts)
        if self.is_local:
            return f"file://{path}"
        try:
            return self.fs.url(path, expires=expires)
        except (AttributeError, NotImplementedError, TypeError):
            return None
