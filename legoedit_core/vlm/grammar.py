"""Constrained decoding grammars, built with xgrammar from an OutputFormat.

Reasoning and JSON coexist in one grammar: ``<think>`` free text ``</think>`` followed by the JSON Schema's grammar
(or a regex's), composed with ``xgrammar.Grammar.concat``. The reasoning is bounded in length and may not contain
``<`` or control characters, so a weak model is always led to close it and write the plan. JSON whitespace is not
flexible: a model cannot stall in an endless run of spaces.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from legoedit_core.vlm.chat import OutputFormat

if TYPE_CHECKING:
    import xgrammar


def think_ebnf(max_chars: int) -> str:
    """The reasoning block: ``<think>``, up to ``max_chars`` characters (no ``<``, no control characters but
    newline and tab), ``</think>``, newline."""
    return f'root ::= "<think>" [^<\\x00-\\x08\\x0b-\\x1f]{{0,{max_chars}}} "</think>\\n"'


def build_grammar(fmt: OutputFormat) -> xgrammar.Grammar:
    """The xgrammar grammar that accepts exactly the answers ``fmt`` allows."""
    import xgrammar as xgr

    if fmt.json_schema is not None:
        body = xgr.Grammar.from_json_schema(json.dumps(fmt.json_schema), any_whitespace=False, strict_mode=True)
    elif fmt.regex is not None:
        body = xgr.Grammar.from_regex(fmt.regex)
    else:
        raise ValueError("an OutputFormat needs a json_schema or a regex to build a grammar")
    if not fmt.think:
        return body
    return xgr.Grammar.concat(xgr.Grammar.from_ebnf(think_ebnf(fmt.max_think_chars)), body)
