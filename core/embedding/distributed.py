"""``semscale embed``: encode a dataset's images into an embedding store, locally or on Ray.

Both engines run the same shard loop over the same deterministic work shards
(:func:`core.embedding.shards.plan_shards`) and write the same store format (:mod:`core.embedding.store`):

* ``local`` — each pending shard goes through :func:`core.embedding.embed.embed_images` (DataLoader
  decode workers, batch-size backoff and the on-disk embedding cache), then is committed.
* ``ray`` — one streaming Ray Data pipeline over all pending shards: a table of image
  *sources* (path / tar member / array bytes — never pixels) → ``map_batches`` decode +
  preprocess in CPU tasks → ``map_batches`` with a callable class holding the model on an
  actor pool (``num_gpus`` per actor when asked) → the driver consumes the stream, keeps
  only the rows of shards still in flight, and commits each shard the moment its last row
  arrives. Nothing is collected before writing; memory stays bounded by Ray Data's
  backpressure and the shards in flight.

Images that cannot be used are rows with a reason, never exceptions: they are written to
the shard's ``skipped.csv`` and the job goes on. A failing encoder (or a killed driver)
ends the job; finished shards are already committed, so re-running the same command
resumes with the rest.

The Ray engine's encoder stage can be replaced (``run_embed(..., encoder=...)``), e.g. by a
subclass of :class:`RayEncoder` that wraps the model.
"""

from __future__ import annotations

import os
import time
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any, Optional

import numpy as np

from core.models.openclip import BackboneSpec, load_backbone
from core.embedding.embed import logit_scale
from core.util.errors import InputError
from core.util.events import Cancelled, CancelToken, EventCallback, ImageSkipped, Log, Progress, Stage, Status, ignore_events

ENGINES = ("local", "ray")
DECODE_MEMORY = 1024**3  # bytes reserved per Ray decode task (a worker with torch loaded holds ~0.5 GiB)


@dataclass
class EmbedConfig:
    dataset: Any  # path, shard pattern, or list of .tar shards
    out: str
    backbone: BackboneSpec
    engine: str = "local"
    batch_size: int = 64
    shard_size: Optional[int] = None  # None: the store's, or core.embedding.store.DEFAULT_SHARD_SIZE for a new store
    # local engine
    num_workers: Optional[int] = None
    cache_dir: Optional[str] = None
    use_cache: bool = True
    # ray engine
    address: Optional[str] = None  # None: start Ray on this machine
    num_gpus_per_worker: float = 0.0
    concurrency: int = 1  # encoder actors
    num_cpus: Optional[int] = None  # CPUs of a Ray instance started here (default: all)
    decode_batch_size: int = 32
    runtime_env: Optional[dict] = None
    allow_absolute_paths: bool = False
    split: Optional[str] = None  # how to read the dataset (core.data.DatasetOptions)
    image_column: Optional[str] = None
    label_column: Optional[str] = None
    data_root: Optional[str] = None


@dataclass
class EmbedResult:
    store: str
    engine: str
    n_shards: int
    shards_before: int
    shards_written: int
    n_rows: int
    n_skipped: int
    images_encoded: int
    seconds: float
    complete: bool
    images_per_second: float = 0.0
    extra: dict = field(default_factory=dict)


class EmbedFailed(RuntimeError):
    """The Ray pipeline failed; ``str()`` is the root cause's line, ``details`` Ray's full report
    (text only: no live references to Ray's executor, so its actors are released at once)."""

    def __init__(self, message: str, details: str = "") -> None:
        super().__init__(message)
        self.details = details


def short_error(e: BaseException) -> str:
    """One line for an error; for a remote one (a Ray task's traceback as text) the root cause's line."""
    text = str(e)
    lines = [l.strip() for l in text.splitlines() if l.strip()]
    if not lines:
        return type(e).__name__
    if len(lines) > 1:
        import re

        cause = next((l for l in lines if re.match(r"^[\w.]*(Error|Exception|Exit|Interrupt)\w*: ", l)), None)
        if cause:
            return cause
    return lines[0] if isinstance(e, (EmbedFailed, InputError)) else f"{type(e).__name__}: {lines[0]}"


def run_embed(config: EmbedConfig, emit: EventCallback = ignore_events,
              cancel: Optional[CancelToken] = None, encoder: Optional[type] = None) -> EmbedResult:
    """Embed every image of ``config.dataset`` into the store at ``config.out`` (resuming it).

    ``encoder`` replaces the Ray engine's encoder stage (default :class:`RayEncoder`), e.g. with
    a subclass that wraps the model; it must accept the same constructor arguments.
    """
    from core.embedding.cache import EmbeddingCache
    from core.data import load_dataset
    from core.embedding.shards import plan_shards
    from core.embedding.store import StoreWriter, dataset_info

    cancel = cancel or CancelToken()
    if config.engine not in ENGINES:
        raise InputError(f"unknown engine '{config.engine}' (choose local or ray)", field="engine")
    from dataclasses import asdict

    from core.util.config import check_numbers

    check_numbers({k: v for k, v in asdict(config).items() if k != "backbone"})  # the sweep's ranges
    if config.concurrency < 1:
        raise InputError("concurrency must be at least 1", field="concurrency")
    if config.num_gpus_per_worker < 0:
        raise InputError("--num-gpus-per-worker cannot be negative", field="num-gpus-per-worker")
    t0 = time.perf_counter()
    dataset = load_dataset(config.dataset, allow_absolute=config.allow_absolute_paths, split=config.split,
                           image_column=config.image_column, label_column=config.label_column,
                           data_root=config.data_root)
    emit(Log(dataset.describe()))
    if not dataset.records:
        raise InputError("no images to embed (see the listing problems)", file=str(config.dataset))
    spec = replace(config.backbone)
    if config.engine == "ray":
        if spec.decode == "gpu":
            raise InputError("the ray engine decodes on CPU workers; use --decode draft or exact", field="decode")
        spec = replace(spec, device="cpu")  # the driver only reads preprocessing and the logit scale
    backbone = load_backbone(spec, lazy=True)
    info = {"name": backbone.name, "spec": replace(config.backbone).to_dict(), "identity": backbone.identity,
            "identity_info": backbone.identity_info, "embed_dim": backbone.embed_dim}
    writer = StoreWriter.open(config.out, backbone=info, dataset=dataset_info(dataset, config.dataset),
                              shard_size=config.shard_size, problems=dataset.problems)
    plan = plan_shards(len(dataset.records), writer.shard_size)
    before = len(writer.finished())
    pending = writer.pending()
    result = EmbedResult(str(writer.root), config.engine, writer.n_shards, before, 0, 0, 0, 0, 0.0, False)
    cache = None
    status = Status.FAILED
    try:
        if before:
            emit(Log(f"resuming: {before} of {writer.n_shards} shards already in the store"))
        if pending:
            cache = EmbeddingCache(config.cache_dir) if (config.use_cache and config.engine == "local") else None
            if config.engine == "local":
                encoded = _embed_local(config, dataset, backbone, writer, plan, pending, cache, emit, cancel)
            else:
                encoded = _embed_ray(config, dataset, backbone, writer, plan, pending, encoder or RayEncoder, emit,
                                     cancel)
            result.images_encoded = encoded
        if writer.manifest["backbone"].get("logit_scale") is None:
            writer.set_backbone(logit_scale=logit_scale(backbone, cache))
        status = Status.COMPLETED
    except BaseException as e:
        status = Status.CANCELLED if isinstance(e, (Cancelled, KeyboardInterrupt)) else Status.FAILED
        emit(Log(f"embedding stopped ({short_error(e)}); {len(writer.finished())} of {writer.n_shards} shards "
                 "are in the store; run the same command again to resume", "error"))
        raise
    finally:
        if cache is not None:
            cache.close()
        writer.close(last_run={"engine": config.engine, "address": config.address, "status": status,
                               "shards_written": len(writer.finished()) - before})
        done = writer.finished()
        result.shards_written = len(done) - before
        result.complete = len(done) == writer.n_shards
        result.n_rows = sum(int(s["n_rows"]) for s in writer.manifest["shards"])
        result.n_skipped = sum(int(s["n_skipped"]) for s in writer.manifest["shards"])
        result.seconds = time.perf_counter() - t0
        n_new = sum(int(s["stop"]) - int(s["start"]) for s in writer.manifest["shards"] if int(s["index"]) in set(pending))
        result.images_per_second = n_new / max(result.seconds, 1e-9)
    return result


# ---------------------------------------------------------------- local engine


def _embed_local(config, dataset, backbone, writer, plan, pending, cache, emit, cancel) -> int:
    from dataclasses import replace as dc_replace

    from core.embedding.embed import embed_images

    name = backbone.name
    total = sum(plan[k][1] - plan[k][0] for k in pending)
    done, encoded, t0 = 0, 0, time.perf_counter()

    def inner(ev):  # per-shard progress of embed_images is folded into the job's own
        if not isinstance(ev, Progress):
            emit(ev)

    emit(Progress(Stage.ENCODE_IMAGES, 0, total, None, name))
    for k in pending:
        cancel.raise_if_cancelled()
        start, stop = plan[k]
        ts = time.perf_counter()
        sub = dc_replace(dataset, records=dataset.records[start:stop], problems=[], empty_classes=[])
        emb = embed_images(backbone, sub, cache=cache, batch_size=config.batch_size, num_workers=config.num_workers,
                           emit=inner, cancel=cancel)
        ids = [sub.records[i].id for i in emb.indices]
        labels = [sub.records[i].label for i in emb.indices]
        writer.commit(k, ids, labels, emb.matrix, emb.skipped, record_ids=[r.id for r in sub.records],
                      engine="local", seconds=time.perf_counter() - ts)
        encoded += emb.n_encoded
        done += stop - start
        emit(Progress(Stage.ENCODE_IMAGES, done, total, done / max(time.perf_counter() - t0, 1e-9), name))
    return encoded


# ---------------------------------------------------------------- Ray engine


def _decode_batch(batch: dict, preprocess, draft_side=None) -> dict:
    """CPU stage: open + preprocess each image of the batch; bad ones get a reason, not a crash."""
    import torch

    from core.data.images import BadImage, decode_at_least
    from core.embedding.shards import open_source

    n = len(batch["pos"])
    images: list = [None] * n
    bad = np.full(n, "", dtype=object)
    for j in range(n):
        src = {k: batch[k][j] for k in ("kind", "path", "offset", "size", "raw")}
        try:
            with decode_at_least(draft_side):
                im = open_source(src)
            images[j] = preprocess(im)
        except BadImage as e:
            bad[j] = str(e)
        except Exception as e:  # a transform failing on one odd image must not end the job
            bad[j] = f"cannot preprocess image ({type(e).__name__}: {e})"
    good = [x for x in images if x is not None]
    if good:
        shape = tuple(good[0].shape)
    else:
        from PIL import Image

        shape = tuple(preprocess(Image.new("RGB", (8, 8))).shape)
    out = np.zeros((n, *shape), dtype=np.float32)
    for j, x in enumerate(images):
        if x is not None:
            out[j] = x.numpy() if isinstance(x, torch.Tensor) else x
    return {"shard": batch["shard"], "pos": batch["pos"], "bad": bad, "image": out}


class RayEncoder:
    """GPU/CPU stage: a callable class holding the model on one Ray actor."""

    def __init__(self, spec: dict, batch_size: int) -> None:
        import torch

        from core.models.local_images import BatchBackoff

        self.backbone = load_backbone(BackboneSpec(**spec))
        self.backoff = BatchBackoff(batch_size)
        self.dim = self.backbone.embed_dim
        self._torch = torch

    def __call__(self, batch: dict) -> dict:
        from core.util.events import ignore_events

        n = len(batch["pos"])
        bad = np.asarray(batch["bad"], dtype=object)
        good = np.flatnonzero(bad == "")
        X = np.zeros((n, self.dim), dtype=np.float32)
        if len(good):
            xs = self._torch.from_numpy(np.ascontiguousarray(batch["image"][good]))
            X[good] = self.backoff.run(self.backbone.encode_images, xs, ignore_events).numpy()
        return {"shard": batch["shard"], "pos": batch["pos"], "bad": bad, "embedding": X}


def _ensure_ray(config: EmbedConfig, emit) -> bool:
    """Connect to ``--address`` or start Ray here; True when this call started it."""
    try:
        import ray
    except ImportError:
        raise InputError("the ray engine needs Ray Data: pip install 'semscale[scale]'", field="engine") from None
    if ray.is_initialized():
        return False
    kw: dict[str, Any] = {"include_dashboard": False, "ignore_reinit_error": True, "log_to_driver": False,
                          "logging_level": "warning"}
    if config.runtime_env:
        kw["runtime_env"] = config.runtime_env
    if config.address:
        emit(Log(f"connecting to the Ray cluster at {config.address}"))
        ray.init(address=config.address, **kw)
    else:
        with _loopback_only():
            ray.init(num_cpus=config.num_cpus or os.cpu_count() or 1, _node_ip_address="127.0.0.1", **kw)
    return True


@contextmanager
def _loopback_only():
    """Make a Ray instance started here listen on 127.0.0.1 only (its GCS, raylet, workers and
    agents bind to the node address, and a loopback node address makes them local-only).

    ``ray.init`` turns a loopback ``_node_ip_address`` into the machine's network address unless
    Ray's single-machine mode (its default on macOS and Windows) is on, so it is switched on while
    the instance starts. Nobody else on the network can then submit tasks running as this user.
    """
    try:
        from ray._private import ray_constants
    except ImportError:  # a Ray without that switch: it binds as it does
        yield
        return
    before = getattr(ray_constants, "ENABLE_RAY_CLUSTER", None)
    ray_constants.ENABLE_RAY_CLUSTER = False
    try:
        yield
    finally:
        if before is not None:
            ray_constants.ENABLE_RAY_CLUSTER = before


def _source_table(dataset, plan, pending, rows_per_block: int):
    """One Arrow table per block of image sources (no pixels), for ``ray.data.from_arrow``."""
    import pyarrow as pa

    from core.embedding.shards import record_source

    blocks = []
    for k in pending:
        start, stop = plan[k]
        for a in range(start, stop, rows_per_block):
            b = min(a + rows_per_block, stop)
            srcs = [record_source(dataset, i) for i in range(a, b)]
            blocks.append(pa.table({
                "shard": pa.array([k] * (b - a), pa.int64()),
                "pos": pa.array(range(a, b), pa.int64()),
                "kind": pa.array([s["kind"] for s in srcs], pa.string()),
                "path": pa.array([s["path"] for s in srcs], pa.string()),
                "offset": pa.array([s["offset"] for s in srcs], pa.int64()),
                "size": pa.array([s["size"] for s in srcs], pa.int64()),
                "raw": pa.array([s["raw"] for s in srcs], pa.binary()),
            }))
    return blocks


class _ShardCollector:
    """Driver side: gathers the rows of shards in flight and commits each one when complete."""

    def __init__(self, dataset, writer, plan, pending, name, emit) -> None:
        self.dataset, self.writer, self.plan, self.emit, self.name = dataset, writer, plan, emit, name
        self.expected = {k: plan[k][1] - plan[k][0] for k in pending}
        self.parts: dict[int, list] = {k: [] for k in pending}
        self.got = {k: 0 for k in pending}
        self.started = {k: None for k in pending}
        self.total = sum(self.expected.values())
        self.done = 0
        self.encoded = 0
        self.t0 = time.perf_counter()

    def add(self, batch: dict) -> None:
        shards = np.asarray(batch["shard"])
        for k in np.unique(shards):
            k = int(k)
            sel = shards == k
            if k not in self.parts:
                raise RuntimeError(f"rows of shard {k} arrived twice or were never asked for")
            if self.started[k] is None:
                self.started[k] = time.perf_counter()
            self.parts[k].append((np.asarray(batch["pos"])[sel], np.asarray(batch["bad"], dtype=object)[sel],
                                  np.asarray(batch["embedding"], dtype=np.float32)[sel]))
            self.got[k] += int(sel.sum())
            if self.got[k] > self.expected[k]:
                raise RuntimeError(f"shard {k}: more rows than images (duplicated rows)")
            if self.got[k] == self.expected[k]:
                self._commit(k)
        self.emit(Progress(Stage.ENCODE_IMAGES, self.done, self.total, self.done / max(time.perf_counter() - self.t0, 1e-9),
                           self.name))

    def _commit(self, k: int) -> None:
        parts = self.parts.pop(k)
        pos = np.concatenate([p for p, _, _ in parts])
        bad = np.concatenate([b for _, b, _ in parts])
        X = np.concatenate([x for _, _, x in parts])
        order = np.argsort(pos, kind="stable")
        pos, bad, X = pos[order], bad[order], X[order]
        recs = self.dataset.records
        good = bad == ""
        skipped = [(recs[int(p)].id, str(r)) for p, r in zip(pos[~good], bad[~good])]
        for rid, reason in skipped:
            self.emit(ImageSkipped(rid, reason))
        start, stop = self.plan[k]
        self.writer.commit(k, [recs[int(p)].id for p in pos[good]], [recs[int(p)].label for p in pos[good]],
                           X[good], skipped, record_ids=[r.id for r in recs[start:stop]], engine="ray",
                           seconds=time.perf_counter() - (self.started[k] or time.perf_counter()))
        self.done += self.expected[k]
        self.encoded += int(good.sum())

    @property
    def unfinished(self) -> list[int]:
        return sorted(self.parts)


def _embed_ray(config, dataset, backbone, writer, plan, pending, encoder, emit, cancel) -> int:
    started = _ensure_ray(config, emit)
    import ray
    import ray.data

    try:
        ctx = ray.data.DataContext.get_current()
        ctx.enable_progress_bars = False
        cpus = float(ray.cluster_resources().get("CPU", 0))
        gpus = float(ray.cluster_resources().get("GPU", 0))
        actor_cpus = 1.0
        problem = None
        if config.num_gpus_per_worker > 0 and gpus < config.num_gpus_per_worker:
            problem = ("num-gpus-per-worker", f"--num-gpus-per-worker {config.num_gpus_per_worker:g} but the Ray cluster "
                                              f"has {gpus:g} GPUs now")
        elif cpus - config.concurrency * actor_cpus < 1:
            problem = ("concurrency", f"--concurrency {config.concurrency} encoder actors would take all {cpus:g} CPUs "
                                      "of the Ray cluster and leave none for decoding")
        if problem and not config.address:  # a Ray instance started here cannot grow: the job would hang
            raise InputError(problem[1] + "; use fewer", field=problem[0])
        if problem:  # an autoscaling cluster may add nodes once the job asks for them
            emit(Log(problem[1] + "; waiting for the cluster to scale up", "warning"))
        name = backbone.name
        preprocess = backbone.preprocess  # built once here, shipped to the decode tasks
        draft_side = backbone.draft_side
        writer.set_backbone(logit_scale=backbone.logit_scale)
        backbone._model = None  # the driver never encodes: free the weights
        actor_spec = replace(config.backbone, device="cuda" if config.num_gpus_per_worker > 0 else "cpu").to_dict()

        rows_per_block = max(1, min(writer.shard_size, max(config.batch_size, config.decode_batch_size) * 2))
        ds = ray.data.from_arrow(_source_table(dataset, plan, pending, rows_per_block))
        ds = ds.map_batches(
            _decode_batch, fn_kwargs={"preprocess": preprocess, "draft_side": draft_side}, batch_size=config.decode_batch_size,
            batch_format="numpy", num_cpus=1,
            # a memory reservation per decode task; it also keeps decoding in its own CPU tasks (with identical
            # remote args Ray would fuse it into the encoder actors when those ask for no GPU)
            memory=DECODE_MEMORY,
        )
        encode_args: dict[str, Any] = {"num_cpus": actor_cpus}
        if config.num_gpus_per_worker > 0:
            encode_args["num_gpus"] = config.num_gpus_per_worker
        ds = ds.map_batches(
            encoder, fn_constructor_kwargs={"spec": actor_spec, "batch_size": config.batch_size},
            batch_size=config.batch_size, batch_format="numpy",
            compute=ray.data.ActorPoolStrategy(size=config.concurrency), **encode_args,
        )
        collector = _ShardCollector(dataset, writer, plan, pending, name, emit)
        emit(Progress(Stage.ENCODE_IMAGES, 0, collector.total, None, name))
        it = ds.iter_batches(batch_size=None, batch_format="numpy", prefetch_batches=1)
        failure = None
        try:
            for batch in it:
                cancel.raise_if_cancelled()
                collector.add(batch)
        except Cancelled:
            raise
        except Exception as e:  # keep the text, drop the traceback (its frames hold the executor and actors)
            failure = (short_error(e), f"{type(e).__name__}: {e}")
        finally:
            batch = it = ds = None
            import gc

            gc.collect()  # release the pipeline's actors now, before a retry asks for their CPUs/GPUs
        if failure is not None:
            raise EmbedFailed(*failure)
        cancel.raise_if_cancelled()
        if collector.unfinished:
            raise RuntimeError(f"the Ray pipeline ended before shards {collector.unfinished[:5]} were complete")
        return collector.encoded
    finally:
        if started:
            ray.shutdown()
