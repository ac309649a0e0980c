"""Input confinement: a catalogue row's image and mask references reach only the dataset's own files.

A reference resolves inside the dataset's root (its folder, or its bucket prefix) or inside one of the extra roots
the config names (``inputs.extra_roots``); a scheme listed in ``inputs.schemes`` (e.g. ``https``) is allowed
anywhere. Everything else is refused, per row (``bad_input``): absolute paths and ``..`` that leave the root,
symlinks leading out of it (paths are resolved with ``realpath`` first), ``file://`` outside it, other buckets and
prefixes, other schemes, and hosts that resolve to loopback, private or link-local addresses (unless
``inputs.private_hosts`` is set).

Only regular files are opened (a named pipe, ``/dev/zero`` or a folder is refused without reading a byte; local
files are opened non-blocking and without following a last-moment symlink), and at most
``inputs.max_image_bytes`` are read, checked against the size the store reports before reading and again on the
bytes read.

URLs (opt-in, through ``inputs.extra_roots`` or ``inputs.schemes``) are normalised before they are checked:
percent-escapes decoded, dot segments folded, the host lower-cased, so ``/public/../private/`` and ``%2e%2e`` are
what they lead to; the normalised URL is what is requested. Redirects are followed by hand, each target checked
again (root, scheme, public host) before it is requested, at most ``MAX_REDIRECTS``. The bytes are counted as they
arrive and the read stops past the cap, whatever the headers say (a server may ignore ranges and send no length).
Each image has one deadline, ``inputs.url_seconds``, for the whole read (redirects included): a server that sends
a byte a second is cut off then, however short each wait between bytes.
A host that resolves to a public address when checked and to a private one when connected (DNS rebinding) is not
caught: keep ``inputs.schemes`` off for untrusted catalogues, and name URL roots instead.

A failure of the dataset's own store is a machinery fault (``StorageError``, the shard is retried); a reference
outside it (an allowed URL that does not answer) is the row's problem and becomes ``RefusedInput``.
"""

from __future__ import annotations

import ipaddress
import os
import posixpath
import socket
import stat
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, unquote, urljoin, urlsplit

import fsspec
import httpx

from legoedit_core.data.storage import Storage, StorageError, TooLarge
from legoedit_core.settings.inputs import InputSettings

_REMOTE_HOSTS = ("http", "https")
MAX_REDIRECTS = 5
URL_TIMEOUT_SECONDS = 30.0


class RefusedInput(ValueError):
    """A reference this row may not read: outside every root, not a regular file, too large, or unreachable."""


@dataclass(frozen=True)
class _Root:
    protocol: str
    path: str  # realpath for local roots; a normalised key prefix otherwise

    def holds(self, protocol: str, path: str) -> bool:
        return protocol == self.protocol and (path == self.path or path.startswith(self.path.rstrip("/") + "/"))


def _split(reference: str) -> tuple[str, str]:
    """(protocol, normalised path): local paths resolved with realpath, other paths with ``..`` folded."""
    protocol = fsspec.utils.get_protocol(reference)
    if protocol == "file":
        path = reference[len("file://"):] if reference.startswith("file://") else reference
        return "file", os.path.realpath(path)
    if protocol in _REMOTE_HOSTS:
        return protocol, normal_url(reference)
    path = reference.split("://", 1)[1]
    normal = posixpath.normpath("/" + path).lstrip("/")  # "/.." folds to "/": a key cannot climb out of the bucket
    return protocol, normal


def normal_url(url: str) -> str:
    """``scheme://host[:port]/path`` with percent-escapes decoded (repeatedly: ``%252e`` too), backslashes as
    slashes and dot segments folded; query and fragment dropped. What is checked is what is requested."""
    parts = urlsplit(url)
    path = parts.path
    for _ in range(4):
        decoded = unquote(path)
        if decoded == path:
            break
        path = decoded
    path = posixpath.normpath("/" + path.replace("\\", "/")) + ("/" if path.endswith("/") and path != "/" else "")
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme.lower()}://{(parts.hostname or '').lower()}{port}{path.replace('//', '/')}"


@dataclass
class InputReader:
    """Reads the images and masks of a dataset's rows, confined to ``root`` and the config's extra roots."""

    root: str
    storage_options: dict[str, Any] | None = None
    settings: InputSettings = field(default_factory=InputSettings)

    def __post_init__(self) -> None:
        self._own = Storage(self.root, self.storage_options)
        self._roots = [_Root(*_split(r if "://" in r or r.startswith("/") else os.path.abspath(r)))
                       for r in (self._own.uri(), *self.settings.extra_roots)]

    def read(self, value: str | bytes) -> bytes:
        """The bytes of an image reference (or embedded bytes), or ``RefusedInput`` / ``FileNotFoundError``."""
        cap = self.settings.max_image_bytes
        if isinstance(value, bytes):
            return _capped(value, cap, "embedded image")
        reference = value if "://" in value or value.startswith("/") else self._own.uri(value)
        protocol, path, inside_own = self._allowed(reference, value)
        if protocol == "file":
            return _read_local(path, cap, value)
        if protocol in _REMOTE_HOSTS:
            return self._read_url(path, cap, value)
        try:
            if inside_own:
                return self._own.read_capped(cap, self._own.fs.unstrip_protocol(path))
            return Storage(reference, self.storage_options).read_capped(cap)
        except TooLarge as error:
            raise RefusedInput(str(error)) from None
        except (StorageError, OSError) as error:
            if inside_own or isinstance(error, FileNotFoundError):
                raise  # the dataset's own store failing is the machinery's fault: the shard is retried
            raise RefusedInput(f"{value}: could not be read: {error}") from error


    def _allowed(self, reference: str, name: str) -> tuple[str, str, bool]:
        """(protocol, normalised path, inside the dataset's own root) of a reference this row may read, or
        ``RefusedInput``."""
        protocol, path = _split(reference)
        inside_own = self._roots[0].holds(protocol, path)
        if not inside_own and not any(r.holds(protocol, path) for r in self._roots[1:]) \
                and protocol not in self.settings.schemes:
            where = "" if reference == name else f" (it leads to {path})"
            raise RefusedInput(f"{name}: refused: outside the dataset's root {self.root}{where} (allow other roots "
                               "or schemes with inputs.extra_roots / inputs.schemes)")
        if protocol in _REMOTE_HOSTS and not self.settings.private_hosts:
            _check_public_host(path)
        return protocol, path, inside_own

    def _read_url(self, url: str, cap: int, name: str) -> bytes:
        """An allowed URL's bytes, at most ``cap`` counted as they arrive, within ``inputs.url_seconds`` in all;
        every redirect target is checked again before it is requested."""
        seconds = self.settings.url_seconds
        deadline = time.monotonic() + seconds
        try:
            with httpx.Client(follow_redirects=False, timeout=min(URL_TIMEOUT_SECONDS, seconds)) as client:
                for _ in range(MAX_REDIRECTS + 1):
                    with client.stream("GET", _request_url(url)) as response:
                        if response.is_redirect:
                            target = urljoin(url, response.headers.get("location", ""))
                            if not target.lower().startswith(("http://", "https://")):
                                raise RefusedInput(f"{name}: refused: redirected to {target!r}, not an http(s) URL")
                            url = self._allowed(target, f"{name} (redirected to {target})")[1]
                            continue
                        if response.status_code != 200:
                            raise RefusedInput(f"{name}: could not be read: HTTP {response.status_code}")
                        return _received(response, cap, name, deadline, seconds)
        except httpx.HTTPError as error:
            raise RefusedInput(f"{name}: could not be read: {type(error).__name__}: {error}") from None
        raise RefusedInput(f"{name}: refused: more than {MAX_REDIRECTS} redirects")


def _request_url(url: str) -> str:
    """A normalised URL as sent: its path percent-encoded again (``..`` is folded already)."""
    scheme, rest = url.split("://", 1)
    host, _, path = rest.partition("/")
    return f"{scheme}://{host}/{quote(path)}"


def _received(response: httpx.Response, cap: int, name: str, deadline: float, seconds: float) -> bytes:
    """The body, counted as it arrives: past ``cap`` bytes or past ``deadline`` the read stops (whatever
    Content-Length said)."""
    chunks, size = [], 0
    for chunk in response.iter_bytes():
        if time.monotonic() > deadline:
            raise RefusedInput(f"{name}: refused: not received within {seconds:g} s (inputs.url_seconds; "
                               f"{size} bytes had arrived)")
        size += len(chunk)
        if size > cap:
            raise RefusedInput(f"{name}: refused: more than {cap} bytes (inputs.max_image_bytes)")
        chunks.append(chunk)
    return b"".join(chunks)


def _capped(data: bytes, cap: int, name: str) -> bytes:
    if len(data) > cap:
        raise RefusedInput(f"{name}: refused: more than {cap} bytes (inputs.max_image_bytes)")
    return data


def _read_local(path: str, cap: int, name: str) -> bytes:
    """A regular file's bytes, at most ``cap``: opened non-blocking (a FIFO cannot hang) and without following a
    symlink swapped in after ``realpath``."""
    flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        descriptor = os.open(path, flags)
    except FileNotFoundError:
        raise FileNotFoundError(2, "no such file", name) from None
    except OSError as error:
        raise RefusedInput(f"{name}: refused: {error.strerror}") from None
    try:
        info = os.fstat(descriptor)
        if not stat.S_ISREG(info.st_mode):
            raise RefusedInput(f"{name}: refused: not a regular file")
        if info.st_size > cap:
            raise RefusedInput(f"{name}: refused: {info.st_size} bytes, above {cap} (inputs.max_image_bytes)")
        chunks, size = [], 0
        while size <= cap:
            chunk = os.read(descriptor, min(1 << 20, cap + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        return _capped(b"".join(chunks), cap, name)
    finally:
        os.close(descriptor)


def _check_public_host(url: str) -> None:
    """Refuse a URL whose host resolves to a loopback, private, link-local or reserved address."""
    host = urlsplit(url).hostname or ""
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(host, None)}
    except socket.gaierror as error:
        raise RefusedInput(f"{url}: could not be read: cannot resolve {host!r} ({error})") from None
    for address in addresses:
        if not ipaddress.ip_address(address.split("%")[0]).is_global:
            raise RefusedInput(f"{url}: refused: {host} is a loopback or private address "
                               "(allow with inputs.private_hosts)")
