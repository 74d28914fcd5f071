"""``torch.utils.tensorboard.summary``: the ``Summary`` protocol buffers the writer logs.

Each function returns the same proto torch's does for the same values (``scalar``,
``histogram``, ``text``, ``hparams``, ``image``, ...), so a script that builds summaries
itself (``exp, ssi, sei = hparams(...)`` then ``writer.file_writer.add_summary(exp)``)
ports unchanged. Values may be ``jaxmod.Tensor``s, jax arrays, numpy arrays or Python
numbers. Images are PNG-encoded here (zlib, no pillow needed), pixel for pixel what torch's
pillow encoder stores.
"""

from __future__ import annotations

import io
import json
import struct
import wave
import zlib
from typing import Any

import ml_dtypes
import numpy as np
from tensorboard.compat.proto.summary_pb2 import HistogramProto, Summary, SummaryMetadata
from tensorboard.compat.proto.tensor_pb2 import TensorProto
from tensorboard.compat.proto.tensor_shape_pb2 import TensorShapeProto
from tensorboard.plugins.custom_scalar import layout_pb2
from tensorboard.plugins.hparams import api_pb2
from tensorboard.plugins.hparams import metadata as hp_metadata
from tensorboard.plugins.hparams.plugin_data_pb2 import (
    HParamsPluginData,
    SessionEndInfo,
    SessionStartInfo,
)
from tensorboard.plugins.mesh import metadata as mesh_metadata
from tensorboard.plugins.mesh.plugin_data_pb2 import MeshPluginData
from tensorboard.plugins.pr_curve.plugin_data_pb2 import PrCurvePluginData
from tensorboard.plugins.text.plugin_data_pb2 import TextPluginData

from jaxmod._tensor.base import is_tensor

__all__ = [
    "make_np",
    "hparams",
    "scalar",
    "tensor_proto",
    "histogram_raw",
    "histogram",
    "make_histogram",
    "image",
    "make_image",
    "audio",
    "custom_scalars",
    "text",
    "pr_curve_raw",
    "pr_curve",
    "compute_curve",
    "mesh",
    "convert_to_HWC",
    "make_grid",
    "encode_png",
    "half_to_int",
    "int_to_half",
]


def _host(x: Any) -> np.ndarray:
    """A Tensor or array on the host, a Tensor in its declared dtype (``int64`` stays
    ``int64`` where jax stores int32)."""
    a = np.asarray(x)
    if is_tensor(x):
        declared = str(x.dtype).removeprefix("torch.")
        if declared != a.dtype.name and declared in ("int64", "uint64", "float64", "complex128"):
            a = a.astype(declared)
    return a


def make_np(x: Any) -> np.ndarray:
    """``x`` as a numpy array: numpy arrays as they are, Python/numpy scalars as a
    one-element array (torch's rule), ``jaxmod.Tensor``s and jax arrays copied to the host.
    bfloat16 becomes float32 (exact; torch goes through float16)."""
    if isinstance(x, np.ndarray):
        a = x
    elif np.isscalar(x):
        return np.array([x])
    elif hasattr(x, "__array__") or hasattr(x, "__jax_array__"):
        a = _host(x)
    else:
        raise NotImplementedError(
            f"Got {type(x)}, but numpy array, jax array or jaxmod Tensor are expected."
        )
    return a.astype(np.float32) if a.dtype == ml_dtypes.bfloat16 else a


# --------------------------------------------------------------------------- scalars
def scalar(
    name: str,
    tensor: Any,
    collections: Any = None,
    new_style: bool = False,
    double_precision: bool = False,
) -> Summary:
    """A one-value summary: ``simple_value`` (old style) or a ``scalars`` plugin tensor."""
    a = make_np(tensor).squeeze()
    if a.ndim != 0:
        raise AssertionError(
            f"Tensor should contain one element (0 dimensions). Was given size: {a.size} "
            f"and {a.ndim} dimensions."
        )
    v = float(a)
    if not new_style:
        return Summary(value=[Summary.Value(tag=name, simple_value=v)])
    if double_precision:
        t = TensorProto(double_val=[v], dtype="DT_DOUBLE")
    else:
        t = TensorProto(float_val=[v], dtype="DT_FLOAT")
    meta = SummaryMetadata(plugin_data=SummaryMetadata.PluginData(plugin_name="scalars"))
    return Summary(value=[Summary.Value(tag=name, tensor=t, metadata=meta)])


def half_to_int(f: float) -> int:
    """The int torch stores in ``half_val`` for a half value (the float32 bit pattern)."""
    return struct.unpack("i", struct.pack("f", f))[0]


def int_to_half(i: int) -> float:
    return struct.unpack("f", struct.pack("i", i))[0]


def _flat(a: np.ndarray) -> list:
    return a.reshape(-1).tolist()


def _complex(a: np.ndarray) -> list:
    return np.stack([a.real, a.imag], -1).reshape(-1).tolist()


# numpy dtype name -> (proto dtype, proto field, values), as torch maps its dtypes
_DTYPES = {
    "float16": ("DT_HALF", "half_val", lambda a: [half_to_int(x) for x in _flat(a)]),
    "float32": ("DT_FLOAT", "float_val", _flat),
    "float64": ("DT_DOUBLE", "double_val", _flat),
    "int8": ("DT_INT8", "int_val", _flat),
    "uint8": ("DT_UINT8", "uint32_val", _flat),
    "int16": ("DT_INT16", "int_val", _flat),
    "int32": ("DT_INT32", "int_val", _flat),
    "int64": ("DT_INT64", "int64_val", _flat),
    "complex64": ("DT_COMPLEX64", "scomplex_val", _complex),
    "complex128": ("DT_COMPLEX128", "dcomplex_val", _complex),
    "bool": ("DT_BOOL", "bool_val", _flat),
}


def tensor_proto(tag: str, tensor: Any) -> Summary:
    """The whole tensor in a ``tensor`` plugin summary."""
    a = _host(tensor)
    if a.nbytes >= 1 << 31:
        raise ValueError("tensor is bigger than protocol buffer's hard limit of 2GB in size")
    if a.dtype == ml_dtypes.bfloat16:
        dtype, field, conv = "DT_BFLOAT16", "half_val", _DTYPES["float16"][2]
        a = a.astype(np.float32)
    elif a.dtype.name in _DTYPES:
        dtype, field, conv = _DTYPES[a.dtype.name]
    else:
        raise ValueError(f"{tag} has unsupported tensor dtype {a.dtype}")
    t = TensorProto(
        dtype=dtype,
        tensor_shape=TensorShapeProto(dim=[TensorShapeProto.Dim(size=n) for n in a.shape]),
        **{field: conv(a)},
    )
    meta = SummaryMetadata(plugin_data=SummaryMetadata.PluginData(plugin_name="tensor"))
    return Summary(value=[Summary.Value(tag=tag, metadata=meta, tensor=t)])


# ------------------------------------------------------------------------- histograms
def default_bins() -> list[float]:
    """TensorBoard's default bucket edges: +-1e-12 growing by 1.1x up to 1e20, and 0."""
    pos, v = [], 1e-12
    while v < 1e20:
        pos.append(v)
        v *= 1.1
    return [-b for b in reversed(pos)] + [0] + pos


def histogram_raw(
    name: str,
    min: Any,
    max: Any,
    num: Any,
    sum: Any,
    sum_squares: Any,
    bucket_limits: Any,
    bucket_counts: Any,
) -> Summary:
    hist = HistogramProto(
        min=min,
        max=max,
        num=num,
        sum=sum,
        sum_squares=sum_squares,
        bucket_limit=bucket_limits,
        bucket=bucket_counts,
    )
    return Summary(value=[Summary.Value(tag=name, histo=hist)])


def histogram(name: str, values: Any, bins: Any, max_bins: int | None = None) -> Summary:
    hist = make_histogram(make_np(values).astype(float), bins, max_bins)
    return Summary(value=[Summary.Value(tag=name, histo=hist)])


def make_histogram(values: np.ndarray, bins: Any, max_bins: int | None = None) -> HistogramProto:
    """``np.histogram`` of the values cut to the buckets that hold them, plus one empty
    bucket on the left (TensorBoard keeps only right edges); ``max_bins`` merges
    neighbouring buckets."""
    if values.size == 0:
        raise ValueError("The input has no element.")
    values = values.reshape(-1)
    counts, limits = np.histogram(values, bins=bins)
    if max_bins is not None and len(counts) > max_bins:
        group = len(counts) // max_bins
        counts = np.pad(counts, (0, -len(counts) % group)).reshape(-1, group).sum(-1)
        limits = np.append(limits[:-1:group], limits[-1])
    used = np.flatnonzero(counts)
    first = int(used[0]) if used.size else len(counts)
    stop = int(used[-1]) + 1 if used.size else 1
    if first > 0:
        counts = counts[first - 1 : stop]
    else:
        counts = np.concatenate([[0], counts[:stop]])
    limits = limits[first : stop + 1]
    if counts.size == 0 or limits.size == 0:
        raise ValueError("The histogram is empty, please file a bug report.")
    return HistogramProto(
        min=values.min(),
        max=values.max(),
        num=len(values),
        sum=values.sum(),
        sum_squares=values.dot(values),
        bucket_limit=limits.tolist(),
        bucket=counts.tolist(),
    )


# ----------------------------------------------------------------------------- images
def make_grid(images: np.ndarray, ncols: int = 8) -> np.ndarray:
    """N x {1,3} x H x W images tiled into one 3 x (H*rows) x (W*cols) image, row-major."""
    if not isinstance(images, np.ndarray):
        raise AssertionError("plugin error, should pass numpy array here")
    if images.shape[1] == 1:
        images = np.repeat(images, 3, axis=1)
    if images.ndim != 4 or images.shape[1] != 3:
        raise AssertionError("Input should be a 4D numpy array with 3 channels")
    n, _, h, w = images.shape
    ncols = min(n, ncols)
    nrows = -(-n // ncols)
    pad = np.zeros((nrows * ncols - n, 3, h, w), images.dtype)
    grid = np.concatenate([images, pad]).reshape(nrows, ncols, 3, h, w)
    return grid.transpose(2, 0, 3, 1, 4).reshape(3, nrows * h, ncols * w)


def convert_to_HWC(tensor: np.ndarray, input_format: str) -> np.ndarray:  # noqa: N802
    """An image in ``input_format`` (``NCHW``, ``CHW``, ``HWC``, ``HW``, ...) as H x W x C;
    batches are tiled with :func:`make_grid`, gray images get three channels."""
    if len(set(input_format)) != len(input_format):
        raise AssertionError(
            f"You can not use the same dimension shorthand twice. input_format: {input_format}"
        )
    if tensor.ndim != len(input_format):
        raise AssertionError(
            f"size of input tensor and input format are different. tensor shape: "
            f"{tensor.shape}, input_format: {input_format}"
        )
    fmt = input_format.upper()
    if len(fmt) == 4:
        return make_grid(tensor.transpose([fmt.find(c) for c in "NCHW"])).transpose(1, 2, 0)
    if len(fmt) == 3:
        hwc = tensor.transpose([fmt.find(c) for c in "HWC"])
        return np.repeat(hwc, 3, axis=2) if hwc.shape[2] == 1 else hwc
    if len(fmt) == 2:
        return np.repeat(tensor.transpose([fmt.find(c) for c in "HW"])[:, :, None], 3, axis=2)
    return tensor


def _scale(a: np.ndarray) -> int:
    return 1 if a.dtype == np.uint8 else 255


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


_COLOR_TYPE = {1: 0, 2: 4, 3: 2, 4: 6}  # channels -> PNG colour type (gray, gray+A, RGB, RGBA)


def encode_png(hwc: np.ndarray) -> bytes:
    """An H x W x C uint8 image (C in 1..4) as 8-bit PNG bytes."""
    h, w, c = hwc.shape
    rows = np.concatenate([np.zeros((h, 1), np.uint8), hwc.reshape(h, w * c)], axis=1)
    header = struct.pack(">IIBBBBB", w, h, 8, _COLOR_TYPE[c], 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(np.ascontiguousarray(rows).tobytes(), 6))
        + _chunk(b"IEND", b"")
    )


def make_image(
    tensor: np.ndarray, rescale: float = 1, rois: Any = None, labels: Any = None
) -> Summary.Image:
    """An H x W x C uint8 array as a PNG ``Summary.Image``."""
    if rescale != 1 or rois is not None:
        raise NotImplementedError(
            "jaxmod's image summaries take rescale=1 and no boxes (torch resizes and draws "
            "boxes with pillow); resize or draw on the array before logging it"
        )
    h, w, c = tensor.shape
    return Summary.Image(height=h, width=w, colorspace=c, encoded_image_string=encode_png(tensor))


def image(tag: str, tensor: Any, rescale: float = 1, dataformats: str = "NCHW") -> Summary:
    """Images in ``[0, 1]`` (floats) or ``[0, 255]`` (uint8), clipped, as one PNG."""
    a = convert_to_HWC(make_np(tensor), dataformats)
    a = (a.astype(np.float32) * _scale(a)).clip(0, 255).astype(np.uint8)
    return Summary(value=[Summary.Value(tag=tag, image=make_image(a, rescale=rescale))])


# ------------------------------------------------------------------ audio, text, layout
def audio(tag: str, tensor: Any, sample_rate: int = 44100) -> Summary:
    """A mono clip in ``[-1, 1]`` as 16-bit WAV."""
    a = make_np(tensor).squeeze()
    if abs(a).max() > 1:
        print("warning: audio amplitude out of range, auto clipped.")
        a = a.clip(-1, 1)
    if a.ndim != 1:
        raise AssertionError("input tensor should be 1 dimensional.")
    pcm = (a * np.iinfo(np.int16).max).astype("<i2")
    buf = io.BytesIO()
    with wave.open(buf, "wb") as f:
        f.setnchannels(1)
        f.setsampwidth(2)
        f.setframerate(sample_rate)
        f.writeframes(pcm.tobytes())
    clip = Summary.Audio(
        sample_rate=sample_rate,
        num_channels=1,
        length_frames=pcm.shape[-1],
        encoded_audio_string=buf.getvalue(),
        content_type="audio/wav",
    )
    return Summary(value=[Summary.Value(tag=tag, audio=clip)])


def text(tag: str, text: str) -> Summary:
    """A string for the text plugin, under ``tag + "/text_summary"`` as torch names it."""
    meta = SummaryMetadata(
        plugin_data=SummaryMetadata.PluginData(
            plugin_name="text", content=TextPluginData(version=0).SerializeToString()
        )
    )
    t = TensorProto(
        dtype="DT_STRING",
        string_val=[text.encode("utf_8")],
        tensor_shape=TensorShapeProto(dim=[TensorShapeProto.Dim(size=1)]),
    )
    return Summary(value=[Summary.Value(tag=tag + "/text_summary", metadata=meta, tensor=t)])


def custom_scalars(layout: dict) -> Summary:
    """``{category: {chart: ["Multiline" | "Margin", tags]}}`` as the custom-scalar layout."""
    categories = []
    for title, charts in layout.items():
        out = []
        for chart, (kind, tags) in charts.items():
            if kind == "Margin":
                if len(tags) != 3:
                    raise AssertionError("len(tags) != 3")
                series = layout_pb2.MarginChartContent.Series(
                    value=tags[0], lower=tags[1], upper=tags[2]
                )
                out.append(
                    layout_pb2.Chart(
                        title=chart, margin=layout_pb2.MarginChartContent(series=[series])
                    )
                )
            else:
                out.append(
                    layout_pb2.Chart(
                        title=chart, multiline=layout_pb2.MultilineChartContent(tag=tags)
                    )
                )
        categories.append(layout_pb2.Category(title=title, chart=out))
    meta = SummaryMetadata(plugin_data=SummaryMetadata.PluginData(plugin_name="custom_scalars"))
    t = TensorProto(
        dtype="DT_STRING",
        tensor_shape=TensorShapeProto(),
        string_val=[layout_pb2.Layout(category=categories).SerializeToString()],
    )
    return Summary(value=[Summary.Value(tag="custom_scalars__config__", tensor=t, metadata=meta)])


# ---------------------------------------------------------------------------- hparams
def _plugin_summary(tag: str, **content: Any) -> Summary:
    data = HParamsPluginData(version=hp_metadata.PLUGIN_DATA_VERSION, **content)
    meta = SummaryMetadata(
        plugin_data=SummaryMetadata.PluginData(
            plugin_name=hp_metadata.PLUGIN_NAME, content=data.SerializeToString()
        )
    )
    return Summary(value=[Summary.Value(tag=tag, metadata=meta)])


def hparams(
    hparam_dict: dict | None = None,
    metric_dict: dict | None = None,
    hparam_domain_discrete: dict | None = None,
) -> tuple[Summary, Summary, Summary]:
    """The three hparams-plugin summaries: the experiment (hparam and metric names), the
    session start (the hparam values) and the session end (success). Numbers (bools
    included, as in torch) are FLOAT64 hparams, strings STRING; one-element
    Tensors/arrays are numbers."""
    for name, d in (("hparam_dict", hparam_dict), ("metric_dict", metric_dict)):
        if not isinstance(d, dict):
            raise TypeError(f"parameter: {name} should be a dictionary, nothing logged.")
    domains = hparam_domain_discrete or {}
    if not isinstance(domains, dict):
        raise TypeError("parameter: hparam_domain_discrete should be a dictionary, nothing logged.")
    for k, v in domains.items():
        if (
            k not in hparam_dict
            or not isinstance(v, list)
            or not all(isinstance(d, type(hparam_dict[k])) for d in v)
        ):
            raise TypeError(
                f"parameter: hparam_domain_discrete[{k}] should be a list of same type as "
                f"hparam_dict[{k}]."
            )
    infos, start = [], SessionStartInfo()
    for k, v in hparam_dict.items():
        discrete = domains.get(k)
        if v is None:
            continue
        if isinstance(v, (int, float)):
            kind, field = "DATA_TYPE_FLOAT64", "number_value"
        elif isinstance(v, str):
            kind, field = "DATA_TYPE_STRING", "string_value"
        elif hasattr(v, "__array__") or hasattr(v, "__jax_array__"):
            v, kind, field = float(make_np(v).reshape(-1)[0]), "DATA_TYPE_FLOAT64", "number_value"
            discrete = None  # torch gives array-valued hparams no domain
        else:
            raise ValueError("value should be one of int, float, str, bool, or torch.Tensor")
        setattr(start.hparams[k], field, v)
        info = api_pb2.HParamInfo(name=k, type=api_pb2.DataType.Value(kind))
        if discrete is not None:
            info.domain_discrete.SetInParent()
            for d in discrete:
                info.domain_discrete.values.add(**{field: d})
        infos.append(info)
    metrics = [api_pb2.MetricInfo(name=api_pb2.MetricName(tag=k)) for k in metric_dict]
    exp = api_pb2.Experiment(hparam_infos=infos, metric_infos=metrics)
    end = SessionEndInfo(status=api_pb2.Status.Value("STATUS_SUCCESS"))
    return (
        _plugin_summary(hp_metadata.EXPERIMENT_TAG, experiment=exp),
        _plugin_summary(hp_metadata.SESSION_START_INFO_TAG, session_start_info=start),
        _plugin_summary(hp_metadata.SESSION_END_INFO_TAG, session_end_info=end),
    )


# -------------------------------------------------------------------------- PR curves
def _pr_summary(tag: str, data: np.ndarray, num_thresholds: int) -> Summary:
    content = PrCurvePluginData(version=0, num_thresholds=num_thresholds).SerializeToString()
    meta = SummaryMetadata(
        plugin_data=SummaryMetadata.PluginData(plugin_name="pr_curves", content=content)
    )
    shape = TensorShapeProto(dim=[TensorShapeProto.Dim(size=n) for n in data.shape[:2]])
    t = TensorProto(dtype="DT_FLOAT", float_val=data.reshape(-1).tolist(), tensor_shape=shape)
    return Summary(value=[Summary.Value(tag=tag, metadata=meta, tensor=t)])


def pr_curve_raw(
    tag: str,
    tp: Any,
    fp: Any,
    tn: Any,
    fn: Any,
    precision: Any,
    recall: Any,
    num_thresholds: int = 127,
    weights: Any = None,
) -> Summary:
    data = np.stack([make_np(x) for x in (tp, fp, tn, fn, precision, recall)])
    return _pr_summary(tag, data, min(num_thresholds, 127))


def compute_curve(
    labels: np.ndarray, predictions: np.ndarray, num_thresholds: int = 127, weights: Any = None
) -> np.ndarray:
    """Rows tp, fp, tn, fn, precision, recall at ``num_thresholds`` thresholds in [0, 1]."""
    w = 1.0 if weights is None else weights
    bucket = np.int32(np.floor(predictions * (num_thresholds - 1)))
    pos = labels.astype(np.float64)
    span = (0, num_thresholds - 1)
    tp_b, _ = np.histogram(bucket, bins=num_thresholds, range=span, weights=pos * w)
    fp_b, _ = np.histogram(bucket, bins=num_thresholds, range=span, weights=(1.0 - pos) * w)
    tp, fp = np.cumsum(tp_b[::-1])[::-1], np.cumsum(fp_b[::-1])[::-1]
    tn, fn = fp[0] - fp, tp[0] - tp
    precision = tp / np.maximum(1e-7, tp + fp)
    recall = tp / np.maximum(1e-7, tp + fn)
    return np.stack((tp, fp, tn, fn, precision, recall))


def pr_curve(
    tag: str, labels: Any, predictions: Any, num_thresholds: int = 127, weights: Any = None
) -> Summary:
    n = min(num_thresholds, 127)  # torch's cap
    data = compute_curve(make_np(labels), make_np(predictions), num_thresholds=n, weights=weights)
    return _pr_summary(tag, data, n)


# ------------------------------------------------------------------------------- mesh
def mesh(
    tag: str,
    vertices: Any,
    colors: Any,
    faces: Any,
    config_dict: dict | None,
    display_name: str | None = None,
    description: str | None = None,
) -> Summary:
    """Vertices, faces and colours (each B x N x 3) for the mesh plugin."""
    config = "{}" if config_dict is None else json.dumps(config_dict, sort_keys=True)
    parts = [
        (vertices, MeshPluginData.VERTEX),
        (faces, MeshPluginData.FACE),
        (colors, MeshPluginData.COLOR),
    ]
    parts = [(make_np(t), kind) for t, kind in parts if t is not None]
    components = mesh_metadata.get_components_bitmask([kind for _, kind in parts])
    values = []
    for a, kind in parts:
        meta = mesh_metadata.create_summary_metadata(
            tag, display_name, kind, components, a.shape, description, json_config=config
        )
        shape = TensorShapeProto(dim=[TensorShapeProto.Dim(size=n) for n in a.shape[:3]])
        t = TensorProto(dtype="DT_FLOAT", float_val=a.reshape(-1).tolist(), tensor_shape=shape)
        values.append(
            Summary.Value(tag=mesh_metadata.get_instance_name(tag, kind), tensor=t, metadata=meta)
        )
    return Summary(value=values)
