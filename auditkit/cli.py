"""``auditkit run | demo | perturb | report | dashboard | train``. Exit codes: 0 no test has a failing
verdict (``--fail-on``, default shift and unstable), 1 one has, 2 bad input or an output folder that
cannot be written (read-only, full), 3 an internal error (a bug: the traceback is printed)."""

from __future__ import annotations

import argparse
import datetime as _dt
import sys
from pathlib import Path
from typing import Any, NoReturn, Sequence

from auditkit.app.run import EXIT_INTERNAL, EXIT_OK, EXIT_USAGE
from auditkit.contract.errors import AuditkitError
from auditkit.core.settings import PARAMS


class _Parser(argparse.ArgumentParser):
    """argparse, with a bad argument said in one line (and exit 2) like every other input error,
    instead of the usage block; ``--help`` still shows the usage."""

    def error(self, message: str) -> NoReturn:
        where = self.prog.removeprefix("auditkit").strip()
        self.exit(EXIT_USAGE, f"auditkit: error: {where + ': ' if where else ''}{' '.join(message.split())} "
                              f"(see {self.prog} --help)\n")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="auditkit", description="Counterfactual fairness audits of video personality raters.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser("run", help="audit a rater on a folder of clips",
                         description="Score each clip and each edited copy with the rater, then "
                                     "judge the paired differences.")
    _settings(run, ("rater", "clips", "perturbations", "out"))
    _common(run)
    run.add_argument("--config", help="TOML file (auditkit.toml or pyproject.toml with [tool.auditkit]); "
                                      "default: one in the current folder")
    _settings(run, ("margin", "alpha", "tolerance", "correction", "unit", "cluster", "fail_on", "retest",
                    "batch_size", "contrasts", "scenes_dir", "shortlist_top", "shortlist_trait",
                    "max_missing_face", "executor", "workers", "ray_address"))
    run.add_argument("--explain", action="store_true",
                     help="then explain where the rater looks (as `auditkit explain OUT`, its defaults)")

    explain = sub.add_parser("explain", help="where the rater of a saved run looks (attribution per region)",
                             description="Explain the clips of a saved run that moved most: the share of the "
                                         "rater's attribution on face, hair, body and background per trait, "
                                         "heatmap overlays, written into the run (audit.json, report.html, "
                                         "explain/). Results are kept in the run's store: a second call "
                                         "computes nothing again.")
    explain.add_argument("run_dir", metavar="RUN_DIR", help="the --out folder of an `auditkit run`")
    explain.add_argument("--method", choices=("auto", "integrated_gradients", "ablation"), default="auto",
                         help="integrated_gradients for PyTorch raters, ablation (greyed regions) for any "
                              "rater; auto picks the first when it can (default)")
    explain.add_argument("--clips", type=int, default=8, metavar="N", help="clips to explain (default 8)")
    explain.add_argument("--frames", type=int, default=2, metavar="N",
                         help="frames per clip kept for the overlays (default 2)")
    explain.add_argument("--steps", type=int, default=16, metavar="N",
                         help="integrated gradients' steps (default 16)")
    explain.add_argument("--trait", action="append", metavar="TRAIT",
                         help="explain this trait (repeatable; default every trait)")
    explain.add_argument("--quiet", action="store_true", help="no progress bar")

    perturb = sub.add_parser("perturb", help="preview edits on one clip (original | edited)",
                             description="Apply edits to one video and write original and edited "
                                         "side by side: a PNG of the middle frame (one row per "
                                         "edit; the sound as spectrograms) or an MP4 of every "
                                         "frame; a WAV of the sound and each edit's. With --sheet, "
                                         "one JPEG per family of edits over one or more clips "
                                         "(a row per clip) into the folder --out.")
    perturb.add_argument("--clip", required=True, action="append",
                         help="a video file (repeat --clip for several with --sheet)")
    perturb.add_argument("--perturb", required=True, metavar="NAME[,NAME...]", help="edits to show")
    perturb.add_argument("--out", required=True,
                         help="preview.png, preview.mp4 or (edits of the sound) preview.wav; with --sheet, a folder")
    perturb.add_argument("--sheet", action="store_true",
                         help="write OUT/FAMILY.jpg: every edit of each family on every clip")
    perturb.add_argument("--frames", type=int, default=16, help="frames to sample (default 16)")
    perturb.add_argument("--scenes", metavar="DIR", help="folder of background images for background:user")
    perturb.add_argument("--seed", type=int, default=0, help="seed of the edits (default 0)")

    demo = sub.add_parser("demo", help="plant a bias, catch it, remove it, audit again (a few minutes)",
                          description="Train a planted-bias control rater on the sample clips, audit "
                                      "it, retrain it with augmentation and audit it again; print the "
                                      "before/after table.")
    demo.add_argument("--out", help="output folder (default: auditkit-runs/demo-<time>)")
    demo.add_argument("--augment", action="append", metavar="RECIPE",
                      help="retraining augmentation: background-swap, random-room (the default: both), "
                           "random-noise, random-mic or counterfactual:<edit or family>, e.g. "
                           "counterfactual:glasses (repeatable)")
    demo.add_argument("--consistency", type=float, default=0.0, metavar="W",
                      help="retrain with W x the score difference between each clip and an "
                           "augmented copy added to the loss (default 0)")
    demo.add_argument("--epochs", type=int, metavar="N",
                      help="training epochs per model (default: the demo's own, enough to learn the planted shortcuts)")
    demo.add_argument("--method", choices=("ablation", "integrated_gradients"), default="ablation",
                      help="how the demo shows where each rater looks: region ablation (default, a few "
                           "rater calls per clip) or integrated gradients (slower)")
    _common(demo)

    sub.add_parser("train", help="train an OceanRegressor (same as python -m auditkit.models.train)")

    report = sub.add_parser("report", help="render a saved audit.json as HTML, Markdown or JUnit XML",
                            description="Render a saved audit again, offline. Preview images are "
                                        "read only from the previews/ folder beside audit.json.")
    report.add_argument("audit", help="path to audit.json")
    report.add_argument("--format", choices=("html", "md", "junit"), default="html")
    report.add_argument("--out", help="file to write (default: print to standard output)")

    dashboard = sub.add_parser("dashboard", help="review saved runs in the browser (Streamlit, localhost only)",
                               description="Serve the reviewer dashboard on 127.0.0.1: every run in "
                                           "RUNS_DIR, the verdict grid, the evidence per condition and "
                                           "clip, and two runs side by side. It reads the runs and "
                                           "writes nothing.")
    dashboard.add_argument("runs_dir", nargs="?", default="auditkit-runs", metavar="RUNS_DIR",
                           help="folder of runs, searched three levels down (default: auditkit-runs)")
    dashboard.add_argument("--port", type=int, default=8501, help="port on 127.0.0.1 (default 8501)")
    return parser


def _settings(p: argparse.ArgumentParser, names: Sequence[str]) -> None:
    """Command-line options for settings, from their one declaration (core.settings.PARAMS): the
    values are checked by the settings' own rules, so a bad one reads the same as in a file."""
    from auditkit.contract.params import Flag, Number, OneOf, Pairs

    for name in names:
        param = PARAMS[name]
        rule = getattr(param.rule, "rule", param.rule)  # Maybe(rule): None means "not given" anyway
        kwargs: dict = {"dest": name, "help": param.help}
        if isinstance(rule, Flag):
            kwargs.update(action="store_const", const=False)  # --no-NAME
        elif isinstance(rule, Pairs):
            kwargs.update(action="append", metavar=param.metavar)
        elif isinstance(rule, OneOf):
            kwargs.update(choices=rule.values)
        else:
            kwargs.update(metavar=param.metavar)
            if isinstance(rule, Number):
                kwargs["type"] = int if rule.integer else float
            elif name == "margin":
                kwargs["type"] = float  # a table per trait only in a file
        p.add_argument(param.flag, **kwargs)


def _common(p: argparse.ArgumentParser) -> None:
    _settings(p, ("device", "seed"))
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["train"]:  # its own parser: `auditkit train --help` shows the trainer's options
        from auditkit.models.train import main as train_main

        return train_main(argv[1:], prog="auditkit train")
    args = _parser().parse_args(argv)
    try:
        if args.command == "run":
            return _run(args)
        if args.command == "demo":
            return _demo(args)
        if args.command == "perturb":
            return _perturb(args)
        if args.command == "report":
            return _report(args)
        if args.command == "explain":
            return _explain(args)
        if args.command == "dashboard":
            return _dashboard(args)

    except AuditkitError as exc:
        print(f"auditkit: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("auditkit: interrupted; scores so far are kept, run the same command again to resume",
              file=sys.stderr)
        return 130
    except Exception as exc:  # a bug, not the user's mistake: show it, but never as "shift" (1)
        import traceback

        traceback.print_exc()
        print(f"auditkit: internal error (please report it): {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_INTERNAL
    return EXIT_USAGE  # pragma: no cover - argparse requires a command


def _config(args: argparse.Namespace):
    from auditkit.core.settings import AuditConfig

    base = AuditConfig.from_file(args.config) if args.config else (AuditConfig.discover(".") or AuditConfig())
    given = {name: getattr(args, name) for name in PARAMS if hasattr(args, name)}
    if "contrasts" in given:
        given["contrasts"] = _contrasts(given["contrasts"])
    return base.override(**given)


def _contrasts(values: Sequence[str] | None) -> tuple[tuple[str, str], ...] | None:
    if not values:
        return None
    from auditkit.perturbations import contrast_pair

    out = []
    for value in values:
        pair = contrast_pair(value)
        if pair is None:
            raise AuditkitError(f"--contrast {value!r}: write two edits as 'A vs B'")
        out.append(pair)
    return tuple(out)


def _run(args: argparse.Namespace) -> int:
    config = _config(args)
    if not config.rater:
        raise AuditkitError("--rater is required (or 'rater' in the configuration file)")
    if not config.out:
        raise AuditkitError("--out is required (or 'out' in the configuration file)")
    from auditkit.app.run import execute

    code = execute(config, quiet=args.quiet)
    if args.explain:
        from auditkit.app.explain import explain_run

        explain_run(config.out, quiet=args.quiet)
        print(f"explained: {Path(config.out) / 'audit.json'} (attribution), {Path(config.out) / 'explain'}/")
    return code


def _explain(args: argparse.Namespace) -> int:
    from auditkit.app.explain import explain_run
    from auditkit.core.explain import ExplainSettings
    from auditkit.core.report.format import attribution_lines
    from auditkit.core.settings import COMMAND_LINE

    settings = ExplainSettings(args.method, args.clips, args.frames, args.steps, args.trait, source=COMMAND_LINE)
    folder = Path(args.run_dir)
    if not (folder / "audit.json").is_file():
        raise AuditkitError(f"{folder}: no audit.json (give the --out folder of an `auditkit run`)")
    explain_run(folder, settings, quiet=args.quiet)
    from auditkit.app.run import load_audit

    print("\n".join(attribution_lines(load_audit(folder / "audit.json"))))
    print(f"\nwrote {folder / 'audit.json'} (attribution), {folder / 'report.html'}, {folder / 'explain'}/")
    return EXIT_OK


def _demo(args: argparse.Namespace) -> int:
    from auditkit.demo import DemoConfig, render_table, run_demo

    if args.epochs is not None and args.epochs < 1:
        raise AuditkitError(f"--epochs must be >= 1, got {args.epochs}")
    if args.consistency < 0:
        raise AuditkitError(f"--consistency must be >= 0, got {args.consistency}")
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    out = Path(args.out or f"auditkit-runs/demo-{stamp}")
    config = DemoConfig(epochs=args.epochs or DemoConfig.epochs, augment=tuple(args.augment or DemoConfig.augment),
                        consistency=args.consistency, explain_method=args.method,
                        device=args.device or "auto", seed=args.seed or 0)
    print("auditkit demo: a planted-bias control rater (not a personality model) learns that a "
          "bookshelf raises conscientiousness and extraversion, that glasses lower "
          "conscientiousness, and that a large hall's echo lowers it too; the audit should catch all three, "
          "and retraining with "
          f"{', '.join(config.augment)} should remove what it addresses.\n", flush=True)
    say = (lambda _m: None) if args.quiet else (lambda m: print(m, flush=True))
    summary = run_demo(out, config, say=say, progress=not args.quiet)
    print("\n" + render_table(summary))
    print(f"\nboth runs: {out / 'before'} and {out / 'after'} (audit.json, report.html)")
    print(f"total time: {summary['seconds']:.0f} s")
    return EXIT_OK


def _report(args: argparse.Namespace) -> int:
    from auditkit.app.run import load_audit, saved_shifts
    from auditkit.core.report import explain_files, preview_files, render_html, render_junit, render_markdown

    result = load_audit(args.audit)
    if args.format == "html":
        # The folder the user named, not where a linked audit.json points: nothing is read from
        # outside it.
        folder = Path(args.audit).absolute().parent
        text = render_html(result, preview_files(folder / "previews"), shifts=saved_shifts(folder, result),
                           overlays=explain_files(folder, result))
    else:
        text = render_markdown(result) if args.format == "md" else render_junit(result)
    if args.out:
        try:
            Path(args.out).write_text(text, encoding="utf-8")
        except OSError as exc:
            raise AuditkitError(f"--out {args.out}: cannot write ({exc.strerror})") from None
    else:
        sys.stdout.write(text)
    return EXIT_OK


def dashboard_command(runs_dir: Path, port: int) -> list[str]:
    """The Streamlit command line that serves the dashboard on RUNS_DIR (also used by its tests)."""
    from auditkit import dashboard

    app = Path(dashboard.__file__).resolve().parent / "app.py"
    # Bound to loopback: the dashboard shows a run's frames and scores, which are not for the
    # network. No file watcher (nothing to hot-reload for a reviewer), no usage statistics.
    return [sys.executable, "-m", "streamlit", "run", str(app),
            "--server.headless", "true", "--server.address", "127.0.0.1", "--server.port", str(port),
            "--server.fileWatcherType", "none", "--server.runOnSave", "false",
            "--browser.gatherUsageStats", "false", "--client.toolbarMode", "viewer",
            "--", str(runs_dir)]


def _dashboard(args: argparse.Namespace) -> int:
    import importlib.util
    import signal
    import subprocess
    import threading

    root = Path(args.runs_dir)
    if not root.is_dir():
        raise AuditkitError(f"{root}: no such folder of runs (write one with `auditkit demo` or "
                            f"`auditkit run --out {root}/NAME`, or give RUNS_DIR)")
    if not 1 <= args.port <= 65535:
        raise AuditkitError(f"--port must be between 1 and 65535, got {args.port}")
    if importlib.util.find_spec("streamlit") is None:
        raise AuditkitError("the dashboard needs streamlit: pip install streamlit")
    print(f"auditkit dashboard: http://127.0.0.1:{args.port} (runs in {root.resolve()}); Ctrl-C stops it",
          flush=True)
    proc = subprocess.Popen(dashboard_command(root.resolve(), args.port))
    # A `kill` of this process must stop the server too, not leave it serving as an orphan.
    forward = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, lambda *_: proc.terminate()) if forward else None
    try:
        code = proc.wait()
    except KeyboardInterrupt:  # Streamlit got the same Ctrl-C and stops by itself
        proc.wait()
        return EXIT_OK
    finally:
        if forward:
            signal.signal(signal.SIGTERM, previous)
    if code not in (0, 130, -signal.SIGINT, -signal.SIGTERM):  # stopped on request, not a failure
        raise AuditkitError(f"the dashboard server stopped with exit code {code} (is port {args.port} "
                            "in use? try --port)")
    return EXIT_OK


def _perturb(args: argparse.Namespace) -> int:
    import cv2
    import numpy as np
    import torch

    from auditkit.contract.errors import ClipError
    from auditkit.core.engine import apply_edit
    from auditkit.core.plan import resolve_edits
    from auditkit.media.clips import read_video
    from auditkit.perturbations import DEFAULT_MAX_MISSING_FACE, edits_sound
    from auditkit.perturbations.annotate import Annotator

    out = Path(args.out)
    if args.frames < 1:
        raise AuditkitError(f"--frames must be >= 1, got {args.frames}")
    if args.sheet:
        return _perturb_sheets(args, out)
    if out.suffix.lower() not in (".png", ".mp4", ".wav"):
        raise AuditkitError(f"--out {out}: give a .png (middle frame), .mp4 (all frames) or .wav (the sound) file, "
                            "or a folder with --sheet")
    if len(args.clip) > 1:
        raise AuditkitError(f"--clip given {len(args.clip)} times: a .png or .mp4 preview shows one clip; "
                            "use --sheet for several")
    try:
        clip = read_video(args.clip[0], num_frames=args.frames)
    except ClipError as exc:
        raise AuditkitError(str(exc)) from None
    edits = resolve_edits(args.perturb, scenes_dir=args.scenes)
    if out.suffix.lower() == ".wav":
        return _perturb_sound(args, out, clip, edits)
    if out.suffix.lower() == ".mp4":
        return _perturb_recording(args, out, edits)
    heard = [e for e in edits if edits_sound(e)]
    frames = torch.from_numpy(clip.frames)
    annotations = Annotator().annotate_clip(clip) if any(e.requires for e in edits) else None
    # A control that samples other frames of the clip (control:retest) gets them decoded here.
    resampled: dict[float, np.ndarray | str] = {}
    for offset in {e.resample for e in edits if e.resample is not None}:
        try:
            resampled[offset] = read_video(args.clip[0], num_frames=args.frames, offset=offset).frames
        except ClipError as exc:
            resampled[offset] = exc.reason
    edited = {}
    for edit in (e for e in edits if not edits_sound(e)):
        result = apply_edit(edit, clip, frames, annotations, args.seed, DEFAULT_MAX_MISSING_FACE, resampled)
        if isinstance(result, str):
            raise AuditkitError(f"{edit.name} does not apply to {args.clip[0]}: {result}")
        edited[edit.name] = result.numpy()
    gap = lambda n: np.full((clip.num_frames, clip.frames.shape[1], n, 3), 255, np.uint8)  # noqa: E731
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise AuditkitError(f"--out {out}: cannot create its folder ({exc.strerror})") from None
    mid = clip.num_frames // 2
    rows = [np.concatenate([clip.frames[mid], gap(4)[0], e[mid]], axis=1) for e in edited.values()]
    rows += _spectrogram_rows(args, clip, heard)
    width = max(r.shape[1] for r in rows)
    sheet = np.concatenate([np.pad(np.concatenate([r, np.full((4, r.shape[1], 3), 255, np.uint8)]),
                                   ((0, 0), (0, width - r.shape[1]), (0, 0)), constant_values=255)
                            for r in rows])[:-4]
    if not cv2.imwrite(str(out), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR)):
        raise AuditkitError(f"--out {out}: could not write the image")
    print(f"wrote {out}: original | {' | '.join([*edited, *(e.name for e in heard)])}"
          + (" (the sound as spectrograms, 0-8 kHz)" if heard else ""))
    return EXIT_OK


def _heard(args: argparse.Namespace, clip: Any, edits: list) -> tuple[tuple[Any, int], dict[str, Any]]:
    """The clip's own sound and each edit's, as an audit with the same seed hears them."""
    import numpy as np

    from auditkit.app.sheets import clip_sound
    from auditkit.perturbations import NotApplicable, clip_seed

    sound = clip_sound(clip)
    if sound is None:
        raise AuditkitError(f"--clip {args.clip[0]}: has no audio track: there is no sound to edit")
    out = {}
    for edit in edits:
        try:
            out[edit.name] = edit.hear(sound[0], sound[1], rng=np.random.default_rng(
                clip_seed(args.seed, clip.id, edit.name)))
        except NotApplicable as exc:
            raise AuditkitError(f"{edit.name} does not apply to {args.clip[0]}: {exc.reason}") from None
    return sound, out


def _spectrogram_rows(args: argparse.Namespace, clip: Any, edits: list) -> list:
    """original | edited spectrogram rows, at the clip's frame height, for edits of the sound."""
    import numpy as np

    from auditkit.app.sheets import spectrogram

    if not edits:
        return []
    (audio, rate), heard = _heard(args, clip, edits)
    height, width = clip.frames.shape[1:3]  # a frame's size
    original, ref = spectrogram(audio, rate, height, width)
    gap = np.full((height, 4, 3), 255, np.uint8)
    return [np.concatenate([original, gap, spectrogram(h, rate, height, width, ref=ref)[0]], axis=1)
            for h in heard.values()]


def _perturb_sound(args: argparse.Namespace, out: Path, clip: Any, edits: list) -> int:
    """``perturb --out x.wav``: the clip's sound, then each edit's, half a second apart, at the
    clip's own rate and channels (16-bit PCM): to listen to one after the other."""
    import wave

    import numpy as np

    from auditkit.contract.arms import ORIGINAL
    from auditkit.perturbations import edits_sound

    seen = [e.name for e in edits if not edits_sound(e)]
    if seen:
        raise AuditkitError(f"--perturb {', '.join(seen)}: edit the picture, not the sound; preview them as "
                            ".png or .mp4")
    (audio, rate), heard = _heard(args, clip, edits)
    gap = np.zeros((audio.shape[0], rate // 2), np.float32)
    parts, order, at = [], [], 0.0
    for name, sound in [(ORIGINAL, audio), *heard.items()]:
        parts += [sound, gap]
        order.append(f"{at:.1f} s {name}")
        at += (sound.shape[1] + gap.shape[1]) / rate
    pcm = np.round(np.clip(np.concatenate(parts[:-1], axis=1), -1, 1) * 32767).astype("<i2")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        with wave.open(str(out), "wb") as fh:
            fh.setnchannels(pcm.shape[0])
            fh.setsampwidth(2)
            fh.setframerate(rate)
            fh.writeframes(np.ascontiguousarray(pcm.T).tobytes())
    except OSError as exc:
        raise AuditkitError(f"--out {out}: cannot write it ({exc.strerror or exc})") from None
    print(f"wrote {out} ({rate} Hz): {'; '.join(order)}")
    return EXIT_OK


def _perturb_recording(args: argparse.Namespace, out: Path, edits: list) -> int:
    """``perturb --out x.mp4``: every frame of the clip at its own rate, the original and each edit
    side by side, with the clip's own sound (copied: a picture edit leaves it as it was)."""
    import numpy as np

    from auditkit.contract.errors import ClipError
    from auditkit.core.recording import edited_frames
    from auditkit.media.recording import RecordingSpec, iter_frames, probe, window_of, write_recording
    from auditkit.perturbations import edits_sound
    from auditkit.perturbations.annotate import Annotator

    controls = [e.name for e in edits if e.resample is not None]
    if controls:
        raise AuditkitError(f"--perturb {', '.join(controls)}: a control that samples other frames is no "
                            "picture edit to watch; preview it as a .png")
    path = Path(args.clip[0])
    heard = [e for e in edits if edits_sound(e)]
    if heard:  # an MP4 carries one sound: the clip as a candidate's upload, with that edit's sound
        if len(edits) > 1:
            raise AuditkitError(f"--perturb {', '.join(e.name for e in heard)}: an MP4 carries one sound; give one "
                                "edit of the sound (the clip with its edited sound), or write .wav to hear several")
        from auditkit.core.recording import render
        from auditkit.perturbations import NotApplicable

        try:
            data = render(path, heard[0], RecordingSpec(), clip_id=path.stem, seed=args.seed, annotator=None)
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_bytes(data)
        except (ClipError, NotApplicable) as exc:
            raise AuditkitError(f"{heard[0].name} does not apply to {path}: "
                                f"{getattr(exc, 'reason', exc)}") from None
        except OSError as exc:
            raise AuditkitError(f"--out {out}: cannot write it ({exc.strerror or exc})") from None
        print(f"wrote {out}: every frame as it was, with the sound of {heard[0].name}")
        return EXIT_OK
    spec, annotator = RecordingSpec(), Annotator()
    try:
        source = probe(path)
        streams = [iter_frames(path, spec)] + [edited_frames(path, e, spec, clip_id=path.stem, seed=args.seed,
                                                             annotator=annotator) for e in edits]

        def side_by_side():
            for tiles in zip(*streams):
                h = tiles[0][1].shape[0]
                gap = np.full((h, 4, 3), 255, np.uint8)
                row = [tiles[0][1]]
                for _, frame in tiles[1:]:
                    row += [gap, frame]
                yield tiles[0][0], np.concatenate(row, axis=1)

        out.parent.mkdir(parents=True, exist_ok=True)
        write_recording(out, side_by_side(), fps=source.fps, sound_from=path, window=window_of(source, spec))
    except ClipError as exc:
        raise AuditkitError(str(exc)) from None
    except OSError as exc:
        raise AuditkitError(f"--out {out}: cannot write it ({exc.strerror or exc})") from None
    print(f"wrote {out}: original | {' | '.join(e.name for e in edits)}, every frame, with the clip's sound")
    return EXIT_OK


def _perturb_sheets(args: argparse.Namespace, out: Path) -> int:
    """``perturb --sheet``: one JPEG per family into the folder ``out``, a row per clip; an edit
    that does not apply to a clip shows why in its place."""
    from auditkit.app.sheets import family_sheets, write_sheet
    from auditkit.contract.errors import ClipError
    from auditkit.core.plan import resolve_edits
    from auditkit.media.clips import read_video

    if out.suffix.lower() in (".png", ".jpg", ".jpeg", ".mp4"):
        raise AuditkitError(f"--out {out}: with --sheet, give a folder (one FAMILY.jpg is written per family)")
    if out.exists() and not out.is_dir():
        raise AuditkitError(f"--out {out}: exists and is not a folder")
    if len(set(args.clip)) != len(args.clip):
        raise AuditkitError("--clip: the same file is given twice")
    edits = resolve_edits(args.perturb, scenes_dir=args.scenes)
    clips = []
    for path in args.clip:
        try:
            clips.append(read_video(path, num_frames=args.frames))
        except ClipError as exc:
            raise AuditkitError(str(exc)) from None
    ids = [c.id for c in clips]
    if len(set(ids)) != len(ids):
        raise AuditkitError(f"--clip: two clips share the name {next(i for i in ids if ids.count(i) > 1)!r}; "
                            "rows are labelled by file name")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise AuditkitError(f"--out {out}: cannot create the folder ({exc.strerror})") from None
    sheets = family_sheets(clips, edits, seed=args.seed)
    for family, sheet in sheets.items():
        try:
            path = write_sheet(out / f"{family}.jpg", sheet)
        except OSError as exc:
            raise AuditkitError(f"--out {out}: cannot write {family}.jpg ({exc.strerror or exc})") from None
        names = [e.name for e in edits if e.family == family]
        print(f"wrote {path}: {len(clips)} clip(s) x original | {' | '.join(names)}")
    return EXIT_OK


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
