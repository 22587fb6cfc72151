"""``snn-explorer export``: write a trained checkpoint as NIR, ONNX or TorchScript, then check it.

Drives :func:`engine.export.job.export_job` (the same generator the Training tab's "Export
model..." menu runs). A model the format cannot express is refused with one line naming the
layer; a file that does not match the model on the check inputs exits with status 1.
"""

from __future__ import annotations

import sys

# the engine's values, repeated so building the parser imports no torch (a test compares them)
FORMATS = ("nir", "onnx", "torchscript")
CHECK_EXAMPLES = 32
DISCRETISATIONS = ("exact", "euler")
DEFAULT_DT = 1e-4


def add_parser(sub) -> None:

    p = sub.add_parser(
        "export",
        help="export a trained checkpoint as NIR, ONNX or TorchScript",
        description="Write CKPT's model as NIR (spiking models, for neuromorphic hardware and "
        "simulators), ONNX (ANNs) or TorchScript (any model), read the file back and compare "
        "it with the model on test examples of its data set.",
    )
    p.add_argument("--checkpoint", required=True, metavar="CKPT", help="checkpoint.pt or best.pt")
    p.add_argument("--format", required=True, choices=FORMATS, dest="fmt")
    p.add_argument("--out", required=True, metavar="PATH", help="file to write (or a folder)")
    p.add_argument("--no-check", action="store_true", help="write only; do not read it back")
    p.add_argument(
        "--check-examples",
        type=int,
        default=CHECK_EXAMPLES,
        metavar="N",
        help=f"test examples to compare on (default {CHECK_EXAMPLES})",
    )
    p.add_argument(
        "--dt",
        type=float,
        default=DEFAULT_DT,
        metavar="SECONDS",
        help=f"NIR: seconds per time step (default {DEFAULT_DT:g}, snnTorch's)",
    )
    p.add_argument(
        "--discretisation",
        choices=DISCRETISATIONS,
        default="exact",
        help="NIR: map beta = exp(-dt/tau) (exact, default) or beta = 1 - dt/tau (euler: "
        "what snnTorch and Norse integrate)",
    )
    p.add_argument(
        "--reset-as-zero",
        action="store_true",
        help="NIR: write reset-by-subtraction layers as reset to zero (an approximation)",
    )
    p.set_defaults(func=run)


def run(args) -> int:
    from engine.export.job import export_job

    gen = export_job(
        args.checkpoint,
        args.fmt,
        args.out,
        check=not args.no_check,
        n_check=max(1, args.check_examples),
        dt=args.dt,
        discretisation=args.discretisation,
        reset_as_zero=args.reset_as_zero,
    )
    while True:
        try:
            ev = next(gen)
        except StopIteration as done:
            result = done.value
            break
        if sys.stderr.isatty():
            sys.stderr.write(f"\r\033[K{ev.message}")
            sys.stderr.flush()
    if sys.stderr.isatty():
        sys.stderr.write("\r\033[K")
    print(result.summary())
    if not result.ok:
        failed = "; ".join(c.name for c in result.checks if c.required and not c.passed)
        print(
            f"snn-explorer export: error: {result.path} does not match the model ({failed})",
            file=sys.stderr,
        )
        return 1
    return 0
