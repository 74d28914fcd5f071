"""jaxmod.utils.tensorboard against torch.utils.tensorboard: each case makes the same calls
on torch's SummaryWriter and on jaxmod's (with jaxmod Tensors, jax arrays or numpy arrays)
into two directories, and the event files read back equal, event for event: tags, steps,
scalar values, histogram buckets and stats, text, hparams protos, PR curves, meshes, the
run sub-directories of add_scalars and hparams, and image pixels (the PNG bytes differ:
torch encodes with pillow, jaxmod with zlib). Wall times are left out.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import socket
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

tb = pytest.importorskip("tensorboard")
torch = pytest.importorskip("torch")
PIL_Image = pytest.importorskip("PIL.Image")

import jax.numpy as jnp  # noqa: E402
from tensorboard.backend.event_processing import event_accumulator  # noqa: E402
from tensorboard.compat.proto import event_pb2  # noqa: E402
from torch.utils.tensorboard import SummaryWriter as TorchWriter  # noqa: E402

import jaxmod  # noqa: E402
from jaxmod.utils import tensorboard as jtb  # noqa: E402
from jaxmod.utils.tensorboard import SummaryWriter  # noqa: E402
from jaxmod.utils.tensorboard import writer as jwriter  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


# ----------------------------------------------------------------------- converters
class Conv:
    """Builds a library's input from a numpy array: ``conv(a)`` or ``conv(a, "bfloat16")``."""

    def __init__(self, name: str, lib, fn, peer: Conv | None = None) -> None:
        self.name, self.lib, self.fn = name, lib, fn
        self.peer = peer or self  # on the torch side: the jaxmod input it is compared with

    def __call__(self, a, dtype: str | None = None):
        return self.fn(np.asarray(a), dtype)

    def __repr__(self) -> str:
        return self.name


TORCH = Conv("torch", torch, lambda a, d: torch.tensor(a, dtype=getattr(torch, d) if d else None))
JAXMOD = Conv(
    "Tensor", jaxmod, lambda a, d: jaxmod.tensor(a, dtype=getattr(jaxmod, d) if d else None)
)
JAX = Conv("jax", jaxmod, lambda a, d: jnp.asarray(a, dtype=getattr(jnp, d) if d else None))
NUMPY = Conv("numpy", jaxmod, lambda a, d: a.astype(d) if d else a)
JAXMOD_INPUTS = [JAXMOD, JAX, NUMPY]


def _rng():
    return np.random.default_rng(0)


def f32(*shape):
    return _rng().standard_normal(shape).astype(np.float32)


# ----------------------------------------------------------------------------- cases
def scalars(W, c, d):
    with W(d) as w:
        w.add_scalar("loss", 1, 0)
        w.add_scalar("loss", 2.5, 1)
        w.add_scalar("loss", np.float32(0.1), 2)
        w.add_scalar("loss", c(np.float32(3.25)), np.int64(3))  # 0-d, numpy step
        w.add_scalar("loss", c(np.array([7.0], np.float32)), 4)  # one element
        w.add_scalar("lr", c(np.float32(1e-3)), 0, walltime=123.0)
        w.add_scalar("acc", 0.1, 5, new_style=True)
        w.add_scalar("acc64", 0.1, 5, new_style=True, double_precision=True)
        w.add_scalar("int", c(np.array(3, np.int64)), 0)
        w.add_scalar("nostep", -0.5)


def scalars_layout(W, c, d):
    w = W(d)
    w.add_scalars("loss/train", {"a": 1.0, "b": c(np.float32(2.0))}, 0)
    w.add_scalars("loss/train", {"a": 0.5, "b": c(np.float32(1.5))}, 1)
    w.add_scalars("acc", {"x": 0.25}, 0, walltime=7.0)
    w.add_scalar("plain", 1.0, 0)
    w.close()


def histograms(W, c, d):
    x = f32(1000)
    with W(d) as w:
        w.add_histogram("default", c(x), 0)
        w.add_histogram("default", c(x * 3 + 1), 1)
        for bins in ["auto", "fd", "doane", 10]:
            w.add_histogram(f"bins_{bins}", c(x), 0, bins=bins)
        w.add_histogram("edges", c(x), 0, bins=np.linspace(-2, 2, 9))
        w.add_histogram("max_bins", c(x), 0, bins=64, max_bins=7)
        w.add_histogram("max_bins_even", c(x), 0, bins=64, max_bins=8)
        w.add_histogram("ints", c(_rng().integers(0, 10, (4, 25))), 0)
        w.add_histogram("constant", c(np.full(50, 2.0, np.float32)), 0)
        w.add_histogram("single", c(np.array([-3.0], np.float32)), 0)
        w.add_histogram("zeros", c(np.zeros(7, np.float32)), 0)
        w.add_histogram("2d", c(f32(8, 16)), 0, walltime=1.0)


def histogram_raw(W, c, d):
    v = np.repeat(np.arange(5.0), [1, 2, 3, 4, 5])
    counts, limits = np.histogram(v, bins=np.arange(7.0))
    with W(d) as w:
        w.add_histogram_raw("raw", v.min(), v.max(), len(v), v.sum(), v.dot(v),
                            limits[1:].tolist(), counts.tolist(), global_step=2)  # fmt: skip


def texts(W, c, d):
    with W(d) as w:
        w.add_text("note", "héllo **markdown** ✓", 0)
        w.add_text("note", "", 1)
        w.add_text("a/b", "line1\nline2", 2)


def hparams(W, c, d):
    with W(d) as w:
        w.add_hparams(
            {"lr": 0.1, "bs": 32, "opt": "adam", "flag": True, "skip": None,
             "t": c(np.array([0.5], np.float32))},
            {"hp/acc": 0.9, "hp/loss": c(np.float32(0.25))},
            run_name="run0",
        )  # fmt: skip
        w.add_hparams(
            {"opt": "sgd", "bs": 16, "lr": 0.01},
            {"hp/acc": 0.7},
            hparam_domain_discrete={"opt": ["adam", "sgd"], "bs": [16, 32], "lr": []},
            run_name="run1",
            global_step=3,
        )


def images(W, c, d):
    rng = _rng()
    with W(d) as w:
        w.add_image("chw", c(rng.random((3, 6, 5), dtype=np.float32)), 0)
        w.add_image("hwc_u8", c(rng.integers(0, 256, (4, 7, 3)).astype(np.uint8)), 0,
                    dataformats="HWC")  # fmt: skip
        w.add_image("hw", c(rng.random((5, 4), dtype=np.float32)), 0, dataformats="HW")
        w.add_image("wh", c(rng.random((5, 4), dtype=np.float32)), 0, dataformats="WH")
        w.add_image("gray", c(rng.random((1, 5, 4), dtype=np.float32)), 0)
        w.add_image("rgba", c(rng.random((4, 4, 4), dtype=np.float32)), 0, dataformats="HWC")
        w.add_image("clip", c(rng.standard_normal((3, 4, 4)).astype(np.float32) * 2), 1)
        w.add_images("batch", c(rng.random((10, 3, 4, 5), dtype=np.float32)), 0)
        w.add_images("nhwc", c(rng.random((3, 4, 5, 3), dtype=np.float32)), 0,
                     dataformats="NHWC")  # fmt: skip
        w.add_images("batch_gray", c(rng.random((9, 1, 3, 3), dtype=np.float32)), 2)


def audio(W, c, d):
    t = np.arange(2000, dtype=np.float32) / 8000
    with W(d) as w:
        w.add_audio("sine", c(np.sin(2 * np.pi * 440 * t)[None]), 0, sample_rate=8000)
        w.add_audio("loud", c(np.linspace(-2, 2, 50, dtype=np.float32)), 1)


def pr_curves(W, c, d):
    rng = _rng()
    labels = rng.integers(0, 2, 100)
    preds = rng.random(100).astype(np.float32)
    with W(d) as w:
        w.add_pr_curve("pr", c(labels), c(preds), 0)
        w.add_pr_curve("pr_few", c(labels), c(preds), 1, num_thresholds=10)
        w.add_pr_curve("pr_capped", c(labels), c(preds), 2, num_thresholds=300)
        w.add_pr_curve("pr_w", c(labels), c(preds), 3, weights=rng.random(100))
        n = 5
        tp, fp, tn, fn = (rng.integers(0, 9, n).astype(np.float32) for _ in range(4))
        w.add_pr_curve_raw("raw", c(tp), c(fp), c(tn), c(fn), c(tp / 9), c(fp / 9), 0,
                           num_thresholds=n)  # fmt: skip


def custom_scalars(W, c, d):
    with W(d) as w:
        w.add_custom_scalars({"Taiwan": {"twse": ["Multiline", ["twse/0050", "twse/2330"]]},
                              "USA": {"dow": ["Margin", ["dow/a", "dow/b", "dow/c"]]}})  # fmt: skip
        w.add_custom_scalars_multilinechart(["a", "b"], category="c", title="t")
        w.add_custom_scalars_marginchart(["a", "lo", "hi"])


def meshes(W, c, d):
    v = np.array([[[1, 1, 1], [-1, -1, 1], [1, -1, -1], [-1, 1, -1]]], np.float32)
    colors = np.array([[[255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 0, 255]]], np.int32)
    faces = np.array([[[0, 2, 3], [0, 3, 1], [0, 1, 2], [1, 3, 2]]], np.int32)
    with W(d) as w:
        w.add_mesh("mesh", c(v), colors=c(colors), faces=c(faces), global_step=0)
        w.add_mesh("cloud", c(v), config_dict={"camera": {"cls": "PerspectiveCamera"}})


def tensors(W, c, d):
    with W(d) as w:
        w.add_tensor("f32", c(f32(2, 3)), 0)
        w.add_tensor("f16", c(np.array([0.5, -2.0], np.float16)), 0)
        w.add_tensor("bf16", c(np.array([0.5, 3.0], np.float32), "bfloat16"), 0)
        w.add_tensor("bool", c(np.array([True, False])), 0)
        if c.peer is not JAXMOD:  # jaxmod Tensors declare every integer dtype int64
            w.add_tensor("i32", c(np.arange(3), "int32"), 0)
        if c.peer is not JAX:  # a jax array has no int64 (x64 off); a Tensor keeps its dtype
            w.add_tensor("i64", c(np.arange(3, dtype=np.int64)), 1)
        if c.peer is NUMPY:  # a jaxmod Tensor of float64 values is float32 (x64 off)
            w.add_tensor("f64", c(np.arange(4.0)), 0)


def purge_and_reopen(W, c, d):
    w = W(d, purge_step=5, filename_suffix="_sfx", max_queue=2, flush_secs=1)
    w.add_scalar("x", 1.0, 5)
    w.flush()
    w.close()
    w.close()  # a second close does nothing
    w.add_scalar("x", 2.0, 6)  # writes again: a new event file in the same directory
    w.flush()
    w.close()


CASES = [scalars, scalars_layout, histograms, histogram_raw, texts, hparams, images, audio,
         pr_curves, custom_scalars, meshes, tensors, purge_and_reopen]  # fmt: skip


# --------------------------------------------------------------------------- reading
_NAME = re.compile(r"events\.out\.tfevents\.(\d+)\..+\.(\d+)\.(\d+)(.*)$")


def _event_files(d: Path) -> list[Path]:
    files = [p for p in d.iterdir() if p.name.startswith("events.out.tfevents.")]
    return sorted(files, key=lambda p: tuple(int(g) for g in _NAME.match(p.name).groups()[1:3]))


def _pixels(png: bytes) -> str:
    img = PIL_Image.open(io.BytesIO(png))
    a = np.asarray(img)
    return f"{img.mode}{a.shape}:{hashlib.sha256(a.tobytes()).hexdigest()[:16]}"


def _events(path: Path) -> list[str]:
    out = []
    for rec in tb.backend.event_processing.event_file_loader.RawEventFileLoader(str(path)).Load():
        e = event_pb2.Event.FromString(rec)
        e.ClearField("wall_time")
        for v in e.summary.value:
            if v.HasField("image"):
                v.image.encoded_image_string = _pixels(v.image.encoded_image_string).encode()
        out.append(str(e))
    return out


def read_run(root: Path) -> dict:
    """{sub-directory: [events of each event file, in creation order]} plus other files."""
    runs: dict = {}
    for d, _, names in sorted(os.walk(root)):
        rel = os.path.relpath(d, root)
        files = _event_files(Path(d))
        if files:
            runs[rel] = [(_NAME.match(p.name).group(4), _events(p)) for p in files]
        for n in names:
            if not n.startswith("events.out."):
                data = (Path(d) / n).read_bytes()
                runs[f"{rel}/{n}"] = _pixels(data) if n.endswith(".png") else data
    return runs


def _both(case, conv, tmp_path):
    case(TorchWriter, Conv("torch", torch, TORCH.fn, peer=conv), str(tmp_path / "torch"))
    case(SummaryWriter, conv, str(tmp_path / "jaxmod"))
    return read_run(tmp_path / "torch"), read_run(tmp_path / "jaxmod")


@pytest.mark.parametrize("conv", JAXMOD_INPUTS, ids=repr)
@pytest.mark.parametrize("case", CASES, ids=lambda f: f.__name__)
def test_event_files_match_torch(case, conv, tmp_path):
    expected, got = _both(case, conv, tmp_path)
    assert sorted(got) == sorted(expected)  # the same run directories and files
    for key in expected:
        if isinstance(expected[key], list):  # event files: compare event by event
            assert [n for n, _ in got[key]] == [n for n, _ in expected[key]], key
            for (_, g), (_, e) in zip(got[key], expected[key]):
                assert len(g) == len(e), key
                for ge, ee in zip(g, e):
                    assert ge == ee, key
        assert got[key] == expected[key], key


def test_add_scalars_writes_one_run_per_tag(tmp_path):
    expected, got = _both(scalars_layout, JAXMOD, tmp_path)
    assert sorted(k for k in got if "/" not in k) == [".", "acc_x", "loss_train_a", "loss_train_b"]
    acc = event_accumulator.EventAccumulator(str(tmp_path / "jaxmod" / "acc_x")).Reload()
    assert [(s.step, s.value, s.wall_time) for s in acc.Scalars("acc")] == [(0, 0.25, 7.0)]


def test_event_accumulator_reads_what_jaxmod_writes(tmp_path):
    """TensorBoard's own loader sees the same tags and values in both runs."""
    for name, W, c in [("torch", TorchWriter, TORCH), ("jaxmod", SummaryWriter, JAXMOD)]:
        scalars(W, c, str(tmp_path / name))
        histograms(W, c, str(tmp_path / name))
        images(W, c, str(tmp_path / name))
        texts(W, c, str(tmp_path / name))
    acc = {}
    for name in ["torch", "jaxmod"]:
        ea = event_accumulator.EventAccumulator(str(tmp_path / name), size_guidance={"tensors": 0})
        acc[name] = ea.Reload()
    t, j = acc["torch"], acc["jaxmod"]
    assert j.Tags()["scalars"] == t.Tags()["scalars"]
    assert j.Tags()["histograms"] == t.Tags()["histograms"]
    assert j.Tags()["images"] == t.Tags()["images"]
    assert j.Tags()["tensors"] == t.Tags()["tensors"]
    for tag in t.Tags()["scalars"]:
        assert [(s.step, s.value) for s in j.Scalars(tag)] == [
            (s.step, s.value) for s in t.Scalars(tag)
        ]
    for tag in t.Tags()["histograms"]:
        assert [h.histogram_value for h in j.Histograms(tag)] == [
            h.histogram_value for h in t.Histograms(tag)
        ]
    for tag in t.Tags()["images"]:
        assert [(i.width, i.height, _pixels(i.encoded_image_string)) for i in j.Images(tag)] == [
            (i.width, i.height, _pixels(i.encoded_image_string)) for i in t.Images(tag)
        ]
    assert [e.tensor_proto for e in j.Tensors("note/text_summary")] == [
        e.tensor_proto for e in t.Tensors("note/text_summary")
    ]


def test_summary_functions_match_torch():
    """``from torch.utils.tensorboard.summary import hparams`` users build the same protos."""
    from torch.utils.tensorboard import summary as ts

    hp, mt = {"lr": 0.1, "opt": "adam", "n": 3}, {"acc": 1.0}
    assert jtb.summary.hparams(hp, mt) == ts.hparams(hp, mt)
    x = f32(100)
    assert jtb.summary.histogram("h", x, "auto") == ts.histogram("h", x, "auto")
    assert jtb.summary.scalar("s", 2.0) == ts.scalar("s", 2.0)
    assert jtb.summary.text("t", "x") == ts.text("t", "x")


# -------------------------------------------------------------------------- embedding
def _embedding(W, c, d):
    rng = _rng()
    meta = [f"w{i}" for i in range(6)]
    with W(d) as w:
        w.add_embedding(c(f32(6, 3)), metadata=meta, label_img=c(rng.random((6, 3, 4, 4),
                        dtype=np.float32)), global_step=1)  # fmt: skip
        w.add_embedding(c(f32(6, 2)), tag="a/b")
        w.add_embedding(c(f32(6, 2)), metadata=[[m, i] for i, m in enumerate(meta)],
                        metadata_header=["name", "index"], tag="multi")  # fmt: skip


@pytest.mark.parametrize("conv", [JAXMOD, NUMPY], ids=repr)
def test_add_embedding_writes_torch_files(conv, tmp_path):
    _embedding(TorchWriter, TORCH, str(tmp_path / "torch"))
    _embedding(SummaryWriter, conv, str(tmp_path / "jaxmod"))
    expected, got = read_run(tmp_path / "torch"), read_run(tmp_path / "jaxmod")
    assert sorted(got) == sorted(expected)
    assert "00001/default/sprite.png" in "\n".join(got)
    for key in expected:
        assert got[key] == expected[key], key


# ----------------------------------------------------------------------------- figure
def test_add_figure_matches_torch(tmp_path):
    pytest.importorskip("matplotlib")
    from matplotlib.figure import Figure

    def fig():
        f = Figure(figsize=(2, 1.5), dpi=40)
        f.add_subplot().plot([0, 1, 2], [1, 0, 2])
        return f

    for name, W in [("torch", TorchWriter), ("jaxmod", SummaryWriter)]:
        with W(str(tmp_path / name)) as w:
            w.add_figure("one", fig(), 0)
            w.add_figure("two", [fig(), fig()], 1, close=False)
    assert read_run(tmp_path / "jaxmod") == read_run(tmp_path / "torch")


# ---------------------------------------------------------------- writer behaviour
def test_default_log_dir_is_torchs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    form = r"runs/[A-Z][a-z]{2}\d{2}_\d{2}-\d{2}-\d{2}_" + re.escape(socket.gethostname())
    with TorchWriter(comment="_lr0.1") as t, SummaryWriter(comment="_lr0.1") as j:
        assert re.fullmatch(form + "_lr0.1", t.log_dir)
        assert re.fullmatch(form + "_lr0.1", j.log_dir)
        assert j.get_logdir() == j.log_dir and os.path.isdir(j.log_dir)
    with SummaryWriter(log_dir="", comment="c") as j:  # an empty log_dir is the default too
        assert j.log_dir.endswith("c") and j.log_dir.startswith("runs")
    with SummaryWriter(tmp_path / "path") as j:  # a Path works as in torch
        j.add_scalar("x", 1.0)
    assert _event_files(tmp_path / "path")


def test_default_hparams_run_name_is_a_time(tmp_path):
    with SummaryWriter(str(tmp_path)) as w:
        w.add_hparams({"a": 1}, {"m": 2.0})
    (run,) = [p.name for p in tmp_path.iterdir() if p.is_dir()]
    assert float(run) > 1e9


def test_default_bins_are_torchs(tmp_path):
    with TorchWriter(str(tmp_path / "t")) as t, SummaryWriter(str(tmp_path / "j")) as j:
        assert j.default_bins == t.default_bins


def test_add_graph_warns_once_and_logs_nothing(tmp_path):
    jwriter._GRAPH_WARNED.clear()
    with SummaryWriter(str(tmp_path)) as w:
        with pytest.warns(UserWarning, match="no torch graph"):
            w.add_graph(jaxmod.nn.Linear(2, 2), jaxmod.zeros(1, 2))
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            w.add_graph(jaxmod.nn.Linear(2, 2))
    (f,) = _event_files(tmp_path)
    assert len(_events(f)) == 1  # the file-version header only


@pytest.mark.parametrize(
    "call, error, match",
    [
        (lambda w: w.add_image_with_boxes("b", np.zeros((3, 2, 2)), np.zeros((1, 4))),
         NotImplementedError, "draw"),
        (lambda w: w.add_video("v", np.zeros((1, 2, 3, 4, 4))), NotImplementedError, "video"),
        (lambda w: w.add_onnx_graph("m.onnx"), NotImplementedError, "ONNX"),
        (lambda w: w.add_scalar("s", np.zeros(2)), AssertionError, "one element"),
        (lambda w: w.add_scalar("s", object()), NotImplementedError, "numpy array"),
        (lambda w: w.add_hparams([], {}), TypeError, "should be dictionary"),
        (lambda w: w.add_hparams({"a": [1]}, {}), ValueError, "value should be one of"),
        (lambda w: w.add_hparams({"a": 1}, {}, hparam_domain_discrete={"a": ["x"]}),
         TypeError, "same type"),
        (lambda w: w.add_histogram("h", np.zeros(0)), ValueError, "no element"),
        (lambda w: w.add_histogram_raw("h", 0, 1, 1, 1, 1, [1, 2], [1]), ValueError,
         "bucket_limits"),
        (lambda w: w.add_image("i", np.zeros((3, 2, 2)), dataformats="HWCC"), AssertionError,
         "same dimension"),
        (lambda w: w.add_image("i", np.zeros((3, 2, 2)), dataformats="HW"), AssertionError,
         "different"),
        (lambda w: w.add_custom_scalars_marginchart(["a"]), AssertionError, "3 tags"),
        (lambda w: w.add_embedding(np.zeros((2, 2)), metadata=["a"]), AssertionError,
         "#labels"),
    ],
)  # fmt: skip
def test_errors_match_torch(call, error, match, tmp_path):
    with SummaryWriter(str(tmp_path / "j")) as j:
        with pytest.raises(error, match=match):
            call(j)
    if error is not NotImplementedError:  # torch raises the same for the same call
        with TorchWriter(str(tmp_path / "t")) as t:
            with pytest.raises(error, match=match):
                call(t)


def test_values_under_jit_raise_a_clear_error(tmp_path):
    with SummaryWriter(str(tmp_path)) as w:

        @jaxmod.jit
        def step(x):
            w.add_scalar("x", x.sum())
            return x

        with pytest.raises(Exception, match="numpy|concrete|jit|trac"):
            step(jaxmod.ones(2))


def test_missing_tensorboard_raises_torchs_import_error():
    code = (
        "import sys; sys.modules['tensorboard'] = None\n"
        "try:\n    import jaxmod.utils.tensorboard\n"
        "except ImportError as e:\n    print('ImportError:', e)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, env=env,
        timeout=300,
    )  # fmt: skip
    assert "ImportError: TensorBoard logging requires TensorBoard version 1.15 or above" in (
        out.stdout
    ), out.stderr


def test_import_rewrite_names_resolve():
    """``from torch.utils.tensorboard import SummaryWriter`` and its siblings."""
    import torch.utils.tensorboard as tt

    assert set(tt.__all__) <= set(jtb.__all__)
    assert jtb.RecordWriter is tt.RecordWriter
