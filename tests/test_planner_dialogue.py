"""Model strategies over the OpenAI-compatible engine against a real HTTP server on loopback: retries, re-asks,
feedback constraints, new bricks in the prompt, the decompose strategy, and verify-and-re-plan."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest
import xgrammar as xgr

from legoedit_core.bricks.catalog import default_registry
from legoedit_core.bricks.spec import BrickSpec, PerItemBackend, image
from legoedit_core.bricks.toolset import Toolset
from legoedit_core.config import Config
from legoedit_core.executor import Executor
from legoedit_core.planners import PlannerSettings, PlanRequest, make_planner
from legoedit_core.planners.constraints import parse_feedback
from legoedit_core.planners.decompose import (
    DECOMPOSITION_REGEX,
    SEQUENCE_REGEX,
    compile_workflow,
    parse_decomposition,
    parse_sequence,
)
from legoedit_core.planners.parsing import parse_answer
from legoedit_core.planners.prompt import system_prompt
from legoedit_core.planners.replan import plan_and_verify
from legoedit_core.vlm.chat import OutputFormat
from legoedit_core.vlm.engines.openai import EngineUnavailable
from legoedit_core.vlm.grammar import build_grammar
from legoedit_core.workflow_schema import workflow_json_schema


class ChatServer:
    """A chat-completions endpoint on 127.0.0.1 that answers from a script and records every request body.

    A scripted reply is (status, assistant text) or (status, raw body) when the text is not a plain answer.
    """

    def __init__(self) -> None:
        self.replies: list[tuple[int, str | dict]] = []
        self.requests: list[dict] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                server.requests.append(body)
                status, reply = server.replies.pop(0)
                if isinstance(reply, str) and status == 200:
                    reply = {"choices": [{"message": {"role": "assistant", "content": reply}}]}
                payload = (json.dumps(reply) if isinstance(reply, dict) else reply).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_port}/v1"
        threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()


@pytest.fixture
def server() -> Iterator[ChatServer]:
    chat = ChatServer()
    yield chat
    chat.httpd.shutdown()


def _settings(server: ChatServer, **extra) -> PlannerSettings:
    return PlannerSettings(**{"strategy": "workflow", "engine": "openai", "model": "builder", "base_url": server.url,
                              "retry_wait": 0.01, "concurrency": 1, **extra})


def _request(text: str, **extra) -> PlanRequest:
    return PlanRequest("item", np.full((80, 120, 3), 120, np.uint8), text, **extra)


GRAY = '<think>Whole image, no colour: GRAYSCALE.</think>\n' + json.dumps(
    {"nodes": [{"id": "gray", "tool": "GRAYSCALE", "inputs": {"image": "@input.image"}}], "output": "@gray.image"})
RES_THEN_INPAINT = "<think>Find the dog, erase it.</think>\n```json\n" + json.dumps({"nodes": [
    {"id": "seg", "tool": "RES", "inputs": {"image": "@input.image", "prompt": "dog"}},
    {"id": "erase", "tool": "INPAINT", "inputs": {"image": "@input.image", "mask": "@seg.mask"}}],
    "output": "@erase.image"}) + "\n```"
SOS_THEN_INPAINT = "<think>The dog is the subject: SOS, then erase.</think>" + json.dumps({"nodes": [
    {"id": "subject", "tool": "SOS", "inputs": {"image": "@input.image"}},
    {"id": "erase", "tool": "INPAINT", "inputs": {"image": "@input.image", "mask": "@subject.mask"}}],
    "output": "@erase.image"})


def test_openai_engine_retries_a_transient_503_and_sends_the_schema(server, cpu_toolset):
    server.replies = [(503, {"error": "overloaded"}), (200, GRAY)]
    planner = make_planner(_settings(server), cpu_toolset)
    (result,) = planner.plan_batch([_request("make it black and white")])
    assert result.ok and result.workflow.tools() == ["GRAYSCALE"]
    assert result.reasoning == "Whole image, no colour: GRAYSCALE." and result.planner == "workflow/openai:builder"
    assert len(server.requests) == 2 and len(result.attempts) == 1  # the retry is the transport's, not a re-ask
    sent = server.requests[-1]
    assert sent["response_format"]["json_schema"]["schema"] == workflow_json_schema(cpu_toolset.available_specs())
    assert sent["messages"][1]["content"][0]["image_url"]["url"].startswith("data:image/png;base64,")


def test_malformed_replies_become_invalid_plan_after_the_bounded_attempts(server, cpu_toolset):
    server.replies = [(200, "<think>hmm</think> {\"nodes\": [ oops"), (200, "I cannot help with that."),
                      (200, {"no": "choices"})]
    (result,) = make_planner(_settings(server, max_attempts=3), cpu_toolset).plan_batch([_request("flip it")])
    assert not result.ok and len(result.attempts) == 3 and len(server.requests) == 3
    assert "malformed" in result.attempts[0].problems[0] and "no JSON object" in result.attempts[1].problems[0]
    assert result.error.startswith("no valid plan after 3 attempt(s): engine error:")
    second_ask = server.requests[1]["messages"]
    assert second_ask[-2] == {"role": "assistant", "content": "<think>hmm</think> {\"nodes\": [ oops"}
    assert "That plan was rejected" in second_ask[-1]["content"]


def test_an_endpoint_that_stays_down_raises_instead_of_writing_invalid_plans(server, cpu_toolset):
    server.replies = [(503, {"error": "overloaded"})] * 3 + [(401, {"error": "bad key"})]
    planner = make_planner(_settings(server, http_retries=3), cpu_toolset)
    with pytest.raises(EngineUnavailable, match="answered 503"):
        planner.plan_batch([_request("make it black and white")])
    with pytest.raises(EngineUnavailable, match="answered 401"):  # a refused key is no item's fault either
        planner.plan_batch([_request("make it black and white")])
    assert len(server.requests) == 4


def test_a_server_without_json_schema_is_asked_again_without_it(server, cpu_toolset):
    server.replies = [(400, {"error": "response_format json_schema unsupported"}), (200, GRAY), (200, GRAY)]
    planner = make_planner(_settings(server), cpu_toolset)
    results = planner.plan_batch([_request("make it black and white"), _request("make it grey")])
    assert all(r.ok for r in results)
    assert "response_format" in server.requests[0] and "response_format" not in server.requests[1]
    assert len(server.requests) == 3  # once learned, the second item is not offered json_schema again


def test_feedback_constraint_rejects_res_before_inpaint_and_the_reask_changes_the_plan(server, cpu_toolset):
    server.replies = [(200, RES_THEN_INPAINT), (200, SOS_THEN_INPAINT)]
    planner = make_planner(_settings(server, feedback=["don't use RES before INPAINT"]), cpu_toolset)
    (result,) = planner.plan_batch([_request("remove the dog")])
    first, second = result.attempts
    assert first.workflow.tools() == ["RES", "INPAINT"]
    assert first.problems == ["erase: breaks the feedback \"don't use RES before INPAINT\": INPAINT comes after RES "
                              "(node 'seg')"]
    assert result.ok and result.workflow.tools() == ["SOS", "INPAINT"] and second.problems == []
    assert "- don't use RES before INPAINT" in server.requests[0]["messages"][0]["content"]
    assert first.problems[0] in server.requests[1]["messages"][-1]["content"]


class ReflectionRemoval(PerItemBackend):
    brick, name = "RRF", "identity"

    def run_one(self, inputs, seed):
        return {"image": inputs["image"]}


RRF = BrickSpec(name="RRF", family="edit", description="Removes reflections from glass and water surfaces.",
                inputs=(image(),), outputs=(image("image", "the image without reflections"),),
                constraints=("Use it for 'remove the reflection' instructions.",))


def test_a_newly_registered_brick_is_offered_and_enforced_by_feedback(server):
    registry = default_registry(plugins=False)
    before = system_prompt(Toolset(Config(), registry))
    registry.add_brick(RRF)
    registry.add_backend(ReflectionRemoval)
    toolset = Toolset(Config(), registry)
    after = system_prompt(toolset, feedback=["use RRF for reflections"])
    assert "RRF" not in before
    assert "- RRF(image: Image) -> image: Image\n  Removes reflections from glass and water surfaces." in after
    assert "RRF" in json.dumps(workflow_json_schema(toolset.available_specs()))

    rrf_plan = json.dumps({"nodes": [{"id": "rrf", "tool": "RRF", "inputs": {"image": "@input.image"}}],
                           "output": "@rrf.image"})
    server.replies = [(200, GRAY), (200, rrf_plan)]
    planner = make_planner(_settings(server, reasoning=False, feedback=["use RRF for reflections"]), toolset)
    (result,) = planner.plan_batch([_request("remove the reflection in the window")])
    assert "must use RRF" in result.attempts[0].problems[0] and result.workflow.tools() == ["RRF"]


DECOMPOSITION = ("<think>The coat, and maybe the hair, should turn a red shade.</think>\n<action>Recoloring</action>\n"
                 "<subjects>coat; hair</subjects>\n<goals>scarlet or copper red</goals>")
SEQUENCE = ("<think>Coat first, hair second.</think>\n<requests>\n1. make her coat scarlet red\n"
            "2. make her hair copper red\n</requests>")


def test_decompose_parsers_accept_the_format_and_reject_broken_ones():
    info = xgr.TokenizerInfo([chr(c) for c in range(9, 127)])
    for regex, answer in [(DECOMPOSITION_REGEX, DECOMPOSITION), (SEQUENCE_REGEX, SEQUENCE)]:
        grammar = build_grammar(OutputFormat(regex=regex, think=True))
        matcher = xgr.GrammarMatcher(xgr.GrammarCompiler(info).compile_grammar(grammar))
        assert matcher.accept_string(answer)  # the constrained format admits the canonical answers
    reasoning, decomposition = parse_decomposition(DECOMPOSITION)
    assert reasoning.startswith("The coat") and decomposition.actions == ["Recoloring"]
    assert decomposition.subjects == ["coat", "hair"] and decomposition.goals == ["scarlet or copper red"]
    assert parse_sequence(SEQUENCE)[1] == ["make her coat scarlet red", "make her hair copper red"]
    for broken, message in [
        ("<action>Recoloring</action><subjects>coat</subjects>", "no <goals>"),
        ("<action>Teleport</action><subjects>coat</subjects><goals>red</goals>", "unknown action 'Teleport'"),
        ("<action>Recoloring</action><subjects> </subjects><goals>red</goals>", "<subjects> is empty"),
        ("<action>Style</action><action>Style</action><subjects>a</subjects><goals>b</goals>", "appears 2 times"),
    ]:
        with pytest.raises(ValueError, match=message):
            parse_decomposition(broken)
    for broken, message in [("<requests>\n1. a\n3. b\n</requests>", "out of order"),
                            ("<requests>\nmake it red\n</requests>", "not a numbered sub-request"),
                            ("1. make it red", "no <requests>")]:
        with pytest.raises(ValueError, match=message):
            parse_sequence(broken)


@pytest.mark.parametrize("multi_turn", [False, True])
def test_decompose_strategy_compiles_single_and_multi_turn(server, multi_turn):
    registry = default_registry(plugins=False)
    registry.add_backend(type("KeepEdit", (ReflectionRemoval,), {"brick": "EDIT", "name": "identity"}))
    toolset = Toolset(Config(), registry)
    server.replies = [(200, "<action>Recoloring</action>"), (200, DECOMPOSITION), (200, SEQUENCE)]
    planner = make_planner(_settings(server, strategy="decompose", multi_turn=multi_turn), toolset)
    instruction = "Change the color of her coat and possibly hair to scarlet or copper red"
    (result,) = planner.plan_batch([_request(instruction)])
    assert result.ok and result.planner == "decompose/openai:builder"
    assert "no <subjects>" in result.attempts[0].problems[0] and len(result.attempts) == 4  # 2 + 1 + compiled
    assert "Coat first" in result.reasoning and "red shade" in result.reasoning
    prompts = [n.inputs["prompt"] for n in result.workflow.nodes]
    if multi_turn:
        assert prompts == ["make her coat scarlet red", "make her hair copper red"]
        assert result.workflow.node("edit_2").inputs["image"] == "@edit_1.image"
    else:
        assert prompts == ["make her coat scarlet red; make her hair copper red"]
    assert "<action>Recoloring</action>" in server.requests[-1]["messages"][-1]["content"]
    assert compile_workflow("x", ["a"], multi_turn).output.endswith(".image")


def test_verify_and_replan_keeps_every_round(server, cpu_toolset):
    flip = json.dumps({"nodes": [{"id": "flip", "tool": "FLIP", "inputs": {"image": "@input.image"}}],
                       "output": "@flip.image"})
    server.replies = [(200, flip), (200, GRAY)]

    def judge(source: np.ndarray, edited: np.ndarray, instruction: str) -> tuple[float, str]:
        colourful = float(np.abs(edited.astype(int) - edited.mean(axis=2, keepdims=True)).mean())
        return (9.0, "grey") if colourful < 1 else (2.0, "the image still has colour")

    picture = np.zeros((48, 64, 3), np.uint8)
    picture[:, :32] = (200, 30, 30)
    planner = make_planner(_settings(server, reasoning=False), cpu_toolset)
    (verified,) = plan_and_verify(planner, Executor(cpu_toolset), [PlanRequest("a", picture, "make it grey")],
                                  judge, rounds=2)
    assert [r.score for r in verified.rounds] == [2.0, 9.0]
    assert [r.plan.workflow.tools() for r in verified.rounds] == [["FLIP"], ["GRAYSCALE"]]
    assert verified.best is verified.rounds[1]
    assert "scored 2/10: the image still has colour" in server.requests[1]["messages"][0]["content"]


def test_answers_in_the_lego_edit_dialect_parse_and_feedback_lines_become_constraints(cpu_toolset):
    answer = "<think>grey it</think>\n" + json.dumps({"process": "grey", "pipeline": [
        {"step": 1, "model": "GRAYSCALE", "input": {"img": "init[image]"}, "output": {"img": "step1[image]"}},
        {"result": "step1[image]"}]})
    reasoning, workflow, problems = parse_answer(answer, "make it grey")
    assert reasoning == "grey it" and problems == [] and workflow.output == "@step1.image"
    constraints = parse_feedback(["Avoid SOS.", "never use INPAINT after RES", "make it nicer", "avoid NOPE"],
                                 cpu_toolset.names())
    assert [type(c).__name__ for c in constraints] == ["Avoid", "NotBefore"]
    assert constraints[1].first == "RES" and constraints[1].then == "INPAINT"


def test_a_judge_that_cannot_score_leaves_the_round_unscored_and_is_not_replanned(cpu_toolset):
    def unreadable_judge(source, edited, instruction):
        raise ValueError("reply had no scores")

    picture = np.zeros((48, 64, 3), np.uint8)
    planner = make_planner(PlannerSettings(), cpu_toolset)
    request = PlanRequest("a", picture, "make it black and white")
    (verified,) = plan_and_verify(planner, Executor(cpu_toolset), [request], unreadable_judge, rounds=2)
    [round_] = verified.rounds
    assert round_.edit.status == "ok" and round_.score is None
    assert round_.critique == "the judge could not score this edit: reply had no scores"
