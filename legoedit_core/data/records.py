"""One dataset record checked and normalised into a row's values: the only place a row's values are judged.

Every value of a record comes from an untrusted file (JSONL, CSV or Parquet), so each is checked here for its type,
its text and its range, and what passes is normalised: an id is text, an instruction is text, an image or mask is a
reference string or bytes, a seed is an int64, ground truth is shallow enough to serialise. A value that does not
pass is a problem of its row (``bad_input``), never of a later stage: a row that leaves this module either carries
``error`` or holds values that every later stage (confinement, decoding, planning, Parquet, file names) accepts.

Text is refused when it holds a NUL byte (C strings and file names end there) or a lone surrogate (what
``json.loads`` makes of ``"\\udc80"`` and what undecodable bytes become: not encodable as UTF-8). Messages quote
values with ``ascii()``, so a message itself is always valid text.
"""

from __future__ import annotations

import hashlib
import math
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

FIELDS = ("id", "image", "instruction", "mask", "seed")
# Ground truth and bookkeeping a dataset may carry; they are kept in the output's ``ground_truth`` column.
GROUND_TRUTH_FIELDS = ("target", "category", "reference_workflow", "notes")
ALIASES = {"file_name": "image"}  # the Hugging Face imagefolder convention
MAX_ID_CHARS = 512
MAX_INSTRUCTION_CHARS = 20_000
MAX_REFERENCE_CHARS = 4096
MAX_NESTING = 32  # levels of lists and objects in one record (ground truth is the only nested part)
SEED_LIMIT = 2**63  # seeds are stored as int64
_INTEGER = re.compile(r"[+-]?\d{1,20}")


@dataclass
class InputRow:
    """One row of a dataset. ``image`` / ``mask`` are a URI or the bytes themselves; ``error`` marks a bad row."""

    index: int
    id: str
    instruction: str = ""
    image: str | bytes | None = None
    mask: str | bytes | None = None
    seed: int = 0
    ground_truth: dict[str, Any] = field(default_factory=dict)
    error: str | None = None


def quoted(value: Any, limit: int = 60) -> str:
    """A value as an ASCII-only quotation for messages, cut at ``limit`` characters."""
    text = ascii(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def field_name(name: Any) -> str:
    """A field name as written when it is plain ASCII, else quoted."""
    return name if isinstance(name, str) and name.isascii() and name.isprintable() else quoted(name)


def text_problem(text: str) -> str | None:
    """Why ``text`` cannot be used as row text (a NUL byte, a lone surrogate), or None."""
    if "\x00" in text:
        return "holds a NUL byte"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as error:
        return f"is not valid Unicode (a lone surrogate or undecodable byte at character {error.start})"
    return None


def storable(text: str) -> str:
    """``text`` with lone surrogates written as ``\\udcXX`` escapes, so that Parquet can hold it."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def nesting(value: Any) -> int:
    """How many levels of lists and dicts ``value`` has (iteratively: no recursion limit to hit)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list | tuple):
            deepest = max(deepest, depth)
            if depth <= MAX_NESTING:  # deeper than that is refused whatever it holds
                stack.extend((child, depth + 1) for child in (item.values() if isinstance(item, dict) else item))
    return deepest


def default_seed(row_id: str) -> int:
    """The seed of a row that names none: a stable hash of its id (31 bits)."""
    return int.from_bytes(hashlib.blake2b(row_id.encode(), digest_size=4).digest(), "big") >> 1


def normalise_id(value: Any, fallback: str) -> tuple[str, str | None]:
    """The row id a record's ``id`` gives, and the problem with it (the fallback id stands in for an unusable one)."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return fallback, None
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value), None
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return str(int(value)), None
    if not isinstance(value, str):
        return fallback, f"the id must be text or an integer, got {type(value).__name__} {quoted(value)}"
    problem = text_problem(value) or ("holds a control character" if any(c < " " for c in value) else None)
    if problem:
        return fallback, f"the id {quoted(value)} {problem}"
    row_id = value.strip()
    if len(row_id) > MAX_ID_CHARS:
        return row_id, f"the id is {len(row_id)} characters long, above {MAX_ID_CHARS}"
    return row_id, None


def row_from_record(index: int, record: dict[str, Any], fallback_id: str) -> InputRow:
    """Check one record's fields and build its row; every problem found goes into ``error``."""
    record = {ALIASES.get(k, k): v for k, v in record.items()}
    problems: list[str] = []
    row_id, problem = normalise_id(record.get("id"), fallback_id)
    problems += [problem] if problem else []
    unknown = sorted(field_name(k) for k in set(record) - set(FIELDS) - set(GROUND_TRUTH_FIELDS))
    if unknown:
        problems.append(f"unknown field(s) {', '.join(unknown)} (known: {', '.join(FIELDS + GROUND_TRUTH_FIELDS)})")
    instruction = _instruction(record.get("instruction"), problems)
    image = _reference(record.get("image"), "image", problems)
    if image is None and not any(p.startswith("image") for p in problems):
        problems.append("no image given")
    mask = _reference(record.get("mask"), "mask", problems)
    seed = _seed(record.get("seed"), row_id, problems)
    ground_truth = {k: record[k] for k in GROUND_TRUTH_FIELDS if k in record}
    if nesting(ground_truth) > MAX_NESTING:
        problems.append(f"ground truth nested more than {MAX_NESTING} levels deep")
        ground_truth = {}
    return InputRow(index, row_id, instruction, image, mask, seed, ground_truth, "; ".join(problems) or None)


def _instruction(value: Any, problems: list[str]) -> str:
    if value is None or value == "":
        problems.append("the instruction is empty")
        return ""
    if not isinstance(value, str):
        problems.append(f"the instruction must be text, got {type(value).__name__}")
        return ""
    problem = text_problem(value)
    if problem:
        problems.append(f"the instruction {problem}")
        return storable(value.replace("\x00", "\\x00"))[:MAX_INSTRUCTION_CHARS]
    text = value.strip()
    if not text:
        problems.append("the instruction is empty")
    elif len(text) > MAX_INSTRUCTION_CHARS:
        problems.append(f"the instruction is {len(text)} characters long, above {MAX_INSTRUCTION_CHARS}")
        text = text[:MAX_INSTRUCTION_CHARS]
    return text


def _reference(value: Any, name: str, problems: list[str]) -> str | bytes | None:
    """A URI or path string, bytes, or the Hugging Face struct ``{bytes, path}`` (bytes first)."""
    if isinstance(value, dict):
        unknown = sorted(field_name(k) for k in set(value) - {"bytes", "path"})
        if unknown:
            problems.append(f"{name} has unknown key(s) {', '.join(unknown)} (an image struct has bytes and path)")
            return None
        data, path = value.get("bytes"), value.get("path")
        if data is not None and not isinstance(data, bytes | bytearray):
            problems.append(f"{name}.bytes must be bytes, got {type(data).__name__}")
            return None
        if path is not None and not isinstance(path, str):
            problems.append(f"{name}.path must be text, got {type(path).__name__}")
            return None
        value = bytes(data) if data else path
    if value is None or value == "" or value == b"":
        return None
    if isinstance(value, bytes | bytearray):
        return bytes(value)
    if not isinstance(value, str):
        problems.append(f"{name} must be a path, a URI or image bytes, got {type(value).__name__}")
        return None
    problem = text_problem(value)
    if problem is None and len(value) > MAX_REFERENCE_CHARS:
        problem = f"is {len(value)} characters long, above {MAX_REFERENCE_CHARS}"
    if problem is None and "://" in value:
        try:
            urlsplit(value).port  # noqa: B018 (parses the host and port: "http://[::1" or ":99999" raise here)
        except ValueError as error:
            problem = f"is not a valid URI ({error})"
    if problem:
        problems.append(f"{name} {quoted(value)} {problem}")
        return None
    return value


def _seed(value: Any, row_id: str, problems: list[str]) -> int:
    """An int64 seed from an integer, a whole finite float or decimal digits; the id's hash when none is given."""
    if value is None:
        return default_seed(row_id)
    seed = None
    if isinstance(value, int) and not isinstance(value, bool):
        seed = value
    elif isinstance(value, float) and math.isfinite(value) and value.is_integer():
        seed = int(value)
    elif isinstance(value, str) and _INTEGER.fullmatch(value.strip()):
        seed = int(value.strip())
    if seed is None:
        problems.append(f"seed must be an integer, got {type(value).__name__} {quoted(value, 40)}")
        return 0
    if not -SEED_LIMIT <= seed < SEED_LIMIT:
        problems.append(f"seed {quoted(seed, 40)} is outside the 64-bit range [-2**63, 2**63)")
        return 0
    return seed

