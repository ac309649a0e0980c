"""Asking until the answer is valid: every open chat goes to the engine in one batch per round; a rejected answer
is re-asked with its problems, up to ``max_attempts``, and every attempt is kept.

An engine that raises (it does not load, a device error, an endpoint that stays down) is a fault of the machinery:
the error goes up to the task, which is retried; it never becomes an item's ``invalid_plan``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from legoedit_core.planners.base import PlanAttempt, PlanResult
from legoedit_core.planners.prompt import retry_message
from legoedit_core.vlm.chat import Chat, GenerationError, Message, OutputFormat
from legoedit_core.vlm.engines import Engine

# (item index, raw answer) -> (the attempt as recorded, the accepted value or None)
Parse = Callable[[int, str], tuple[PlanAttempt, Any]]


@dataclass
class Exchange:
    """One item's conversation with the engine: its chat so far, every attempt, and the accepted value."""

    chat: Chat
    attempts: list[PlanAttempt] = field(default_factory=list)
    value: Any = None


def ask_until_valid(engine: Engine, chats: list[Chat], fmt: OutputFormat | None, seeds: list[int], parse: Parse,
                    max_attempts: int) -> list[Exchange]:
    """Ask every chat; re-ask the rejected ones with their problems; stop at ``max_attempts`` answers per item."""
    exchanges = [Exchange(list(chat)) for chat in chats]
    for round_index in range(max_attempts):
        open_items = [i for i, e in enumerate(exchanges) if e.value is None]
        if not open_items:
            break
        answers = engine.generate([exchanges[i].chat for i in open_items], fmt,
                                  [seeds[i] + round_index for i in open_items])
        for index, answer in zip(open_items, answers, strict=True):
            exchange = exchanges[index]
            if isinstance(answer, GenerationError):
                exchange.attempts.append(PlanAttempt(raw="", problems=[f"engine error: {answer}"]))
                continue
            attempt, value = parse(index, answer)
            exchange.attempts.append(attempt)
            if value is not None and not attempt.problems:
                exchange.value = value
            else:
                exchange.chat += [Message("assistant", answer), retry_message(attempt.problems)]
    return exchanges


def failure(item_id: str, planner: str, attempts: list[PlanAttempt]) -> PlanResult:
    """The result of an item that got no valid plan: the last attempt's problems as the error, every attempt kept."""
    last = attempts[-1].problems if attempts else ["no answer"]
    error = f"no valid plan after {len(attempts)} attempt(s): " + "; ".join(last)
    return PlanResult(item_id, planner, reasoning=attempts[-1].reasoning if attempts else "", attempts=attempts,
                      error=error)
