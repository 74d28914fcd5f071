"""Bad arguments raise torch's exception types (and messages), and what JAX cannot do raises
a named error that says how to fix it."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest

import jaxmod
from tests._tensor_parity import check_eager, ids

# Torch raises for each of these; jaxmod must raise the same type ("m": the same message).
# fmt: off
CASES = [
    ("sum_bad_dim", lambda t, a: a.sum(2), "A", "xm"),
    ("transpose_bad_dim", lambda t, a: a.transpose(0, 3), "A", "xm"),
    ("softmax_bad_dim", lambda t, a: a.softmax(5), "A", "x"),
    ("unsqueeze_bad_dim", lambda t, a: a.unsqueeze(4), "A", "xm"),
    ("scalar_bad_dim", lambda t, s: s.sum(1), "S", "xm"),
    ("size_bad_dim", lambda t, a: a.size(2), "A", "xm"),
    ("cat_shapes", lambda t, a, c: t.cat([a, c], 1), "A C", "xm"),
    ("cat_ndim", lambda t, a, v: t.cat([a, v]), "A V", "xm"),
    ("cat_empty", lambda t: t.cat([]), "", "xm"),
    ("stack_shapes", lambda t, a, c: t.stack([a, c]), "A C", "xm"),
    ("broadcast", lambda t, a, w: a + w, "A W", "xm"),
    ("broadcast_fn", lambda t, a, w: t.mul(a, w), "A W", "xm"),
    ("view_bad_numel", lambda t, a: a.view(4, 2), "A", "xm"),
    ("view_two_infer", lambda t, a: a.view(-1, -1), "A", "xm"),
    ("view_non_contiguous", lambda t, a: a.t().view(6), "A", "xm"),
    ("reshape_bad", lambda t, x: x.reshape(5, -1), "X", "xm"),
    ("matmul_shapes", lambda t, a: a @ a, "A", "xm"),
    ("mm_shapes", lambda t, a, c: t.mm(c, a), "A C", "xm"),
    ("matmul_vectors", lambda t, v, w: v @ w, "V W", "xm"),
    ("matmul_dtypes", lambda t, a, i: a @ i.t(), "A I", "x"),
    ("bmm_2d", lambda t, a, c: t.bmm(a, c), "A C", "xm"),
    ("split_sizes", lambda t, a: a.split([1, 1], 1), "A", "xm"),
    ("index_out_of_range", lambda t, a: a[5], "A", "xm"),
    ("index_tensor_out_of_range", lambda t, a: a[t.tensor([0, 5])], "A", "xm"),
    ("too_many_indices", lambda t, a: a[0, 0, 0], "A", "xm"),
    ("negative_step", lambda t, a: a[::-1], "A", "xm"),
    ("index_select_oob", lambda t, a: a.index_select(0, t.tensor([3])), "A", "xm"),
    ("gather_ndim", lambda t, a, l: a.gather(1, l), "A L", "xm"),
    ("gather_oob", lambda t, a, k: a.gather(1, k + 3), "A K", "x"),
    ("mean_int", lambda t, i: i.mean(), "I", "xm"),
    ("std_int", lambda t, i: i.std(), "I", "x"),
    ("inplace_float_into_int", lambda t, i: i.add_(1.5), "I", "xm"),
    ("inplace_broadcast_grows", lambda t, v, a: v.add_(a), "V A", "xm"),
    ("inplace_expanded", lambda t, v: v.expand(2, 3).add_(1), "V", "xm"),
    ("expand_bad", lambda t, a: a.expand(3, 3), "A", "xm"),
    ("repeat_too_few", lambda t, a: a.repeat(2), "A", "xm"),
    ("item_many", lambda t, a: a.item(), "A", "xm"),
    ("bool_many", lambda t, a: bool(a), "A", "xm"),
    ("len_scalar", lambda t, s: len(s), "S", "xm"),
    ("iter_scalar", lambda t, s: list(s), "S", "xm"),
    ("index_float", lambda t, a: [1, 2, 3][a[0, 0]], "A", "xm"),
    ("masked_fill_int_mask", lambda t, a, i: a.masked_fill(i, 0.0), "A I", "x"),
    ("masked_fill_vector_value", lambda t, a, m, v: a.masked_fill(m, v), "A M V", "x"),
    ("neg_bool", lambda t, m: -m, "M", "xm"),
    ("sub_bool", lambda t, m: m - m, "M", "xm"),
    ("topk_too_many", lambda t, a: a.topk(4), "A", "xm"),
    ("narrow_too_long", lambda t, a: a.narrow(1, 2, 2), "A", "xm"),
    ("t_3d", lambda t, x: x.t(), "X", "xm"),
    ("flatten_order", lambda t, x: x.flatten(2, 1), "X", "xm"),
    ("randint_low_high", lambda t: t.randint(5, 5, (2,)), "", "xm"),
    ("negative_size", lambda t: t.zeros(-1), "", "xm"),
    ("arange_bad_sign", lambda t: t.arange(0, 5, -1), "", "xm"),
    ("clamp_no_bounds", lambda t, a: a.clamp(), "A", "xm"),
    ("multinomial_no_replacement", lambda t: t.multinomial(t.tensor([0.5, 0.5]), 3), "", "xm"),
    ("multinomial_negative", lambda t: t.multinomial(t.tensor([-1.0, 2.0]), 1), "", "xm"),
    ("chunk_zero", lambda t, a: a.chunk(0), "A", "xm"),
    ("device_string", lambda t: t.device("gpux:0"), "", "x"),
    ("set_default_int", lambda t: t.set_default_dtype(t.int32), "", "x"),
    ("setitem_shape", lambda t, a, w: a.__setitem__(0, w), "A W", "xm"),
    ("diagonal_same_dims", lambda t, a: a.diagonal(0, 1, 1), "A", "xm"),
    ("div_bad_mode", lambda t, a: a.div(2, rounding_mode="round"), "A", "xm"),
    # -- legacy typed constructors
    ("legacy_negative_size", lambda t: t.FloatTensor(2, -1), "", "xm"),
    ("legacy_negative_size_tensor", lambda t: t.Tensor(-3), "", "xm"),
    ("legacy_float_data", lambda t: t.LongTensor(1.5), "", "xm"),
    ("legacy_bool_data", lambda t: t.Tensor(True), "", "xm"),
    ("legacy_str_data", lambda t: t.FloatTensor("ab"), "", "xm"),
    ("legacy_none_data", lambda t: t.DoubleTensor(None), "", "xm"),
    ("legacy_dict_data", lambda t: t.IntTensor({1: 2}), "", "xm"),
    ("legacy_numpy_scalar_data", lambda t: t.FloatTensor(np.float32(2.0)), "", "xm"),
    ("legacy_mixed_sizes", lambda t: t.FloatTensor(2, 3.0), "", "x"),
    ("legacy_tensor_of_other_dtype", lambda t, i: t.FloatTensor(i), "I", "x"),
    ("legacy_dtype_keyword", lambda t: t.FloatTensor(2, dtype=t.float64), "", "x"),
    ("legacy_ragged", lambda t: t.LongTensor([[1], [2, 3]]), "", "x"),
    # -- histc / histogram arguments
    ("histc_int_input", lambda t, i: t.histc(i, 3), "I", "xm"),
    ("histc_no_bins", lambda t, a: t.histc(a, 0), "A", "xm"),
    ("histc_max_below_min", lambda t, a: t.histc(a, 3, min=2, max=1), "A", "xm"),
    ("histogram_int_input", lambda t, i: t.histogram(i, 3), "I", "xm"),
    ("histogram_no_bins", lambda t, a: t.histogram(a, 0), "A", "xm"),
    ("histogram_range_reversed", lambda t, a: t.histogram(a, 3, range=(2.0, 1.0)), "A", "xm"),
    # -- sparse_coo_tensor (torch's check_invariants=True index checks)
    ("coo_indices_1d", lambda t, v: t.sparse_coo_tensor(t.tensor([0, 1, 2]), v, (3,)), "V", "x"),
    ("coo_indices_3d", lambda t, v: t.sparse_coo_tensor(t.zeros(1, 1, 3, dtype=t.long), v,
                                                        (3,)), "V", "xm"),
    ("coo_nnz_mismatch", lambda t, k, v: t.sparse_coo_tensor(k[:, :2], v, (3, 2)), "K V", "xm"),
    ("coo_size_ndim", lambda t, k, v: t.sparse_coo_tensor(k, v, (3,)), "K V", "xm"),
    ("coo_size_ndim_hybrid", lambda t, l, a: t.sparse_coo_tensor(l[None], a, (3,)), "L A",
     "xm"),
    ("coo_values_shape", lambda t, l, a: t.sparse_coo_tensor(l[None], a, (3, 2)), "L A", "xm"),
    ("coo_negative_index", lambda t, v: t.sparse_coo_tensor(t.tensor([[0, -1, 1]]), v, (3,),
                                                            check_invariants=True), "V", "xm"),
    ("coo_index_too_large", lambda t, k, v: t.sparse_coo_tensor(k, v, (3, 1),
                                                                check_invariants=True),
     "K V", "xm"),
    ("sparse_mm_shapes", lambda t, k, v, c: t.sparse.mm(t.sparse_coo_tensor(k, v, (3, 2)), c),
     "K V C", "x"),
    # -- complex numbers
    ("view_as_complex_last_dim", lambda t, a: t.view_as_complex(a), "A", "xm"),
    ("view_as_complex_int", lambda t, i: t.view_as_complex(i[:, :2]), "I", "xm"),
    ("view_as_complex_0d", lambda t, s: t.view_as_complex(s), "S", "xm"),
    ("view_as_complex_stride", lambda t, a: t.view_as_complex(a.t()[:, :2]), "A", "xm"),
    ("view_as_complex_offset", lambda t: t.view_as_complex(t.arange(10.0)[1:9].view(4, 2)), "",
     "xm"),
    ("view_as_complex_odd_stride", lambda t, x: t.view_as_complex(x[:, :, 1:3]), "X", "xm"),
    ("view_as_real_real", lambda t, a: t.view_as_real(a), "A", "xm"),
    ("view_as_real_int", lambda t, i: t.view_as_real(i), "I", "xm"),
    ("complex_int", lambda t, i: t.complex(i, i), "I", "xm"),
    ("complex_complex", lambda t, a: t.complex(t.complex(a, a), t.complex(a, a)), "A", "xm"),
    ("complex_shapes", lambda t, a, c: t.complex(a, c), "A C", "xm"),
    ("complex_python_number", lambda t, a: t.complex(a, 1.0), "A", "xm"),
    ("polar_int", lambda t, i: t.polar(i, i), "I", "xm"),
    ("polar_shapes", lambda t, a, w: t.polar(a, w), "A W", "xm"),
    ("polar_python_number", lambda t, a: t.polar(2.0, a), "A", "x"),
    # -- scatter / index_add / repeat_interleave
    ("scatter_src_dtype", lambda t, a, k, i: a.scatter(1, k, i), "A K I", "xm"),
    ("scatter_add_src_dtype", lambda t, a, k, i: a.scatter_add(1, k, i), "A K I", "xm"),
    ("scatter_src_smaller", lambda t, a, k: a.scatter(1, k, a[:, :2]), "A K", "xm"),
    ("scatter_add_src_smaller", lambda t, a, k: a.scatter_add(1, k, a[:1]), "A K", "xm"),
    ("scatter_index_float", lambda t, a, k, b: a.scatter(1, k.float(), b), "A K B", "x"),
    ("scatter_index_ndim", lambda t, a, l, b: a.scatter(1, l, b), "A L B", "xm"),
    ("scatter_out_of_range", lambda t, a, k, b: a.scatter(1, k + 2, b), "A K B", "xm"),
    ("scatter_negative_index", lambda t, a, k, b: a.scatter(1, k - 1, b), "A K B", "xm"),
    ("scatter_add_out_of_range", lambda t, a, k, b: a.scatter_add(1, k + 3, b), "A K B", "xm"),
    ("gather_negative_index", lambda t, a, k: a.gather(1, -k - 1), "A K", "xm"),
    ("index_add_dtype", lambda t, c, l, i: c[:, :3].index_add(0, l[:1], i[:1]), "C L I", "xm"),
    ("index_add_out_of_range", lambda t, c, l, w: c.index_add(0, l + 1, w.expand(2, 4)),
     "C L W", "xm"),
    ("index_add_negative_index", lambda t, c, l, w: c.index_add(0, l - 1, w.expand(2, 4)),
     "C L W", "xm"),
    ("index_add_index_2d", lambda t, c, l, w: c.index_add(0, l[None], w.expand(2, 4)),
     "C L W", "xm"),
    ("index_add_index_float", lambda t, c, l, w: c.index_add(0, l.float(), w.expand(2, 4)),
     "C L W", "x"),
    ("index_add_count", lambda t, c, l, w: c.index_add(0, l, w.expand(3, 4)), "C L W", "xm"),
    ("index_add_source_shape", lambda t, c, l: c.index_add(0, l, c[:2, :3]), "C L", "xm"),
    ("index_add_source_ndim", lambda t, c, l, w: c.index_add(0, l[:1], w[None, :, None]),
     "C L W", "xm"),
    ("index_add_source_number", lambda t, c, l: c.index_add(0, l, 1.0), "C L", "x"),
    ("index_add_bad_dim", lambda t, c, l, w: c.index_add(2, l, w.expand(2, 4)), "C L W", "xm"),
    ("index_reduce_count", lambda t, c, l, w: c.index_reduce(0, l, w.expand(3, 4), "prod"),
     "C L W", "xm"),
    ("index_reduce_out_of_range", lambda t, c, l, w: c.index_reduce(0, l + 1, w.expand(2, 4),
                                                                    "amax"), "C L W", "xm"),
    ("index_reduce_negative_index", lambda t, c, l, w: c.index_reduce(0, l - 1, w.expand(2, 4),
                                                                      "amin"), "C L W", "xm"),
    ("index_reduce_index_2d", lambda t, c, l, w: c.index_reduce(0, l[None], w.expand(2, 4),
                                                                "mean"), "C L W", "xm"),
    ("index_reduce_sum", lambda t, c, l, w: c.index_reduce(0, l, w.expand(2, 4), "sum"),
     "C L W", "xm"),
    ("index_reduce_source_shape", lambda t, c, l: c.index_reduce(0, l, c[:2, :3], "prod"),
     "C L", "xm"),
    ("index_copy_negative_index", lambda t, c, l, w: c.index_copy(0, l - 3, w.expand(2, 4)),
     "C L W", "xm"),
    ("index_select_negative_index", lambda t, c, l: c.index_select(0, l - 3), "C L", "xm"),
    ("repeat_interleave_negative", lambda t, a: a.repeat_interleave(-1), "A", "xm"),
    ("repeat_interleave_negative_tensor", lambda t, a: a.repeat_interleave(t.tensor([-1, 2]),
                                                                           dim=0), "A", "xm"),
    ("repeat_interleave_float_tensor", lambda t, a: a.repeat_interleave(t.tensor([1.0, 2.0]),
                                                                        dim=0), "A", "xm"),
    ("repeat_interleave_2d_repeats", lambda t, a, l: a.repeat_interleave(l[None], dim=0),
     "A L", "xm"),
    ("repeat_interleave_size_mismatch", lambda t, a, v: a.repeat_interleave(v.long() + 2,
                                                                            dim=0), "A V", "xm"),
    ("repeat_interleave_flat_mismatch", lambda t, a, l: a.repeat_interleave(l), "A L", "xm"),
    ("repeat_interleave_bad_dim", lambda t, a: a.repeat_interleave(2, dim=2), "A", "xm"),
    ("repeat_interleave_float_count", lambda t, a: a.repeat_interleave(1.5), "A", "x"),
    ("repeat_interleave_output_size", lambda t, a, l: t.repeat_interleave(a, l, dim=0,
                                                                          output_size=5),
     "A L", "xm"),
    ("repeat_interleave_int_output_size", lambda t, a: t.repeat_interleave(a, 2, dim=0,
                                                                           output_size=5),
     "A", "xm"),
    ("repeat_interleave_repeats_float", lambda t: t.repeat_interleave(t.tensor([1.0, 2.0])),
     "", "xm"),
    ("repeat_interleave_repeats_negative", lambda t: t.repeat_interleave(t.tensor([1, -2])),
     "", "xm"),
    ("repeat_interleave_repeats_2d", lambda t, j: t.repeat_interleave(j), "J", "xm"),
    ("repeat_interleave_repeats_0d", lambda t: t.repeat_interleave(t.tensor(2)), "", "xm"),
    ("repeat_interleave_repeats_output_size", lambda t: t.repeat_interleave(
        t.tensor([1, 2]), output_size=4), "", "xm"),
]
# fmt: on


@pytest.mark.parametrize("case", CASES, ids=ids(CASES))
def test_bad_arguments_raise_like_torch(case):
    check_eager(case)


def test_backward_inside_jit_names_value_and_grad_with_the_training_loop():
    def step(x):
        loss = (x * 2).sum()
        loss.backward()
        return loss

    with pytest.raises(RuntimeError) as e:
        jaxmod.jit(step)(jaxmod.ones(3))
    msg = str(e.value)
    assert "jaxmod.value_and_grad(loss_fn)(model)" in msg and "opt.step(grads)" in msg


def test_item_and_python_conversions_under_jit_raise_trace_error():
    for fn in (lambda x: x.sum().item(), lambda x: float(x.sum()), lambda x: x.tolist(),
               lambda x: bool(x.sum() > 0), lambda x: x.numpy()):  # fmt: skip
        with pytest.raises(jaxmod.TraceError, match="traced"):
            jaxmod.jit(fn)(jaxmod.ones(3))


@pytest.mark.parametrize(
    "fn",
    [
        lambda x: x[x > 0],
        lambda x: x.nonzero(),
        lambda x: x.masked_select(x > 0),
        lambda x: jaxmod.unique(x),
        lambda x: jaxmod.where(x > 0),
    ],
    ids=["bool_mask_index", "nonzero", "masked_select", "unique", "where_one_arg"],
)
def test_data_dependent_shapes_under_jit_name_the_fix(fn):
    with pytest.raises(jaxmod.TraceError, match=r"jaxmod.where\(mask, x, other\)|size="):
        jaxmod.jit(fn)(jaxmod.arange(4.0) - 1)
    assert fn(jaxmod.arange(4.0) - 1) is not None  # eagerly they work


def test_boolean_mask_assignment_works_under_jit():
    @jaxmod.jit
    def f(logits):
        logits[logits < 0] = float("-inf")
        return logits.softmax(-1)

    out = f(jaxmod.tensor([[-1.0, 0.5, 2.0]]))
    assert out[0, 0].item() == 0.0 and abs(out.sum().item() - 1) < 1e-6


def test_in_place_on_a_view_writes_through_inside_jit():
    @jaxmod.jit
    def f(x):
        x[:, 0] = 0.0
        x.t()[1].mul_(10)
        row = x[1]
        row += 1
        return x

    out = f(jaxmod.ones(2, 3))
    assert out.tolist() == [[0.0, 10.0, 1.0], [1.0, 11.0, 2.0]]


def test_views_of_traced_and_concrete_bases_stay_consistent():
    x = jaxmod.zeros(2, 3)
    col = x[:, 1]
    x.add_(1)  # the base changes in place: the view sees it, as in torch
    assert col.tolist() == [1.0, 1.0]
    col.fill_(5)
    assert x.tolist() == [[1.0, 5.0, 1.0], [1.0, 5.0, 1.0]]
    x.data = jaxmod.ones(4)  # new storage: old views keep the old values, as in torch
    assert col.tolist() == [5.0, 5.0]


def test_tensor_passes_through_jax_transforms_and_jnp():
    x = jaxmod.tensor([1.0, 2.0, 3.0])
    assert float(jnp.dot(x, x)) == 14.0
    assert isinstance(jaxmod.jit(lambda t: t * 2)(x), jaxmod.Tensor)
    import jax

    g = jax.grad(lambda t: jnp.sum(t * t))(x)  # plain jax.grad needs an array output
    assert isinstance(g, jaxmod.Tensor) and g.tolist() == [2.0, 4.0, 6.0]
    v = jax.vmap(lambda r: r.sum())(jaxmod.ones(3, 2))
    assert v.tolist() == [2.0, 2.0, 2.0]
    assert isinstance(jnp.ones(3) * 1 + x, jax.Array)  # jax.Array on the left: jax's rule
    assert isinstance(x + jnp.ones(3), jaxmod.Tensor)


@pytest.mark.parametrize(
    "make",
    [
        lambda: jaxmod.tensor([1, 2**40]),
        lambda: jaxmod.tensor(np.array([-(2**40)])),
        lambda: jaxmod.as_tensor(np.array([2**33])),
        lambda: jaxmod.from_numpy(np.array([2**62], np.int64)),
    ],
    ids=["tensor-list", "tensor-numpy", "as_tensor", "from_numpy"],
)
def test_int64_values_beyond_int32_raise_instead_of_wrapping_with_x64_off(make):
    if jaxmod.int64 == np.int64:
        pytest.skip("x64 is on: int64 values are kept")
    with pytest.raises(OverflowError, match="does not fit int32.*jax_enable_x64"):
        make()
    assert jaxmod.tensor(np.array([2**31 - 1, -(2**31)])).tolist() == [2**31 - 1, -(2**31)]
