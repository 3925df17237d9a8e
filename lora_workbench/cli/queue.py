"""CLI `queue`: run a workflow on a running ComfyUI, headless.

    lora-workbench queue WORKFLOW [--server URL] [--set NODE.INPUT=VALUE ...] [--download DIR] [--timeout S]

WORKFLOW is an API-format prompt ("Export (API)") or a UI-format workflow such as our
example_workflows/*.json (converted with the server's /object_info). --set also takes an input a
node keeps as a hidden one (KohyaLoRATrain's first-layout inputs: device, batch_size ...): the value
goes to the option node of the trainer's chain that shows it, else to the trainer. Exit codes: 0 success,
1 execution error or an answer that is not ComfyUI's (not JSON, cut short, odd shapes, too big),
2 validation error (HTTP 400 node_errors, or a bad workflow or --set), 3 timeout (--timeout bounds
everything from submitting to the last download), 4 server unreachable or too slow.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from .. import numbers
from ..errors import WorkbenchError
from ..terminal import echo, shown
from ..training.node_layout import migrate_workflow

# The queue client is imported inside the command's functions, not here: it brings asyncio, urllib
# and http.client (about 0.1 s), which every other command (`train` above all) would pay at start-up.

EXIT_OK, EXIT_FAILED, EXIT_INVALID, EXIT_TIMEOUT, EXIT_UNREACHABLE = 0, 1, 2, 3, 4


def add_commands(sub) -> None:
    p = sub.add_parser(
        "queue",
        help="run a workflow on a running ComfyUI and download its images",
        description=__doc__.split("\n\n", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("workflow", help="API-format prompt or UI-format workflow (.json)")
    p.add_argument(
        "--server",
        default=os.environ.get("COMFYUI_URL", "http://127.0.0.1:8188"),
        help="ComfyUI address (default: $COMFYUI_URL or http://127.0.0.1:8188)",
    )
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="NODE.INPUT=VALUE",
        help="override an input; NODE is a node id or its title (repeatable)",
    )
    p.add_argument("--download", metavar="DIR", help="save the output images into DIR")
    p.add_argument(
        "--timeout",
        type=numbers.arg_float,
        default=None,
        metavar="S",
        help="give up (and interrupt the run) after S seconds",
    )
    p.add_argument(
        "--print-prompt", action="store_true", help="print the API-format prompt instead of queuing it"
    )
    p.add_argument("--poll", action="store_true", help="poll /history instead of following the websocket")
    p.set_defaults(func=run)


def _migrated(workflow):
    """A UI-format workflow saved with an older node layout, moved onto today's (as the browser does)."""
    workflow, notes = migrate_workflow(workflow)
    for note in notes:
        echo(f"migrated: {note}", file=sys.stderr)
    return workflow


def run(args) -> int:
    """The queue command; every failure is one `error:` line and an exit code, never a traceback."""
    from ..client import queue_client as qc

    try:
        return _run(args)
    except qc.ServerUnreachable as exc:
        echo(f"error: {exc}", file=sys.stderr)
        return EXIT_UNREACHABLE
    except qc.PromptRejected as exc:
        echo(f"error: the server rejected the workflow:\n{exc}", file=sys.stderr)
        return EXIT_INVALID
    except qc.BadReply as exc:
        echo(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        raise
    except Exception as exc:  # a reply shape nobody foresaw: still one line, never a traceback
        first = (str(exc).splitlines() or [""])[0][:300]
        echo(
            f"error: the server's answer could not be handled ({type(exc).__name__}: {first})",
            file=sys.stderr,
        )
        return EXIT_FAILED


def _run(args) -> int:
    from ..client import queue_client as qc

    client = qc.QueueClient(args.server)
    try:
        workflow = _migrated(qc.load_workflow(args.workflow))
        notes: list[str] = []
        prompt = qc.prepare_prompt(workflow, client, args.overrides, notes=notes)
        for note in notes:
            echo(note, file=sys.stderr)
    except (qc.ServerUnreachable, qc.BadReply):
        raise
    except WorkbenchError as exc:  # the workflow or a --set is wrong
        echo(f"error: {exc}", file=sys.stderr)
        return EXIT_INVALID
    if args.print_prompt:
        echo(json.dumps(prompt, indent=2))
        return EXIT_OK
    try:
        result = client.run(
            prompt, timeout=args.timeout, download_dir=args.download, use_websocket=not args.poll
        )
    except (qc.ServerUnreachable, qc.PromptRejected, qc.BadReply):
        raise
    except WorkbenchError as exc:  # e.g. a download refused with HTTP 404
        echo(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    return _report(result, args.timeout)


def _report(result, timeout: float | None) -> int:
    from ..client import queue_client as qc

    for path in result.images:
        echo(f"saved {shown(path)}")
    if result.status == "success":
        echo(f"done in {result.elapsed_s:.1f} s")
    elif result.status == "timeout":
        echo(f"error: no result within {timeout:g} s; the run was interrupted", file=sys.stderr)
    elif result.status == "interrupted":
        echo("error: the run was interrupted", file=sys.stderr)
    else:
        echo(f"error: {qc.format_execution_error(result.error or {})}", file=sys.stderr)
    return result.exit_code
