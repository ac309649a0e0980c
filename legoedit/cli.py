"""The ``legoedit`` command line.

Every anticipated failure is one line on stderr, ``error: ...``, with exit status 1 (2 for a usage mistake: bad
options or config); ``--debug`` shows the traceback instead. A closed pipe (``legoedit bricks --schema | head``)
ends the command quietly.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import sys
import tomllib
from collections.abc import Callable
from pathlib import Path

from pydantic import ValidationError

from legoedit_core.bricks.toolset import Toolset
from legoedit_core.config import Config

DEMO_CATALOGUE = Path(__file__).resolve().parents[1] / "examples" / "catalogue.jsonl"
# Exceptions from these packages are the project's own, with messages written for the user.
OWN_PACKAGES = {"legoedit", "legoedit_core", "flows", "tasks"}


class UsageError(ValueError):
    """The command was given options or a config it cannot use (exit status 2)."""


def _add_config_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", help="TOML config file")
    parser.add_argument("--profile", choices=["cpu", "gpu"], help="override the config's profile")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config key, e.g. --set bricks.INPAINT.steps=20 (repeatable)")


def load_config(args: argparse.Namespace) -> Config:
    overrides = list(args.overrides)
    if args.profile:
        overrides.insert(0, f"profile={args.profile!r}".replace("'", '"'))
    try:
        config = Config.load(args.config, overrides)
    except ValidationError as error:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors())
        raise UsageError(f"config: {problems}") from error
    except (OSError, tomllib.TOMLDecodeError, ValueError) as error:
        raise UsageError(f"config: {describe(error)}") from error
    from legoedit_core.bricks.settings_check import brick_settings_problems

    if problems := brick_settings_problems(config):
        raise UsageError(f"config: {'; '.join(problems)}")
    return config


def describe(error: BaseException) -> str:
    """An error as one line for the user: the project's own messages as they are, others with their type."""
    if isinstance(error, OSError) and error.filename and error.strerror:
        return f"{error.filename}: {error.strerror}"
    message = " ".join(str(error).split())
    own = type(error).__module__.partition(".")[0] in OWN_PACKAGES
    return message if own or isinstance(error, ValueError) else f"{type(error).__name__}: {message}"


def local_parent(path: str) -> str:
    """``path``, with its folder created first when it is a local file (``--trace out/trace.json`` on a fresh
    clone)."""
    if "://" not in path:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    return path


def check_run_inputs(args: argparse.Namespace) -> None:
    """What a command that runs a flow checks before any server starts: the flow's own preflight
    (``legoedit_core.pipeline.preflight``: config, dataset, stores, output), so it fails here in one line, fast."""
    from legoedit_core.pipeline.preflight import PreflightFailed, preflight

    try:
        preflight(run_config(args), getattr(args, "dataset", None), args.output)  # eval's benchmark: its reader's
    except PreflightFailed as error:
        raise UsageError(str(error)) from None


def runs_a_flow(handler: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """Mark a command that runs a Prefect flow: its inputs are checked first (``check_run_inputs``), then it gets a
    temporary local server of its own (unless ``PREFECT_API_URL`` names one), and Ctrl-C / SIGTERM stop it cleanly
    within seconds (exit code 130)."""
    @functools.wraps(handler)
    def run(args: argparse.Namespace) -> int:
        from prefect.exceptions import TerminationSignal

        from flows.server import temporary_server
        from flows.stopping import EXIT_CODE, Interrupted, stop_on_signals

        check_run_inputs(args)
        with temporary_server() as stop_server, stop_on_signals(on_deadline=stop_server):
            try:
                return handler(args)
            except (Interrupted, TerminationSignal) as error:  # Prefect turns SIGTERM into TerminationSignal
                print(f"error: {str(error) or 'stopped by SIGTERM'}; committed shards are kept and a rerun of the same "
                      "command resumes", file=sys.stderr)
                return EXIT_CODE
    return run


def cmd_bricks(args: argparse.Namespace) -> int:
    from legoedit_core.bricks.render import catalog_table
    from legoedit_core.workflow_schema import workflow_json_schema

    toolset = Toolset(load_config(args))
    if args.schema:
        print(json.dumps(workflow_json_schema(toolset.available_specs()), indent=2))
    else:
        print(catalog_table(toolset))
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    from legoedit_core.workflow import WorkflowError, WorkflowLimits, parse_workflow, validate

    config = load_config(args)
    try:
        problems = validate(parse_workflow(Path(args.workflow).read_text()), Toolset(config),
                            limits=WorkflowLimits.of(config.executor))
    except WorkflowError as error:
        problems = error.problems
    if not problems:
        print(f"{args.workflow}: valid")
        return 0
    print(f"{args.workflow}: {len(problems)} problem(s)")
    for problem in problems:
        print(f"  - {problem}")
    return 1


def cmd_run_workflow(args: argparse.Namespace) -> int:
    from legoedit_core.data.images import ImageDecodeError, read_image, read_mask
    from legoedit_core.workflow import WorkflowError, parse_workflow

    try:
        image = read_image(args.image)
        mask = read_mask(args.mask, size=(image.shape[1], image.shape[0])) if args.mask else None
        workflow = parse_workflow(Path(args.workflow).read_text())
    except (ImageDecodeError, WorkflowError, OSError) as error:
        print(f"error: {describe(error)}", file=sys.stderr)
        return 2
    return _execute(Toolset(load_config(args)), workflow, image, mask, args)


def _execute(toolset: Toolset, workflow, image, mask, args: argparse.Namespace) -> int:
    """Run a workflow on one image, write the trace (if asked) and the edited image; the exit code."""
    from legoedit_core.data.images import output_name, write_image
    from legoedit_core.executor import Executor

    result = Executor(toolset).run(workflow, image, mask, seed=args.seed, item_id=args.image)
    if args.trace:
        trace = {"id": result.id, "status": result.status, "error": result.error,
                 "trace": [vars(t) for t in result.trace]}
        Path(local_parent(args.trace)).write_text(json.dumps(trace, indent=2))
    if result.status != "ok":
        print(f"{result.status}: {result.error}", file=sys.stderr)
        return 1
    for index, image in enumerate(result.images or [result.image]):
        path = output_name(str(args.output), index)
        write_image(image, local_parent(path))
        print(f"wrote {path}")
    return 0


# The pipeline settings the command line sets: config field -> option (each has a config key as well).
PIPELINE_OPTIONS = {"shard_size": "shard_size", "max_concurrent_shards": "concurrent_shards",
                    "write_images": "write_images", "task_runner": "task_runner", "address": "address",
                    "judge": "judge", "content_hash": "content_hash"}


def run_config(args: argparse.Namespace) -> Config:
    """The command's config with its pipeline options on top (an option left out keeps the config's value): the
    one source of a flow's run parameters."""
    config = load_config(args)
    given = {field: getattr(args, option, None) for field, option in PIPELINE_OPTIONS.items()}
    pipeline = config.pipeline.model_copy(update={k: v for k, v in given.items() if v not in (None, False)})
    return config.model_copy(update={"pipeline": pipeline})


@runs_a_flow
def cmd_run(args: argparse.Namespace) -> int:
    from flows.edit_catalogue import run_catalogue
    from legoedit_core.data.incremental import counts_line

    summary = run_catalogue(args.dataset, args.output, config=run_config(args), retry_failed=args.retry_failed,
                            recorded_config=args.recorded_config, reedit_all=args.reedit_all)
    print(f"version {summary['version']}: {counts_line(summary['changes'])}")
    print(f"rows by status: {summary['counts']}")
    print(f"parquet: {len(summary['parts'])} part(s) in version {summary['version']} of {args.output} "
          "(RunOutput(...).current_files())")
    print(f"report:  {summary['report']}")
    if set(summary["counts"]) == {"bad_input"}:
        print(f"error: every row is bad_input ({_first_error(args.output)}): nothing was edited", file=sys.stderr)
        return 1
    return 0


def _first_error(output: str) -> str:
    """The first row's error in an output, as an example of what went wrong."""
    from legoedit_core.data.output import RunOutput

    for part in RunOutput(output).iter_parts(["error"]):
        for error in part.column("error").to_pylist():
            return f"e.g. {error}"
    return "no error recorded"


def cmd_demo(args: argparse.Namespace) -> int:
    args.config, args.profile, args.overrides = None, "cpu", []
    args.retry_failed, args.write_images, args.task_runner, args.address = False, True, "threads", None
    args.recorded_config = args.reedit_all = False
    args.concurrent_shards, args.judge = 4, True  # the judge here is the model-free metrics (no VLM on CPU)
    return cmd_run(args)


def cmd_ui(args: argparse.Namespace) -> int:
    from prefect.settings import PREFECT_API_URL

    from flows.server import serve_ui

    if PREFECT_API_URL.value():
        print(f"PREFECT_API_URL names a server ({PREFECT_API_URL.value()}): its UI shows the runs", file=sys.stderr)
        return 1
    return serve_ui()


def _planner_config(args: argparse.Namespace) -> Config:
    """The config with the plan/edit command's planner options applied on top."""
    config = load_config(args)
    given = {"strategy": args.strategy, "engine": args.engine, "model": args.model, "base_url": args.base_url,
             "adapter": args.adapter}
    update = {key: value for key, value in given.items() if value is not None}
    update["feedback"] = [*config.planner.feedback, *args.feedback]
    if args.multi_turn:
        update["multi_turn"] = True
    config.planner = config.planner.model_validate({**config.planner.model_dump(), **update})
    return config


def _plan_one(args: argparse.Namespace):
    """(toolset, image, mask, plan result) for the command's image and instruction; raises on unreadable input."""
    from legoedit_core.data.images import read_image, read_mask
    from legoedit_core.executor import Executor
    from legoedit_core.pipeline.verify import make_verifier
    from legoedit_core.planners import PlanRequest, make_planner

    config = _planner_config(args)
    toolset = Toolset(config)
    image = read_image(args.image)
    mask = read_mask(args.mask, size=(image.shape[1], image.shape[0])) if args.mask else None
    request = PlanRequest(args.image, image, args.instruction, has_mask=mask is not None, seed=args.seed)
    planner = make_planner(config.planner, toolset)
    plan = planner.plan_batch([request])[0]
    verify = make_verifier(config, planner, Executor(toolset))  # planner.verify_rounds > 0: as `legoedit run` does
    if verify is not None:
        plan = verify([request], [plan], [mask])[0].best.plan
    return toolset, image, mask, plan


def _print_plan(result, dialect: bool = False) -> None:
    if result.reasoning:
        print(f"<think>{result.reasoning}</think>")
    if result.workflow is not None:
        print(json.dumps(result.workflow.to_dialect(), indent=2) if dialect else result.workflow.to_json())


def _plan_or_exit(args: argparse.Namespace, show_plan: bool):
    """(exit code, None) when the command must stop here, else (None, (toolset, image, mask, plan))."""
    from legoedit_core.data.images import ImageDecodeError

    try:
        toolset, image, mask, plan = _plan_one(args)
    except (ImageDecodeError, OSError, ValueError) as error:
        print(f"error: {describe(error)}", file=sys.stderr)
        return 2, None
    if show_plan:
        _print_plan(plan, dialect=getattr(args, "dialect", False))
    if not plan.ok:
        print(f"error: invalid_plan ({plan.planner}): {plan.error}", file=sys.stderr)
        return 1, None
    return None, (toolset, image, mask, plan)


def cmd_plan(args: argparse.Namespace) -> int:
    code, _ = _plan_or_exit(args, show_plan=True)
    return code or 0


def cmd_edit(args: argparse.Namespace) -> int:
    code, planned = _plan_or_exit(args, show_plan=args.show_plan)
    if code is not None:
        return code
    toolset, image, mask, plan = planned
    return _execute(toolset, plan.workflow, image, mask, args)


def _add_planner_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("image")
    parser.add_argument("instruction")
    parser.add_argument("--strategy", choices=["rules", "workflow", "decompose"], help="default: the config's (rules)")
    parser.add_argument("--engine", choices=["transformers", "vllm", "openai"], help="the model engine")
    parser.add_argument("--model", help="hub id or local path of the Builder model")
    parser.add_argument("--base-url", help="OpenAI-compatible endpoint for --engine openai")
    parser.add_argument("--adapter", help="LoRA adapter of the Builder")
    parser.add_argument("--feedback", action="append", default=[],
                        help="a feedback line, e.g. \"don't use RES before INPAINT\" (repeatable)")
    parser.add_argument("--multi-turn", action="store_true", help="decompose: one EDIT call per sub-request")
    parser.add_argument("--mask", help="the user's mask, available as @input.mask")
    parser.add_argument("--seed", type=int, default=0)
    _add_config_options(parser)


@runs_a_flow
def cmd_rollouts(args: argparse.Namespace) -> int:
    from flows.rollouts import rollouts
    from flows.runners import on_configured_runner

    config = run_config(args)
    summary = on_configured_runner(rollouts, config)(args.dataset, args.output, k=args.k,
                                                     temperature=args.temperature, config=config)
    print(f"{summary['samples']} samples in {summary['rows']} rows, mean reward {summary['mean_reward']}")
    signal = summary["signal"]
    print(f"{signal['groups']} groups: {signal['groups_with_distinct_workflows']} with distinct workflows, "
          f"{signal['groups_with_advantage_spread']} with an advantage spread, {signal['groups_with_both']} both; "
          f"{signal['samples_with_check']} samples with an edit check (mean {signal['mean_check']}), failed checks: "
          f"{signal['failed_checks']}")
    print(f"parquet: {summary['parts']}")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from legoedit_core.rl.train import TrainSettings, train

    config = load_config(args)
    judge, rewards = config.judge, config.rewards
    settings = TrainSettings(stage=args.stage, model=args.model, data=args.data, output_dir=args.output_dir,
                             adapter=args.adapter, lora=not args.full, max_steps=args.max_steps,
                             learning_rate=args.learning_rate, batch_size=args.batch_size,
                             num_generations=args.num_generations, max_completion_length=args.max_completion_length,
                             device=args.device or config.planner.device,
                             dtype=config.planner.dtype if "dtype" in config.planner.model_fields_set else "auto",
                             **({"max_length": args.max_length} if args.max_length else {}))
    output = train(settings, config, rewards, judge)
    print(f"stage {args.stage} saved to {output}")
    return 0


def cmd_export_rollouts(args: argparse.Namespace) -> int:
    from legoedit_core.rl.trainers import export_rollouts

    count = export_rollouts(args.rollouts, local_parent(args.destination), args.trainer)
    print(f"wrote {count} rows for {args.trainer} to {args.destination}")
    return 0


@runs_a_flow
def cmd_eval(args: argparse.Namespace) -> int:
    from flows.evaluate import evaluate
    from flows.runners import on_configured_runner

    config = run_config(args)
    result = on_configured_runner(evaluate, config)(args.benchmark, args.output, kind=args.kind, config=config,
                                                    language=None if args.language == "all" else args.language,
                                                    images=args.images)
    overall = result["summary"][-1]
    print(f"{overall['items']} items, {overall['edited']} edited, {overall['judged']} judged")
    print(f"report: {result['report']}")
    print(f"scores: {result['scores']}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="legoedit", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--debug", action="store_true", help="show the traceback of an error")
    commands = parser.add_subparsers(dest="command", required=True)
    debug = argparse.ArgumentParser(add_help=False)  # --debug after the command name works too
    debug.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)

    def add_command(name: str, **options) -> argparse.ArgumentParser:
        return commands.add_parser(name, parents=[debug], **options)

    bricks = add_command("bricks", help="list every brick with its ports and backend")
    bricks.add_argument("--schema", action="store_true", help="print the workflow JSON Schema instead")
    _add_config_options(bricks)
    bricks.set_defaults(handler=cmd_bricks)

    check = add_command("validate", help="check a workflow; exit 1 listing every problem")
    check.add_argument("workflow")
    _add_config_options(check)
    check.set_defaults(handler=cmd_validate)

    run = add_command("run-workflow", help="run a workflow on one image")
    run.add_argument("image")
    run.add_argument("workflow")
    run.add_argument("-o", "--output", required=True, help="where to write the edited image")
    run.add_argument("--mask", help="the user's mask, available as @input.mask")
    run.add_argument("--seed", type=int, default=0)
    run.add_argument("--trace", help="write the per-node trace as JSON here")
    _add_config_options(run)
    run.set_defaults(handler=cmd_run_workflow)

    batch = add_command("run", help="edit a whole dataset on Prefect into Parquet parts + an HTML report")
    batch.add_argument("dataset", help="a .jsonl/.csv manifest, .parquet, or image folder (local, s3://, ...)")
    batch.add_argument("output", help="output prefix (local folder, s3://bucket/prefix, ...)")
    batch.add_argument("--shard-size", type=int, help="rows per shard, kept for reruns (config: pipeline.shard_size)")
    batch.add_argument("--retry-failed", action="store_true", help="re-run the rows whose status is not ok")
    batch.add_argument("--recorded-config", action="store_true",
                       help="continue an output with the config it was started with (a different one is refused)")
    batch.add_argument("--reedit-all", action="store_true",
                       help="take a config other than the output's and re-edit every row with it (a new version)")
    batch.add_argument("--concurrent-shards", type=int, help="shards in flight at once (default 4)")
    batch.add_argument("--write-images", action="store_true", help="also write edited images as files")
    batch.add_argument("--content-hash", action="store_true",
                       help="tell changed images by a hash of their bytes, not size and mtime (reads every image)")
    batch.add_argument("--judge", action="store_true", help="judge every edit (config: judge) into the judge columns")
    batch.add_argument("--task-runner", choices=["threads", "ray", "dask"], help="default: threads")
    batch.add_argument("--address", help="Ray or Dask cluster address for --task-runner ray|dask")
    _add_config_options(batch)
    batch.set_defaults(handler=cmd_run)

    demo = add_command("demo", help="edit the bundled example catalogue on CPU; prints the outputs")
    demo.add_argument("--output", default="legoedit-demo", help="where to write (default: ./legoedit-demo)")
    demo.add_argument("--dataset", default=str(DEMO_CATALOGUE), help=argparse.SUPPRESS)
    demo.add_argument("--shard-size", type=int, default=4, help=argparse.SUPPRESS)
    demo.set_defaults(handler=cmd_demo)
    ui = add_command("ui", help="browse finished runs: Prefect's UI on the database of this machine's runs")
    ui.set_defaults(handler=cmd_ui)

    plan = add_command("plan", help="plan an edit: print the reasoning and the workflow")
    _add_planner_options(plan)
    plan.add_argument("--dialect", action="store_true", help="print the workflow in Lego-Edit's pipeline dialect")
    plan.set_defaults(handler=cmd_plan)

    edit = add_command("edit", help="plan and execute an edit of one image")
    _add_planner_options(edit)
    edit.add_argument("-o", "--output", required=True, help="where to write the edited image")
    edit.add_argument("--show-plan", action="store_true", help="print the reasoning and the workflow too")
    edit.add_argument("--trace", help="write the per-node trace as JSON here")
    edit.set_defaults(handler=cmd_edit)

    roll = add_command("rollouts", help="sample K plans per item, execute and reward them (RL data)")
    roll.add_argument("dataset", help="a .jsonl/.csv manifest, .parquet, or image folder; target = ground truth")
    roll.add_argument("output", help="output prefix for the Parquet parts")
    roll.add_argument("-k", type=int, default=4, help="samples per item (the GRPO group)")
    roll.add_argument("--temperature", type=float, default=1.0, help="the Builder's sampling temperature")
    roll.add_argument("--shard-size", type=int, help="items per shard, kept for reruns (config: pipeline.shard_size)")
    roll.add_argument("--concurrent-shards", type=int, help="shards in flight at once (default 4)")
    _add_config_options(roll)
    roll.set_defaults(handler=cmd_rollouts)

    training = add_command("train", help="train the Builder: 1 SFT, 2 GRPO (verifiable), 3 GRPO (judge)")
    training.add_argument("--stage", type=int, choices=[1, 2, 3], required=True)
    training.add_argument("--model", required=True, help="the base Builder (hub id or local path)")
    training.add_argument("--data", required=True,
                          help="a rollouts output (legoedit rollouts' output) or JSONL of instructions (+ image, "
                               "target, workflow)")
    training.add_argument("--output-dir", required=True, help="where the adapter is saved")
    training.add_argument("--adapter", help="start from an earlier stage's adapter")
    training.add_argument("--full", action="store_true", help="train every weight instead of a LoRA adapter")
    training.add_argument("--max-steps", type=int, default=200)
    training.add_argument("--learning-rate", type=float, default=1e-5)
    training.add_argument("--batch-size", type=int, default=4)
    training.add_argument("--num-generations", type=int, default=4, help="GRPO: samples per prompt")
    training.add_argument("--max-completion-length", type=int, default=512, help="GRPO: longest sampled answer")
    training.add_argument("--max-length", type=int,
                          help="SFT: longest prompt (image tokens included) + answer, in tokens (default 4096)")
    training.add_argument("--device", help="cpu or cuda (default: planner.device; the dtype is planner.dtype)")
    _add_config_options(training)
    training.set_defaults(handler=cmd_train)

    export = add_command("export-rollouts", help="write a rollouts output in an RL trainer's dataset shape")
    export.add_argument("rollouts", help="the output prefix of legoedit rollouts")
    export.add_argument("destination", help="the Parquet file to write")
    export.add_argument("--trainer", required=True, choices=["verl", "easyr1", "trl"])
    export.set_defaults(handler=cmd_export_rollouts)

    bench = add_command("eval", help="run and judge a benchmark; write a per-category report")
    bench.add_argument("benchmark", help="local copy of GEdit-Bench, ImgEdit-Bench, MagicBrush, Emu Edit, or manifest")
    bench.add_argument("output", help="output prefix for parts, report.md and scores.parquet")
    bench.add_argument("--kind", default="auto", choices=["auto", "gedit", "imgedit", "magicbrush", "emu", "manifest"])
    bench.add_argument("--language", default="en", help="GEdit-Bench instruction language: en, cn or all")
    bench.add_argument("--images", help="ImgEdit-Bench: the folder its image paths are relative to")
    bench.add_argument("--shard-size", type=int, help="items per shard, kept for reruns (config: pipeline.shard_size)")
    bench.add_argument("--concurrent-shards", type=int, help="shards in flight at once (default 4)")
    _add_config_options(bench)
    bench.set_defaults(handler=cmd_eval)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handler: Callable[[argparse.Namespace], int] = args.handler
    try:
        code = handler(args)
        sys.stdout.flush()  # a closed pipe shows up here, inside the handling below
        return code
    except BrokenPipeError:
        # The reader went away (``| head``): stop quietly, and keep Python's exit-time flush from complaining.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except Exception as error:
        if args.debug:
            raise
        print(f"error: {describe(error)}", file=sys.stderr)
        return 2 if isinstance(error, UsageError) else 1


if __name__ == "__main__":
    sys.exit(main())
