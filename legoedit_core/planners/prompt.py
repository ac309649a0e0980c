"""The Builder's prompt, rendered from the brick registry: adding a brick changes the prompt with no other edit.

The system prompt holds the tool catalogue (signatures, descriptions, rules of each available brick), the type
rules of workflows, worked examples written by the rules planner with the same available bricks, the user's
feedback lines, and the answer format. The user turn carries the image and the instruction.
"""

from __future__ import annotations

from collections.abc import Sequence

from legoedit_core.bricks.render import catalog_text
from legoedit_core.bricks.toolset import Toolset
from legoedit_core.planners.base import PlanRequest
from legoedit_core.settings.planner import PlannerSettings
from legoedit_core.vlm.chat import Chat, Message, shown_image

EXAMPLE_INSTRUCTIONS = (
    "remove the dog and make the sky orange",
    "make the background blurry",
    "turn the cat into a pencil sketch",
    "crop to the face",
    "make it black and white",
    "brighten the photo",
)

TYPE_RULES = """\
A workflow is JSON: {"nodes": [{"id": ..., "tool": ..., "inputs": {...}}, ...], "output": "@<node>.image"}.
- Each input is a literal (Text, Number, or a BBox [x0, y0, x1, y1]) or a reference "@<source>.<port>".
- References: "@input.image" is the user's image, "@input.mask" the user's mask (only when they drew one),
  "@<node id>.<output port>" the output of another node. A string that starts with "@" is always a reference.
- Types must match: a Mask port takes only a Mask, an Image port only an Image. Image and Mask values always come
  from references, never from literals.
- Node ids are short lowercase names (seg_dog, erase); each id once. No cycles. Only the tools listed above.
- "output" references the Image that answers the instruction; it cannot be @input.image."""


def examples_text(toolset: Toolset, count: int) -> str:
    """Up to ``count`` worked examples, each planned by the rules planner with the tools available here."""
    from legoedit_core.planners.rules import expert_traces

    traces = expert_traces(EXAMPLE_INSTRUCTIONS, toolset)[:count]
    return "\n\n".join(f"Instruction: {t['instruction']}\nAnswer: {t['text']}" for t in traces)


def system_prompt(toolset: Toolset, feedback: Sequence[str] = (), examples: int = 3, reasoning: bool = True) -> str:
    """The Builder's system prompt for ``toolset``'s available bricks and the user's feedback lines."""
    sections = [
        "You are the Builder of an image-editing system. You read an image and an editing instruction and plan the "
        "edit as a workflow: a graph of calls to the tools below.",
        "## Tools\n" + catalog_text(toolset.available_specs()),
        "## Workflow rules\n" + TYPE_RULES,
    ]
    if examples and (worked := examples_text(toolset, examples)):
        sections.append("## Examples\n" + worked)
    if feedback:
        sections.append("## User feedback (always follow it)\n" + "\n".join(f"- {line}" for line in feedback))
    answer = ("First reason briefly inside <think>...</think> (which tools, in which order, and why), then write "
              "the workflow JSON and nothing else." if reasoning else "Write the workflow JSON and nothing else.")
    sections.append("## Answer format\n" + answer)
    return "\n\n".join(sections)


def user_message(request: PlanRequest, image_size: int) -> Message:
    """The user turn: the image (scaled to ``image_size``) and the instruction."""
    text = f"Instruction: {request.instruction}"
    if request.has_mask:
        text += "\nThe user drew a mask over the region they mean: it is available as @input.mask."
    return Message("user", text, shown_image(request.image, image_size))


def builder_chat(toolset: Toolset, settings: PlannerSettings, request: PlanRequest) -> Chat:
    """The chat the ``workflow`` Builder answers for ``request``: system prompt (with the settings' and the request's
    feedback) and the user turn. Inference, rollouts and training all build it here, so they see the same prompt."""
    feedback = [*settings.feedback, *request.feedback]
    return [Message("system", system_prompt(toolset, feedback, settings.examples, settings.reasoning)),
            user_message(request, settings.image_size)]


def retry_message(problems: Sequence[str]) -> Message:
    """The re-ask after a rejected answer: every problem the validator found."""
    listed = "\n".join(f"- {p}" for p in problems)
    return Message("user", f"That plan was rejected:\n{listed}\nWrite a corrected answer in the same format.")
