"""Programs written in plain torch (``tests/torch_programs/``, pytorch/examples and nanoGPT
style) run on jaxmod with only their import lines rewritten, and match torch.

Each program file is loaded twice by ``_torch_port``: with real torch (the oracle) and with
``import torch`` -> ``import jaxmod as torch``. Aspects compared per program: ``structure``
(repr, state_dict), ``eval`` (forward / loss with torch's weights), ``train`` (one optimizer
step, see ``_port_checks.check_step``) and program functions run unmodified end to end
(evaluation loops, data preparation, sampling).

``train`` calls the program's own forward / loss code and drives the step with
``jaxmod.value_and_grad`` + ``opt.step(grads)`` under ``jaxmod.jit``; ``backward`` runs
the program's lines ``optimizer.zero_grad(); loss.backward(); [clip_grad_norm_];
optimizer.step()`` eagerly on jaxmod's autograd tape; both are compared with torch's step,
and each case's ``train`` says which program lines it stands in for. ``as_written`` runs
the program's training function itself, unmodified, to the end. The programs with no other
test (their data and weights come from each library's own generator, so only that they
train is checked) are in ``test_torch_programs_as_written.py``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch
from _port_checks import (
    assert_close,
    assert_tree_close,
    case_params,
    check_eval,
    check_step,
    check_structure,
    load_torch_weights,
    program_pair,
    report_unmodified,
    rng_inputs,
    runs_as_written,
    to_numpy,
    unmodified,
)

import jaxmod

TOL = 2e-4


# ---------------------------------------------------------------------------- mnist
def _mnist(aspect: str) -> None:
    mods, tm, jm = program_pair("mnist", lambda m, lib: m.Net())
    x = rng_inputs((2, 1, 28, 28))[0]
    y = np.array([3, 7], np.int64)
    if aspect == "structure":
        check_structure(tm, jm)
    elif aspect == "eval":
        check_eval(tm, jm, [x], TOL)
    elif aspect in ("train", "backward"):
        # stands in for train()'s `optimizer.zero_grad(); output = model(data);
        # loss = F.nll_loss(output, target); loss.backward(); optimizer.step()`
        def loss_of(lib: Any, model: Any, data: Any, target: Any) -> Any:
            output = model(data)
            return lib.nn.functional.nll_loss(output, target), output

        check_step(
            tm,
            jm,
            [x, y],
            loss_of,
            TOL,
            make_opt=lambda lib, m: lib.optim.Adadelta(m.parameters(), lr=1.0),
            backward=aspect == "backward",
        )
    elif aspect == "test_loop":
        images, target = (v.numpy() for v in mods[torch].synthetic_digits(40, seed=1))
        load_torch_weights(tm, jm)
        results = {}
        for lib, model in ((torch, tm), (jaxmod, jm)):
            loader = mods[lib].make_loader(lib.from_numpy(images), lib.from_numpy(target), 16)
            results[lib] = mods[lib].test(model, lib.device("cpu"), loader)
        (t_loss, t_correct), (j_loss, j_correct) = results[torch], results[jaxmod]
        assert j_correct == t_correct
        assert_close(j_loss, t_loss, TOL, "test loss")
    elif aspect == "as_written":
        runs_as_written(lambda m: m.main(["--samples", "32", "--batch-size", "16",
                                          "--dry-run", "--epochs", "1"]), "mnist")  # fmt: skip


# ---------------------------------------------------------------------------- char GPT
def _gpt(aspect: str) -> None:
    def build(m: Any, lib: Any) -> Any:
        _, _, stoi, _ = m.char_dataset()
        return m.GPT(m.GPTConfig(block_size=16, vocab_size=len(stoi), n_layer=2, n_head=2,
                                 n_embd=32, dropout=0.0, bias=True))  # fmt: skip

    mods, tm, jm = program_pair("char_gpt", build)
    t_train, *_ = mods[torch].char_dataset()
    data = t_train.numpy()
    X = np.stack([data[i : i + 16] for i in (0, 40)]).astype(np.int64)
    Y = np.stack([data[i + 1 : i + 17] for i in (0, 40)]).astype(np.int64)
    if aspect == "structure":
        check_structure(tm, jm)
    elif aspect == "data":
        j_train, j_val, j_stoi, _ = mods[jaxmod].char_dataset()
        t_train, t_val, t_stoi, _ = mods[torch].char_dataset()
        assert j_stoi == t_stoi
        np.testing.assert_array_equal(to_numpy(j_train), t_train.numpy())
        np.testing.assert_array_equal(to_numpy(j_val), t_val.numpy())
    elif aspect == "eval":
        check_eval(tm, jm, [X, Y], TOL)  # (logits, loss) = model(idx, targets)
        check_eval(tm, jm, [X], TOL)  # inference: last position's logits, loss None
    elif aspect in ("train", "backward"):
        # stands in for train()'s `logits, loss = model(X, Y); loss.backward();
        # clip_grad_norm_(model.parameters(), 1.0); optimizer.step()`; the optimizer is the
        # program's configure_optimizers() with lr set through param_groups as in train()
        def loss_of(lib: Any, model: Any, X: Any, Y: Any) -> Any:
            logits, loss = model(X, Y)
            return loss, logits

        def make_opt(lib: Any, model: Any) -> Any:
            optimizer = model.configure_optimizers(0.1, 1e-3, (0.9, 0.95))
            lr = mods[lib].get_lr(30)
            for param_group in optimizer.param_groups:
                param_group["lr"] = lr
            return optimizer

        check_step(
            tm, jm, [X, Y], loss_of, TOL, make_opt=make_opt, clip=1.0, backward=aspect == "backward"
        )
    elif aspect == "generate":
        # top_k=1: the multinomial draw is over a one-hot distribution, so deterministic
        load_torch_weights(tm, jm)
        out = {}
        for lib, model in ((torch, tm), (jaxmod, jm)):
            model.eval()
            context = lib.from_numpy(X[:, :3])
            out[lib] = to_numpy(model.generate(context, 6, top_k=1))
        np.testing.assert_array_equal(out[jaxmod], out[torch])
    elif aspect == "as_written":
        runs_as_written(lambda m: m.train(max_iters=1), "char_gpt")


# ---------------------------------------------------------------------------- LSTM LM
def _word_lm(aspect: str) -> None:
    def build(m: Any, lib: Any) -> Any:
        corpus = m.Corpus(m.CORPUS)
        return m.RNNModel("LSTM", len(corpus.dictionary), 16, 16, 2, 0.2, tie_weights=True)

    mods, tm, jm = program_pair("word_language_model", build)
    t_corpus = mods[torch].Corpus(mods[torch].CORPUS)
    t_val = mods[torch].batchify(t_corpus.valid, 2)
    data, targets = (v.numpy() for v in mods[torch].get_batch(t_val, 0, 5))
    if aspect == "structure":
        check_structure(tm, jm)
    elif aspect == "data":
        j_corpus = mods[jaxmod].Corpus(mods[jaxmod].CORPUS)
        assert j_corpus.dictionary.idx2word == t_corpus.dictionary.idx2word
        np.testing.assert_array_equal(to_numpy(j_corpus.train), t_corpus.train.numpy())
        j_val = mods[jaxmod].batchify(j_corpus.valid, 2)
        np.testing.assert_array_equal(to_numpy(j_val), t_val.numpy())
        j_data, j_targets = mods[jaxmod].get_batch(j_val, 0, 5)
        np.testing.assert_array_equal(to_numpy(j_targets), targets)
    elif aspect == "eval":
        # model(data, model.init_hidden(bsz)) -> (log-probabilities, (h, c))
        check_eval(tm, jm, [data], TOL, call=lambda lib, m, d: m(d, m.init_hidden(2)))
    elif aspect == "evaluate":
        load_torch_weights(tm, jm)
        out = {}
        for lib, model in ((torch, tm), (jaxmod, jm)):
            val = mods[lib].batchify(mods[lib].Corpus(mods[lib].CORPUS).valid, 2)
            out[lib] = mods[lib].evaluate(model, lib.nn.NLLLoss(), val, 5, 2)
        assert isinstance(out[jaxmod], float)
        assert_close(out[jaxmod], out[torch], TOL, "evaluate()")
    elif aspect in ("train", "backward"):
        # stands in for train()'s `hidden = repackage_hidden(hidden); model.zero_grad();
        # output, hidden = model(data, hidden); loss = criterion(output, targets);
        # loss.backward(); clip_grad_norm_(model.parameters(), 0.25);
        # for p in model.parameters(): p.data.add_(p.grad, alpha=-lr)` (SGD with that lr)
        def loss_of(lib: Any, model: Any, data: Any, targets: Any) -> Any:
            hidden = mods[lib].repackage_hidden(model.init_hidden(2))
            output, hidden = model(data, hidden)
            return lib.nn.NLLLoss()(output, targets), (output, hidden)

        check_step(
            tm,
            jm,
            [data, targets],
            loss_of,
            TOL,
            clip=0.25,
            make_opt=lambda lib, m: lib.optim.SGD(m.parameters(), lr=20.0),
            backward=aspect == "backward",
        )
    elif aspect == "as_written":

        def run(m: Any) -> Any:
            corpus = m.Corpus(m.CORPUS)
            model = m.RNNModel("LSTM", len(corpus.dictionary), 16, 16, 2, 0.2, True)
            return m.train(model, jaxmod.nn.NLLLoss(), m.batchify(corpus.train, 4), 20.0, 5, 4)

        runs_as_written(run, "word_language_model")


# ---------------------------------------------------------------------------- VAE
def _vae(aspect: str) -> None:
    mods, tm, jm = program_pair("vae", lambda m, lib: m.VAE())
    x = mods[torch].synthetic_images(4).numpy()
    flat = x.reshape(4, 784)
    eps = rng_inputs((4, 20))[0]

    def deterministic(lib: Any, model: Any, x: Any) -> Any:
        mu, logvar = model.encode(x)
        recon = model.decode(mu)
        return recon, mu, logvar, mods[lib].loss_function(recon, x, mu, logvar)

    if aspect == "structure":
        check_structure(tm, jm)
    elif aspect == "eval":
        # encode, decode and loss_function as written; z = mu (no sampling)
        check_eval(tm, jm, [flat], TOL, call=deterministic)
    elif aspect == "forward":
        # forward() as written, with its torch.randn_like sample: mu and logvar equal
        # torch's, the reconstruction is a probability image, the noise is standard normal
        load_torch_weights(tm, jm)
        with torch.no_grad():
            _, t_mu, t_logvar = tm(torch.from_numpy(x))
        recon, mu, logvar = jm(jaxmod.from_numpy(x))
        assert_tree_close((mu, logvar), (t_mu, t_logvar), TOL, "mu, logvar")
        r = to_numpy(recon)
        assert r.shape == (4, 784) and r.min() >= 0 and r.max() <= 1
        z = to_numpy(jm.reparameterize(jaxmod.zeros(2000, 20), jaxmod.zeros(2000, 20)))
        assert abs(z.mean()) < 0.02 and abs(z.std() - 1) < 0.02
    elif aspect in ("train", "backward"):
        # stands in for train()'s `recon_batch, mu, logvar = model(data);
        # loss = loss_function(...); loss.backward(); optimizer.step()`, with forward()'s
        # `eps = torch.randn_like(std)` given as an input so both libraries use the same one
        def loss_of(lib: Any, model: Any, x: Any, eps: Any) -> Any:
            mu, logvar = model.encode(x)
            z = mu + eps * lib.exp(0.5 * logvar)
            recon = model.decode(z)
            return mods[lib].loss_function(recon, x, mu, logvar), recon

        check_step(
            tm,
            jm,
            [flat, eps],
            loss_of,
            TOL,
            make_opt=lambda lib, m: lib.optim.Adam(m.parameters(), lr=1e-3),
            backward=aspect == "backward",
        )
    elif aspect == "as_written":

        def run(m: Any) -> Any:
            images = jaxmod.from_numpy(x)
            loader = jaxmod.utils.data.DataLoader(
                jaxmod.utils.data.TensorDataset(images, jaxmod.zeros(4)), batch_size=2
            )
            model = m.VAE()
            return m.train(model, jaxmod.optim.Adam(model.parameters(), lr=1e-3), loader, 1)

        runs_as_written(run, "vae")


# ---------------------------------------------------------------------------- DCGAN
def _dcgan(aspect: str) -> None:
    # build() -> (netG, netD, criterion, optimizerG, optimizerD)
    mods, (tG, tD, t_crit, _, _), (jG, jD, j_crit, _, _) = program_pair(
        "dcgan", lambda m, lib: m.build()
    )
    crit = {torch: t_crit, jaxmod: j_crit}
    D = {torch: tD, jaxmod: jD}
    noise, real = rng_inputs((2, 8, 1, 1), (2, 3, 64, 64))
    adam = lambda lib, m: lib.optim.Adam(m.parameters(), lr=0.0002, betas=(0.5, 0.999))  # noqa: E731
    if aspect == "structure":
        check_structure(tG, jG)
        check_structure(tD, jD)
    elif aspect == "eval":
        check_eval(tG, jG, [noise], TOL)
        check_eval(tD, jD, [np.tanh(real)], TOL)
    elif aspect in ("train", "backward"):
        load_torch_weights(tG, jG)
        with torch.no_grad():
            fake = tG.train()(torch.from_numpy(noise)).numpy()

        # stands in for train_step()'s `netD.zero_grad(); errD, _ = discriminator_loss(...);
        # errD.backward(); optimizerD.step()`
        def d_loss(lib: Any, netD: Any, real_cpu: Any, fake: Any) -> Any:
            errD, (D_x, D_G_z1) = mods[lib].discriminator_loss(netD, crit[lib], real_cpu, fake)
            return errD, (D_x, D_G_z1)

        check_step(tD, jD, [real, fake], d_loss, TOL, make_opt=adam, backward=aspect == "backward")

        # ... and for `netG.zero_grad(); errG, _ = generator_loss(netD, criterion, fake);
        # errG.backward(); optimizerG.step()` (fake = netG(noise) inside the step)
        def g_loss(lib: Any, netG: Any, noise: Any) -> Any:
            errG, D_G_z2 = mods[lib].generator_loss(D[lib], crit[lib], netG(noise))
            return errG, D_G_z2

        check_step(tG, jG, [noise], g_loss, TOL, make_opt=adam, backward=aspect == "backward")
    elif aspect == "as_written":

        def run(m: Any) -> Any:
            netG, netD, criterion, optimizerG, optimizerD = m.build()
            real_cpu = jaxmod.from_numpy(np.tanh(real))
            return m.train_step(netG, netD, optimizerG, optimizerD, criterion, real_cpu, 8)

        runs_as_written(run, "dcgan")


CASES: dict[str, tuple[Callable[[str], None], tuple[str, ...]]] = {
    "mnist": (_mnist, ("structure", "eval", "train", "backward", "test_loop", "as_written")),
    "char_gpt": (
        _gpt,
        ("structure", "data", "eval", "train", "backward", "generate", "as_written"),
    ),
    "word_language_model": (
        _word_lm,
        ("structure", "data", "eval", "evaluate", "train", "backward", "as_written"),
    ),  # fmt: skip
    "vae": (_vae, ("structure", "eval", "forward", "train", "backward", "as_written")),
    "dcgan": (_dcgan, ("structure", "eval", "train", "backward", "as_written")),
}

# (program, aspect) -> the error it stops at today (none: every GAPS.md entry is closed)
XFAIL: dict[tuple[str, str], str] = {}  # every gap recorded in GAPS.md is closed


def aspects(name: str) -> tuple[str, ...]:
    return CASES[name][1]


def run_case(name: str, aspect: str) -> None:
    CASES[name][0](aspect)


_ASPECTS = {name: aspects(name) for name in CASES}
UNMODIFIED = unmodified(_ASPECTS, XFAIL)
_report_count = report_unmodified("torch programs", UNMODIFIED, len(CASES))


@pytest.mark.parametrize("name, aspect", case_params(_ASPECTS, XFAIL))
def test_torch_program_matches_torch(name: str, aspect: str) -> None:
    run_case(name, aspect)
