"""Vision programs written in plain torch (``tests/torch_programs/``) run on jaxmod with
only their import lines rewritten, and match torch.

Programs: ``fast_neural_style`` (reflection-padded convolutions, instance norm, nearest
upsampling, a frozen loss network and gram-matrix style loss with in-place
``div_``), ``super_resolution`` (ESPCN: orthogonal init, ``nn.PixelShuffle``), ``unet``
(double convolutions with batch norm, transposed-conv or bilinear ups padded to odd skip
sizes, cross entropy + soft Dice), ``spatial_transformer`` (a localisation net regressing
``theta``, ``F.affine_grid`` / ``F.grid_sample``), ``siamese`` (a shared embedding net with
batch norm and PReLU, contrastive and triplet margin losses, distances and cosine
similarity) and ``cifar_resnet`` (option-A lambda shortcuts padding channels with
``F.pad``, option-B convolution shortcuts, squeeze-and-excitation, in-place ``+=``).

Aspects per program, as in ``test_torch_programs.py``: ``structure`` (repr, state_dict),
``eval`` (torch's weights loaded, the same outputs), ``train`` (one optimizer step through
``jaxmod.value_and_grad`` + ``opt.step`` under ``jaxmod.jit``, see
``_port_checks.check_step``, with the program's own loss functions; each says which program
lines it stands in for) and program functions run unmodified (``stylize``, ``psnr``,
``super_resolve``, ``evaluate``, ``warp``, ``test``, ``pair_scores``, ``validate``). None of
these programs has a training function that calls ``loss.backward()`` itself, so there is
no ``as_written`` aspect here. Inputs are tiny (one or two 16x16 / 17x17 images).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

import numpy as np
import pytest
import torch
from _port_checks import (
    adam,
    assert_close,
    case_params,
    check_eval,
    check_step,
    check_structure,
    load_torch_weights,
    program_pair,
    report_unmodified,
    rng_inputs,
    to_numpy,
    unmodified,
)

import jaxmod

TOL = 2e-4


def _images(n: int, c: int, size: int, seed: int = 0, scale: float = 1.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.uniform(0, 1, (n, c, size, size)) * scale).astype(np.float32)


def _both(models: tuple[Any, Any]) -> tuple[tuple[Any, Any], tuple[Any, Any]]:
    return (torch, models[0]), (jaxmod, models[1])


# ---------------------------------------------------------------------------- style transfer
def _style(aspect: str) -> None:
    mods, tm, jm = program_pair(
        "fast_neural_style", lambda m, lib: m.TransformerNet(width=4, n_residual=1)
    )
    x = _images(1, 3, 16, scale=255.0)
    style = _images(1, 3, 16, seed=1, scale=255.0)
    if aspect == "structure":
        check_structure(tm, jm)
        torch.manual_seed(1)
        t_loss, j_loss = mods[torch].LossNet(4), mods[jaxmod].LossNet(4)
        check_structure(t_loss, j_loss)
        assert not any(p.requires_grad for p in j_loss.parameters())  # frozen as in torch
    elif aspect == "eval":
        check_eval(tm, jm, [x], TOL)
    elif aspect in ("train", "backward"):
        # stands in for train()'s `y = transformer(x); ... features_y = vgg(y); ...
        # total_loss = content_loss + style_loss; total_loss.backward(); optimizer.step()`,
        # through the program's total_loss (normalize_batch's in-place div_, gram_matrix)
        torch.manual_seed(1)
        t_net = mods[torch].LossNet(4)
        j_net = mods[jaxmod].LossNet(4)
        load_torch_weights(t_net, j_net)
        grams = {}
        for lib, net in ((torch, t_net), (jaxmod, j_net)):
            with lib.no_grad():
                # a copy each: normalize_batch divides in place (torch.from_numpy shares memory)
                grams[lib] = mods[lib].style_grams(net, lib.from_numpy(style.copy()))
        for j, t in zip(grams[jaxmod], grams[torch], strict=True):
            assert_close(j, t, TOL, "style gram")
        nets = {torch: t_net, jaxmod: j_net}

        def loss_of(lib: Any, model: Any, x: Any) -> Any:
            loss, parts = mods[lib].total_loss(model, nets[lib], lib.nn.MSELoss(), x, grams[lib])
            return loss, parts

        check_step(
            tm,
            jm,
            [x],
            loss_of,
            TOL,
            make_opt=partial(adam, lr=1e-3),
            backward=aspect == "backward",
        )
    elif aspect == "stylize":
        # stylize() as written: eval, no_grad, unsqueeze(0), .cpu(), clone().clamp(0, 255)
        load_torch_weights(tm, jm)
        out = {
            lib: mods[lib].stylize(model, lib.from_numpy(x[0])) for lib, model in _both((tm, jm))
        }
        assert isinstance(out[jaxmod], jaxmod.Tensor)
        assert_close(out[jaxmod], out[torch], TOL, "stylized image")


# ---------------------------------------------------------------------------- ESPCN
def _espcn(aspect: str) -> None:
    mods, tm, jm = program_pair("super_resolution", lambda m, lib: m.ESPCN(upscale_factor=3))
    lr_img = _images(2, 1, 8)
    hr_img = _images(2, 1, 24, seed=1)
    if aspect == "structure":
        check_structure(tm, jm)
        # orthogonal_ with the ReLU gain: W W^T = gain^2 I on the flattened weight
        w = to_numpy(jm.features[0].weight).reshape(16, -1)
        np.testing.assert_allclose(w @ w.T, 2.0 * np.eye(16), atol=1e-5)
    elif aspect == "eval":
        check_eval(tm, jm, [lr_img], TOL)
    elif aspect in ("train", "backward"):
        # stands in for train()'s `loss = criterion(model(input), target); loss.backward();
        # optimizer.step()` (criterion = nn.MSELoss(), Adam lr=0.01)
        def loss_of(lib: Any, model: Any, inp: Any, target: Any) -> Any:
            out = model(inp)
            return lib.nn.MSELoss()(out, target), out

        check_step(
            tm, jm, [lr_img, hr_img], loss_of, TOL, make_opt=adam, backward=aspect == "backward"
        )
    elif aspect == "psnr":
        # the test loop's psnr() and super_resolve() as written (.item(), .numpy(), clip)
        load_torch_weights(tm, jm)
        out = {}
        for lib, model in _both((tm, jm)):
            m, inp = mods[lib], lib.from_numpy(lr_img)
            out[lib] = (m.psnr(model, lib.nn.MSELoss(), inp, lib.from_numpy(hr_img)),
                        m.super_resolve(model, inp[:1]))  # fmt: skip
        assert isinstance(out[jaxmod][0], float)
        assert abs(out[jaxmod][0] - out[torch][0]) < 1e-4
        assert isinstance(out[jaxmod][1], np.ndarray) and out[jaxmod][1].shape == (1, 24, 24)
        assert_close(out[jaxmod][1], out[torch][1], TOL, "super_resolve")


# ---------------------------------------------------------------------------- U-Net
def _unet(aspect: str, bilinear: bool = False) -> None:
    mods, tm, jm = program_pair(
        "unet", lambda m, lib: m.UNet(3, 3, bilinear=bilinear, width=4, dropout=0.1)
    )
    # 17x17: the decoder's upsampled maps are a pixel short of the skips and get F.pad
    images = _images(2, 3, 17)
    masks = np.random.default_rng(2).integers(0, 3, (2, 17, 17)).astype(np.int64)
    masks[:, :, :4] = 0  # class 0 everywhere in a band; the empty-class branch of soft_dice
    if aspect == "structure":
        check_structure(tm, jm)
    elif aspect == "eval":
        check_eval(tm, jm, [images], TOL)
    elif aspect in ("train", "backward"):
        # stands in for the training loop's `masks_pred = model(images); loss =
        # criterion(masks_pred, true_masks); loss += 1 - dice(...); loss.backward();
        # optimizer.step()`, through the program's segmentation_loss (Dropout2d p = 0)
        def loss_of(lib: Any, model: Any, images: Any, true_masks: Any) -> Any:
            return mods[lib].segmentation_loss(model, lib.nn.CrossEntropyLoss(), images, true_masks)

        def rmsprop(lib: Any, m: Any) -> Any:
            return lib.optim.RMSprop(m.parameters(), lr=1e-3, weight_decay=1e-8, momentum=0.9)

        check_step(
            tm, jm, [images, masks], loss_of, TOL, make_opt=rmsprop, backward=aspect == "backward"
        )
    elif aspect == "evaluate":
        # evaluate() as written: @torch.inference_mode(), argmax, one_hot, soft Dice
        load_torch_weights(tm, jm)
        out = {lib: mods[lib].evaluate(model, lib.from_numpy(images), lib.from_numpy(masks))
               for lib, model in _both((tm, jm))}  # fmt: skip
        assert isinstance(out[jaxmod], jaxmod.Tensor)
        assert_close(out[jaxmod], out[torch], TOL, "dice score")
        assert not jm.training


# ---------------------------------------------------------------------------- STN
def _stn(aspect: str, align_corners: bool = False) -> None:
    def build(m: Any, lib: Any) -> Any:
        return m.STNClassifier(num_classes=4, align_corners=align_corners)

    mods, tm, jm = program_pair("spatial_transformer", build)
    # a trained-looking localisation head: theta away from the identity, differing per image
    with torch.no_grad():
        torch.manual_seed(5)
        tm.fc_loc[2].weight.normal_(0, 0.3)
    x = rng_inputs((2, 1, 16, 16))[0]
    y = np.array([1, 3], np.int64)
    if aspect == "structure":
        check_structure(tm, jm)
        # the identity initialisation (fc_loc[2].weight.data.zero_(), bias.data.copy_(...))
        assert_close(jm.fc_loc[2].bias, np.array([1, 0, 0, 0, 1, 0], np.float32), 0, "bias")
        assert not np.any(to_numpy(jm.fc_loc[2].weight))
    elif aspect == "eval":
        check_eval(tm, jm, [x], TOL)
        check_eval(tm, jm, [x], TOL, call=lambda lib, m, x: m.stn(x))  # the resampled input
    elif aspect in ("train", "backward"):
        # stands in for train()'s `output = model(data); loss = F.nll_loss(output, target);
        # loss.backward(); optimizer.step()`. Run in eval mode: forward's
        # F.dropout(x, training=self.training) draws its mask from each library's own
        # generator (the model has no batch norm, so eval mode changes nothing else); the
        # gradient reaches the localisation net through grid_sample's grid
        def loss_of(lib: Any, model: Any, data: Any, target: Any) -> Any:
            output = model(data)
            return lib.nn.functional.nll_loss(output, target), output

        check_step(
            tm,
            jm,
            [x, y],
            loss_of,
            TOL,
            train=False,
            make_opt=lambda lib, m: lib.optim.SGD(m.parameters(), lr=0.01),
            backward=aspect == "backward",
        )
    elif aspect == "warp":
        # warp() as written, for each mode and padding (visualize_stn()'s resampling)
        rng = np.random.default_rng(4)
        theta = (np.eye(2, 3)[None] + 0.4 * rng.standard_normal((2, 2, 3))).astype(np.float32)
        combos = [("bilinear", "zeros"), ("bilinear", "reflection"), ("nearest", "border"),
                  ("bicubic", "border")]  # fmt: skip
        for mode, pad in combos:
            if True:
                out = {lib: mods[lib].warp(lib.from_numpy(x), lib.from_numpy(theta), mode, pad,
                                           align_corners)
                       for lib in (torch, jaxmod)}  # fmt: skip
                assert_close(out[jaxmod], out[torch], TOL, f"warp {mode} {pad}")
    elif aspect == "test":
        # test() as written: eval, no_grad, nll_loss(reduction="sum").item(), max(1)[1], eq
        load_torch_weights(tm, jm)
        out = {lib: mods[lib].test(model, lib.from_numpy(x), lib.from_numpy(y))
               for lib, model in _both((tm, jm))}  # fmt: skip
        assert isinstance(out[jaxmod][0], float) and isinstance(out[jaxmod][1], int)
        assert out[jaxmod][1] == out[torch][1]
        assert abs(out[jaxmod][0] - out[torch][0]) < TOL * max(1.0, abs(out[torch][0]))


# ---------------------------------------------------------------------------- siamese
def _siamese(aspect: str) -> None:
    mods, tm, jm = program_pair("siamese", lambda m, lib: m.SiameseNet(m.EmbeddingNet(8)))
    x1, x2, x3 = rng_inputs((2, 1, 16, 16), (2, 1, 16, 16), (2, 1, 16, 16), seed=3)
    label = np.array([[1.0], [0.0]], np.float32)
    if aspect == "structure":
        check_structure(tm, jm)
    elif aspect == "eval":
        check_eval(tm, jm, [x1, x2], TOL)
        check_eval(tm, jm, [x1], TOL, call=lambda lib, m, x: m.get_embedding(x))
    elif aspect == "train_contrastive":
        # stands in for `output1, output2 = net(img0, img1); loss = criterion(output1,
        # output2, label); loss.backward(); optimizer.step()` with the program's
        # ContrastiveLoss; the shared net runs twice (batch-norm statistics updated twice)
        def loss_of(lib: Any, model: Any, a: Any, b: Any, label: Any) -> Any:
            out = model(a, b)
            return mods[lib].ContrastiveLoss(margin=2.0)(*out, label), out

        check_step(tm, jm, [x1, x2, label], loss_of, TOL, make_opt=partial(adam, lr=5e-4))
    elif aspect in ("train_triplet", "backward_triplet"):
        # triplet_step_loss() with nn.TripletMarginLoss on a TripletNet sharing the net
        torch.manual_seed(1)
        tt = mods[torch].TripletNet(mods[torch].EmbeddingNet(8))
        jt = mods[jaxmod].TripletNet(mods[jaxmod].EmbeddingNet(8))
        check_structure(tt, jt)

        def loss_of(lib: Any, model: Any, a: Any, p: Any, n: Any) -> Any:
            crit = lib.nn.TripletMarginLoss(margin=1.0)
            return mods[lib].triplet_step_loss(model, crit, a, p, n)

        check_step(tt, jt, [x1, x2, x3], loss_of, TOL,
                   make_opt=lambda lib, m: lib.optim.SGD(m.parameters(), lr=0.05),
                   backward=aspect == "backward_triplet")  # fmt: skip
    elif aspect == "pair_scores":
        # pair_scores() as written: pairwise_distance and cosine_similarity under no_grad
        load_torch_weights(tm, jm)
        out = {lib: mods[lib].pair_scores(model, lib.from_numpy(x1), lib.from_numpy(x2))
               for lib, model in _both((tm, jm))}  # fmt: skip
        for j, t, what in zip(out[jaxmod], out[torch], ("distance", "cosine"), strict=True):
            assert isinstance(j, jaxmod.Tensor)
            assert_close(j, t, TOL, what)


# ---------------------------------------------------------------------------- CIFAR ResNet
def _resnet(aspect: str) -> None:
    mods, tm, jm = program_pair("cifar_resnet", lambda m, lib: m.resnet8(width=4))
    images = _images(2, 3, 16)
    target = np.array([2, 7], np.int64)
    if aspect == "structure":
        check_structure(tm, jm)
        torch.manual_seed(1)
        tb = mods[torch].resnet8(width=4, option="B", se=True)
        jb = mods[jaxmod].resnet8(width=4, option="B", se=True)
        check_structure(tb, jb)
    elif aspect == "eval":
        check_eval(tm, jm, [images], TOL)  # option A: F.pad of x[:, :, ::2, ::2]
        torch.manual_seed(1)
        tb = mods[torch].resnet8(width=4, option="B", se=True)
        jb = mods[jaxmod].resnet8(width=4, option="B", se=True)
        check_eval(tb, jb, [images], TOL)
    elif aspect in ("train", "backward"):
        # stands in for train()'s `output = model(input_var); loss = criterion(output,
        # target_var); optimizer.zero_grad(); loss.backward(); optimizer.step()` (SGD with
        # momentum 0.9 and weight decay 1e-4, as the reimplementations use)
        def loss_of(lib: Any, model: Any, inp: Any, tgt: Any) -> Any:
            output = model(inp)
            return lib.nn.CrossEntropyLoss()(output, tgt), output

        check_step(
            tm,
            jm,
            [images, target],
            loss_of,
            TOL,
            make_opt=lambda lib, m: lib.optim.SGD(
                m.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4
            ),
            backward=aspect == "backward",
        )
    elif aspect == "validate":
        # validate() as written: topk(1, 1, True, True), pred.t().eq(...expand_as),
        # correct[:1].reshape(-1).float().sum(0).mul_(100.0 / n), .item()
        load_torch_weights(tm, jm)
        out = {lib: mods[lib].validate(model, lib.nn.CrossEntropyLoss(), lib.from_numpy(images),
                                       lib.from_numpy(target))
               for lib, model in _both((tm, jm))}  # fmt: skip
        (j_loss, j_prec), (t_loss, t_prec) = out[jaxmod], out[torch]
        assert isinstance(j_loss, float) and isinstance(j_prec, float)
        assert j_prec == t_prec
        assert abs(j_loss - t_loss) < TOL * max(1.0, abs(t_loss))


CASES: dict[str, tuple[Callable[[str], None], tuple[str, ...]]] = {
    "fast_neural_style": (_style, ("structure", "eval", "train", "backward", "stylize")),
    "super_resolution": (_espcn, ("structure", "eval", "train", "backward", "psnr")),
    "unet": (_unet, ("structure", "eval", "train", "backward", "evaluate")),
    "unet_bilinear": (lambda a: _unet(a, bilinear=True), ("structure", "eval")),
    "spatial_transformer": (_stn, ("structure", "eval", "train", "backward", "warp", "test")),
    "spatial_transformer_aligned": (lambda a: _stn(a, align_corners=True), ("eval",)),
    "siamese": (_siamese, ("structure", "eval", "train_contrastive", "train_triplet",
                           "backward_triplet", "pair_scores")),
    "cifar_resnet": (_resnet, ("structure", "eval", "train", "backward", "validate")),
}  # fmt: skip

# (program, aspect) -> the error it stops at today
XFAIL: dict[tuple[str, str], str] = {}

_ASPECTS = {name: CASES[name][1] for name in CASES}
UNMODIFIED = unmodified(_ASPECTS, XFAIL)
_report_count = report_unmodified("vision programs", UNMODIFIED, len(CASES))


@pytest.mark.parametrize("name, aspect", case_params(_ASPECTS, XFAIL))
def test_vision_program_matches_torch(name: str, aspect: str) -> None:
    CASES[name][0](aspect)
