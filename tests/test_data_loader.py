"""jaxmod.utils.data.DataLoader against torch's: order, len(), batches, iterable datasets,
worker threads, and prefetch_to_device (one device here; a mesh of 8 host devices in a
subprocess).

torch's own multi-worker runs start processes; their outputs are taken from torch's
documentation (the IterableDataset examples) instead of being run here.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
import time
import warnings
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxmod
from jaxmod.utils import data as jdata
from tests._data_compare import plain

ROOT = Path(__file__).resolve().parent.parent


class Squares:
    """A map-style dataset that works with both loaders: sample i is ([i, i*i], i)."""

    def __init__(self, n: int = 10) -> None:
        self.n = n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i):
        return np.array([i, i * i], np.float32), i


def _loaders(**kw):
    from torch.utils.data import DataLoader

    return DataLoader(Squares(), **kw), jdata.DataLoader(Squares(), **kw)


CASES = {
    "batch 3": dict(batch_size=3),
    "batch 3 drop_last": dict(batch_size=3, drop_last=True),
    "batch 1": dict(),
    "batch larger than data": dict(batch_size=16),
    "batch 16 drop_last": dict(batch_size=16, drop_last=True),
    "no auto-batching": dict(batch_size=None),
    "sampler": dict(batch_size=2, sampler=[5, 1, 3, 3, 0]),
    "batch_sampler": dict(batch_sampler=[[0, 1], [9], [2, 3, 4]]),
    "custom collate": dict(batch_size=4, collate_fn=lambda b: [i for _, i in b]),
}


@pytest.mark.parametrize("case", list(CASES))
def test_sequential_batches_and_len_match_torch(torch, case):
    t, j = _loaders(**CASES[case])
    assert len(j) == len(t)
    assert plain(list(j)) == plain(list(t))
    assert plain(list(j)) == plain(list(t))  # a second epoch is the same


@pytest.mark.parametrize("drop_last", [False, True])
def test_shuffled_epochs_are_permutations_with_torchs_batch_sizes(torch, drop_last):
    t, j = _loaders(batch_size=4, shuffle=True, drop_last=drop_last)
    j = jdata.DataLoader(Squares(), 4, True, drop_last=drop_last, generator=jaxmod.Generator(0))
    epochs = []
    for _ in range(3):
        tb, jb = list(t), list(j)
        assert [len(y) for _, y in jb] == [len(y) for _, y in tb] and len(j) == len(t)
        order = [int(i) for _, y in jb for i in y]
        assert len(set(order)) == len(order) == (8 if drop_last else 10)
        epochs.append(order)
        for x, y in jb:  # rows stay with their labels
            np.testing.assert_array_equal(np.asarray(x)[:, 1], np.asarray(y) ** 2)
    assert epochs[0] != epochs[1]
    again = jdata.DataLoader(Squares(), 4, True, drop_last=drop_last, generator=jaxmod.Generator(0))
    assert [[int(i) for _, y in again for i in y] for _ in range(3)] == epochs


def test_shuffle_without_generator_follows_the_global_seed():
    def order():
        return [int(i) for _, y in jdata.DataLoader(Squares(), 3, shuffle=True) for i in y]

    jaxmod.manual_seed(11)
    a = order()
    jaxmod.manual_seed(11)
    assert order() == a and sorted(a) == list(range(10))


def test_default_batches_are_uncommitted_tensors():
    x, y = next(iter(jdata.DataLoader(Squares(), batch_size=4)))
    assert isinstance(x, jaxmod.Tensor) and x.dtype == jnp.float32 and not x.committed
    assert y.dtype == jnp.int32  # int64 as in torch, int32 as JAX stores it without x64


class _SlowTensorDataset(jdata.TensorDataset):
    def __getitem__(self, i):  # overridden: no fast gather
        return super().__getitem__(i)


@pytest.mark.parametrize("kind", ["numpy", "jax", "subset"])
def test_tensor_dataset_gather_path_equals_per_sample_collate(kind):
    x, y = np.arange(30.0).reshape(10, 3), np.arange(10) % 3
    if kind == "jax":
        x, y = jnp.asarray(x), jnp.asarray(y)
    fast, slow = jdata.TensorDataset(x, y), _SlowTensorDataset(x, y)
    if kind == "subset":
        fast, slow = jdata.Subset(fast, [9, 2, 4, 0]), jdata.Subset(slow, [9, 2, 4, 0])
    assert jdata.dataset._gather(fast) is not None and jdata.dataset._gather(slow) is None
    kw = dict(batch_size=3, sampler=[3, 1, 0, 2, 1] if kind == "subset" else None)
    assert plain(list(jdata.DataLoader(fast, **kw))) == plain(list(jdata.DataLoader(slow, **kw)))


def test_gather_out_of_range_index_raises_like_torch(torch):
    from torch.utils.data import DataLoader, TensorDataset

    with pytest.raises(IndexError) as want:
        list(DataLoader(TensorDataset(torch.zeros(4)), batch_size=2, sampler=[0, 10]))
    with pytest.raises(IndexError) as got:
        list(jdata.DataLoader(jdata.TensorDataset(jnp.zeros(4)), batch_size=2, sampler=[0, 10]))
    assert str(got.value) == str(want.value)


def test_timeout_without_workers_fails_like_torch(torch):
    from torch.utils.data import DataLoader

    with pytest.raises(AssertionError):
        iter(DataLoader(range(3), timeout=1))
    with pytest.raises(AssertionError, match="use num_workers > 0 or timeout=0"):
        iter(jdata.DataLoader(range(3), timeout=1))


# ------------------------------------------------------------------------ iterable datasets
def _range_dataset(m, start, end, split_in_iter: bool):
    """torch's IterableDataset examples 1 (split in __iter__) and 2 (split by init fn)."""

    class R(m.IterableDataset):
        def __init__(self):
            self.start, self.end = start, end

        def __iter__(self):
            info = m.get_worker_info()
            if info is None or not split_in_iter:
                return iter(range(self.start, self.end))
            per = -(-(self.end - self.start) // info.num_workers)
            lo = self.start + info.id * per
            return iter(range(lo, min(lo + per, self.end)))

    return R()


def _split_init_fn(worker_id):
    info = jdata.get_worker_info()
    ds = info.dataset  # this worker's copy: changing it changes no other worker's
    per = -(-(ds.end - ds.start) // info.num_workers)
    ds.start = ds.start + worker_id * per
    ds.end = min(ds.start + per, ds.end)


@pytest.mark.parametrize("kw", [dict(), dict(batch_size=2), dict(batch_size=3, drop_last=True),
                                dict(batch_size=None)])  # fmt: skip
def test_iterable_dataset_single_thread_matches_torch(torch, kw):
    from torch.utils import data as tdata

    t = tdata.DataLoader(_range_dataset(tdata, 3, 10, True), **kw)
    j = jdata.DataLoader(_range_dataset(jdata, 3, 10, True), **kw)
    assert plain(list(j)) == plain(list(t))


def test_torch_iterable_dataset_streams_but_refuses_thread_workers(torch):
    from torch.utils import data as tdata

    ds = _range_dataset(tdata, 3, 10, True)
    want = plain(list(tdata.DataLoader(ds, batch_size=3)))
    assert plain(list(jdata.DataLoader(ds, batch_size=3))) == want
    with pytest.raises(ValueError, match="every worker would yield the whole stream"):
        jdata.DataLoader(ds, num_workers=2)


# torch's documented outputs (torch/utils/data/dataset.py, IterableDataset examples)
DOCUMENTED = [(True, 2, [3, 5, 4, 6]), (True, 12, [3, 4, 5, 6]), (False, 2, [3, 5, 4, 6]),
              (False, 12, [3, 4, 5, 6])]  # fmt: skip


@pytest.mark.parametrize(("split_in_iter", "workers", "want"), DOCUMENTED)
def test_iterable_dataset_workers_give_torchs_documented_order(split_in_iter, workers, want):
    ds = _range_dataset(jdata, 3, 7, split_in_iter)
    init = None if split_in_iter else _split_init_fn
    loader = jdata.DataLoader(ds, num_workers=workers, worker_init_fn=init)
    assert [int(b[0]) for b in loader] == want
    assert (ds.start, ds.end) == (3, 7)  # the workers changed their copies only


def test_iterable_dataset_without_split_repeats_per_worker_like_torch():
    loader = jdata.DataLoader(_range_dataset(jdata, 3, 7, False), num_workers=2)
    assert [int(b[0]) for b in loader] == [3, 3, 4, 4, 5, 5, 6, 6]  # torch's docs, too


def test_iterable_len_estimate_and_overrun_warning_match_torch(torch):
    from torch.utils import data as tdata

    def run(m, **kw):
        ds = _range_dataset(m, 0, 7, True)
        type(ds).__len__ = lambda self: 5  # under-reports the 7 samples
        loader = m.DataLoader(ds, **kw)
        n = len(loader)
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            list(loader)
        # the text after the dataset's repr (which differs between the two)
        return n, [str(x.message).split(" was reported to be ", 1)[1] for x in w]

    for kw in (dict(), dict(batch_size=2), dict(batch_size=2, drop_last=True)):
        assert run(jdata, **kw) == run(tdata, **kw)


def test_pin_memory_without_accelerator_warns_like_torch(torch):
    from torch.utils import data as tdata

    def run(m):
        loader = m.DataLoader(list(range(4)), batch_size=2, pin_memory=True)
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            list(loader)
        return [(x.category, str(x.message)) for x in w]

    if torch.cuda.is_available() or jax.default_backend() != "cpu":
        pytest.skip("the warning is for machines without an accelerator")
    assert run(jdata) == run(tdata) != []


# ------------------------------------------------------------------------ worker threads
def _worker_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("DataLoader-worker")]


@pytest.mark.parametrize(("workers", "prefetch"), [(1, 2), (2, 1), (3, 4)])
def test_workers_give_the_same_batches_in_order_and_then_stop(workers, prefetch):
    want = plain(list(jdata.DataLoader(Squares(), batch_size=3)))
    loader = jdata.DataLoader(Squares(), 3, num_workers=workers, prefetch_factor=prefetch)
    assert plain(list(loader)) == want and len(loader) == 4
    assert not _worker_threads()


class _Gated(Squares):
    """Sample 0 waits for the consumer to have received a batch (or for ``wait`` seconds):
    only out-of-order delivery can then yield batch 1 first."""

    def __init__(self, wait: float):
        super().__init__(4)
        self.gate, self.wait = threading.Event(), wait

    def __getitem__(self, i):
        if i == 0:
            self.gate.wait(self.wait)
        return super().__getitem__(i)


@pytest.mark.parametrize(("in_order", "first"), [(True, 0), (False, 1)])
def test_in_order_false_yields_batches_as_they_finish(in_order, first):
    ds = _Gated(wait=0.3 if in_order else 10)  # in order, batch 0 blocks the consumer
    got = []
    for _, y in jdata.DataLoader(ds, num_workers=2, in_order=in_order):  # copies share gate
        got.append(int(y[0]))
        ds.gate.set()
    assert got[0] == first and sorted(got) == [0, 1, 2, 3]


def test_worker_info_seeds_and_init_fn():
    seen = []

    class Probe(Squares):
        def __getitem__(self, i):
            info = jdata.get_worker_info()
            seen.append((info.id, info.num_workers, info.seed, info.worker_method, info.dataset))
            return super().__getitem__(i)

    calls = []
    ds = Probe()
    kw = dict(batch_size=2, num_workers=2, worker_init_fn=calls.append)
    list(jdata.DataLoader(ds, generator=jaxmod.Generator(0), **kw))
    assert jdata.get_worker_info() is None  # not in a worker
    assert sorted(calls) == [0, 1]
    seeds = {wid: seed for wid, _, seed, _, _ in seen}
    assert seeds[1] == seeds[0] + 1 and {n for _, n, *_ in seen} == {2}
    assert {m for *_, m, _ in seen} == {"thread"}
    assert all(d is not ds and type(d) is Probe for *_, d in seen)  # each worker's copy
    seen.clear()
    list(jdata.DataLoader(ds, generator=jaxmod.Generator(0), **kw))
    assert {wid: seed for wid, _, seed, _, _ in seen} == seeds  # reproducible by the seed


def test_persistent_workers_survive_epochs_and_a_broken_off_epoch():
    idents, inits = set(), []

    class Probe(Squares):
        def __getitem__(self, i):
            idents.add(threading.get_ident())
            return super().__getitem__(i)

    loader = jdata.DataLoader(Probe(), batch_size=2, num_workers=2, persistent_workers=True,
                              worker_init_fn=inits.append)  # fmt: skip
    want = plain(list(jdata.DataLoader(Squares(), batch_size=2)))
    assert plain(list(loader)) == want
    next(iter(loader))  # broken off after one batch
    assert plain(list(loader)) == want
    assert len(idents) == 2 and sorted(inits) == [0, 1]
    assert len(_worker_threads()) == 2
    del loader
    deadline = time.time() + 5
    while _worker_threads() and time.time() < deadline:
        time.sleep(0.01)
    assert not _worker_threads()


class _Faulty(Squares):
    def __getitem__(self, i):
        if i == 5:
            raise ValueError(f"sample {i} is corrupt")
        return super().__getitem__(i)


@pytest.mark.parametrize("workers", [0, 2])
def test_dataset_error_surfaces_in_the_consumer_at_its_batch(workers):
    got = []
    with pytest.raises(ValueError, match="sample 5 is corrupt") as e:
        for _, y in jdata.DataLoader(_Faulty(), batch_size=2, num_workers=workers):
            got.append(y.tolist())
    assert got == [[0, 1], [2, 3]]  # the batches before the bad one arrived, in order
    if workers:
        assert any("DataLoader worker thread" in n for n in e.value.__notes__)
    assert not _worker_threads()


def test_worker_init_fn_error_and_timeout():
    def bad_init(worker_id):
        raise OSError(f"no shard for worker {worker_id}")

    with pytest.raises(OSError, match="no shard for worker 0"):
        list(jdata.DataLoader(Squares(), num_workers=2, worker_init_fn=bad_init))

    class Slow(Squares):
        def __getitem__(self, i):
            time.sleep(1.0)
            return super().__getitem__(i)

    with pytest.raises(RuntimeError, match=r"^DataLoader timed out after 0\.2 seconds$"):
        next(iter(jdata.DataLoader(Slow(), num_workers=1, timeout=0.2)))


def test_multiprocessing_context_with_workers_warns_that_workers_are_threads():
    with pytest.warns(UserWarning, match="runs its workers as threads"):
        jdata.DataLoader(Squares(), num_workers=1, multiprocessing_context="spawn")


# ------------------------------------------------------------------------ prefetch_to_device
def test_prefetch_gives_the_loaders_batches_on_device_uncommitted():
    loader = jdata.DataLoader(Squares(), batch_size=4, shuffle=True, generator=jaxmod.Generator(1))
    same = jdata.DataLoader(Squares(), batch_size=4, shuffle=True, generator=jaxmod.Generator(1))
    pre = jdata.prefetch_to_device(loader, size=2)
    assert len(pre) == 3
    for _ in range(2):  # re-iterable: one epoch per iter()
        batches = list(pre)
        assert plain(batches) == plain(list(same))
        assert all(isinstance(x, jaxmod.Tensor) and not x.committed for x, _ in batches)
    step = jax.jit(lambda a, x: a + x.sum())
    state = jnp.zeros(())  # uncommitted, like a model built without device_put
    for x, _ in jdata.prefetch_to_device(jdata.DataLoader(Squares(), batch_size=5)):
        state = step(state, x)
    assert step._cache_size() == 1  # uncommitted inputs: one compilation
    x, _ = next(iter(jdata.prefetch_to_device(loader, sharding=jax.devices()[0])))
    assert x.committed


def test_prefetch_runs_ahead_in_the_background_and_is_bounded():
    made = []

    def source():
        for i in range(20):
            made.append(i)
            yield np.full(3, i, np.float32)

    it = iter(jdata.prefetch_to_device(source(), size=2))
    assert next(it).tolist() == [0, 0, 0]
    deadline = time.time() + 5
    while len(made) < 3 and time.time() < deadline:  # batches 1, 2 prepared meanwhile
        time.sleep(0.01)
    time.sleep(0.05)
    assert 3 <= len(made) <= 4  # 2 queued + at most 1 waiting: bounded
    it.close()
    assert not it._thread.is_alive()


def test_prefetch_surfaces_source_errors_after_the_good_batches():
    def source():
        yield {"x": np.zeros(2)}
        yield {"x": np.ones(2)}
        raise KeyError("missing shard")

    got = []
    with pytest.raises(KeyError, match="missing shard") as e:
        for b in jdata.prefetch_to_device(source()):
            got.append(b["x"].tolist())
    assert got == [[0.0, 0.0], [1.0, 1.0]]
    assert any("prefetch_to_device" in n for n in e.value.__notes__)


def test_prefetch_stops_its_thread_when_the_consumer_breaks_off():
    def endless():
        while True:
            yield np.zeros(2)

    it = iter(jdata.prefetch_to_device(endless()))
    next(it)
    thread = it._thread
    del it
    thread.join(5)
    assert not thread.is_alive()


def test_prefetch_converts_torch_dataloader_batches(torch):
    from torch.utils.data import DataLoader, TensorDataset

    tl = DataLoader(TensorDataset(torch.arange(6.0).reshape(3, 2), torch.arange(3)), batch_size=2)
    batches = list(jdata.prefetch_to_device(tl))
    assert plain(batches) == plain(list(tl))
    assert all(isinstance(a, jaxmod.Tensor) for b in batches for a in b)


def test_prefetch_argument_errors():
    with pytest.raises(ValueError, match="size should be a positive integer value, but got size=0"):
        jdata.prefetch_to_device([], size=0)
    with pytest.raises(TypeError, match="sharding must be None, a jax.Device or a jax.sharding"):
        jdata.prefetch_to_device([], sharding="cuda")


_MESH_SCRIPT = textwrap.dedent(
    """
    import json, warnings
    import jax, numpy as np
    from jax.sharding import NamedSharding, PartitionSpec as P
    from jaxmod.utils.data import DataLoader, TensorDataset, prefetch_to_device

    mesh = jax.make_mesh((8,), ("data",))
    sh = NamedSharding(mesh, P("data"))
    x = np.arange(64 * 3, dtype=np.float32).reshape(64, 3)
    ds = TensorDataset(x, np.arange(64))
    report = {"batches": []}
    for xb, yb in prefetch_to_device(DataLoader(ds, batch_size=16, num_workers=2), sharding=sh):
        report["batches"].append({
            "x_spec": str(xb.sharding.spec), "y_spec": str(yb.sharding.spec),
            "ndev": len(xb.sharding.device_set),
            "x_shard": list(xb.addressable_shards[0].data.shape),
            "y_shard": list(yb.addressable_shards[0].data.shape),
            "rows_ok": bool(np.array_equal(np.asarray(xb), x[np.asarray(yb)])),
        })
    collate = lambda b: {"x": np.stack([s[0] for s in b]), "n": np.int32(len(b))}
    d = next(iter(prefetch_to_device(DataLoader(ds, 8, collate_fn=collate), sharding=sh)))
    report["scalar_spec"] = str(d["n"].sharding.spec)
    try:  # 60 rows: batches of 16, 16, 16, 12
        list(prefetch_to_device(DataLoader(TensorDataset(x[:60]), batch_size=16), sharding=sh))
    except ValueError as e:
        report["indivisible"] = str(e)
    dev3 = jax.devices()[3]
    with jax.default_device(dev3):
        a = next(iter(prefetch_to_device(DataLoader(ds, batch_size=4))))[0]
        b = next(iter(DataLoader(ds, batch_size=4, num_workers=2)))[0]
    report["default_device"] = [str(list(a.devices())[0]), a.committed,
                                str(list(b.devices())[0]), b.committed, str(dev3)]
    print("REPORT" + json.dumps(report))
    """
)


@pytest.fixture(scope="module")
def mesh_report() -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("XLA_", "JAX_"))}
    env.update(PYTHONPATH=str(ROOT), JAX_PLATFORMS="cpu",
               XLA_FLAGS="--xla_force_host_platform_device_count=8")  # fmt: skip
    proc = subprocess.run([sys.executable, "-c", _MESH_SCRIPT], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=180)  # fmt: skip
    for line in proc.stdout.splitlines():
        if line.startswith("REPORT"):
            return json.loads(line[len("REPORT") :])
    raise AssertionError(f"no report (rc={proc.returncode}):\n{proc.stdout}\n{proc.stderr}")


def test_prefetch_splits_batches_over_the_data_axis(mesh_report):
    batches = mesh_report["batches"]
    assert len(batches) == 4
    for b in batches:
        assert b == {"x_spec": "P('data',)", "y_spec": "P('data',)",
                     "ndev": 8, "x_shard": [2, 3], "y_shard": [2], "rows_ok": True}  # fmt: skip
    assert mesh_report["scalar_spec"] == "P()"  # scalars replicated


def test_prefetch_names_the_batch_that_does_not_divide_over_the_mesh(mesh_report):
    msg = mesh_report["indivisible"]
    assert msg.startswith("prefetch_to_device: cannot put batch 3 on NamedSharding")
    assert "(12, 3)" in msg and "drop_last=True" in msg


def test_batches_follow_the_main_threads_default_device(mesh_report):
    a_dev, a_committed, b_dev, b_committed, want = mesh_report["default_device"]
    assert (a_dev, b_dev) == (want, want)  # made in background threads, placed like jnp.asarray
    assert not a_committed and not b_committed
