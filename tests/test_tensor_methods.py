"""Tensor methods against torch 2.13: values, dtypes, shapes, named tuples, eager and jit."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest
import torch

import jaxmod
from tests._tensor_parity import parity_tests

# (name, fn(lib, *inputs), inputs, flags); see tests/_tensor_parity.py
# fmt: off
CASES = [
    # -- attributes and shape queries
    ("size", lambda t, a: a.size(), "X", "e"),
    ("size_dim", lambda t, a: (a.size(-1), a.size(0)), "X", "e"),
    ("shape", lambda t, a: a.shape, "X", "e"),
    ("shape_slice", lambda t, a: a.shape[1:], "X", "e"),
    ("dim_numel", lambda t, a: (a.dim(), a.ndim, a.numel(), a.nelement(), len(a)), "X", "e"),
    ("dtype", lambda t, a, i, m: (a.dtype, i.dtype, m.dtype), "A I M", "e"),
    ("is_floating_point", lambda t, a, i: (a.is_floating_point(), i.is_floating_point()),
     "A I", "e"),
    ("stride", lambda t, a: (a.stride(), a.transpose(0, 2).stride(), a[:, 1].stride()),
     "X", "e"),
    ("is_contiguous", lambda t, a: (a.is_contiguous(), a.t().is_contiguous(),
                                    a[:, :2].is_contiguous(), a[:1].is_contiguous()), "A", "e"),
    # -- reshaping and views
    ("view", lambda t, a: a.view(4, 6), "X", ""),
    ("view_infer", lambda t, a: a.view(-1, 4), "X", ""),
    ("view_tuple", lambda t, a: a.view((2, 12)), "X", ""),
    ("view_size", lambda t, a, b: a.view(b.size()), "A B", ""),
    ("view_as", lambda t, a, b: a.view(6).view_as(b), "A B", ""),
    ("reshape", lambda t, a: a.reshape(3, -1), "X", ""),
    ("reshape_transposed", lambda t, a: a.transpose(0, 1).reshape(-1), "A", ""),
    ("contiguous_view", lambda t, a: a.transpose(1, 2).contiguous().view(2, -1), "X", ""),
    ("flatten", lambda t, a: (a.flatten(), a.flatten(1), a.flatten(0, 1), a.flatten(-2)),
     "X", ""),
    ("unflatten", lambda t, a: a.unflatten(2, (2, 2)), "X", ""),
    ("ravel", lambda t, a: a.ravel(), "X", ""),
    ("permute", lambda t, a: (a.permute(2, 0, 1), a.permute((1, 2, 0))), "X", ""),
    ("transpose", lambda t, a: (a.transpose(1, 2), a.transpose(-1, 0)), "X", ""),
    ("swapaxes", lambda t, a: a.swapaxes(0, 1), "X", ""),
    ("t", lambda t, a, v: (a.t(), v.t()), "A V", ""),
    ("T_mT", lambda t, a, x: (a.T, x.mT), "A X", ""),
    ("unsqueeze", lambda t, a: (a.unsqueeze(0), a.unsqueeze(-1), a.unsqueeze(1)), "A", ""),
    ("squeeze", lambda t, a: (a.unsqueeze(1).squeeze(), a.unsqueeze(1).squeeze(1),
                              a.squeeze(0), a.unsqueeze(0).unsqueeze(-1).squeeze((0, -1))),
     "A", ""),
    ("expand", lambda t, v: (v.expand(2, 3), v.expand(4, -1), v.unsqueeze(1).expand(3, 5)),
     "V", ""),
    ("expand_as", lambda t, v, a: v.expand_as(a), "V A", ""),
    ("repeat", lambda t, a: (a.repeat(2, 1), a.repeat(1, 2, 2)), "A", ""),
    ("tile", lambda t, a: a.tile((2,)), "A", ""),
    ("movedim", lambda t, a: (a.movedim(0, -1), a.movedim((0, 1), (2, 0))), "X", ""),
    ("narrow", lambda t, a: (a.narrow(1, 1, 2), a.narrow(-1, 0, 1)), "X", ""),
    ("select", lambda t, a: (a.select(1, 0), a.select(-1, -1)), "X", ""),
    ("split_int", lambda t, a: a.split(2, dim=2), "X", ""),
    ("split_uneven", lambda t, d: d.split(2, 1), "D", ""),
    ("split_sizes", lambda t, d: d.split([1, 4], dim=1), "D", ""),
    ("chunk", lambda t, d: (d.chunk(2, 1), d.chunk(3), d.chunk(4, -1)), "D", ""),
    ("tensor_split", lambda t, d: (d.tensor_split(3, 1), d.tensor_split([1, 3], dim=1)),
     "D", ""),
    ("unbind", lambda t, a: a.unbind(1), "X", ""),
    ("unfold", lambda t, d: d.unfold(1, 2, 2), "D", ""),
    ("diagonal", lambda t, c, x: (c.diagonal(), c.diagonal(1), x.diagonal(0, 1, 2)),
     "C X", ""),
    ("flip", lambda t, a: (a.flip(0), a.flip(0, 2), a.flip([1]), a.flip(dims=[-1]),
                           a.flip(dims=(0, 1))), "X", ""),
    ("flip_without_dims", lambda t, a: a.flip(), "X", "x"),
    ("roll", lambda t, a: (a.roll(1, 1), a.roll(2), a.roll((1, 1), (0, 2))), "X", ""),
    ("tril_triu", lambda t, c: (c.tril(), c.triu(1), c.tril(-1)), "C", ""),
    # -- indexing
    ("getitem_int", lambda t, a: (a[0], a[-1], a[1, 2], a[0][1]), "X", ""),
    ("getitem_slice", lambda t, a: (a[:, 1:], a[..., ::2], a[:, None, 1], a[None]), "X", ""),
    ("getitem_list", lambda t, a: (a[[0, 1, 0]], a[:, [2, 0]]), "X", ""),
    ("getitem_range", lambda t, a: (a[range(2), [2, 0]], a[:, range(0, 3, 2)]), "X", ""),
    ("getitem_tensor", lambda t, a, l: (a[l], a[:, l]), "C L", ""),
    ("getitem_2d_index", lambda t, a, k: a[k], "C K", ""),
    ("getitem_mask", lambda t, a, m: a[m], "A M", "e"),
    ("getitem_rowmask", lambda t, a, r: a[r], "A R", "e"),
    ("getitem_ellipsis", lambda t, a: (a[..., 0], a[0, ..., 1]), "X", ""),
    ("setitem_int", lambda t, a: _set(a, 0, 5.0), "A", ""),
    ("setitem_slice_step", lambda t, a: _set(a, (slice(None), slice(0, None, 2)), -1.0),
     "C", ""),
    ("setitem_tensor_value", lambda t, a, v: _set(a, 1, v), "A V", ""),
    ("setitem_mask_scalar", lambda t, a, m: _set(a, m, 0.0), "A M", ""),
    ("setitem_mask_inf", lambda t, a, m: _set(a, a < 0, float("-inf")), "A M", ""),
    ("setitem_rowmask", lambda t, a, r: _set(a, r, 2.0), "A R", ""),
    ("setitem_list", lambda t, a: _set(a, ([0, 1], [2, 0]), 7.0), "A", ""),
    ("setitem_cast", lambda t, i: _set(i, 0, 2.7), "I", ""),
    ("setitem_chained", lambda t, a: _chained(a), "A", ""),
    # -- dtype conversions
    ("float_long", lambda t, a, i: (a.long(), i.float(), a.int(), i.bool(), a.half()),
     "A I", ""),
    ("double_bf16", lambda t, a: (a.double(), a.bfloat16().float()), "A", ""),
    ("to_dtype", lambda t, a, i: (a.to(t.float16), i.to(dtype=t.float32), a.to(i)),
     "A I", ""),
    ("to_device", lambda t, a: a.to("cpu", t.int32), "A", "e"),
    ("type_as", lambda t, a, i: (i.type_as(a), a.type_as(i)), "A I", ""),
    ("byte_char_short", lambda t, j: (j.byte(), j.char(), j.short()), "J", ""),
    ("to_dense_and_lazy_bits", lambda t, a: (a.to_dense(), a.to_dense(t.float64),
                                             a.resolve_conj(), a.resolve_neg()), "A", ""),
    ("lazy_bits_flags", lambda t, a: (a.is_conj(), a.is_neg(), a.is_sparse,
                                      a.neg().is_neg()), "A", "e"),
    ("complex_methods", lambda t, x: _complex(t.view_as_complex(x.reshape(2, 3, 2, 2))), "X", ""),
    ("legacy_type_method", lambda t, a, i: (a.type(t.DoubleTensor), i.type(t.ByteTensor),
                                            i.type(t.FloatTensor), a.type("torch.LongTensor")),
     "A I", ""),
    ("type_names", lambda t, a, i: (a.type(), i.type(), a.type(t.int32).dtype), "A I", "e"),
    ("item", lambda t, s, i: (s.item(), i[0, 0].item(), s.bool().item()), "S I", "e"),
    ("tolist", lambda t, a, i: (i.tolist(), a[0, :1].tolist()), "A I", "e"),
    ("clone_detach", lambda t, a: (a.clone(), a.detach(), a.detach().clone()), "A", ""),
    ("new_factories", lambda t, a, i: (a.new_zeros(2, 2), a.new_ones((3,)),
                                       i.new_full((2,), 7), a.new_tensor([1, 2]),
                                       i.new_empty(2).shape), "A I", ""),
    # -- elementwise math
    ("arith", lambda t, a, b: (a + b, a - b, a * b, a / b, -a, a**2, 2**a, abs(a)),
     "A B", ""),
    ("arith_scalar", lambda t, a: (a + 1, 1 - a, a * 2.5, 3 / a, a // 0.7, a % 0.7), "A", ""),
    ("int_arith", lambda t, i, j: (i + j, i * 2, i // j, i % j, i / j, i**2, -i), "I J", ""),
    ("int_float_promote", lambda t, i, a: (i + a, i * 1.5, i + True), "I A", ""),
    ("zero_dim_promote", lambda t, h, s, i: (h * s, i * s, h + t.tensor(2.0)), "H S I", ""),
    # numpy number scalars (np.random.beta's lam) are Python numbers to torch: half stays half
    ("numpy_scalar_does_not_promote", lambda t, h, i: (
        h * np.float64(0.3), np.float32(2) * h, h + np.int64(2), i * np.float64(1.5),
        h.add(h, alpha=np.int64(2)), h.masked_fill(h > 0, np.float64(3)),
        t.where(h > 0, h, np.float64(0)), h.clamp(np.float64(0), np.float64(0.5)),
        h ** np.float64(2), h.lerp(h * 2, np.float64(0.25)),
        i.to(t.int8) + np.int64(300)), "H I", ""),
    ("bool_ops", lambda t, m, r: (m & m, m | ~m, m ^ m, ~m), "M R", ""),
    ("bitwise_int", lambda t, i, j: (i & j, i | j, i ^ j, ~i, j << 1, j >> 1), "I J", ""),
    ("add_alpha", lambda t, a, b: (a.add(b, alpha=2), a.sub(b, alpha=0.5), a.add(1)),
     "A B", ""),
    ("div_modes", lambda t, a, b, i, j: (a.div(b), a.div(b, rounding_mode="floor"),
                                         a.div(b, rounding_mode="trunc"),
                                         i.div(j, rounding_mode="trunc"),
                                         i.div(j, rounding_mode="floor"), i.div(j)),
     "A B I J", ""),
    ("unary_float", lambda t, p: (p.exp(), p.log(), p.sqrt(), p.rsqrt(), p.log2(), p.log10(),
                                  p.log1p(), p.expm1(), p.reciprocal(), p.square()), "P", ""),
    ("unary_trig", lambda t, u: (u.sin(), u.cos(), u.tan(), u.asin(), u.acos(), u.atan(),
                                 u.sinh(), u.cosh(), u.tanh(), u.atanh(), u.asinh()), "U", ""),
    ("unary_activ", lambda t, a: (a.sigmoid(), a.relu(), a.softmax(-1), a.log_softmax(1),
                                  a.softmax(dim=0), a.erf(), a.erfinv().nan_to_num()),
     "U", ""),
    ("unary_round", lambda t, a: (a.floor(), a.ceil(), a.round(), a.trunc(), a.frac(),
                                  a.sign(), a.sgn(), a.round(decimals=1)), "A", ""),
    ("unary_int", lambda t, i: (i.abs(), i.sign(), i.floor(), i.neg(), i.square(), i.exp()),
     "I", ""),
    ("pow", lambda t, a, p, i: (a.pow(2), p.pow(0.5), p.pow(a), i.pow(2), a.float_power(2)),
     "A P I", ""),
    ("clamp", lambda t, a, b: (a.clamp(-0.5, 0.5), a.clamp(min=0), a.clamp(max=0.1),
                               a.clip(-1, 1), a.clamp(min=b), a.clamp_min(0.2),
                               a.clamp_max(-0.2)), "A B", ""),
    ("clamp_int", lambda t, i: (i.clamp(-2, 2), i.clamp(min=0.5)), "I", ""),
    ("maximum", lambda t, a, b: (a.maximum(b), a.minimum(b), a.fmax(b), a.max(b), a.min(b)),
     "A B", ""),
    ("binary_misc", lambda t, a, b, p: (a.atan2(b), a.hypot(b), p.fmod(0.3), a.remainder(0.3),
                                        a.lerp(b, 0.3), a.addcmul(b, b, value=2),
                                        a.addcdiv(b, p, value=0.5), p.xlogy(p),
                                        a.logaddexp(b), a.copysign(b)), "A B P", ""),
    ("nan_checks", lambda t, n: (n.isnan(), n.isinf(), n.isfinite(), n.isposinf(),
                                 n.isneginf(), n.nan_to_num(), n.nan_to_num(0.0, 1.0, -1.0)),
     "N", ""),
    ("compare", lambda t, a, b: (a == b, a != b, a < b, a <= b, a > 0, a >= 0.5, a.eq(b),
                                 a.ne(0), a.lt(b), a.le(b), a.gt(b), a.ge(b)), "A B", ""),
    ("compare_none", lambda t, a: (a == None, a != None), "A", "e"),  # noqa: E711
    ("logical", lambda t, m, a: (m.logical_and(a > 0), m.logical_or(a > 0), m.logical_not(),
                                 m.logical_xor(a > 0)), "M A", ""),
    ("where_method", lambda t, a, b: a.where(a > 0, b), "A B", ""),
    ("masked_fill", lambda t, a, m: (a.masked_fill(m, 0.0), a.masked_fill(m, float("-inf")),
                                     a.masked_fill(t.tensor(True), 1.0)), "A M", ""),
    ("masked_fill_bcast", lambda t, x, r: x.masked_fill(r[:, None, None], -1.0), "X R", ""),
    ("masked_fill_tril", lambda t, c: c[:3, :3].masked_fill(
        t.tril(t.ones(3, 3)) == 0, float("-inf")).softmax(-1), "C", ""),
    ("isclose", lambda t, a, b: (a.isclose(a + 1e-9), a.isclose(b), a.allclose(a),
                                 a.equal(b)), "A B", "e"),
    ("matmul", lambda t, a, c, x, y, v: (a @ c, a.matmul(c), x @ y, x.bmm(y), a.mm(c),
                                         c.t().mv(v), v.dot(v), v.outer(v), v @ c),
     "A C X Y V", ""),
    ("matmul_bcast", lambda t, x, c: x.transpose(1, 2) @ c[:, :3].t().unsqueeze(0), "X C", ""),
    # -- reductions
    ("numpy_aliases", lambda t, a: (a.sum(axis=0), a.mean(axis=1, keepdims=True),
                                    a.max(axis=1), a.argmax(axis=1), a.softmax(axis=1),
                                    a.unsqueeze(axis=0), a.std(axis=1)), "A", ""),
    ("sum", lambda t, a: (a.sum(), a.sum(0), a.sum(dim=1, keepdim=True), a.sum((0, 2)),
                          a.sum(dim=[-1])), "X", ""),
    ("sum_int_bool", lambda t, i, m: (i.sum(), i.sum(0), m.sum(), m.sum(1),
                                      i.sum(dtype=t.float32)), "I M", ""),
    ("mean", lambda t, a: (a.mean(), a.mean(0), a.mean((1, 2), keepdim=True), a.mean(-1)),
     "X", ""),
    ("mean_int_dtype", lambda t, i: i.mean(dtype=t.float32), "I", ""),
    ("prod", lambda t, a, j: (a.prod(), a.prod(1), j.prod(), j.prod(0, keepdim=True)),
     "A J", ""),
    ("std_var", lambda t, a: (a.std(), a.var(), a.std(0), a.var(1, unbiased=False),
                              a.std(dim=-1, keepdim=True), a.var(correction=0),
                              a.std(1, False), a.var(False), a.std(dim=(0, 1), correction=2)),
     "X", ""),
    ("var_mean", lambda t, a: (t.var_mean(a, 1), t.std_mean(a, dim=0, unbiased=False)),
     "A", ""),
    ("max_min_full", lambda t, d: (d.max(), d.min(), d.amax(), d.amin(0)), "D", ""),
    ("max_dim", lambda t, d: (d.max(1), d.max(dim=0, keepdim=True), d.min(-1),
                              d.max(1).values, d.max(1)[1]), "D", ""),
    ("argmax", lambda t, d: (d.argmax(), d.argmax(1), d.argmin(0), d.argmax(1, keepdim=True),
                             d.argmin(dim=-1, keepdim=True)), "D", ""),
    ("aminmax", lambda t, d: tuple(d.aminmax(dim=1)), "D", ""),
    ("all_any", lambda t, m: (m.all(), m.any(), m.all(1), m.any(0, keepdim=True)), "M", ""),
    ("count_nonzero", lambda t, i: (i.count_nonzero(), i.count_nonzero(1)), "I", ""),
    ("logsumexp", lambda t, a: (a.logsumexp(1), a.logsumexp((0, 1)), a.logsumexp(-1, True)),
     "X", ""),
    ("norm", lambda t, a: (a.norm(), a.norm(dim=1), a.norm(p=1, dim=0), a.norm(2, -1, True),
                           a.norm(float("inf"), 1), a.norm(p="fro")), "A", ""),
    ("cumsum", lambda t, a, i, m: (a.cumsum(1), a.cumsum(dim=0), i.cumsum(1), m.cumsum(0),
                                   a.cumprod(1)), "A I M", ""),
    ("cummax", lambda t, d: (d.cummax(1), d.cummin(0)), "D", ""),
    ("sort", lambda t, d: (d.sort(), d.sort(0), d.sort(dim=1, descending=True),
                           d.sort(stable=True)), "D", ""),
    ("sort_ties", lambda t, x: (x.sort(stable=True),
                                x.sort(dim=1, descending=True, stable=True)), "T", ""),
    ("argsort", lambda t, d: (d.argsort(), d.argsort(0, descending=True)), "D", ""),
    ("topk", lambda t, d: (d.topk(2), d.topk(2, dim=0), d.topk(3, largest=False),
                           d.topk(1, 1, True, True)), "D", ""),
    ("kthvalue", lambda t, d: (d.kthvalue(2), d.kthvalue(1, 0, True)), "D", ""),
    ("median", lambda t, d: (d.median(), d.median(1), d.median(0, keepdim=True)), "D", ""),
    ("quantile", lambda t, d: (d.quantile(0.3), d.quantile(0.5, dim=1)), "D", ""),
    ("diff", lambda t, d: (d.diff(), d.diff(dim=0), d.diff(n=2)), "D", ""),
    ("trace", lambda t, c, j: (c.trace(), j[:, :2].trace()), "C J", ""),
    # -- gather / scatter / index
    ("gather", lambda t, a, k: (a.gather(1, k), a.gather(1, k[:, :2]), a.gather(0, k % 2)),
     "A K", ""),
    ("scatter", lambda t, a, k, b: (a.scatter(1, k[:, :1], b), a.scatter(1, k[:, :1], 9.0),
                                    t.zeros(2, 3).scatter_add(1, k, b)), "A K B", ""),
    ("scatter_reduce", lambda t, a, k, b: (a.scatter_reduce(1, k, b, "sum"),
                                           a.scatter_reduce(1, k, b, "amax"),
                                           a.scatter_reduce(1, k, b, "mean",
                                                            include_self=False),
                                           a.scatter_reduce(1, k, b, "prod")), "A K B", ""),
    ("index_select", lambda t, c, l: (c.index_select(0, l), c.index_select(1, l)), "C L", ""),
    ("index_add", lambda t, c, l, w: (c.index_add(0, l, w.expand(2, 4)),
                                      c.index_fill(1, l, -1.0),
                                      c.index_copy(0, l, w.expand(2, 4) * 2)), "C L W", ""),
    ("masked_select", lambda t, a, m: a.masked_select(m), "A M", "e"),
    ("masked_scatter", lambda t, a, m, c: a.masked_scatter(m, c), "A M C", ""),
    ("take", lambda t, a, k: (a.take(k), a.take_along_dim(k, 1)), "A K", ""),
    ("put_inplace", lambda t, a, k: (a.clone().put_(k.flatten()[:2], t.tensor([9.0, 8.0])),
                                     a.clone().put_(k.flatten()[:3] * 0, t.ones(3),
                                                    accumulate=True)), "A K", ""),
    ("nonzero", lambda t, i: (i.nonzero(), i.nonzero(as_tuple=True), i.argwhere()), "I", "e"),
    ("unique", lambda t, i: (i.unique(), i.unique(return_counts=True),
                             i.unique(return_inverse=True)), "I", "e"),
    ("repeat_interleave", lambda t, a: (a.repeat_interleave(2),
                                        a.repeat_interleave(2, dim=1)), "A", ""),
    ("repeat_interleave_tensor", lambda t, a, l: a.repeat_interleave(l, dim=0), "A L", "e"),
    ("bincount", lambda t, j: j.flatten().bincount(), "J", "e"),
    ("index_add_inplace", lambda t, c, l, w: (c.clone().index_add_(0, l, w.expand(2, 4), alpha=2),
                                              c.clone().index_add_(1, t.tensor([0, 0, 3]),
                                                                   c[:, :3]),
                                              c.clone().scatter_(1, l.expand(3, 2), c[:, :2],
                                                                 reduce="add"),
                                              c.clone().scatter_add_(0, l.expand(1, 2), c[:1])),
     "C L W", ""),
    ("index_reduce", lambda t, c, l, w: (c.index_reduce(0, l, w.expand(2, 4), "prod"),
                                         c.index_reduce(0, l * 0, w.expand(2, 4), "mean"),
                                         c.index_reduce(1, l, c[:, :2], "amax",
                                                        include_self=False),
                                         c.index_reduce(0, l, -c[:2], "amin")), "C L W", ""),
    ("repeat_interleave_counts", lambda t, a: (a.repeat_interleave(t.tensor([2]), dim=0),
                                               a.repeat_interleave(t.tensor(2), dim=1)),
     "A", "e"),  # tensor repeats: the length is data-dependent without output_size
    ("repeat_interleave_output_size", lambda t, a, l: (
        a.repeat_interleave(l, dim=0, output_size=2),
        a.repeat_interleave(l + 1, dim=0, output_size=4)), "A L", ""),
    ("diag", lambda t, v, c: (v.diag(), c.diag(), c.diag(1), v.diag(-1)), "V C", ""),
    # -- in-place
    ("inplace_arith", lambda t, a, b: (a.add_(b), a.mul_(2), a.sub_(b, alpha=2), a.div_(4),
                                       a.clamp_(-0.2, 0.2), a.pow_(2), a.neg_()), "A B", ""),
    ("inplace_returns_self", lambda t, a: a.add_(1) is a and a.zero_() is a, "A", "e"),
    ("inplace_ops", lambda t, a, b: (a.clone().exp_(), a.clone().abs_().sqrt_(),
                                     a.clone().masked_fill_(a > 0, 0.0),
                                     a.clone().fill_(3), a.clone().zero_(),
                                     a.clone().copy_(b), a.clone().copy_(b[0]),
                                     a.clone().sigmoid_(), a.clone().tanh_(),
                                     a.clone().relu_(), a.clone().floor_()), "A B", ""),
    ("inplace_iadd", lambda t, a, b: _iops(a, b), "A B", ""),
    ("inplace_int", lambda t, i: (i.add_(2), i.mul_(3), i.clamp_(max=4), i.fill_(1.9)),
     "I", ""),
    ("inplace_scatter", lambda t, a, k, b: (a.clone().scatter_(1, k, b),
                                            a.clone().scatter_(1, k, 0.5),
                                            a.clone().scatter_add_(1, k, b),
                                            a.clone().index_fill_(1, k[0, :2], 0.0),
                                            t.zeros(5).index_add_(0, k[0], b[0])),
     "A K B", ""),
    ("inplace_compare", lambda t, a, b: a.clone().lt_(b), "A B", ""),
    ("inplace_tril", lambda t, c: (c.clone().tril_(), c.clone().triu_(1)), "C", ""),
    # -- views write through, as torch's shared storage
    ("view_write_through", lambda t, a: _through(a, lambda x: x.view(-1)[2].fill_(9)), "A", ""),
    ("transpose_write_through", lambda t, a: _through(a, lambda x: x.t()[1].zero_()), "A", ""),
    ("slice_write_through", lambda t, a: _through(a, lambda x: x[:, 1:].mul_(10)), "A", ""),
    ("setitem_on_view", lambda t, a: _through(a, lambda x: x[0].__setitem__(1, -7.0)),
     "A", ""),
    ("select_write_through", lambda t, a: _through(a, lambda x: x.select(2, 1).add_(1)),
     "X", ""),
    ("split_write_through", lambda t, d: _through(d, lambda x: x.split(2, 1)[1].fill_(0)),
     "D", ""),
    ("unbind_write_through", lambda t, a: _through(a, lambda x: [r.mul_(2) for r in x]),
     "A", ""),
    ("diag_write_through", lambda t, c: _through(c, lambda x: x.diagonal().fill_(5)), "C", ""),
    ("detach_write_through", lambda t, a: _through(a, lambda x: x.detach().add_(1)), "A", ""),
    ("data_write_through", lambda t, a: _through(a, lambda x: x.data.mul_(3)), "A", ""),
    ("unfold_write_through", lambda t, d: _through(
        d, lambda x: x.unfold(1, 2, 2)[:, :, 0].fill_(7)), "D", ""),
    ("view_of_view_write", lambda t, a: _through(
        a, lambda x: x.t().unsqueeze(0)[0, 2].fill_(1)), "A", ""),
    ("base_write_seen", lambda t, a: _seen(a), "A", ""),
    ("contiguous_copies", lambda t, a: _through(a, lambda x: x.t().contiguous().zero_()),
     "A", ""),
    ("reshape_copy_nonview", lambda t, a: _through(a, lambda x: x.t().reshape(-1).zero_()),
     "A", ""),
    ("float_is_alias", lambda t, a: _through(a, lambda x: x.float().add_(1)), "A", ""),
    ("clone_is_copy", lambda t, a: _through(a, lambda x: x.clone().add_(1)), "A", ""),
    ("advanced_index_is_copy", lambda t, a: _through(a, lambda x: x[[0]].add_(1)), "A", ""),
    ("iterate_rows", lambda t, a: [r.sum() for r in a], "A", ""),
    # -- the less common ones (jaxmod/_tensor/methods_more.py)
    ("addmm_", lambda t, a, c, x: a.clone().addmm_(a, c[:, :3], beta=0.5), "A C X", ""),
    ("baddbmm_", lambda t, x, y: t.zeros(2, 3, 5).baddbmm_(x, y, alpha=2), "X Y", ""),
    ("addr_", lambda t, a, v, w: a[:, :3].clone().addr_(v[:2], v), "A V W", ""),
    ("cumprod_", lambda t, a: a.clone().cumprod_(1), "A", ""),
    ("renorm_", lambda t, a: a.clone().renorm_(2, 0, 1.0), "A", ""),
    ("gcd_lcm_", lambda t, i, j: (i.clone().gcd_(j), j.clone().lcm_(j + 1)), "I J", ""),
    ("igamma", lambda t, p, a: (p.igamma(a.abs()), p.igammac(a.abs()),
                                p.clone().igamma_(p)), "P A", ""),
    ("hardshrink", lambda t, a: (a.hardshrink(), a.hardshrink(0.8)), "A", ""),
    ("prelu", lambda t, x: x.prelu(t.tensor([0.1, 0.2, 0.3])), "X", ""),
    ("shape_inplace", lambda t, a: (a.clone().unsqueeze_(0), a.clone().t_(),
                                    a.clone().unsqueeze_(1).squeeze_(1),
                                    a.clone().transpose_(0, 1), a.clone().swapaxes_(0, 1)),
     "A", ""),
    ("fill_diagonal_", lambda t: (t.zeros(3, 4).fill_diagonal_(2.0),
                                  t.zeros(7, 3).fill_diagonal_(5.0, wrap=True),
                                  t.zeros(7, 3).fill_diagonal_(5.0),
                                  t.zeros(3, 3, 3).fill_diagonal_(1.0)), "", ""),
    ("fill_diagonal_unequal", lambda t: t.zeros(2, 3, 4).fill_diagonal_(1.0), "", "ex"),
    ("new", lambda t, a, i: (a.new(2, 3).shape, a.new([1, 2]), i.new([1, 2]), a.new().shape),
     "A I", "e"),
    ("predicates", lambda t, a: (a.is_mps, a.is_xpu, a.is_nested, a.is_quantized,
                                 a.is_pinned(), a.is_shared(), a.is_inference(),
                                 a[0, 0].is_nonzero()), "A", "e"),
    ("is_nonzero_errors", lambda t, a: a.is_nonzero(), "A", "ex"),
    ("data_ptr", lambda t, a: (a[0].data_ptr() == a.data_ptr(),
                               a[1].data_ptr() == a.data_ptr(),
                               a.t().data_ptr() == a.data_ptr(),
                               a.clone().data_ptr() == a.data_ptr()), "A", "e"),
    ("sum_to_size", lambda t, x: (x.sum_to_size(1, 3, 1), x.sum_to_size(3, 4),
                                  x.sum_to_size((2, 1, 4))), "X", ""),
    ("sum_to_size_bad", lambda t, x: x.sum_to_size(5), "X", "ex"),
    ("narrow_copy_unsafe", lambda t, d: (d.narrow_copy(1, 1, 2), d.unsafe_chunk(2, 1),
                                         d.unsafe_split(2, 1)), "D", ""),
    ("cholesky", lambda t, p: ((p @ p.t() + t.eye(2)).cholesky(),
                               (p @ p.t() + t.eye(2)).cholesky(upper=True)), "P", ""),
]
# fmt: on


def _set(x, idx, v):
    x[idx] = v
    return x


def _chained(x):
    x[0][1] = 4.0
    x[1][:2] = x[0][:2]
    return x


def _iops(a, b):
    a += b
    a *= 2
    a -= 1
    a /= 3
    c = a
    c += 1  # in place: a changes too
    return a, c


def _complex(z):
    """A complex tensor's methods (torch's conj() is lazy; the comparison resolves it)."""
    return (
        z.real,
        z.imag,
        z.abs(),
        z.angle(),
        z.conj(),
        (z * z.conj()).real,
        z.exp(),
        z.sum(-1),
        z.reshape(-1),
        z.transpose(0, 1),
        z.to("cpu"),
    )


def _through(x, fn):
    fn(x)
    return x


def _seen(x):
    v = x[0]
    t = x.t()
    x.mul_(2)
    return v, t, v + 1


# each case eagerly; the cases in groups under one jaxmod.jit each
test_method_matches_torch, test_methods_match_torch_under_jit = parity_tests(CASES)


def test_shape_changing_inplace_on_a_view_raises_naming_the_rebind():
    import pytest

    import jaxmod

    x = jaxmod.ones(2, 3)
    with pytest.raises(RuntimeError, match=r"rebind instead: x = x.unsqueeze\(...\)"):
        x[0].unsqueeze_(0)
    assert x.shape == (2, 3)


def test_array_attributes_torch_has_no_name_for_are_forwarded():
    # jaxlib's own methods (nanobind-bound, without __qualname__) are forwarded too
    t = jaxmod.ones(3)
    assert t.is_deleted() is False
    assert isinstance(t.unsafe_buffer_pointer(), int)
    assert jaxmod.is_tensor(t.astype(jnp.int32)) and t.astype(jnp.int32).dtype == jnp.int32


NUMPY_UFUNCS = [
    ("exp", lambda a: np.exp(a)), ("sqrt_abs", lambda a: np.sqrt(np.abs(a))),
    ("signbit", lambda a: np.signbit(a)), ("isnan", lambda a: np.isnan(a)),
    ("maximum", lambda a: np.maximum(a, 0.5)), ("ndarray_mul", lambda a: a * np.ones(3)),
    ("scalar_mul", lambda a: np.float32(2) * a), ("round", lambda a: np.round(a, 1)),
    ("add_reduce", lambda a: np.add.reduce(a)), ("allclose", lambda a: np.allclose(a, a)),
    ("mean_of_list", lambda a: np.mean([a[0], a[1]])),
]  # fmt: skip


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # torch's __array_wrap__ signature
@pytest.mark.parametrize("name, call", NUMPY_UFUNCS, ids=[n for n, _ in NUMPY_UFUNCS])
def test_numpy_ufuncs_on_tensors_give_torchs_values(name, call):
    values = [1.25, -2.0, 3.5]
    ours, theirs = call(jaxmod.tensor(values)), call(torch.tensor(values))
    assert isinstance(ours, jaxmod.Tensor) == isinstance(theirs, torch.Tensor), type(ours)
    # torch's __array_wrap__ turns bool results into uint8; jaxmod keeps numpy's bool
    np.testing.assert_allclose(np.asarray(ours, float), np.asarray(theirs, float), rtol=1e-6)


def test_numpy_ufunc_on_a_tensor_needing_grad_refuses_like_torch_and_operators_keep_grad():
    def refusal(lib):
        with pytest.raises(RuntimeError) as e:
            np.exp(lib.ones(2, requires_grad=True) * 2)
        return str(e.value)

    assert refusal(jaxmod) == refusal(torch)
    x = jaxmod.ones(2, requires_grad=True)
    (np.array([1.0, 3.0], np.float32) * (x * 2)).sum().backward()
    assert x.grad.tolist() == [2.0, 6.0]
