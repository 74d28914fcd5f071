"""jaxmod.utils.data against torch.utils.data: datasets, samplers, collation, argument checks.

Where torch's behaviour is deterministic (sequential order, batch sizes, len(), collated
structure and dtypes, error types and messages) the two are compared exactly. Random
orders cannot match torch's Generator stream, so their *semantics* are compared: every
epoch a permutation, the same seed the same order, weighted frequencies, split sizes.
The DataLoader itself (workers, iterable datasets, prefetch to device) is in
tests/test_data_loader.py.
"""

from __future__ import annotations

import collections
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxmod
from jaxmod.utils import data as jdata
from tests._data_compare import plain as _plain

Point = collections.namedtuple("Point", ["x", "y"])


def _tensor_like(m, torch):
    """Array constructor of module ``m``'s world: torch tensors for torch, numpy for ours."""
    return torch.as_tensor if m.__name__.startswith("torch") else np.asarray


def _outcome(fn):
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return ("ok", _plain(fn()))
    except Exception as e:
        return (type(e).__name__, str(e))


# ------------------------------------------------------------------------ error parity
def _dist(m):
    if m is jdata:
        return jdata.DistributedSampler
    from torch.utils.data.distributed import DistributedSampler

    return DistributedSampler


ERRORS = {
    "num_workers<0": lambda m, A: m.DataLoader(range(4), num_workers=-1),
    "timeout<0": lambda m, A: m.DataLoader(range(4), timeout=-1),
    "prefetch_factor without workers": lambda m, A: m.DataLoader(range(4), prefetch_factor=2),
    "prefetch_factor<0": lambda m, A: m.DataLoader(range(4), num_workers=1, prefetch_factor=-1),
    "persistent without workers": lambda m, A: m.DataLoader(range(4), persistent_workers=True),
    "sampler and shuffle": lambda m, A: m.DataLoader(range(4), sampler=[0, 1], shuffle=True),
    "batch_sampler and batch_size": lambda m, A: m.DataLoader(
        range(4), batch_size=2, batch_sampler=[[0, 1]]
    ),
    "batch_sampler and drop_last": lambda m, A: m.DataLoader(
        range(4), drop_last=True, batch_sampler=[[0, 1]]
    ),
    "batch_sampler and sampler": lambda m, A: m.DataLoader(
        range(4), sampler=[0], batch_sampler=[[0, 1]]
    ),
    "batch_size None and drop_last": lambda m, A: m.DataLoader(
        range(4), batch_size=None, drop_last=True
    ),
    "mp context without workers": lambda m, A: m.DataLoader(
        range(4), multiprocessing_context="spawn"
    ),
    "set batch_size after init": lambda m, A: setattr(m.DataLoader(range(4)), "batch_size", 3),
    "set sampler after init": lambda m, A: setattr(m.DataLoader(range(4)), "sampler", None),
    "BatchSampler batch_size 0": lambda m, A: m.BatchSampler(range(4), 0, False),
    "BatchSampler batch_size bool": lambda m, A: m.BatchSampler(range(4), True, False),
    "BatchSampler drop_last int": lambda m, A: m.BatchSampler(range(4), 2, 1),
    "RandomSampler replacement int": lambda m, A: m.RandomSampler(range(4), replacement=1),
    "RandomSampler num_samples 0": lambda m, A: m.RandomSampler(range(4), num_samples=0),
    "RandomSampler empty dataset": lambda m, A: m.RandomSampler([]),
    "Weighted num_samples 0": lambda m, A: m.WeightedRandomSampler([1.0, 2.0], 0),
    "Weighted replacement str": lambda m, A: m.WeightedRandomSampler([1.0], 1, "no"),
    "Weighted 2-D weights": lambda m, A: m.WeightedRandomSampler([[1.0, 2.0]], 1),
    "Weighted negative": lambda m, A: list(m.WeightedRandomSampler([1.0, -1.0], 2)),
    "Weighted negative, one": lambda m, A: list(m.WeightedRandomSampler([1.0, -1.0], 1)),
    "Weighted nan": lambda m, A: list(m.WeightedRandomSampler([1.0, float("nan")], 2)),
    "Weighted inf": lambda m, A: list(m.WeightedRandomSampler([1.0, float("inf")], 2)),
    "Weighted inf, no replacement": lambda m, A: list(
        m.WeightedRandomSampler([1.0, float("inf")], 2, False)
    ),
    "Weighted all zero": lambda m, A: list(m.WeightedRandomSampler([0.0, 0.0], 2)),
    "Weighted too many": lambda m, A: list(m.WeightedRandomSampler([1.0, 1.0], 3, False)),
    "TensorDataset size mismatch": lambda m, A: m.TensorDataset(A([1, 2]), A([1, 2, 3])),
    "TensorDataset index out of range": lambda m, A: m.TensorDataset(A([1, 2]))[5],
    "ConcatDataset empty": lambda m, A: m.ConcatDataset([]),
    "ConcatDataset of iterable": lambda m, A: m.ConcatDataset([_Count(m, 2)]),
    "IterableDataset is abstract": lambda m, A: m.IterableDataset(),
    "ConcatDataset index too negative": lambda m, A: m.ConcatDataset([range(2)])[-3],
    "StackDataset args and kwargs": lambda m, A: m.StackDataset(range(2), b=range(2)),
    "StackDataset none": lambda m, A: m.StackDataset(),
    "StackDataset size mismatch": lambda m, A: m.StackDataset(range(2), range(3)),
    "ChainDataset of map-style": lambda m, A: list(m.ChainDataset([range(2)])),
    "Dataset getitem": lambda m, A: m.Dataset()[0],
    "random_split sum": lambda m, A: m.random_split(range(10), [3, 3]),
    "random_split fraction": lambda m, A: m.random_split(range(10), [1.5, -0.5]),
    "Subset override": lambda m, A: type("_Sub", (m.Subset,), {"__getitem__": lambda self, i: 0})(
        range(3), [0]
    ),
    "collate object": lambda m, A: m.default_collate([object(), object()]),
    "collate string array": lambda m, A: m.default_collate([np.array(["a"]), np.array(["b"])]),
    "collate ragged lists": lambda m, A: m.default_collate([[1, 2], [1]]),
    "collate unequal shapes": lambda m, A: m.default_collate([np.zeros(2), np.zeros(3)]),
    "DistributedSampler bad rank": lambda m, A: _dist(m)(range(4), 2, 2),
}


@pytest.mark.parametrize("case", list(ERRORS))
def test_error_type_and_message_match_torch(torch, case):
    from torch.utils import data as tdata

    fn = ERRORS[case]
    want = _outcome(lambda: fn(tdata, _tensor_like(tdata, torch)))
    got = _outcome(lambda: fn(jdata, _tensor_like(jdata, torch)))
    assert want[0] != "ok", f"torch accepts {case}: the case is wrong"
    assert got == want


def test_weighted_sampler_refuses_zero_weight_draws_torch_would_fill_in(torch):
    """torch 2.13 fills a no-replacement draw with zero-weight indices (never a valid
    draw); jaxmod raises and says how to fix it."""
    from torch.utils.data import WeightedRandomSampler

    assert sorted(WeightedRandomSampler([1.0, 0.0, 0.0], 2, replacement=False)) == [0, 1]
    with pytest.raises(RuntimeError, match="1 non-zero weights; lower num_samples"):
        list(jdata.WeightedRandomSampler([1.0, 0.0, 0.0], 2, replacement=False))


def test_torch_generator_is_refused_with_the_fix(torch):
    for make in (
        lambda: jdata.DataLoader(range(4), shuffle=True, generator=torch.Generator()),
        lambda: jdata.RandomSampler(range(4), generator=torch.Generator()),
        lambda: jdata.random_split(range(4), [2, 2], generator=torch.Generator()),
    ):
        with pytest.raises(TypeError, match=r"jaxmod\.Generator\(seed\) instead"):
            make()


# ------------------------------------------------------------------------ datasets
def test_dataset_compositions_index_like_torch(torch):
    from torch.utils import data as tdata

    def probe(m, A):
        a, b = A(np.arange(6.0).reshape(3, 2)), A(np.array([7, 8, 9]))
        td = m.TensorDataset(a, b)
        cat = td + m.TensorDataset(b, b)
        return {
            "tensor": [td[i] for i in range(len(td))] + [td[-1]],
            "concat": [cat[i] for i in (0, 2, 3, 5, -1, -6)] + [len(cat), cat.cumulative_sizes],
            "subset": [m.Subset(td, [2, 0])[i] for i in (0, 1)] + [len(m.Subset(td, [2, 0]))],
            "subset items": m.Subset(td, [2, 0, 1]).__getitems__([1, 2]),
            "stack tuple": m.StackDataset(range(3), "abc")[1],
            "stack dict": m.StackDataset(n=range(3), c="abc").__getitems__([0, 2]),
            "chain": list(m.ChainDataset([_Count(m, 2), _Count(m, 3)])),
            "chain len": len(_Count(m, 2) + _Count(m, 3)),
        }

    assert _plain(probe(jdata, np.asarray)) == _plain(probe(tdata, torch.as_tensor))


def _Count(m, n):
    """An iterable dataset of 0 .. n-1 with a length, built on module ``m``'s class."""
    cls = type("Count", (m.IterableDataset,), {"__iter__": lambda self: iter(range(n))})
    cls.__len__ = lambda self: n
    return cls()


def test_tensor_dataset_of_jax_arrays_raises_instead_of_clamping():
    ds = jdata.TensorDataset(jnp.arange(4.0))
    assert float(ds[3][0]) == 3.0
    with pytest.raises(IndexError, match="index 4 is out of bounds for dimension 0 with size 4"):
        ds[4]


SPLITS = [(10, [0.5, 0.5]), (10, [0.3, 0.3, 0.4]), (11, [0.3, 0.3, 0.4]), (7, [0.1] * 10),
          (5, [1.0]), (30, [3, 27]), (3, [0.98, 0.01, 0.01]), (2, [0.1, 0.9, 0.0])]  # fmt: skip


@pytest.mark.parametrize(("n", "lengths"), SPLITS)
def test_random_split_sizes_match_torch_and_parts_are_disjoint(torch, n, lengths):
    from torch.utils.data import random_split

    with warnings.catch_warnings(record=True) as tw:
        warnings.simplefilter("always")
        want = [len(s) for s in random_split(range(n), lengths)]
    with warnings.catch_warnings(record=True) as jw:
        warnings.simplefilter("always")
        parts = jdata.random_split(range(n), lengths, generator=jaxmod.Generator(0))
    assert [len(s) for s in parts] == want
    assert [str(w.message) for w in jw] == [str(w.message) for w in tw]
    assert sorted(i for p in parts for i in p) == list(range(n))  # disjoint, complete


def test_random_split_is_reproducible_by_generator_and_global_seed():
    def split(**kw):
        return [list(s) for s in jdata.random_split(range(20), [0.5, 0.5], **kw)]

    assert split(generator=jaxmod.Generator(3)) == split(generator=jaxmod.Generator(3))
    assert split(generator=jaxmod.Generator(3)) != split(generator=jaxmod.Generator(4))
    jaxmod.manual_seed(5)
    first = split()
    assert split() != first  # the global generator moved on
    jaxmod.manual_seed(5)
    assert split() == first


# ------------------------------------------------------------------------ samplers
def test_sequential_and_batch_samplers_match_torch_exactly(torch):
    from torch.utils import data as tdata

    for n, bs, drop in [(10, 3, False), (10, 3, True), (9, 3, True), (2, 5, False), (2, 5, True)]:
        for m in (tdata, jdata):
            b = m.BatchSampler(m.SequentialSampler(range(n)), bs, drop)
            got = (list(b), len(b))
            if m is tdata:
                want = got
        assert got == want


def _epochs(sampler, k=3):
    return [list(sampler) for _ in range(k)]


def test_random_sampler_epochs_are_fresh_permutations_decided_by_the_seed():
    ds = range(50)
    runs = _epochs(jdata.RandomSampler(ds, generator=jaxmod.Generator(1)))
    assert all(sorted(e) == list(ds) for e in runs)
    assert runs[0] != runs[1] != runs[2]
    assert runs == _epochs(jdata.RandomSampler(ds, generator=jaxmod.Generator(1)))
    assert runs != _epochs(jdata.RandomSampler(ds, generator=jaxmod.Generator(2)))
    jaxmod.manual_seed(7)
    glob = _epochs(jdata.RandomSampler(ds))
    jaxmod.manual_seed(7)
    assert glob == _epochs(jdata.RandomSampler(ds))


@pytest.mark.parametrize(
    ("n", "num_samples", "replacement"),
    [(5, 12, False), (5, 3, False), (5, 7, True), (3, 5000, True)],
)
def test_random_sampler_num_samples_structure_matches_torch(torch, n, num_samples, replacement):
    from torch.utils.data import RandomSampler

    def check(sampler):
        out = list(sampler)
        assert len(out) == len(sampler) == num_samples
        assert all(0 <= i < n for i in out)
        if not replacement:  # whole permutations, then a part of one
            chunks = [out[i : i + n] for i in range(0, len(out), n)]
            assert all(len(set(c)) == len(c) for c in chunks)
        return out

    check(RandomSampler(range(n), replacement, num_samples))  # the expectations hold for torch
    out = check(jdata.RandomSampler(range(n), replacement, num_samples, jaxmod.Generator(0)))
    if num_samples >= 1000:
        assert set(out) == set(range(n))


def test_subset_random_sampler_permutes_the_given_indices():
    idx = [10, 20, 30, 40]
    s = jdata.SubsetRandomSampler(idx, generator=jaxmod.Generator(0))
    runs = _epochs(s, 4)
    assert all(sorted(r) == idx for r in runs) and len(s) == 4
    assert len({tuple(r) for r in runs}) > 1


def test_weighted_sampler_frequencies_match_torch_and_the_weights(torch):
    from torch.utils.data import WeightedRandomSampler

    w = [0.1, 0.9, 0.4, 0.7, 3.0, 0.0]
    expected = np.array(w) / sum(w)
    n = 20000
    torch.manual_seed(0)
    tfreq = np.bincount(list(WeightedRandomSampler(w, n)), minlength=6) / n
    jfreq = np.bincount(list(jdata.WeightedRandomSampler(w, n, generator=jaxmod.Generator(0))),
                        minlength=6) / n  # fmt: skip
    np.testing.assert_allclose(tfreq, expected, atol=0.015)  # the test's tolerance holds for torch
    np.testing.assert_allclose(jfreq, expected, atol=0.015)
    assert jfreq[5] == 0.0
    draws = list(jdata.WeightedRandomSampler(w[:5], 5, replacement=False))
    assert sorted(draws) == [0, 1, 2, 3, 4]  # without replacement: each index once
    firsts = [next(iter(jdata.WeightedRandomSampler(w[:5], 2, False))) for _ in range(400)]
    assert np.bincount(firsts, minlength=5).argmax() == 4  # the first draw follows the weights


@pytest.mark.parametrize("drop_last", [False, True])
@pytest.mark.parametrize("n", [10, 11])
def test_distributed_sampler_shards_match_torch(torch, n, drop_last):
    from torch.utils.data.distributed import DistributedSampler as TorchDS

    for rank in range(4):
        want = TorchDS(range(n), 4, rank, shuffle=False, drop_last=drop_last)
        got = jdata.DistributedSampler(range(n), 4, rank, shuffle=False, drop_last=drop_last)
        assert (list(got), len(got), got.total_size) == (list(want), len(want), want.total_size)
    shuffled = [jdata.DistributedSampler(range(n), 4, r, seed=1, drop_last=drop_last)
                for r in range(4)]  # fmt: skip
    parts = [list(s) for s in shuffled]
    seen = [i for p in parts for i in p]
    assert all(0 <= i < n for i in seen) and len(seen) == shuffled[0].total_size
    if drop_last:  # disjoint
        assert len(set(seen)) == len(seen)
    else:  # complete, padded by repeats
        assert set(seen) == set(range(n))
    for s in shuffled:
        s.set_epoch(1)
    assert [list(s) for s in shuffled] != parts


# ------------------------------------------------------------------------ collation
BATCHES = {
    "ints": [0, 1, 2],
    "bools": [True, False],
    "floats": [1.5, 2.0],
    "numpy float32": [np.zeros((2, 3), np.float32), np.ones((2, 3), np.float32)],
    "numpy float64": [np.arange(3.0), np.arange(3.0)],
    "numpy int64": [np.arange(2), np.arange(2)],
    "numpy uint8": [np.arange(2, dtype=np.uint8)] * 2,
    "numpy scalars": [np.float32(1), np.float32(2)],
    "numpy int8 scalars": [np.int8(1), np.int8(-1)],
    "strings": ["a", "bc"],
    "bytes": [b"a", b"b"],
    "dict keeps key order": [{"b": 1, "a": "x"}, {"b": 2, "a": "y"}],
    "ordered dict": [collections.OrderedDict(z=1.0, a=2), collections.OrderedDict(z=3.0, a=4)],
    "namedtuple": [Point(0, 1.0), Point(2, 3.0)],
    "tuple becomes list": [(np.zeros(2), 0), (np.ones(2), 1)],
    "list": [[1, 2.0], [3, 4.0]],
    "nested": [{"img": np.zeros((1, 2)), "meta": (1, "a")},
               {"img": np.ones((1, 2)), "meta": (2, "b")}],
}  # fmt: skip


@pytest.mark.parametrize("name", list(BATCHES))
def test_default_collate_structure_values_and_dtypes_match_torch(torch, name):
    from torch.utils.data import default_collate

    batch = BATCHES[name]
    assert _plain(jdata.default_collate(batch)) == _plain(default_collate(batch))


@pytest.mark.parametrize("name", list(BATCHES))
def test_default_convert_matches_torch(torch, name):
    from torch.utils.data import default_convert

    sample = BATCHES[name][0]
    assert _plain(jdata.default_convert(sample)) == _plain(default_convert(sample))


def test_collated_numpy_and_numbers_are_tensors_on_the_default_device_as_torchs():
    x, y = jdata.default_collate([(np.zeros(3, np.float32), 1), (np.ones(3, np.float32), 2)])
    assert isinstance(x, jaxmod.Tensor) and isinstance(y, jaxmod.Tensor)
    assert x.shape == (2, 3) and not x.committed
    assert x.view(x.size(0), -1).argmax(dim=1).tolist() == [0, 0]  # torch code on a batch


def test_collate_stacks_jax_and_torch_tensors(torch):
    got = jdata.default_collate([jnp.ones(2), jnp.zeros(2)])  # JAX arrays stay arrays
    assert isinstance(got, jax.Array) and got.tolist() == [[1.0, 1.0], [0.0, 0.0]]
    t = jdata.default_collate(
        [torch.ones(2, dtype=torch.bfloat16), torch.zeros(2, dtype=torch.bfloat16)]
    )
    assert isinstance(t, jaxmod.Tensor) and t.dtype == jnp.bfloat16 and t.shape == (2, 2)


def test_collate_fn_map_extends_default_collate():
    from jaxmod.utils.data.collate import collate, default_collate_fn_map

    def pad(batch, *, collate_fn_map):
        return [s.ljust(3) for s in batch]

    out = collate([("a", 1), ("bc", 2)], collate_fn_map={**default_collate_fn_map, str: pad})
    assert out[0] == ["a  ", "bc "] and out[1].tolist() == [1, 2]


def test_collate_stacks_jaxmod_tensors_into_a_tensor(torch):
    import jaxmod
    from jaxmod.utils.data import DataLoader, TensorDataset

    x, y = jaxmod.arange(12.0).view(6, 2), jaxmod.arange(6)
    tx, ty = torch.arange(12.0).view(6, 2), torch.arange(6)
    got = list(DataLoader(TensorDataset(x, y), batch_size=4))
    want = list(torch.utils.data.DataLoader(torch.utils.data.TensorDataset(tx, ty), batch_size=4))
    for (gx, gy), (wx, wy) in zip(got, want, strict=True):
        assert isinstance(gx, jaxmod.Tensor) and gx.size() == wx.size()
        np.testing.assert_array_equal(np.asarray(gx), wx.numpy())
        np.testing.assert_array_equal(np.asarray(gy), wy.numpy())
