"""The torch function namespace on jaxmod against torch 2.13: functions (and the type rule:
``jax.Array`` inputs give ``jax.Array`` outputs), factories, random draws, dtypes, devices."""

from __future__ import annotations

import pickle

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

import jaxmod
import jaxmod.nn as nn
from tests._tensor_parity import parity_tests

# fmt: off
CASES = [
    # -- joining and reshaping
    ("cat", lambda t, a, b: (t.cat([a, b]), t.cat((a, b), dim=1), t.cat([a, b], -1),
                             t.concat([a, b]), t.concatenate([a, b], 1)), "A B", "f"),
    ("stack", lambda t, a, b: (t.stack([a, b]), t.stack([a, b], dim=2), t.stack((a, b), -1)),
     "A B", "f"),
    ("hvd_stack", lambda t, a, b, v: (t.hstack([a, b]), t.vstack([a, b]), t.dstack([a, b]),
                                      t.column_stack([v, v]), t.vstack([v, v])),
     "A B V", "f"),
    ("split_chunk", lambda t, d: (t.split(d, 2, 1), t.chunk(d, 2), t.split(d, [2, 3], dim=1),
                                  t.unbind(d, 1), t.tensor_split(d, 2, dim=1)), "D", "f"),
    ("flatten", lambda t, x: (t.flatten(x), t.flatten(x, 1), t.flatten(x, 0, 1)), "X", "f"),
    ("reshape_fns", lambda t, x: (t.reshape(x, (4, -1)), t.permute(x, (2, 0, 1)),
                                  t.transpose(x, 0, 1), t.swapaxes(x, 1, 2),
                                  t.movedim(x, 0, 2), t.unsqueeze(x, 1), t.squeeze(x[:1]),
                                  t.squeeze(x[:1], 0), t.narrow(x, 2, 1, 2),
                                  t.select(x, 1, 0), t.t(x[0]), t.ravel(x),
                                  t.unflatten(x, 2, (2, 2)), t.broadcast_to(x[0, 0], (2, 4)),
                                  t.tile(x[0], (2,))), "X", "f"),
    ("tril_triu", lambda t, c: (t.tril(c), t.triu(c, 1), t.tril(c, diagonal=-1)), "C", "f"),
    ("flip_roll", lambda t, x: (t.flip(x, [0, 2]), t.flip(x, dims=[-1]), t.roll(x, 1, 2),
                                t.roll(x, shifts=(1, 2), dims=(0, 1)),
                                t.rot90(x[0]), t.fliplr(x[0]), t.flipud(x[0])), "X", "f"),
    ("diag_fns", lambda t, c, v: (t.diag(v), t.diag(c, 1), t.diagonal(c), t.diag_embed(c),
                                  t.diagflat(v), t.block_diag(c, v[None]), t.trace(c[:, :3])),
     "C V", "f"),
    ("meshgrid", lambda t, v, w: (t.meshgrid(v, w, indexing="ij"),
                                  t.meshgrid([v, w], indexing="xy"), t.cartesian_prod(v, w)),
     "V W", "f"),
    ("broadcast", lambda t, a, v: (t.broadcast_tensors(a, a[:1]),), "A V", "f"),
    ("atleast", lambda t, v, s: (t.atleast_1d(s), t.atleast_2d(v), t.atleast_3d(v)), "V S", "f"),
    # -- elementwise and comparisons
    ("unary", lambda t, p: (t.exp(p), t.log(p), t.sqrt(p), t.rsqrt(p), t.abs(-p), t.neg(p),
                            t.sigmoid(p), t.tanh(p), t.relu(p - 1), t.sin(p), t.floor(p),
                            t.square(p), t.erf(p), t.reciprocal(p), t.log1p(p), t.exp2(p),
                            t.sign(p - 1)), "P", "f"),
    ("binary", lambda t, a, b: (t.add(a, b), t.add(a, b, alpha=3), t.sub(a, 1), t.mul(a, b),
                                t.div(a, b), t.div(a, b, rounding_mode="floor"),
                                t.true_divide(a, b), t.floor_divide(a, b), t.pow(a, 2),
                                t.pow(2, a), t.remainder(a, 0.5), t.fmod(a, 0.5),
                                t.maximum(a, b), t.minimum(a, b), t.atan2(a, b),
                                t.rsub(a, b), t.hypot(a, b), t.lerp(a, b, 0.2)),
     "A B", "f"),
    ("compare", lambda t, a, b: (t.eq(a, b), t.ne(a, b), t.lt(a, 0), t.le(a, b), t.gt(a, b),
                                 t.ge(a, 0.2), t.isclose(a, b), t.greater(a, b),
                                 t.logical_and(a > 0, b > 0), t.logical_not(a > 0)),
     "A B", "f"),
    ("where", lambda t, a, b, m: (t.where(m, a, b), t.where(a > 0, a, 0.0),
                                  t.where(m, 1.0, b)), "A B M", "f"),
    ("clamp", lambda t, a: (t.clamp(a, -0.5, 0.5), t.clamp(a, min=0), t.clip(a, max=0.3)),
     "A", "f"),
    ("softmax", lambda t, a: (t.softmax(a, -1), t.softmax(a, dim=0), t.log_softmax(a, 1),
                              t.softmax(a, 1, dtype=t.float32)), "A", "f"),
    ("masked_fill", lambda t, a, m: t.masked_fill(a, m, -1.0), "A M", "f"),
    ("nan", lambda t, n: (t.isnan(n), t.isinf(n), t.isfinite(n), t.nan_to_num(n)), "N", "f"),
    ("int_ops", lambda t, i, j: (t.bitwise_and(i, j), t.bitwise_or(i, j), t.bitwise_not(i),
                                 t.bitwise_xor(i, j), t.abs(i)), "I J", "f"),
    # -- reductions and sorting
    ("reduce", lambda t, x: (t.sum(x), t.sum(x, 1), t.sum(x, dim=(0, 2), keepdim=True),
                             t.mean(x, -1), t.prod(x, 0), t.std(x, 1), t.var(x),
                             t.var(x, 1, unbiased=False), t.amax(x, (1, 2)), t.amin(x, 0),
                             t.logsumexp(x, 2), t.norm(x), t.norm(x, dim=1), t.cumsum(x, 2),
                             t.cumprod(x, 1), t.all(x > -9), t.any(x > 1, 1),
                             t.count_nonzero(x > 0)), "X", "f"),
    ("max_min", lambda t, d: (t.max(d), t.max(d, 1), t.max(d, dim=0, keepdim=True),
                              t.min(d, 1), t.max(d, d * 0), t.argmax(d), t.argmax(d, 1),
                              t.argmin(d, dim=0, keepdim=True)), "D", "f"),
    ("sort", lambda t, d: (t.sort(d), t.sort(d, 0, descending=True), t.argsort(d, 1),
                           t.topk(d, 2), t.topk(d, 2, dim=0, largest=False),
                           t.kthvalue(d, 2, 1), t.median(d), t.median(d, 1),
                           t.msort(d), t.quantile(d, 0.25), t.cummax(d, 1)), "D", "f"),
    # ranks on exact halves: torch rounds them half to even for "nearest"
    ("quantile_modes", lambda t, d: tuple(
        f(d, q, **kw, interpolation=m)
        for m in ("nearest", "linear", "lower", "higher", "midpoint")
        for f in (t.quantile, t.nanquantile)
        for q, kw in ((0.5, {}), (0.25, {"dim": 1}), (0.875, {"dim": 1}),
                      (0.5, {"dim": 0, "keepdim": True}))), "D", "f"),
    ("searchsorted", lambda t, d, v: (t.searchsorted(t.sort(d).values, d),
                                      t.bucketize(v, t.tensor([-1.0, 0.0, 1.0])),
                                      t.searchsorted(t.tensor([0.0, 1.0]), v, right=True)),
     "D V", ""),
    # -- indexing
    ("gather_scatter", lambda t, a, k, b: (t.gather(a, 1, k), t.scatter(a, 1, k[:, :1], b),
                                           t.scatter_add(a, 1, k, b),
                                           t.scatter(a, 1, k[:, :1], 2.0),
                                           t.scatter_reduce(a, 1, k, b, "amin"),
                                           t.take_along_dim(a, k, 1)), "A K B", "f"),
    ("index", lambda t, c, l, w: (t.index_select(c, 0, l), t.index_select(c, 1, l),
                                  t.index_add(c, 0, l, t.broadcast_to(w, (2, 4))), t.take(c, l)),
     "C L W", "f"),
    ("masked_select", lambda t, a, m: t.masked_select(a, m), "A M", "fe"),
    ("nonzero", lambda t, i: (t.nonzero(i), t.nonzero(i, as_tuple=True), t.argwhere(i),
                              t.where(i > 0)), "I", "fe"),
    ("unique", lambda t, i: (t.unique(i), t.unique(i, return_counts=True),
                             t.unique_consecutive(t.sort(i.flatten()).values)), "I", "fe"),
    ("bincount", lambda t, j: (t.bincount(j.flatten()), t.bincount(j.flatten(), minlength=6)),
     "J", "fe"),
    # torch's bins: floor((x - min) * bins / (max - min)) in the input's dtype, so a value on
    # an inner edge (1.0 of linspace(-2, 3, 11), 5 bins) is counted above it, not below
    ("histc_values_on_edges", lambda t: (lambda x: (
        t.histc(x, bins=5, min=-2, max=3), t.histc(x, bins=4), t.histc(x, 3, min=-1, max=1),
        t.histc(t.ones(3), 4, min=1, max=1), t.histc(t.tensor([1.0, 1.4, 1.9]), 4, min=2, max=2),
        t.histc(t.tensor([]), 2), x.histc(6)))(t.linspace(-2, 3, 11)), "", ""),
    ("histogram", lambda t: (lambda x: (
        t.histogram(x, bins=4), t.histogram(x, 5, range=(-2.0, 3.0)), x.histogram(3),
        t.histogram(x, t.tensor([-2.0, 0.0, 0.5, 3.0]), weight=x.abs(), density=True),
        t.histogram(t.ones(3), 4, range=(1.0, 1.0)), t.histogram(t.full((2,), 5.0), 2),
        t.histogram(t.tensor([]), 2), t.histogram(x, 4, density=True).hist))(
            t.linspace(-2, 3, 11)), "", ""),
    ("repeat_interleave", lambda t, a, l: (t.repeat_interleave(a, 2, dim=0),
                                           t.repeat_interleave(l)), "A L", "fe"),
    ("scatter_forms", lambda t, a, k, b, c: (
        t.scatter(a, 1, k[:, :2], c),  # src larger than index: its leading block is used
        t.scatter(a, 1, k, b, reduce="add"), t.scatter(a, 1, k, b, reduce="multiply"),
        t.scatter(a > 0, 1, k[:, :1], True), t.scatter_add(a, 0, k % 2, b),
        t.scatter_add(k * 0, 1, k, k)), "A K B C", "f"),
    ("index_add_forms", lambda t, c, l, w, j: (
        t.index_add(c, 0, l * 0 + 1, t.stack([w, w])),  # repeated indices add up
        t.index_add(c, 1, l, c[:, :2], alpha=-0.5), t.index_add(c, 0, l[0], c[:1]),
        t.index_add(j, 1, l, j[:, :2], alpha=2)), "C L W J", "f"),
    ("repeat_interleave_forms", lambda t, a, l, j: (
        t.repeat_interleave(a, t.tensor([2]), dim=1), t.repeat_interleave(a, t.tensor(3)),
        t.repeat_interleave(a, 0, dim=0), t.repeat_interleave(j, 2, dim=-1),
        t.repeat_interleave(a, 2, dim=0, output_size=4),
        t.repeat_interleave(a, t.tensor([1, 2], dtype=t.int32), dim=0)), "A L J", "e"),
    ("repeat_interleave_output_size", lambda t, a, l: (
        t.repeat_interleave(a, l, dim=0, output_size=2),
        t.repeat_interleave(l, output_size=2), t.repeat_interleave(a, l + 1, dim=0,
                                                                    output_size=4)),
     "A L", ""),  # output_size= makes the tensor-repeats forms traceable
    # -- sparse COO tensors (compared through to_dense(); their own API below)
    ("sparse_coo_tensor", lambda t, k, v, a, l: (
        t.sparse_coo_tensor(k, v, (3, 2)).to_dense(),
        t.sparse_coo_tensor(t.cat([k, k], 1), t.cat([v, v * 2]), (3, 2)).to_dense(),
        t.sparse_coo_tensor(k, v, [4, 3], dtype=t.float64).to_dense(),
        t.sparse_coo_tensor(k, v.long(), (3, 2)).to_dense(),
        t.sparse_coo_tensor(k, v > 0, (3, 2)).to_dense(),
        t.sparse_coo_tensor(k.float(), v, (3, 2)).to_dense(),  # torch casts the indices
        t.sparse_coo_tensor(l[None], a, (3, 3)).to_dense(),  # hybrid: dense rows
        t.sparse_coo_tensor(k[:, :1], v[0], (3, 2)).to_dense(),  # 0-d values, nnz 1
        t.sparse_coo_tensor(k[:, :0], v[:0], (2, 2)).to_dense()),
     "K V A L", ""),
    # graph code reads the COO form back: coalesce().indices() / values() / _nnz() (repeated
    # indices summed, row-major order; the gradient of values() reaches the dense input)
    ("sparse_coo_coalesced_accessors", lambda t, k, v: (lambda s: (
        s.indices(), s.values(), s._indices(), s._values(), s._nnz(), s.is_coalesced(),
        s.sparse_dim(), s.dense_dim()))(
            t.sparse_coo_tensor(t.cat([k, k], 1), t.cat([v, v * 2]), (3, 2)).coalesce()),
     "K V", "e"),
    ("sparse_coo_tensor_shape_from_indices", lambda t, k, v, l, a: (
        t.sparse_coo_tensor(k, v).to_dense(), t.sparse_coo_tensor(l[None], a).to_dense(),
        t.sparse_coo_tensor(k.tolist(), v.tolist()).to_dense(),
        t.sparse_coo_tensor(k[:, :0], v[:0]).to_dense()), "K V L A", "e"),
    ("sparse_mm", lambda t, k, v, a, c: (
        t.sparse.mm(t.sparse_coo_tensor(k, v, (3, 2)), a),
        t.spmm(t.sparse_coo_tensor(k, v, (3, 2)), a),
        t.mm(t.sparse_coo_tensor(k, v, (3, 2)), a), t.sparse_coo_tensor(k, v, (3, 2)) @ a,
        t.sparse.mm(a, c), t.sparse.addmm(c[:, :3], t.sparse_coo_tensor(k, v, (3, 2)), a,
                                          beta=0.5, alpha=2.0),
        t.sparse.sum(t.sparse_coo_tensor(k, v, (3, 2))),
        t.sparse.sum(t.sparse_coo_tensor(k, v, (3, 2)), 1).to_dense(),
        t.sparse.sum(t.sparse_coo_tensor(k, v, (3, 2)), dim=0).to_dense()), "K V A C", ""),
    # -- complex numbers
    ("complex_views", lambda t, x, c: (
        t.view_as_complex(x.reshape(2, 3, 2, 2)), t.view_as_complex(t.stack([c, -c], -1)),
        t.view_as_real(t.view_as_complex(x.reshape(2, 3, 2, 2))),
        t.view_as_complex(x[:, :, :2]),  # strides (12, 4, 1): even, last 1
        t.view_as_complex(t.arange(10.0).view(5, 2)[1:]),  # storage offset 2
        t.view_as_real(t.view_as_complex(x.reshape(2, 3, 2, 2)).conj().resolve_conj())),
     "X C", ""),
    ("complex_polar", lambda t, a, b, p, v: (
        t.complex(a, b), t.complex(a, b[0]), t.complex(v, v[0]), t.polar(p, a),
        t.polar(p[0], a), t.polar(v * 0 + 1, v),
        t.view_as_real(t.view_as_complex(t.stack([a, b], -1)) * t.polar(p, a))),
     "A B P V", "f"),
    # -- products
    ("matmul", lambda t, a, c, x, y, v: (t.matmul(a, c), t.mm(a, c), t.bmm(x, y),
                                         t.matmul(x, y), t.mv(t.t(c), v), t.dot(v, v),
                                         t.outer(v, v), t.matmul(v, c), t.inner(a, a),
                                         t.kron(a, a), t.tensordot(a, c, 1),
                                         t.addmm(c[:2], a, c), t.baddbmm(x @ y, x, y, alpha=0.5),
                                         t.cross(t.t(c[:, :3]), t.t(c[:, 1:]), dim=1)),
     "A C X Y V", "f"),
    ("einsum", lambda t, a, c, x: (t.einsum("ij,jk->ik", a, c), t.einsum("bij->bji", x),
                                   t.einsum("ij,ij->", [a, a]), t.einsum("...j,jk", a, c)),
     "A C X", "f"),
    ("cdist", lambda t, a, b: (t.cdist(a, b), t.cdist(a, b, p=1)), "A B", "f"),
    ("gradient", lambda t, c, v: (t.gradient(c), t.gradient(c, dim=1), t.gradient(v, spacing=2.0),
                                  t.gradient(v, spacing=(t.tensor([0.0, 1.0, 3.0]),)),
                                  t.gradient(c, spacing=[1.0, 0.5])), "C V", ""),
    ("numel", lambda t, a: (t.numel(a), t.is_tensor(a), t.is_floating_point(a),
                            t.is_nonzero(a[0, 0] * 0 + 1)), "A", "e"),
    ("extra", lambda t, c, v, w, j: (t.addr(c, v, w), t.dist(v, v * 2), t.cov(c),
                                     t.corrcoef(c), t.isin(j, j[0]),
                                     t.gcd(j, j + 2), t.lcm(j, j + 1), t.hsplit(c, 2),
                                     t.vsplit(c, [1]), t.select_scatter(c, w, 0, 1),
                                     t.slice_scatter(c, c[:, :2] * 0, 1, 0, 2),
                                     t.diagonal_scatter(c, v), t.trapezoid(c),
                                     t.cumulative_trapezoid(c), t.vander(v),
                                     t.renorm(c, 2, 0, 1.0), t.view_as_real(t.view_as_complex(
                                         t.stack([c, c], -1)))), "C V W J", "f"),
    ("matrix", lambda t, c: (t.det(c[:, :3]), t.inverse(c[:, :3] + 3 * t.eye(3)),
                             t.slogdet(c[:, :3]), t.logdet(c[:, :3] @ c[:, :3].mT + t.eye(3)),
                             t.matrix_power(c[:, :3], 3), t.matrix_exp(c[:, :3] * 0.1),
                             t.pinverse(c), t.chain_matmul(c, c.t(), c)), "C", ""),
    ("linalg", lambda t, c, v: (t.linalg.norm(c), t.linalg.norm(v, 1), t.linalg.vector_norm(c),
                                t.linalg.vector_norm(c, 3, dim=1), t.linalg.matrix_norm(c),
                                t.linalg.matrix_norm(c, "nuc"), t.linalg.det(c[:, :3]),
                                t.linalg.inv(c[:, :3] + 3 * t.eye(3)),
                                t.linalg.solve(c[:, :3] + 3 * t.eye(3), v),
                                t.linalg.svdvals(c), t.linalg.eigvalsh(c @ c.t()),
                                t.linalg.cholesky(c @ c.t() + t.eye(3)),
                                t.linalg.multi_dot([c, c.t(), c]),
                                t.linalg.cross(c[:, :3], c[:, 1:]),
                                t.linalg.slogdet(c[:, :3]).logabsdet,
                                t.linalg.matrix_rank(c), t.linalg.vecdot(c, c)), "C V", ""),
    ("fft", lambda t, c, x: (t.fft.fft(c), t.fft.ifft(c, dim=0), t.fft.rfft(c), t.fft.irfft(
        t.fft.rfft(c)), t.fft.fft2(x), t.fft.rfftn(x), t.fft.fftshift(c), t.fft.ifftshift(
        c, dim=1), t.fft.fftfreq(5), t.fft.rfftfreq(6, 0.5), t.fft.fftn(x, dim=(0, 2)),
                             t.fft.fft(c, n=6, norm="ortho")), "C X", ""),
    ("windows", lambda t: (t.hann_window(5), t.hamming_window(6, periodic=False),
                           t.blackman_window(4), t.bartlett_window(5), t.kaiser_window(6)),
     "", ""),
    ("inplace_functions", lambda t, a: (t.relu_(a.clone()), t.exp_(a.clone()),
                                        t.zero_(a.clone()), t.fill_(a.clone(), 2.0)), "A", ""),
    ("nn_aliases", lambda t, x, c: (t.dropout(x, 0.0, True), t.layer_norm(x, (4,)),
                                    t.conv1d(x, c[:, None, :3].repeat(1, 3, 1)),
                                    t.max_pool1d(x, 2), t.avg_pool1d(x, 2), t.selu(x),
                                    t.cosine_similarity(x, x + 1), t.pixel_shuffle(
                                        x.reshape(1, 4, 2, 3), 2)), "X C", ""),
    # -- factories (always Tensors)
    ("tensor", lambda t: (t.tensor([1, 2]), t.tensor([1.0, 2]), t.tensor(3.5), t.tensor(True),
                          t.tensor([[1, 2], [3, 4]], dtype=t.float32), t.tensor([]),
                          t.tensor(np.arange(3)), t.tensor(np.ones(2, np.float32)),
                          t.tensor([t.tensor(1.0), t.tensor(2.0)]), t.tensor(7, dtype=t.uint8)),
     "", ""),
    ("as_tensor", lambda t, a: (t.as_tensor([1, 2]), t.as_tensor(a), t.from_numpy(
        np.arange(4, dtype=np.int32)), t.as_tensor(np.arange(3.0), dtype=t.float32)), "A", ""),
    ("zeros_ones", lambda t: (t.zeros(2, 3), t.zeros((2, 3)), t.zeros([4]), t.ones(2, 1),
                              t.zeros(2, dtype=t.long), t.ones(3, dtype=t.bool),
                              t.empty(2, 3).shape, t.zeros(t.Size([2, 2])), t.zeros(())),
     "", ""),
    ("full", lambda t: (t.full((2, 3), 7), t.full((2,), 1.5), t.full((2,), True),
                        t.full([2, 2], -1.0, dtype=t.int32)), "", ""),
    ("like", lambda t, a, i: (t.zeros_like(a), t.ones_like(i), t.full_like(a, 3),
                              t.empty_like(i).shape, t.zeros_like(i, dtype=t.float32),
                              t.full_like(i, 2.7)), "A I", ""),
    ("arange", lambda t: (t.arange(5), t.arange(1, 4), t.arange(0, 1, 0.25), t.arange(5.0),
                          t.arange(10, 0, -3), t.arange(3, dtype=t.float32),
                          t.arange(2, dtype=t.long)), "", ""),
    ("arange_tensor_bound", lambda t: t.arange(t.tensor(4)), "", "e"),
    ("linspace", lambda t: (t.linspace(0, 1, 5), t.linspace(-2, 2, steps=7), t.linspace(0, 1, 1),
                            t.logspace(0, 2, 3), t.eye(3), t.eye(2, 3),
                            t.eye(2, dtype=t.int32)), "", ""),
    ("legacy_constructor", lambda t: (t.Tensor(2, 3).shape, t.Tensor([1, 2]),
                                      t.Tensor(t.Size([4])).shape), "", "e"),
    ("legacy_constructor_empty", lambda t: (t.Tensor().shape, t.Tensor(np.int64(2)).shape,
                                            t.Tensor(range(3)), t.Tensor(np.ones((2, 1)))),
     "", "e"),
    # -- legacy typed constructors (torch.FloatTensor...): sizes (torch leaves the memory
    #    uninitialised: shapes and dtypes only), data (values), isinstance and .type()
    ("legacy_typed_sizes", lambda t: [(c(2, 3).shape, c(2, 3).dtype, c.dtype) for c in (
        t.FloatTensor, t.DoubleTensor, t.HalfTensor, t.BFloat16Tensor, t.LongTensor,
        t.IntTensor, t.ShortTensor, t.CharTensor, t.ByteTensor, t.BoolTensor)] + [
        t.FloatTensor().shape, t.LongTensor(t.Size([2, 1])).shape, t.IntTensor(4).shape,
        t.FloatTensor(np.int64(3)).shape, t.FloatTensor(2, device="cpu").shape], "", "e"),
    ("legacy_typed_data", lambda t, a, i: (
        t.FloatTensor([1, 2]), t.LongTensor(range(4)), t.LongTensor([1.7, -2.7]),
        t.DoubleTensor([1, 2]), t.HalfTensor([0.5, 1.5]), t.BFloat16Tensor([1.5]),
        t.IntTensor((3, 4)), t.ShortTensor([[1], [2]]), t.CharTensor([-1, 7]),
        t.ByteTensor([1, 255]), t.BoolTensor([1, 0, 2]), t.FloatTensor(np.arange(3.0)),
        t.FloatTensor(a), t.LongTensor(i), t.FloatTensor([t.tensor(1.0), t.tensor(2.0)])),
     "A I", ""),
    ("legacy_typed_checks", lambda t, a, i, m: (
        isinstance(a, t.FloatTensor), isinstance(i, t.LongTensor), isinstance(m, t.BoolTensor),
        isinstance(a, t.LongTensor), isinstance(np.ones(2), t.FloatTensor),
        isinstance(t.LongTensor([1]), t.Tensor), i.type(t.FloatTensor), a.type(t.LongTensor),
        a.type("torch.IntTensor"), t.LongTensor([2]).type()), "A I M", "e"),
    ("numpy_aliases", lambda t, a: (t.cat([a, a], axis=1), t.sum(a, axis=0),
                                    t.mean(a, axis=1, keepdims=True)), "A", "f"),
    ("tri_indices", lambda t: (t.tril_indices(3, 3), t.triu_indices(3, 4, 1)), "", ""),
    # -- random draws (shapes and dtypes; values are jaxmod's own)
    ("random", lambda t: (t.rand(2, 3), t.randn((4,)), t.randint(10, (3,)),
                          t.randint(2, 5, (2, 2)), t.randperm(5), t.rand(2, dtype=t.float16),
                          t.randn(2, 2, dtype=t.float64), t.randint(0, 3, size=(2,))), "", "r"),
    ("random_like", lambda t, a, i: (t.rand_like(a), t.randn_like(a), t.randint_like(i, 4),
                                     t.bernoulli(t.full((3,), 0.5)),
                                     t.normal(t.zeros(3), t.ones(3)),
                                     t.normal(0.0, 1.0, (2, 2)),
                                     t.multinomial(t.tensor([0.2, 0.3, 0.5]), 2),
                                     t.multinomial(t.ones(2, 4), 3, replacement=True),
                                     t.poisson(t.ones(3))), "A I", "r"),
    ("random_inplace", lambda t, a: (a.clone().normal_(), a.clone().uniform_(-1, 1),
                                     a.clone().bernoulli_(0.3), a.clone().random_(0, 5),
                                     a.clone().exponential_(), a.clone().log_normal_(),
                                     a.clone().cauchy_(), a.clone().geometric_(0.5)), "A", "r"),
]
# fmt: on


# each case eagerly; the cases in groups under one jaxmod.jit each
test_function_matches_torch, test_functions_match_torch_under_jit = parity_tests(CASES)


def test_factories_always_return_tensors_and_ops_follow_the_type_rule():
    x = jnp.ones((2, 3))
    assert isinstance(jaxmod.zeros(2), jaxmod.Tensor)
    assert isinstance(jaxmod.randn(2), jaxmod.Tensor)
    assert isinstance(jaxmod.tensor(x), jaxmod.Tensor)
    assert type(jaxmod.cat([x, x])) is type(x)
    assert isinstance(jaxmod.cat([jaxmod.tensor(x), x]), jaxmod.Tensor)  # any Tensor input
    assert isinstance(jaxmod.where(jaxmod.tensor(x) > 0, x, 0.0), jaxmod.Tensor)


@pytest.mark.parametrize(
    "call",
    [lambda T, p: T.clamp(p, max=0.5).exp(), lambda T, p: T.exp(p).sum(),
     lambda T, p: T.reshape(p, (3, 1)).t(), lambda T, p: T.transpose(p.view(3, 1), 0, 1)],
)  # fmt: skip
def test_a_parameter_or_buffer_is_a_tensor_input_to_torch_functions(call):
    # Swin V2: torch.clamp(self.logit_scale, max=...).exp() on a Parameter
    values = torch.tensor([0.25, 1.0, 2.0])
    for box in (nn.Parameter(jaxmod.tensor(values.numpy())), nn.Buffer(values.numpy())):
        out = call(jaxmod, box)
        assert isinstance(out, jaxmod.Tensor), type(out)
        expected = call(torch, values).detach().numpy()
        np.testing.assert_allclose(np.asarray(out), expected, rtol=1e-6)


def test_random_draws_follow_the_seed_and_the_distribution():
    jaxmod.manual_seed(3)
    a = jaxmod.randn(2000)
    jaxmod.manual_seed(3)
    b = jaxmod.randn(2000)
    assert jaxmod.equal(a, b) and not jaxmod.equal(a, jaxmod.randn(2000))
    assert abs(float(a.mean())) < 0.1 and abs(float(a.std()) - 1) < 0.1
    u = jaxmod.rand(2000)
    assert 0 <= float(u.min()) and float(u.max()) < 1
    r = jaxmod.randint(3, 7, (2000,))
    assert set(r.unique().tolist()) == {3, 4, 5, 6}
    assert sorted(jaxmod.randperm(6).tolist()) == list(range(6))
    g = jaxmod.Generator(5)
    p = jaxmod.tensor([0.0, 0.0, 1.0, 0.0])
    assert jaxmod.multinomial(p, 1, generator=g).tolist() == [2]
    picks = jaxmod.multinomial(jaxmod.ones(3, 5), 5)
    assert all(sorted(row) == list(range(5)) for row in picks.tolist())  # without replacement


def test_random_draws_differ_between_jitted_calls():
    @jaxmod.jit
    def noisy(x):
        return x + jaxmod.randn(3) + jaxmod.rand_like(x)

    x = jaxmod.zeros(3)
    assert not jaxmod.equal(noisy(x), noisy(x))


def test_dtypes_compare_equal_to_tensor_dtypes_without_int64_warnings(recwarn):
    assert jaxmod.zeros(2).dtype == jaxmod.float32 == jaxmod.float
    assert jaxmod.arange(3).dtype == jaxmod.long == jaxmod.int64
    assert jaxmod.tensor(1.0).double().dtype == jaxmod.float64  # float32 without x64
    assert jaxmod.ones(2, dtype=jaxmod.half).dtype == jaxmod.float16
    assert jaxmod.ones(2, dtype=jaxmod.bfloat16).dtype == jaxmod.bfloat16
    assert jaxmod.tensor([True]).dtype == jaxmod.bool
    assert jaxmod.zeros(2, dtype=jaxmod.int64).dtype == jaxmod.int32  # JAX's default int
    assert float(jaxmod.finfo(jaxmod.float32).eps) == torch.finfo(torch.float32).eps
    assert float(jaxmod.finfo(jaxmod.bfloat16).max) == torch.finfo(torch.bfloat16).max
    assert int(jaxmod.iinfo(jaxmod.int32).max) == torch.iinfo(torch.int32).max
    assert jaxmod.get_default_dtype() == jaxmod.float32
    assert not [w for w in recwarn.list if "int64" in str(w.message)]


DTYPE_NAMES = ["float32", "float", "float16", "half", "bfloat16", "int32", "int", "int16",
               "int8", "uint8", "bool", "complex64", "long", "int64"]  # fmt: skip


@pytest.mark.parametrize("name", DTYPE_NAMES)
def test_dtype_objects_print_and_answer_like_torchs(name):
    ours, theirs = getattr(jaxmod, name), getattr(torch, name)
    assert isinstance(ours, jaxmod.dtype) and repr(ours) == repr(theirs) == str(ours)
    for attr in ("is_floating_point", "is_complex", "is_signed"):
        assert getattr(ours, attr) == getattr(theirs, attr), attr
    if name not in ("long", "int64"):  # int64 is JAX's 32-bit default integer without x64
        assert ours.itemsize == theirs.itemsize
        assert np.dtype(ours) == np.dtype(str(theirs).removeprefix("torch."))
        assert jnp.zeros(2, ours).dtype == ours and hash(ours) == hash(np.dtype(ours))
    assert pickle.loads(pickle.dumps(ours)) is ours


def test_tensor_dtype_is_a_torch_dtype_with_torchs_attributes():
    x, idx, p = jaxmod.randn(2), jaxmod.arange(3), nn.Linear(2, 2).weight
    assert repr(x.dtype) == repr(p.dtype) == "torch.float32" and repr(idx.dtype) == "torch.int64"
    assert x.dtype.is_floating_point and p.dtype.is_floating_point
    assert not idx.dtype.is_floating_point and idx.dtype.is_signed
    assert x.dtype in (jaxmod.float16, jaxmod.float32) and {jaxmod.float32: 1}[x.dtype] == 1
    assert jaxmod.get_default_dtype() is jaxmod.float32 and jaxmod.LongTensor.dtype == idx.dtype
    assert jaxmod.complex64.to_real() is jaxmod.float32
    assert jaxmod.float32.to_complex() is jaxmod.complex64
    assert x.to(x.dtype).dtype == x.dtype and np.asarray(x).dtype == np.float32
    assert (x.dtype == None) is False  # noqa: E711 (np.dtype(None) would be float64)


def test_default_dtype_changes_float_factories():
    jaxmod.set_default_dtype(jaxmod.float16)
    try:
        assert jaxmod.tensor([1.5]).dtype == jaxmod.float16
        assert jaxmod.zeros(2).dtype == jaxmod.float16
        assert jaxmod.arange(0.0, 1.0, 0.5).dtype == jaxmod.float16
    finally:
        jaxmod.set_default_dtype(jaxmod.float32)
    with pytest.raises(TypeError, match="floating-point"):
        jaxmod.set_default_dtype(jaxmod.int32)


def test_size_and_device_match_torch():
    s = jaxmod.zeros(2, 3).size()
    assert repr(s) == repr(torch.Size([2, 3])) and s.numel() == 6 and s == (2, 3)
    assert repr(s[1:]) == "torch.Size([3])"
    for spec in ("cpu", "cuda", "cuda:1"):
        assert repr(jaxmod.device(spec)) == repr(torch.device(spec))
        assert str(jaxmod.device(spec)) == str(torch.device(spec))
    assert jaxmod.device("cuda", 0) == jaxmod.device("cuda:0")
    assert jaxmod.device("cpu") != "cpu"  # as torch: a device is not a string
    with pytest.raises(RuntimeError, match="Expected one of"):
        jaxmod.device("gpux")
    x = jaxmod.zeros(2)
    assert x.device.type == jax.devices()[0].platform.replace("gpu", "cuda")
    assert x.to(x.device) is x and x.cpu() is x or x.device.type != "cpu"


def test_device_works_on_traced_tensors_and_factories_take_it():
    @jaxmod.jit
    def f(idx):
        return jaxmod.arange(3, device=idx.device) + idx

    out = f(jaxmod.arange(3))
    assert out.tolist() == [0, 2, 4]
    assert jaxmod.zeros(2, device="cpu").device == jaxmod.device("cpu")
    with pytest.raises(RuntimeError, match="no GPU|no CUDA") if not jaxmod.cuda.is_available() \
            else _noop():  # fmt: skip
        jaxmod.zeros(2, device="cuda")


class _noop:
    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return False


def test_namespace_flags_programs_set_are_harmless(monkeypatch):
    monkeypatch.setattr(jaxmod.backends.cudnn, "benchmark", True)  # restored afterwards
    monkeypatch.setattr(jaxmod.backends.cudnn, "deterministic", True)
    monkeypatch.setattr(jaxmod.backends.cuda.matmul, "allow_tf32", True)
    assert jaxmod.backends.cudnn.benchmark and jaxmod.backends.cuda.matmul.allow_tf32
    assert jaxmod.backends.mps.is_available() is False
    assert isinstance(jaxmod.cuda.is_available(), bool)
    jaxmod.cuda.manual_seed_all(0)
    with jaxmod.no_grad(), jaxmod.inference_mode():
        assert not jaxmod.is_grad_enabled()
    assert jaxmod.is_grad_enabled()
    assert jaxmod.get_float32_matmul_precision() == "highest"


def test_tensor_repr_matches_torch():
    cases = [
        lambda t: t.tensor([1.5, 2.0]),
        lambda t: t.tensor([[1.0, 2.0], [3.0, 4.0]]),
        lambda t: t.tensor(3.0),
        lambda t: t.tensor([1, 2, 3]),
        lambda t: t.tensor([True, False]),
        lambda t: t.tensor([1, 2], dtype=t.int32) if t is torch else t.tensor([1, 2], dtype=t.int8),
        lambda t: t.tensor([1e-5, 1.0]),
        lambda t: t.tensor([1e10, 1.0]),
        lambda t: t.tensor([float("nan"), float("inf"), 1.25]),
        lambda t: t.tensor([]),
        lambda t: t.zeros(0, 3),
        lambda t: t.arange(12.0).reshape(2, 3, 2),
        lambda t: t.arange(2000.0),
        lambda t: t.linspace(0, 1, 30),
        lambda t: t.tensor([1.0, 2.0], dtype=t.float16),
        lambda t: t.ones(2, requires_grad=True),
        lambda t: t.tensor([float("nan"), float("inf"), 1.0]),  # widths: nonzero finite only
        lambda t: t.tensor([[0.0, -0.0], [1.5, -2.25]]),
        lambda t: t.tensor([float("-inf"), 3.0]),
        lambda t: t.tensor([1 + 2j, -3.5j]),  # real and imaginary parts formatted apart
        lambda t: t.tensor([[1.5 + 2j, 0j], [-1 - 1j, 3 + 0.25j]]),
        lambda t: t.tensor(2 + 3j),
        lambda t: t.zeros(2, dtype=t.complex64),
    ]
    for i, fn in enumerate(cases):
        got, want = repr(fn(jaxmod)), repr(fn(torch))
        if i == 5:  # int32 is torch's non-default integer; compare with int8 here
            want = want.replace("int32", "int8")
        assert got == want, (i, got, want)


REQUIRES_GRAD_CASES = {  # name -> f(lib) giving a value to compare (or raising)
    "clone_detach_flag": lambda L: L.ones(2).clone().detach().requires_grad_(True).requires_grad,
    "view_of_plain_flag": lambda L: L.ones(3)[:2].requires_grad_().requires_grad,
    "view_of_plain_base_untouched": lambda L: (
        (lambda b: (b[:2].requires_grad_(), b)[1])(L.ones(3)).requires_grad
    ),
    "view_of_grad_inherits": lambda L: L.ones(3, requires_grad=True)[:2].requires_grad,
    "view_of_grad_set_true": lambda L: (
        L.ones(3, requires_grad=True)[:2].requires_grad_(True).requires_grad
    ),
    "view_of_grad_set_false": lambda L: L.ones(3, requires_grad=True)[:2].requires_grad_(False),
    "detached_view_leaf": lambda L: L.ones(3, requires_grad=True).detach()[:1].requires_grad,
    "deepcopy_keeps_flag": lambda L: (
        __import__("copy").deepcopy(L.ones(2, requires_grad=True)).requires_grad
    ),
    "pickle_keeps_flag": lambda L: (
        __import__("pickle")
        .loads(__import__("pickle").dumps(L.ones(2, requires_grad=True).detach().requires_grad_()))
        .requires_grad
    ),
}


@pytest.mark.parametrize("case", list(REQUIRES_GRAD_CASES))
def test_requires_grad_flag_on_views_and_copies_matches_torch(case):
    def run(lib):
        try:
            return REQUIRES_GRAD_CASES[case](lib)
        except RuntimeError as e:
            return f"RuntimeError: {e}"

    assert run(jaxmod) == run(torch)


def test_jax_array_attributes_torch_lacks_come_from_the_array():
    x = jaxmod.tensor([1.0, 2.0])
    assert isinstance(x.astype(jnp.float16), jaxmod.Tensor)
    assert x.astype(jnp.float16).dtype == jaxmod.float16
    assert x.at[0].set(5.0).tolist() == [5.0, 2.0]
    with pytest.raises(AttributeError, match="'Tensor' object has no attribute 'nope'"):
        x.nope


def test_assert_autocast_and_copies():
    import copy
    import pickle

    jaxmod._assert(jaxmod.ones(2).shape == (2,), "shape")
    with pytest.raises(AssertionError, match="boom"):
        jaxmod._assert(False, "boom")
    with pytest.raises(jaxmod.TraceError):
        jaxmod.jit(lambda x: jaxmod._assert(x.sum() > 0, "pos") or x)(jaxmod.ones(2))
    with jaxmod.autocast(device_type="cuda", dtype=jaxmod.bfloat16):
        assert (jaxmod.ones(2) @ jaxmod.ones(2)).dtype == jaxmod.bfloat16  # jaxmod.amp
    x = jaxmod.arange(6.0).view(2, 3)
    y = copy.deepcopy(x[0])
    y.add_(1)
    assert x[0].tolist() == [0.0, 1.0, 2.0] and y.tolist() == [1.0, 2.0, 3.0]
    assert pickle.loads(pickle.dumps(x)).tolist() == x.tolist()
    assert x.to(copy=True) is not x and x.to(jaxmod.float32) is x


def test_from_numpy_copies_at_the_call_so_later_writes_never_show():
    for shape in [(4,), (512, 512)]:  # small and large: no aliasing, no late transfer
        a = np.zeros(shape, np.float32)
        t = jaxmod.from_numpy(a)
        a[...] = 5.0  # torch would share this write; jaxmod documents a copy
        assert float(t.sum()) == 0.0


# Sparse COO tensors: each expression's text (repr, accessor results, errors) equals torch's.
_SPARSE = "t.sparse_coo_tensor(t.tensor([[0, 1, 1], [2, 0, 2]]), t.tensor([3., 4., 5.]), (2, 3))"
_DUPS = "t.sparse_coo_tensor(t.tensor([[0, 0, 1], [1, 1, 0]]), t.tensor([1., 2., 3.]), (2, 2))"
_HYBRID = (
    "t.sparse_coo_tensor(t.tensor([[1, 0, 1]]), t.tensor([[1., 2.], [3., 4.], [5, 6]]), (3, 2))"
)
SPARSE_CASES = [
    f"{_SPARSE}",
    f"{_SPARSE}.coalesce()",
    f"{_DUPS}.coalesce()",
    f"{_HYBRID}.coalesce()",
    f"{_HYBRID}",
    f"{_DUPS}.to_dense()",
    f"{_SPARSE}._indices()",
    f"{_DUPS}._values()",
    f"{_DUPS}.coalesce().indices()",
    f"{_DUPS}.coalesce().values()",
    f"{_DUPS}.indices()",
    f"{_DUPS}.values()",
    f"({_DUPS}._nnz(), {_DUPS}.coalesce()._nnz())",
    f"({_SPARSE}.is_sparse, {_SPARSE}.to_dense().is_sparse, str({_SPARSE}.layout))",
    f"({_SPARSE}.is_coalesced(), {_SPARSE}.coalesce().is_coalesced())",
    f"({_HYBRID}.sparse_dim(), {_HYBRID}.dense_dim(), {_HYBRID}.shape, {_HYBRID}.dtype)",
    f"t.sparse.softmax({_SPARSE}, 1)",
    f"t.sparse.log_softmax({_SPARSE}, 0)",
    f"t.sparse.softmax({_DUPS}, 1).to_dense()",
    f"t.sparse.sum({_SPARSE})",
    f"t.sparse.sum({_DUPS}, 1)",
    f"t.sparse.sum({_SPARSE}, 0)",
    f"{_SPARSE} @ t.ones(3, 2)",
    f"t.sparse.mm({_SPARSE}, t.ones(3, 2))",
    "t.tensor([[0., 2.], [3., 0.]]).to_sparse()",
    "t.ones(2, 3, 2).to_sparse(2)",
    "t.sparse.FloatTensor(t.tensor([[0, 1]]), t.tensor([3., 4.]), t.Size([3]))",
    "t.sparse_coo_tensor(t.tensor([[0, 1]]), t.tensor([3., 4.], dtype=t.float16), (3,))",
    "t.sparse_coo_tensor(t.tensor([[0, 1]]), t.tensor([3, 4]), (3,))",
    "t.sparse_coo_tensor(t.zeros(2, 0, dtype=t.long), t.zeros(0), (2, 2))",
    "t.sparse_coo_tensor(t.zeros(1, 0, dtype=t.long), t.zeros(0, 2), (3, 2)).coalesce()",
]


def _text(lib, expr):
    try:
        return str(eval(expr, {"t": lib}))  # noqa: S307 - the table's own expressions
    except Exception as e:  # the error is part of the answer
        return f"{type(e).__name__}: {e}"


@pytest.mark.filterwarnings("ignore::UserWarning")  # torch's sparse-invariants notice
@pytest.mark.parametrize("expr", SPARSE_CASES)
def test_sparse_coo_tensor_prints_and_answers_as_torchs(expr):
    assert _text(jaxmod, expr) == _text(torch, expr)


def test_sparse_coo_tensor_refuses_what_would_go_stale_or_lose_gradients():
    s = jaxmod.sparse_coo_tensor(jaxmod.tensor([[0, 1]]), jaxmod.tensor([1.0, 2.0]), (3,))
    with pytest.raises(RuntimeError, match="in-place operations on a sparse COO tensor"):
        s.mul_(2)
    with pytest.raises(NotImplementedError, match=r"s.to_dense\(\).requires_grad_\(\)"):
        jaxmod.sparse_coo_tensor(jaxmod.tensor([[0, 1]]), jaxmod.tensor([1.0, 2.0]), (3,),
                                 requires_grad=True)  # fmt: skip
    assert (s * 2).to_dense().tolist() == [2.0, 4.0, 0.0] and not (s * 2).is_sparse

    @jaxmod.jit
    def product(adj, x):
        return adj @ x  # a sparse tensor crosses the boundary as its dense value

    assert product(s, jaxmod.ones(3)).item() == 3.0
