"""One writer per output: a lease taken and renewed with conditional puts (put-if-absent), no lock server.

The lease is a sequence of small generation objects under ``_lease/`` (``0000000001.json``, ...). Each says who
holds the output and until when. A run takes the lease by writing the next generation with a conditional put: two
runs that race write the same name and only one put succeeds. The holder renews by writing the next generation
again (every third of the lease time, from a background thread); a put that fails means another run stole the
lease, which it may only do once the last generation expired, so the old holder stops committing. A finished run
writes a released generation, so the next run need not wait. Only the newest few generations are kept.

S3 conditional writes (``If-None-Match: *``) are honoured by AWS S3, moto and SeaweedFS; a store without them must
not be shared by two writers. Expiry compares wall clocks of different machines: keep them within a few seconds
(NTP), well under the lease time.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
import uuid
from typing import Any

from legoedit_core.data.storage import Storage

LEASE = "_lease"
KEEP = 3  # generations kept behind the newest


def lease_seconds() -> float:
    """How long a lease lasts without renewal (``LEGOEDIT_LEASE_SECONDS``, default 60)."""
    return float(os.environ.get("LEGOEDIT_LEASE_SECONDS", "60"))


class LeaseHeld(RuntimeError):
    """Another run holds the output's lease."""


class LeaseLost(RuntimeError):
    """This run's lease expired and another run took it: it must stop writing."""


def _name(generation: int) -> str:
    return f"{LEASE}/{generation:010d}.json"


class Lease:
    """This run's claim on an output prefix."""

    def __init__(self, storage: Storage, seconds: float | None = None) -> None:
        self.storage = storage
        self.seconds = seconds or lease_seconds()
        self.holder = f"{socket.gethostname()} pid {os.getpid()} run {uuid.uuid4().hex[:8]}"
        self.generation = 0
        self.expires = 0.0
        self.lost: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def latest(self) -> tuple[int, dict[str, Any] | None]:
        """The newest generation and its record (0, None when the output never had a lease)."""
        names = self.storage.glob(f"{LEASE}/*.json")
        if not names:
            return 0, None
        generation = int(names[-1].rsplit("/", 1)[1].split(".")[0])
        return generation, json.loads(self.storage.read_bytes(_name(generation)))

    def acquire(self) -> None:
        """Take the lease, or raise ``LeaseHeld`` naming the run that holds it."""
        generation, record = self.latest()
        if record and not record.get("released") and record["holder"] != self.holder \
                and record["expires"] > time.time():
            raise LeaseHeld(f"{self.storage.uri()} is being written by {record['holder']} (its lease runs for "
                            f"{record['expires'] - time.time():.0f} s more and is renewed while it runs): wait for "
                            "that run to finish, stop it, or use another output")
        if not self._put(generation + 1):
            holder = self.latest()[1] or {}
            raise LeaseHeld(f"{self.storage.uri()}: {holder.get('holder', 'another run')} took the lease just now")
        self._thread = threading.Thread(target=self._renew_loop, name="legoedit-lease", daemon=True)
        self._thread.start()

    def check(self) -> None:
        """Raise ``LeaseLost`` unless this run still holds the lease (call before every commit)."""
        if self.lost is None and time.time() >= self.expires:
            self.lost = "the lease expired before it could be renewed (is the object store reachable?)"
        if self.lost is not None:
            raise LeaseLost(f"{self.storage.uri()}: this run no longer owns the output: {self.lost}")

    def renew(self) -> None:
        if not self._put(self.generation + 1):
            self.lost = f"{(self.latest()[1] or {}).get('holder', 'another run')} took the lease"

    def release(self) -> None:
        """Stop renewing and hand the output back at once (a released generation)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if self.lost is None and self.generation:
            self._put(self.generation + 1, released=True)

    def _renew_loop(self) -> None:
        while not self._stop.wait(self.seconds / 3):
            try:
                self.renew()
            except Exception as error:  # a store outage: the lease runs out unless a later renewal succeeds
                if time.time() >= self.expires:
                    self.lost = f"renewing failed: {error}"
            if self.lost is not None:
                return

    def _put(self, generation: int, released: bool = False) -> bool:
        """Write generation ``generation``; False if another run wrote it first."""
        expires = time.time() + self.seconds
        record = {"holder": self.holder, "expires": expires, "released": released, "written": time.time()}
        try:
            self.storage.create_bytes(json.dumps(record).encode(), _name(generation))
        except FileExistsError:
            if json.loads(self.storage.read_bytes(_name(generation))).get("holder") != self.holder:
                return False  # (our own earlier try of a retried put counts as ours)
        self.generation, self.expires = generation, expires
        for old in range(max(1, generation - KEEP - 5), generation - KEEP):
            self.storage.delete(_name(old))
        return True
