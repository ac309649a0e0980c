"""One writer per output: a fenced lease taken and renewed with conditional puts (put-if-absent), no lock server.

The lease is a sequence of small objects under ``_lease/``, named ``<epoch>-<renewal>.json``. Each says who holds
the output, until when, and on which host and process. A run takes the lease by starting the next **epoch**: it
writes ``<epoch + 1>-000000.json`` with a conditional put, so of two runs that race only one put succeeds. The holder
renews by writing the next renewal of its own epoch (every third of the lease time, from a background thread). A
run may start a new epoch only once the newest object expired or was released, or at once when that holder ran on
this host and its process is gone (pid and process start time; a reused pid does not count as alive).

Fencing: the epoch is this run's fencing token. An epoch's first object is never deleted (only older renewals of
one's own epoch are), so a newer epoch is always visible and no name another run wrote is ever written again. A
writer checks before every write (parts, image files, kept parts, indexes, reports, commits) that no newer epoch
exists (``check``; a task that runs away from the run's process checks the same with the ``Fence`` it was given),
and its commit records carry its epoch; a record whose epoch was superseded before it was written (a writer paused
between its check and its put) is ignored by readers (``superseded``). So a writer that lost its lease cannot
commit, and stops at its next write.

S3 conditional writes (``If-None-Match: *``) are honoured by AWS S3, moto and SeaweedFS; a store without them must
not be shared by two writers. Expiry compares wall clocks of different machines: keep them within a few seconds
(NTP), well under the lease time.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import re
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import psutil

from legoedit_core.data.storage import Storage

log = logging.getLogger(__name__)

LEASE = "_lease"
KEEP = 3  # renewals kept behind the newest (an epoch's first object is always kept)
_NAME = re.compile(r"(\d+)(?:-(\d+))?\.json$")  # "<epoch>-<renewal>.json" (older outputs: "<generation>.json")


def lease_seconds() -> float:
    """How long a lease lasts without renewal (``LEGOEDIT_LEASE_SECONDS``, default 60)."""
    return float(os.environ.get("LEGOEDIT_LEASE_SECONDS", "60"))


class LeaseHeld(RuntimeError):
    """Another run holds the output's lease."""


class LeaseLost(RuntimeError):
    """This run's lease expired or another run took it: it must stop writing (never retried: the run stops)."""

    retryable = False  # faults.is_retryable: a retry would write without the lease


def _name(epoch: int, renewal: int) -> str:
    return f"{LEASE}/{epoch:010d}-{renewal:06d}.json"


def _process_started(pid: int) -> float | None:
    """The start time of process ``pid`` on this host, or None when there is no such process."""
    try:
        return psutil.Process(pid).create_time()
    except (psutil.NoSuchProcess, psutil.AccessDenied, ValueError):
        return None


def _this_process() -> dict[str, Any]:
    return {"host": socket.gethostname(), "pid": os.getpid(), "started": _process_started(os.getpid())}


def dead_holder(record: dict[str, Any]) -> str | None:
    """Why the holder of ``record`` is known to be gone (it ran on this host and its process is not there), or None
    when it may still be running (another host, or a record without a process)."""
    if record.get("host") != socket.gethostname() or not isinstance(record.get("pid"), int):
        return None
    started = _process_started(record["pid"])
    if started is None:
        return f"its process (pid {record['pid']}) is gone"
    if record.get("started") is not None and abs(started - record["started"]) > 1.0:
        return f"its process (pid {record['pid']}) is gone (that pid now belongs to a process started later)"
    return None


def _names(storage: Storage) -> list[tuple[int, int]]:
    """Every (epoch, renewal) under ``_lease/``, oldest first."""
    found = []
    for name in storage.glob(f"{LEASE}/*.json"):
        match = _NAME.search(name)
        if match:
            found.append((int(match.group(1)), int(match.group(2) or 0)))
    return sorted(found)


def _read(storage: Storage, epoch: int, renewal: int) -> dict[str, Any]:
    legacy = f"{LEASE}/{epoch:010d}.json"  # an output leased before epochs: its newest generation
    name = _name(epoch, renewal) if storage.exists(_name(epoch, renewal)) else legacy
    return json.loads(storage.read_bytes(name))


def fence(storage: Storage) -> Callable[[int, float], bool]:
    """A test of whether a record written at a time by the holder of an epoch came after a newer epoch began (a
    fenced writer's late put, which readers ignore). The lease is listed once, each epoch's start read once."""
    starts = [epoch for epoch, renewal in _names(storage) if renewal == 0]

    @functools.cache
    def began(epoch: int) -> float:
        return _read(storage, epoch, 0)["written"]

    def superseded(epoch: int, written: float) -> bool:
        later = next((start for start in starts if start > epoch), None)
        return later is not None and began(later) <= written

    return superseded


@dataclass(frozen=True)
class Fence:
    """A run's fencing token as it travels to its tasks (the ``Lease`` itself stays with the run and its renewing
    thread): the leased output and the run's epoch."""

    uri: str
    storage_options: dict[str, Any] | None
    epoch: int

    def check(self) -> None:
        """Raise ``LeaseLost`` when a newer epoch exists, or this epoch's newest record expired unrenewed."""
        storage = Storage(self.uri, self.storage_options)
        names = _names(storage)
        if names and names[-1][0] > self.epoch:
            holder = _read(storage, *names[-1]).get("holder", "another run")
            raise LeaseLost(f"{self.uri}: this run no longer owns the output: {holder} took the lease (epoch "
                            f"{names[-1][0]}, this run's is {self.epoch})")
        ours = [name for name in names if name[0] == self.epoch]
        if ours and _read(storage, *ours[-1])["expires"] <= time.time():
            raise LeaseLost(f"{self.uri}: this run no longer owns the output: its lease expired unrenewed")


class Lease:
    """This run's claim on an output prefix."""

    def __init__(self, storage: Storage, seconds: float | None = None) -> None:
        self.storage = storage
        self.seconds = seconds or lease_seconds()
        self.holder = f"{socket.gethostname()} pid {os.getpid()} run {uuid.uuid4().hex[:8]}"
        self.epoch = 0  # the fencing token: 0 until the lease is taken
        self.renewal = 0
        self.expires = 0.0
        self.lost: str | None = None
        self.took_over: str | None = None  # set when acquiring took the lease of a holder found dead
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def latest(self) -> tuple[int, dict[str, Any] | None]:
        """The newest epoch and its newest record (0, None when the output never had a lease)."""
        names = _names(self.storage)
        if not names:
            return 0, None
        return names[-1][0], _read(self.storage, *names[-1])

    def acquire(self) -> None:
        """Take the lease, or raise ``LeaseHeld`` naming the run that holds it."""
        epoch, record = self.latest()
        if record and not record.get("released") and record["holder"] != self.holder \
                and record["expires"] > time.time():
            gone = dead_holder(record)
            if gone is None:
                raise LeaseHeld(f"{self.storage.uri()} is being written by {record['holder']} (its lease runs for "
                                f"{record['expires'] - time.time():.0f} s more and is renewed while it runs): wait "
                                "for that run to finish, stop it, or use another output")
            self.took_over = f"{self.storage.uri()}: took over the lease of {record['holder']} at once: {gone}"
            log.warning(self.took_over)
        if not self._put(epoch + 1, 0):
            holder = self.latest()[1] or {}
            raise LeaseHeld(f"{self.storage.uri()}: {holder.get('holder', 'another run')} took the lease just now")
        for old_epoch, renewal in _names(self.storage):  # older epochs keep only their first object (the fence)
            if old_epoch < self.epoch and renewal:
                self.storage.delete(_name(old_epoch, renewal))
        self._thread = threading.Thread(target=self._renew_loop, name="legoedit-lease", daemon=True)
        self._thread.start()

    def check(self) -> None:
        """Raise ``LeaseLost`` unless this run still holds the lease: not expired, and no newer epoch in the store
        (call before every part and commit)."""
        if self.lost is None and time.time() >= self.expires:
            self.lost = "the lease expired before it could be renewed (was this run paused, or the store down?)"
        if self.lost is None:
            self._fence()
        if self.lost is not None:
            raise LeaseLost(f"{self.storage.uri()}: this run no longer owns the output: {self.lost}")

    def check_known(self) -> None:
        """``check`` without asking the store: ``LeaseLost`` when the renewing thread found the lease lost, or it
        expired (cheap enough to call before every task a run submits)."""
        if self.lost is not None or time.time() >= self.expires:
            self.check()

    def fence(self) -> Fence:
        """This run's fencing token, for tasks that write into the output away from the run's process."""
        return Fence(self.storage.uri(), self.storage.storage_options, self.epoch)

    def _fence(self) -> None:
        """Mark the lease lost when a newer epoch than ours exists."""
        newest = _names(self.storage)
        if newest and newest[-1][0] > self.epoch:
            holder = _read(self.storage, *newest[-1]).get("holder", "another run")
            self.lost = f"{holder} took the lease (epoch {newest[-1][0]}, this run's is {self.epoch})"

    def renew(self) -> None:
        self._fence()
        if self.lost is None and not self._put(self.epoch, self.renewal + 1):
            self.lost = f"{(self.latest()[1] or {}).get('holder', 'another run')} took the lease"

    def release(self) -> None:
        """Stop renewing and hand the output back at once (a released record)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if self.lost is None and self.epoch:
            self._fence()
            if self.lost is None:
                self._put(self.epoch, self.renewal + 1, released=True)

    def _renew_loop(self) -> None:
        while not self._stop.wait(self.seconds / 3):
            try:
                self.renew()
            except Exception as error:  # a store outage: the lease runs out unless a later renewal succeeds
                if time.time() >= self.expires:
                    self.lost = f"renewing failed: {error}"
            if self.lost is not None:
                return

    def _put(self, epoch: int, renewal: int, released: bool = False) -> bool:
        """Write ``epoch``'s ``renewal``; False if another run wrote that name first."""
        expires = time.time() + self.seconds
        record = {"holder": self.holder, "expires": expires, "released": released, "written": time.time(),
                  **_this_process()}
        try:
            self.storage.create_bytes(json.dumps(record).encode(), _name(epoch, renewal))
        except FileExistsError:
            if json.loads(self.storage.read_bytes(_name(epoch, renewal))).get("holder") != self.holder:
                return False  # (our own earlier try of a retried put counts as ours)
        self.epoch, self.renewal, self.expires = epoch, renewal, expires
        for old in range(max(1, renewal - KEEP - 5), renewal - KEEP):  # never renewal 0: it fences older epochs
            self.storage.delete(_name(epoch, old))
        return True
