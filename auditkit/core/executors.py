"""Where the audit's batches run: here (with annotation on worker processes) or on a Ray cluster.

Both executors take the same fixed list of clip batches and run the same two functions of
:mod:`auditkit.work` on each, so they produce the same records; the driver alone writes them to
the store. Local: decoding and MediaPipe annotation of the next batches run on worker processes
while this process edits and scores the current one. Ray: each actor holds the rater (on a GPU
when the cluster has them) and does a whole batch, decode to scores.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
from collections import deque
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any, Iterator, Sequence

import torch

from auditkit.contract.errors import AuditkitError, ConfigError
from auditkit.perturbations import Perturbation
from auditkit.perturbations.annotate import Annotator

from .work import Outcome, needs_annotation, prepare, score_batch

EXECUTORS = ("local", "ray")
LOOKAHEAD = 2  # batches prepared ahead of the one being scored: enough to hide annotation, bounded memory


@dataclass
class Job:
    """Everything a batch needs besides its clips; it travels to worker processes and actors."""

    rater: Any                 # a loaded rater (local) ...
    rater_spec: Any            # ... and what to load it from elsewhere (a spec string or the object)
    edits: Sequence[Perturbation]
    done: set[tuple[str, str]]
    device: torch.device
    seed: int
    max_side: int
    max_missing_face: float
    per_call: int
    annotator: Annotator | None
    thumbs: bool = True
    timing: bool = False  # time edits, inputs and rater calls into Outcome.seconds (CUDA synchronised)
    # torch's CPU kernels for exp, sin, atan2... round their vectorised body and their scalar
    # tail differently, and where the tail falls depends on how many threads split the tensor:
    # an edit's last bit, and so a score, depends on the thread count. Every process of an audit
    # uses the thread count of the one that started it, so every executor gives the same numbers.
    threads: int = field(default_factory=torch.get_num_threads)
    _by_clip: dict[str, list[str]] | None = field(default=None, init=False, repr=False, compare=False)

    def done_for(self, batch: Sequence[Any]) -> set[tuple[str, str]]:
        if self._by_clip is None:  # indexed once: a resumed 10,000-clip audit asks per batch
            self._by_clip = {}
            for cid, cond in self.done:
                self._by_clip.setdefault(cid, []).append(cond)
        return {(s.id, cond) for s in batch for cond in self._by_clip.get(s.id, ())}

    def run_batch(self, batch: Sequence[Any], rater: Any, annotator: Annotator | None,
                  device: torch.device, prepared: Any = None) -> Outcome:
        done = self.done_for(batch)
        stats: dict[str, int] = {}
        if prepared is None:
            flags = [annotator is not None and needs_annotation(s.id, self.edits, done) for s in batch]
            prepared, stats = prepare(batch, frames=rater.input.frames, max_side=self.max_side,
                                      annotator=annotator, annotate=flags)
        outcome = score_batch(rater, prepared, self.edits, done, device=device, seed=self.seed,
                              max_missing_face=self.max_missing_face, per_call=self.per_call, thumbs=self.thumbs,
                              timing=self.timing)
        # The caller's own annotator has counted this work already; another process's has not.
        outcome.annotated = {} if annotator is self.annotator else stats
        return outcome


def make_executor(name: str = "local", *, workers: int | None = None, address: str | None = None):
    if name == "local":
        return LocalExecutor(workers=0 if workers is None else workers)
    if name == "ray":
        return RayExecutor(address=address, actors=workers or None)
    raise ConfigError(f"executor must be one of {', '.join(EXECUTORS)}, got {name!r}")


# ---------------------------------------------------------------------------------------- local

_WORKER: dict[str, Any] = {}


def _worker_init() -> None:
    # One process of several on the machine: leave the cores to the rater in the main process.
    torch.set_num_threads(1)
    try:
        import cv2

        cv2.setNumThreads(1)
    except ImportError:
        pass


def _worker_prepare(batch: Sequence[Any], frames: int, max_side: int, cache_dir: str, use_cache: bool,
                    annotate: Sequence[bool]):
    key = f"{cache_dir}|{use_cache}"
    if key not in _WORKER:  # MediaPipe graphs load once per worker, not once per batch
        _WORKER.clear()
        _WORKER[key] = Annotator(cache_dir, use_cache=use_cache)
    return prepare(batch, frames=frames, max_side=max_side, annotator=_WORKER[key], annotate=annotate)


class LocalExecutor:
    """Batches scored in this process, in order; ``workers`` processes decode and annotate ahead.

    The pool starts only when there is annotation to overlap (an edit needs faces or masks, and
    more than one batch has a clip to annotate); otherwise decoding stays in this process.
    """

    def __init__(self, workers: int = 1) -> None:
        if isinstance(workers, bool) or not isinstance(workers, int) or workers < 0:
            raise ConfigError(f"workers must be an integer >= 0, got {workers!r}")
        self.workers = workers

    def run(self, job: Job, batches: Sequence[Sequence[Any]]) -> Iterator[Outcome]:
        frames = job.rater.input.frames
        flags = [[job.annotator is not None and needs_annotation(s.id, job.edits, job.done_for(batch))
                  for s in batch] for batch in batches]
        use_pool = (self.workers > 0 and type(job.annotator) is Annotator
                    and sum(any(f) for f in flags) > 1)
        if not use_pool:
            for batch in batches:
                yield job.run_batch(batch, job.rater, job.annotator, job.device)
            return
        ctx = multiprocessing.get_context("spawn")  # fork after torch/MediaPipe threads start can hang
        pool = ProcessPoolExecutor(self.workers, mp_context=ctx, initializer=_worker_init)
        pending: deque[Future] = deque()
        try:
            submitted = 1  # batch 0 is prepared here while the workers start up

            def top_up(current: int) -> None:
                nonlocal submitted
                while submitted < len(batches) and submitted <= current + LOOKAHEAD:
                    pending.append(pool.submit(_worker_prepare, list(batches[submitted]), frames, job.max_side,
                                               str(job.annotator.cache_dir), job.annotator.use_cache,
                                               flags[submitted]))
                    submitted += 1

            for i, batch in enumerate(batches):
                top_up(i)
                if i == 0:
                    yield job.run_batch(batch, job.rater, job.annotator, job.device)
                    continue
                prepared, stats = pending.popleft().result()
                outcome = job.run_batch(batch, job.rater, job.annotator, job.device, prepared=prepared)
                outcome.annotated = stats
                yield outcome
        finally:
            for future in pending:
                future.cancel()
            pool.shutdown(wait=True, cancel_futures=True)


# ------------------------------------------------------------------------------------------ ray

class _RayWorker:
    """A Ray actor: loads the rater once, then scores whole batches."""

    def __init__(self, job: Job, device: str) -> None:
        from auditkit.contract.rater import rater_identity
        from auditkit.raters import load_rater

        torch.set_num_threads(job.threads)
        self.device = torch.device(device)
        self.rater = load_rater(job.rater_spec, device=self.device)
        self.job = job
        # Its own annotator, so that its work is reported back to the driver's (see run_batch).
        self.annotator = (Annotator(job.annotator.cache_dir, use_cache=job.annotator.use_cache)
                          if job.annotator is not None else None)
        self.identity = rater_identity(self.rater)["hash"]

    def identity_hash(self) -> str:
        return self.identity

    def run(self, batch: Sequence[Any], done: set[tuple[str, str]]) -> Outcome:
        return replace(self.job, done=done).run_batch(batch, self.rater, self.annotator, self.device)


class RayExecutor:
    """Batches spread over Ray actors: a local cluster started on demand, or ``address``.

    ``actors``: how many (default: one per GPU when the cluster has GPUs, else one per two CPUs).
    """

    def __init__(self, address: str | None = None, actors: int | None = None, num_cpus: int | None = None) -> None:
        if actors is not None and (isinstance(actors, bool) or not isinstance(actors, int) or actors < 1):
            raise ConfigError(f"workers (Ray actors) must be an integer >= 1, got {actors!r}")
        self.address = address
        self.actors = actors
        self.num_cpus = num_cpus

    def _start(self):
        try:
            import ray
        except ImportError:
            raise ConfigError("--executor ray needs Ray: pip install 'auditkit[ray]'") from None
        if ray.is_initialized():
            return ray, False
        kwargs: dict[str, Any] = dict(include_dashboard=False, logging_level=logging.ERROR,
                                      log_to_driver=False, configure_logging=False)
        if self.address:
            kwargs["address"] = self.address
        else:
            kwargs["num_cpus"] = self.num_cpus or os.cpu_count() or 1
        try:
            ray.init(**kwargs)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            where = self.address or "a local cluster"
            raise ConfigError(f"--ray-address: cannot connect to {where} "
                              f"({str(exc).splitlines()[0][:200]})") from None
        return ray, True

    def run(self, job: Job, batches: Sequence[Sequence[Any]]) -> Iterator[Outcome]:
        if not batches:
            return
        ray, started = self._start()
        from ray.util import ActorPool

        try:
            resources = ray.cluster_resources()
            gpus = int(resources.get("GPU", 0)) if job.device.type != "cpu" else 0
            cpus = max(1, int(resources.get("CPU", 1)))
            count = self.actors or (gpus if gpus else max(1, cpus // 2))
            count = min(count, len(batches))
            per_actor = max(1, cpus // count) if not gpus else 1
            options: dict[str, Any] = {"num_cpus": per_actor}
            device = "cpu"
            if gpus:
                options["num_gpus"] = 1
                device = "cuda"
            remote = ray.remote(_RayWorker)
            shipped = replace(job, rater=None, done=set())
            actors = [remote.options(**options).remote(shipped, device) for _ in range(count)]
            hashes = set(_unwrap(ray, lambda: ray.get([a.identity_hash.remote() for a in actors])))
            want = getattr(job.rater, "identity", None)
            if want and hashes != {want}:
                raise AuditkitError("the rater loaded on the Ray workers is not the one loaded here "
                                    "(different file contents on the cluster?)")
            pool = ActorPool(actors)
            work = [(list(b), job.done_for(b)) for b in batches]
            results = pool.map_unordered(lambda actor, item: actor.run.remote(*item), work)
            while True:
                try:
                    yield _unwrap(ray, lambda: next(results))
                except StopIteration:
                    break
        finally:
            if started:
                ray.shutdown()


def _unwrap(ray: Any, fn: Any) -> Any:
    """Run ``fn``; a user error raised on an actor comes back as itself, not as a Ray traceback."""
    try:
        return fn()
    except ray.exceptions.RayTaskError as exc:
        cause = getattr(exc, "cause", None)
        if isinstance(cause, (AuditkitError, StopIteration)):
            raise cause from None
        raise AuditkitError(f"a Ray worker failed: {str(cause or exc).splitlines()[-1][:300]}") from None
    except ray.exceptions.RayActorError as exc:
        raise AuditkitError(f"a Ray worker died: {str(exc).splitlines()[0][:300]}") from None
