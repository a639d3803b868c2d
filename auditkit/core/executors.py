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
import sys
from collections import deque
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any, Iterator, Sequence

import torch

from auditkit.contract.errors import AuditkitError, ConfigError, first_line, last_line
from auditkit.contract.params import check
from auditkit.perturbations.annotate import Annotator

from .plan import AuditPlan
from .settings import EXECUTORS, RAY_WORKERS, WORKERS
from .work import Outcome, needs_annotation, prepare, resample_offsets, score_batch

ACTOR_START_TIMEOUT = 300.0  # seconds for every Ray actor to load the rater; a placement that never fits fails
CLIENT_ATTEMPTS = 3  # a ray:// head whose per-client server failed to start is asked again, this often
LOOKAHEAD = 2  # batches prepared ahead of the one being scored: enough to hide annotation, bounded memory


@dataclass
class Job:
    """Everything a batch needs besides its clips; it travels to worker processes and actors."""

    rater: Any                 # a loaded rater (local) ...
    rater_spec: Any            # ... and what to load it from elsewhere (a spec string or the object)
    plan: AuditPlan            # the edits to score and the settings they are scored with
    done: set[tuple[str, str]]
    device: torch.device       # where this process runs the rater; a Ray actor picks its own from the settings
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

    @property
    def edits(self) -> tuple:
        return self.plan.edits

    def annotate_flags(self, batch: Sequence[Any], rater: Any, annotator: Annotator | None) -> list[bool]:
        """Which clips of a batch must be annotated (a face-crop rater needs every clip's face)."""
        done = self.done_for(batch)
        face_crop = rater.input.crop == "face"
        return [annotator is not None and needs_annotation(s.id, self.edits, done, face_crop) for s in batch]

    def run_batch(self, batch: Sequence[Any], rater: Any, annotator: Annotator | None,
                  device: torch.device, prepared: Any = None) -> Outcome:
        done = self.done_for(batch)
        stats: dict[str, int] = {}
        if prepared is None:
            prepared, stats = prepare(batch, spec=rater.input, max_side=self.plan.settings.max_side,
                                      annotator=annotator, annotate=self.annotate_flags(batch, rater, annotator),
                                      resample=[resample_offsets(s.id, self.edits, done) for s in batch])
        outcome = score_batch(rater, prepared, self, done, device)
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


def _worker_prepare(batch: Sequence[Any], spec: Any, max_side: int, cache_dir: str, use_cache: bool,
                    annotate: Sequence[bool], resample: Sequence[Sequence[float]]):
    key = f"{cache_dir}|{use_cache}"
    if key not in _WORKER:  # MediaPipe graphs load once per worker, not once per batch
        _WORKER.clear()
        _WORKER[key] = Annotator(cache_dir, use_cache=use_cache)
    return prepare(batch, spec=spec, max_side=max_side, annotator=_WORKER[key], annotate=annotate,
                   resample=resample)


class LocalExecutor:
    """Batches scored in this process, in order; ``workers`` processes decode and annotate ahead.

    The pool starts only when there is annotation to overlap (an edit needs faces or masks, and
    more than one batch has a clip to annotate); otherwise decoding stays in this process.
    """

    def __init__(self, workers: int = 1) -> None:
        check("workers", workers, WORKERS, where="")
        self.workers = workers

    def run(self, job: Job, batches: Sequence[Sequence[Any]]) -> Iterator[Outcome]:
        spec = job.rater.input
        flags = [job.annotate_flags(batch, job.rater, job.annotator) for batch in batches]
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
                    batch = batches[submitted]
                    done = job.done_for(batch)
                    pending.append(pool.submit(_worker_prepare, list(batch), spec, job.plan.settings.max_side,
                                               str(job.annotator.cache_dir), job.annotator.use_cache,
                                               flags[submitted], [resample_offsets(s.id, job.edits, done)
                                                                  for s in batch]))
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
    """A Ray actor: loads the rater from its source once, on the device this actor has, then
    scores whole batches."""

    def __init__(self, job: Job) -> None:
        from auditkit.contract.device import pick_device
        from auditkit.contract.rater import rater_identity
        from auditkit.raters import RaterSource, load_rater

        torch.set_num_threads(job.threads)
        # Chosen here, on the node: "auto" is this actor's own GPU when it has one, whatever the
        # machine that started the audit has.
        self.device = pick_device(job.plan.settings.device)
        spec = job.rater_spec
        self.rater = spec.load(self.device) if isinstance(spec, RaterSource) else load_rater(spec, device=self.device)
        self.job = job
        # Its own annotator, so that its work is reported back to the driver's (see run_batch).
        self.annotator = (Annotator(job.annotator.cache_dir, use_cache=job.annotator.use_cache)
                          if job.annotator is not None else None)
        self.identity = rater_identity(self.rater)["hash"]

    def describe(self) -> tuple[str, str]:
        return self.identity, str(self.device)

    def run(self, batch: Sequence[Any], done: set[tuple[str, str]]) -> Outcome:
        return replace(self.job, done=done).run_batch(batch, self.rater, self.annotator, self.device)


class RayExecutor:
    """Batches spread over Ray actors: a local cluster started on demand, or the cluster at
    ``address`` (``host:port`` of its GCS, or ``ray://host:port`` through Ray Client).

    ``actors``: how many (default: one per GPU when the cluster has GPUs, else one per two CPUs).
    A batch whose actor dies (its node lost) runs again on another actor; when none is left the
    audit stops with one line, and the batches already committed are kept for a resume.
    """

    def __init__(self, address: str | None = None, actors: int | None = None, num_cpus: int | None = None) -> None:
        if actors is not None:
            check("workers (Ray actors)", actors, RAY_WORKERS, where="")
        self.address = address
        self.actors = actors
        self.num_cpus = num_cpus
        self.retried = 0  # batches run again after their actor died

    def _start(self):
        if self.address:
            _reachable(self.address)
            _token_mode()  # before Ray is imported: it reads the mode once, then
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
            # "local": a cluster of our own, even when another one runs on this machine.
            kwargs.update(address="local", num_cpus=self.num_cpus or os.cpu_count() or 1)
        from auditkit.contract.quiet import captured_stderr

        attempts = CLIENT_ATTEMPTS if self.address and self.address.startswith("ray://") else 1
        for attempt in range(1, attempts + 1):
            failure: BaseException | None = None
            with captured_stderr() as said:  # Ray's C++ core logs each failed attempt on fd 2
                try:
                    ray.init(**kwargs)
                except Exception as exc:  # ConnectionError, AuthenticationError, RuntimeError...
                    failure = exc
            if failure is None:
                return ray, True
            if attempt == attempts or _server_reason(failure) is None:
                raise ConfigError(_cannot_connect(self.address, failure, said()))
            # The head's Ray Client server starts one server process per client; on a busy head that
            # start can fail or come too late (its own timeout is 30 s). A new attempt gets a new one.
            print(f"auditkit: warning: --ray-address {self.address}: the cluster could not start a Ray Client "
                  f"session ({_server_reason(failure)}); trying again ({attempt + 1} of {attempts})",
                  file=sys.stderr, flush=True)
        raise AssertionError("unreachable")

    def run(self, job: Job, batches: Sequence[Sequence[Any]]) -> Iterator[Outcome]:
        if not batches:
            return
        from auditkit.raters import source_of

        source = source_of(job.rater_spec, job.rater)  # refused here, before any work, if it cannot travel
        ray, started = self._start()
        try:
            resources = ray.cluster_resources()
            asked = job.plan.settings.device
            gpus = int(resources.get("GPU", 0)) if asked != "cpu" else 0
            if asked == "cuda" and not gpus:
                raise ConfigError("--device cuda: the Ray cluster has no GPU (use auto or cpu)")
            cpus = max(1, int(resources.get("CPU", 1)))
            count = min(self.actors or (gpus if gpus else max(1, cpus // 2)), len(batches))
            # An actor must fit on one node: never ask for more CPUs than the largest node has.
            widest = max([int(n.get("Resources", {}).get("CPU", 0)) for n in ray.nodes() if n.get("Alive")] or [1])
            options: dict[str, Any] = {"num_cpus": 1 if gpus else max(1, min(cpus // count, widest))}
            if gpus:
                options["num_gpus"] = 1
            env = {name: os.environ[name] for name in getattr(source, "env", ()) if name in os.environ}
            if env:  # an HTTP rater's credential: in the actors' environment, never in a pickle
                options["runtime_env"] = {"env_vars": env}
            remote = ray.remote(_RayWorker)
            shipped = replace(job, rater=None, rater_spec=source, done=set())
            actors = [remote.options(**options).remote(shipped) for _ in range(count)]
            pending = [a.describe.remote() for a in actors]
            ready, waiting = ray.wait(pending, num_returns=len(pending), timeout=ACTOR_START_TIMEOUT)
            if waiting:
                raise AuditkitError(f"only {len(ready)} of {len(actors)} Ray workers started within "
                                    f"{ACTOR_START_TIMEOUT:.0f} s (each asks for {options}; the cluster has "
                                    f"{resources.get('CPU', 0):g} CPUs, {gpus} GPUs): use fewer --workers")
            described = _unwrap(ray, lambda: ray.get(pending))
            want = getattr(job.rater, "identity", None)
            if want and {h for h, _ in described} != {want}:
                raise AuditkitError("the rater loaded on the Ray workers is not the one loaded here "
                                    "(different file contents on the cluster?)")
            yield from self._schedule(ray, job, actors, batches)
        finally:
            if started:
                ray.shutdown()

    def _schedule(self, ray: Any, job: Job, actors: list[Any], batches: Sequence[Sequence[Any]]) -> Iterator[Outcome]:
        """Each idle actor takes the next batch; a batch whose actor died goes back in the queue."""
        queue = deque((list(b), job.done_for(b)) for b in batches)
        idle = list(actors)
        running: dict[Any, tuple[Any, Any]] = {}
        lost: list[str] = []
        while queue or running:
            while idle and queue:
                actor, item = idle.pop(), queue.popleft()
                running[actor.run.remote(*item)] = (actor, item)
            if not running:
                raise AuditkitError(f"every Ray worker died ({lost[-1] if lost else 'no worker left'}); the "
                                    "batches already scored are kept: run the same command again to resume")
            ready, _ = ray.wait(list(running), num_returns=1)
            actor, item = running.pop(ready[0])
            try:
                outcome = _unwrap(ray, lambda: ray.get(ready[0]), died=True)
            except _ActorDied as exc:
                lost.append(str(exc))
                queue.appendleft(item)  # another actor runs it again; this one is gone
                self.retried += 1
                print(f"auditkit: warning: a Ray worker died ({exc}); its batch is run again on another worker",
                      file=sys.stderr, flush=True)
                continue
            idle.append(actor)
            yield outcome


class _ActorDied(Exception):
    """An actor (or its node) is gone; the batch it held must run elsewhere."""


def _reachable(address: str, timeout: float = 5.0) -> None:
    """Fail at once, with one line, when nothing listens at the address: Ray itself would retry
    for minutes before saying so."""
    import socket

    hostport = address.split("://", 1)[-1]
    host, _, port = hostport.rpartition(":")
    if not host or not port.isdigit():
        if address == "auto":
            return
        raise ConfigError(f"--ray-address {address!r}: give host:port (the head's GCS port) or ray://host:port")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout):
            pass
    except OSError as exc:
        raise ConfigError(f"--ray-address {address}: nothing answers there ({exc.strerror or exc}); "
                          "is the cluster running, and is that its port?") from None


def _token_mode() -> None:
    """Clusters of current Ray require their token. A client presents it only in token mode, so
    when a token is at hand (``RAY_AUTH_TOKEN``, ``RAY_AUTH_TOKEN_PATH`` or ``~/.ray/auth_token``)
    and the mode is not set either way, token mode is what the user means."""
    if "RAY_AUTH_MODE" in os.environ:
        return
    path = os.environ.get("RAY_AUTH_TOKEN_PATH")
    if path is not None:
        try:
            if not open(path, encoding="utf-8").read().strip():
                raise OSError("the file is empty")
        except OSError as exc:  # Ray aborts the process on an unreadable token file: say it first
            raise ConfigError(f"RAY_AUTH_TOKEN_PATH {path}: cannot read the cluster's token ({exc})") from None
    if os.environ.get("RAY_AUTH_TOKEN") or path or os.path.isfile(os.path.expanduser("~/.ray/auth_token")):
        os.environ["RAY_AUTH_MODE"] = "token"


def _server_reason(exc: BaseException) -> str | None:
    """What a Ray Client head said when it could not start this client's session, or None when
    the failure is not that. The head sends its whole traceback; the last line is the reason."""
    text = str(exc).strip()
    if not isinstance(exc, ConnectionAbortedError) or not text.startswith("Initialization failure from server"):
        return None
    lines = [line.strip() for line in text.splitlines()[1:] if line.strip()]
    return (lines[-1] if lines else "no reason given")[:300]


def _cannot_connect(address: str | None, exc: BaseException, said: str) -> str:
    where = address or "a local cluster"
    first = first_line(exc)
    reason = _server_reason(exc)
    if reason is not None:
        return (f"--ray-address {where}: the cluster could not start a Ray Client session for this client, "
                f"{CLIENT_ATTEMPTS} times ({reason})")
    if "InvalidAuthToken" in said or "Unauthenticated" in said or "AuthenticationError" in type(exc).__name__:
        return (f"--ray-address {where}: the cluster refused this client's token (set RAY_AUTH_TOKEN, or "
                f"RAY_AUTH_TOKEN_PATH, to the cluster's token: `ray get-auth-token` on its head prints it)")
    if address and address.startswith("ray://") and "timeout" in first.lower():
        return (f"--ray-address {where}: the Ray Client connection timed out ({first}); a cluster with token "
                "authentication ignores a client without its token (RAY_AUTH_TOKEN), and ray:// needs "
                "ray[client] on both sides")
    return f"--ray-address {where}: cannot connect ({first})"


def _unwrap(ray: Any, fn: Any, *, died: bool = False) -> Any:
    """Run ``fn``; a user error raised on an actor comes back as itself, not as a Ray traceback.
    With ``died``, an actor lost with its process or node raises :class:`_ActorDied`."""
    lost = tuple(getattr(ray.exceptions, n) for n in ("RayActorError", "WorkerCrashedError", "NodeDiedError",
                                                       "ObjectLostError", "OwnerDiedError")
                 if hasattr(ray.exceptions, n))
    try:
        return fn()
    except ray.exceptions.RayTaskError as exc:
        cause = getattr(exc, "cause", None)
        if isinstance(cause, (AuditkitError, StopIteration)):
            raise cause from None
        raise AuditkitError(f"a Ray worker failed: {last_line(cause or exc)}") from None
    except lost as exc:
        creation = getattr(exc, "cause", None) if hasattr(exc, "cause") else None
        if isinstance(creation, AuditkitError):  # the rater could not be loaded on the node
            raise creation from None
        if died:
            raise _ActorDied(first_line(exc)) from None
        raise AuditkitError(f"a Ray worker died: {_actor_reason(exc)}") from None


def _actor_reason(exc: BaseException) -> str:
    """The line of a dead actor's message that says why (Ray nests the creation traceback)."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    for ln in reversed(lines):
        if "Error" in ln and not ln.startswith("File "):
            return ln[:300]
    return lines[0][:300] if lines else type(exc).__name__
