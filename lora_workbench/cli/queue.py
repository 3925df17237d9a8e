"""CLI `queue`: run a workflow on a running ComfyUI, headless.

    lora-workbench queue WORKFLOW [--server URL] [--set NODE.INPUT=VALUE ...] [--download DIR] [--timeout S]

WORKFLOW is an API-format prompt ("Export (API)") or a UI-format workflow such as our
example_workflows/*.json (converted with the server's /object_info). Exit codes: 0 success,
1 execution error, 2 validation error (HTTP 400 node_errors, or a bad --set), 3 timeout,
4 server unreachable.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

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
        type=float,
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
    from ..training.node_layout import migrate_workflow

    workflow, notes = migrate_workflow(workflow)
    for note in notes:
        print(f"migrated: {note}", file=sys.stderr)
    return workflow


def run(args) -> int:
    from ..client import queue_client as qc
    from ..errors import ValidationError, WorkbenchError

    client = qc.QueueClient(args.server)
    try:
        workflow = _migrated(qc.load_workflow(args.workflow))
        prompt = qc.prepare_prompt(workflow, client, args.overrides)
    except qc.ServerUnreachable as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_UNREACHABLE
    except ValidationError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_INVALID
    except WorkbenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_INVALID
    if args.print_prompt:
        print(json.dumps(prompt, indent=2))
        return EXIT_OK
    try:
        result = client.run(
            prompt, timeout=args.timeout, download_dir=args.download, use_websocket=not args.poll
        )
    except qc.PromptRejected as exc:
        print(f"error: the server rejected the workflow:\n{exc}", file=sys.stderr)
        return EXIT_INVALID
    except qc.ServerUnreachable as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_UNREACHABLE
    for path in result.images:
        print(f"saved {path}")
    if result.status == "success":
        print(f"done in {result.elapsed_s:.1f} s")
    elif result.status == "timeout":
        print(f"error: no result within {args.timeout:g} s; the run was interrupted", file=sys.stderr)
    elif result.status == "interrupted":
        print("error: the run was interrupted", file=sys.stderr)
    else:
        print(f"error: {qc.format_execution_error(result.error or {})}", file=sys.stderr)
    return result.exit_code
