"""``auditkit run | demo``. Exit codes: 0 no test says shift, 1 a test says shift, 2 bad input."""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import sys
from pathlib import Path
from typing import Sequence

from .errors import AuditkitError

EXIT_OK, EXIT_SHIFT, EXIT_USAGE = 0, 1, 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="auditkit", description="Counterfactual fairness audits of video personality raters.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser("run", help="audit a rater on a folder of clips",
                         description="Score each clip and each edited copy with the rater, then "
                                     "judge the paired differences.")
    run.add_argument("--rater", help="builtin:NAME, model.pt/.ts, model.onnx, file.py:name or pkg.mod:name")
    run.add_argument("--clips", help="folder of videos (default: the built-in sample clips)")
    run.add_argument("--perturb", metavar="NAME[,NAME...]",
                     help="edits to apply, e.g. lighting:dim,lighting:bright, or a family: lighting")
    run.add_argument("--out", help="output folder (audit.json, report.html, results.sqlite, previews/)")
    _common(run)
    run.add_argument("--config", help="TOML file (auditkit.toml or pyproject.toml with [tool.auditkit]); "
                                      "default: one in the current folder")
    run.add_argument("--margin", type=float, help="equivalence margin on the score scale (default 0.05)")
    run.add_argument("--alpha", type=float, help="significance level (default 0.05)")
    run.add_argument("--correction", choices=("holm", "bh", "bonferroni", "none"),
                     help="multiple-testing correction across all tests (default holm)")
    run.add_argument("--batch-size", type=int, help="clips per rater call (default 4)")

    demo = sub.add_parser("demo", help="audit the built-in appearance rater on the sample clips",
                          description="Run a whole audit on the sample clips in a few minutes on a CPU.")
    demo.add_argument("--out", help="output folder (default: auditkit-runs/demo-<time>)")
    _common(demo)
    return parser


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), help="where edits and the rater run")
    p.add_argument("--seed", type=int, help="seed for the edits' random parameters (default 0)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "run":
            return _run(args)
        if args.command == "demo":
            return _demo(args)
    except AuditkitError as exc:
        print(f"auditkit: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("auditkit: interrupted; scores so far are kept, run the same command again to resume",
              file=sys.stderr)
        return 130
    return EXIT_USAGE  # pragma: no cover - argparse requires a command


def _config(args: argparse.Namespace):
    from .config import AuditConfig

    base = AuditConfig.from_file(args.config) if args.config else (AuditConfig.discover(".") or AuditConfig())
    perturb = getattr(args, "perturb", None)
    return base.override(rater=getattr(args, "rater", None), clips=getattr(args, "clips", None),
                         perturbations=perturb, out=args.out, device=args.device, seed=args.seed,
                         margin=getattr(args, "margin", None), alpha=getattr(args, "alpha", None),
                         correction=getattr(args, "correction", None),
                         batch_size=getattr(args, "batch_size", None))


def _run(args: argparse.Namespace) -> int:
    config = _config(args)
    if not config.rater:
        raise AuditkitError("--rater is required (or 'rater' in the configuration file)")
    if not config.out:
        raise AuditkitError("--out is required (or 'out' in the configuration file)")
    return execute(config, quiet=args.quiet)


def _demo(args: argparse.Namespace) -> int:
    from .config import AuditConfig

    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    config = AuditConfig(rater="builtin:appearance", perturbations=("lighting",),
                         out=args.out or f"auditkit-runs/demo-{stamp}",
                         device=args.device or "auto", seed=args.seed or 0)
    print("auditkit demo: the built-in 'appearance' rater scores clips from image statistics alone; "
          "it is a planted-bias control, not a personality model. Lighting edits should move it.",
          file=sys.stderr)
    code = execute(config, quiet=args.quiet)
    return EXIT_OK if code == EXIT_SHIFT else code  # the demo expects shifts: that is its point


def execute(config, *, quiet: bool = False) -> int:
    """Run one audit as configured and write its files; return the exit code."""
    from .clips import as_sources, discover
    from .engine import preview, run_audit, _resolve_perturbations
    from .report import render_html, render_text
    from .samples import sample_clips

    out = Path(config.out)
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".auditkit-write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise AuditkitError(f"{out}: cannot write the output folder ({exc.strerror})") from None
    clips_dir = Path(config.clips) if config.clips else sample_clips()
    sources = discover(clips_dir)
    edits = _resolve_perturbations(list(config.perturbations))
    result = run_audit(config.rater, sources, edits, margin=config.margin, alpha=config.alpha,
                       correction=config.correction, batch_size=config.batch_size,
                       device=config.device, seed=config.seed, max_side=config.max_side,
                       store=out / "results.sqlite", progress=not quiet,
                       config={"rater": config.rater, "clips": str(clips_dir)})

    previews = {}
    first = next((s for s in as_sources(sources) if s.id not in {x.clip for x in result.skipped}), None)
    if first is not None:
        import cv2

        frames = result.rater["input"]["frames"]
        (out / "previews").mkdir(exist_ok=True)
        for name, image in preview(first.read(frames, config.max_side), edits, seed=config.seed).items():
            path = out / "previews" / f"{name.replace(':', '_')}.png"
            cv2.imwrite(str(path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
            previews[name] = path
    (out / "audit.json").write_text(json.dumps(result.to_dict(), indent=2) + "\n", encoding="utf-8")
    (out / "report.html").write_text(render_html(result, previews), encoding="utf-8")
    print(render_text(result))
    print(f"\nwrote {out / 'audit.json'}, {out / 'report.html'}, {out / 'results.sqlite'}")
    return EXIT_SHIFT if result.any_shift else EXIT_OK


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
