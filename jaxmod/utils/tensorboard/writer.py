"""``SummaryWriter`` and ``FileWriter``: torch's TensorBoard writers on ``tensorboard``'s
``EventFileWriter``, so the event files are the ones torch writes."""

from __future__ import annotations

import importlib
import math
import os
import socket
import time
import warnings
from datetime import datetime
from typing import Any

import numpy as np
from tensorboard.compat import tf
from tensorboard.compat.proto import event_pb2
from tensorboard.compat.proto.event_pb2 import Event, SessionLog
from tensorboard.plugins.projector.projector_config_pb2 import EmbeddingInfo, ProjectorConfig
from tensorboard.summary.writer.event_file_writer import EventFileWriter

from jaxmod.utils.tensorboard import summary as S

__all__ = ["FileWriter", "SummaryWriter"]

_GRAPH_WARNED: list[bool] = []


class FileWriter:
    """Writes ``Event`` protos to one event file in ``log_dir`` (in a background thread)."""

    def __init__(
        self, log_dir: Any, max_queue: int = 10, flush_secs: int = 120, filename_suffix: str = ""
    ) -> None:
        self.event_writer = EventFileWriter(str(log_dir), max_queue, flush_secs, filename_suffix)

    def get_logdir(self) -> str:
        return self.event_writer.get_logdir()

    def add_event(self, event: Event, step: Any = None, walltime: float | None = None) -> None:
        event.wall_time = time.time() if walltime is None else walltime
        if step is not None:
            event.step = int(step)
        self.event_writer.add_event(event)

    def add_summary(
        self, summary: Any, global_step: Any = None, walltime: float | None = None
    ) -> None:
        self.add_event(event_pb2.Event(summary=summary), global_step, walltime)

    def add_graph(self, graph_profile: Any, walltime: float | None = None) -> None:
        graph, stepstats = graph_profile
        self.add_event(event_pb2.Event(graph_def=graph.SerializeToString()), None, walltime)
        run = event_pb2.TaggedRunMetadata(tag="step1", run_metadata=stepstats.SerializeToString())
        self.add_event(event_pb2.Event(tagged_run_metadata=run), None, walltime)

    def add_onnx_graph(self, graph: Any, walltime: float | None = None) -> None:
        self.add_event(event_pb2.Event(graph_def=graph.SerializeToString()), None, walltime)

    def flush(self) -> None:
        self.event_writer.flush()

    def close(self) -> None:
        self.event_writer.close()

    def reopen(self) -> None:
        self.event_writer.reopen()


def _figure_to_image(figures: Any, close: bool = True) -> np.ndarray:
    """Matplotlib figure(s) rendered by Agg, as C x H x W (or N x C x H x W) uint8 RGB.
    matplotlib is looked up here, not imported by jaxmod: whoever has a figure has it."""
    agg = importlib.import_module("matplotlib.backends.backend_agg")

    def one(fig: Any) -> np.ndarray:
        canvas = agg.FigureCanvasAgg(fig)
        canvas.draw()
        w, h = fig.canvas.get_width_height()
        rgb = np.frombuffer(canvas.buffer_rgba(), np.uint8).reshape(h, w, 4)[:, :, :3]
        if close:
            importlib.import_module("matplotlib.pyplot").close(fig)
        return np.moveaxis(rgb, 2, 0)

    return np.stack([one(f) for f in figures]) if isinstance(figures, list) else one(figures)


def _gfile_join(a: str, b: str) -> str:
    if hasattr(tf.io.gfile, "join"):
        return tf.io.gfile.join(a, b)
    return tf.io.gfile.get_filesystem(a).join(a, b)


def _write(path: str, data: bytes) -> None:
    with tf.io.gfile.GFile(path, "wb") as f:
        f.write(data)


class SummaryWriter:
    """Writes scalars, histograms, images, text, hparams, ... to event files in ``log_dir``
    for TensorBoard, with ``torch.utils.tensorboard.SummaryWriter``'s arguments and file
    layout. Values may be ``jaxmod.Tensor``s, jax arrays, numpy arrays or Python numbers
    (each logged value is copied to the host, so log outside ``jaxmod.jit``).

    ``log_dir=None`` is ``runs/<Mon DD_HH-MM-SS>_<hostname><comment>``; ``purge_step``
    marks a restart so TensorBoard hides the events at or after that step.
    ``add_graph`` logs nothing (there is no torch graph to trace).
    """

    def __init__(
        self,
        log_dir: Any = None,
        comment: str = "",
        purge_step: int | None = None,
        max_queue: int = 10,
        flush_secs: int = 120,
        filename_suffix: str = "",
    ) -> None:
        if not log_dir:
            stamp = datetime.now().strftime("%b%d_%H-%M-%S")
            log_dir = os.path.join("runs", stamp + "_" + socket.gethostname() + comment)
        self.log_dir = log_dir
        self.purge_step = purge_step
        self.max_queue = max_queue
        self.flush_secs = flush_secs
        self.filename_suffix = filename_suffix
        self.file_writer: FileWriter | None = None
        self.all_writers: dict[str, FileWriter] | None = None
        self._get_file_writer()
        self.default_bins = S.default_bins()

    def _get_file_writer(self) -> FileWriter:
        """The main FileWriter, made again after ``close()``."""
        if self.all_writers is None or self.file_writer is None:
            fw = FileWriter(self.log_dir, self.max_queue, self.flush_secs, self.filename_suffix)
            self.file_writer, self.all_writers = fw, {fw.get_logdir(): fw}
            if self.purge_step is not None:
                fw.add_event(Event(step=self.purge_step, file_version="brain.Event:2"))
                fw.add_event(
                    Event(step=self.purge_step, session_log=SessionLog(status=SessionLog.START))
                )
                self.purge_step = None
        return self.file_writer

    def get_logdir(self) -> str:
        return self.log_dir

    def _add(self, summary: Any, global_step: Any, walltime: float | None) -> None:
        self._get_file_writer().add_summary(summary, global_step, walltime)

    # ------------------------------------------------------------------ numbers
    def add_hparams(
        self,
        hparam_dict: dict,
        metric_dict: dict,
        hparam_domain_discrete: dict | None = None,
        run_name: str | None = None,
        global_step: int | None = None,
    ) -> None:
        """Hyperparameters and their metrics for the HParams tab, in the sub-run
        ``log_dir/run_name`` (default: the current time), as torch does."""
        if type(hparam_dict) is not dict or type(metric_dict) is not dict:
            raise TypeError("hparam_dict and metric_dict should be dictionary.")
        summaries = S.hparams(hparam_dict, metric_dict, hparam_domain_discrete)
        run = os.path.join(self._get_file_writer().get_logdir(), run_name or str(time.time()))
        with SummaryWriter(log_dir=run) as w:
            for s in summaries:
                w.file_writer.add_summary(s, global_step)
            for k, v in metric_dict.items():
                w.add_scalar(k, v, global_step)

    def add_scalar(
        self,
        tag: str,
        scalar_value: Any,
        global_step: Any = None,
        walltime: float | None = None,
        new_style: bool = False,
        double_precision: bool = False,
    ) -> None:
        summary = S.scalar(
            tag, scalar_value, new_style=new_style, double_precision=double_precision
        )
        self._add(summary, global_step, walltime)

    def add_scalars(
        self,
        main_tag: str,
        tag_scalar_dict: dict,
        global_step: Any = None,
        walltime: float | None = None,
    ) -> None:
        """One curve per key, each in its own run directory
        ``log_dir/<main_tag with / as _>_<key>`` under the tag ``main_tag`` (torch's layout)."""
        walltime = time.time() if walltime is None else walltime
        root = self._get_file_writer().get_logdir()
        assert self.all_writers is not None
        for tag, value in tag_scalar_dict.items():
            path = root + "/" + main_tag.replace("/", "_") + "_" + tag
            fw = self.all_writers.get(path)
            if fw is None:
                fw = FileWriter(path, self.max_queue, self.flush_secs, self.filename_suffix)
                self.all_writers[path] = fw
            fw.add_summary(S.scalar(main_tag, value), global_step, walltime)

    def add_tensor(
        self, tag: str, tensor: Any, global_step: Any = None, walltime: float | None = None
    ) -> None:
        self._add(S.tensor_proto(tag, tensor), global_step, walltime)

    def add_histogram(
        self,
        tag: str,
        values: Any,
        global_step: Any = None,
        bins: Any = "tensorflow",
        walltime: float | None = None,
        max_bins: int | None = None,
    ) -> None:
        """A histogram of ``values``; ``bins`` is TensorBoard's default exponential edges
        (``"tensorflow"``) or anything ``np.histogram`` takes (``"auto"``, ``"fd"``, edges)."""
        if isinstance(bins, str) and bins == "tensorflow":
            bins = self.default_bins
        self._add(S.histogram(tag, values, bins, max_bins=max_bins), global_step, walltime)

    def add_histogram_raw(
        self,
        tag: str,
        min: Any,
        max: Any,
        num: Any,
        sum: Any,
        sum_squares: Any,
        bucket_limits: Any,
        bucket_counts: Any,
        global_step: Any = None,
        walltime: float | None = None,
    ) -> None:
        if len(bucket_limits) != len(bucket_counts):
            raise ValueError("len(bucket_limits) != len(bucket_counts), see the document.")
        summary = S.histogram_raw(
            tag, min, max, num, sum, sum_squares, bucket_limits, bucket_counts
        )
        self._add(summary, global_step, walltime)

    def add_pr_curve(
        self,
        tag: str,
        labels: Any,
        predictions: Any,
        global_step: Any = None,
        num_thresholds: int = 127,
        weights: Any = None,
        walltime: float | None = None,
    ) -> None:
        summary = S.pr_curve(
            tag, S.make_np(labels), S.make_np(predictions), num_thresholds, weights
        )
        self._add(summary, global_step, walltime)

    def add_pr_curve_raw(
        self,
        tag: str,
        true_positive_counts: Any,
        false_positive_counts: Any,
        true_negative_counts: Any,
        false_negative_counts: Any,
        precision: Any,
        recall: Any,
        global_step: Any = None,
        num_thresholds: int = 127,
        weights: Any = None,
        walltime: float | None = None,
    ) -> None:
        summary = S.pr_curve_raw(
            tag,
            true_positive_counts,
            false_positive_counts,
            true_negative_counts,
            false_negative_counts,
            precision,
            recall,
            num_thresholds,
            weights,
        )
        self._add(summary, global_step, walltime)

    def add_custom_scalars_multilinechart(
        self, tags: list, category: str = "default", title: str = "untitled"
    ) -> None:
        self._add(S.custom_scalars({category: {title: ["Multiline", tags]}}), None, None)

    def add_custom_scalars_marginchart(
        self, tags: list, category: str = "default", title: str = "untitled"
    ) -> None:
        if len(tags) != 3:
            raise AssertionError(f"Expected 3 tags, got {len(tags)}.")
        self._add(S.custom_scalars({category: {title: ["Margin", tags]}}), None, None)

    def add_custom_scalars(self, layout: dict) -> None:
        self._add(S.custom_scalars(layout), None, None)

    # ------------------------------------------------------------------- media
    def add_image(
        self,
        tag: str,
        img_tensor: Any,
        global_step: Any = None,
        walltime: float | None = None,
        dataformats: str = "CHW",
    ) -> None:
        """One image (``CHW`` by default; ``HWC``, ``HW``, ... with ``dataformats``), floats
        in [0, 1] or uint8; PNG-encoded without pillow."""
        self._add(S.image(tag, img_tensor, dataformats=dataformats), global_step, walltime)

    def add_images(
        self,
        tag: str,
        img_tensor: Any,
        global_step: Any = None,
        walltime: float | None = None,
        dataformats: str = "NCHW",
    ) -> None:
        """A batch of images tiled into one grid of 8 columns, as torch lays it out."""
        self._add(S.image(tag, img_tensor, dataformats=dataformats), global_step, walltime)

    def add_image_with_boxes(self, *args: Any, **kwargs: Any) -> None:
        raise NotImplementedError(
            "jaxmod's SummaryWriter does not draw boxes (torch draws them with pillow): draw "
            "them on the image array and call add_image"
        )

    def add_figure(
        self,
        tag: str,
        figure: Any,
        global_step: Any = None,
        close: bool = True,
        walltime: float | None = None,
    ) -> None:
        """A matplotlib figure (or a list of them, tiled) rendered by Agg, as an image."""
        fmt = "NCHW" if isinstance(figure, list) else "CHW"
        self.add_image(tag, _figure_to_image(figure, close), global_step, walltime, dataformats=fmt)

    def add_video(
        self,
        tag: str,
        vid_tensor: Any,
        global_step: Any = None,
        fps: int = 4,
        walltime: float | None = None,
    ) -> None:
        raise NotImplementedError(
            "add_video needs moviepy's GIF writer in torch; jaxmod's SummaryWriter does not log "
            "video: log frames with add_images"
        )

    def add_audio(
        self,
        tag: str,
        snd_tensor: Any,
        global_step: Any = None,
        sample_rate: int = 44100,
        walltime: float | None = None,
    ) -> None:
        self._add(S.audio(tag, snd_tensor, sample_rate=sample_rate), global_step, walltime)

    def add_text(
        self, tag: str, text_string: str, global_step: Any = None, walltime: float | None = None
    ) -> None:
        self._add(S.text(tag, text_string), global_step, walltime)

    def add_mesh(
        self,
        tag: str,
        vertices: Any,
        colors: Any = None,
        faces: Any = None,
        config_dict: dict | None = None,
        global_step: Any = None,
        walltime: float | None = None,
    ) -> None:
        self._add(S.mesh(tag, vertices, colors, faces, config_dict), global_step, walltime)

    # ------------------------------------------------------------------- graphs
    def add_graph(
        self,
        model: Any,
        input_to_model: Any = None,
        verbose: bool = False,
        use_strict_trace: bool = True,
    ) -> None:
        """Logs nothing: torch traces the model with TorchScript, and a jaxmod model has no
        torch graph. Warns once; ``jax.jit(f).lower(x).as_text()`` shows the XLA program."""
        if not _GRAPH_WARNED:
            _GRAPH_WARNED.append(True)
            warnings.warn(
                "SummaryWriter.add_graph logs nothing under jaxmod: there is no torch graph to "
                "trace (print jax.jit(fn).lower(x).as_text() to see the compiled program)",
                stacklevel=2,
            )

    def add_onnx_graph(self, prototxt: Any) -> None:
        raise NotImplementedError("add_onnx_graph: jaxmod reads no ONNX graphs")

    # --------------------------------------------------------------- embeddings
    @staticmethod
    def _encode(raw: str) -> str:
        return raw.replace("%", "%25").replace("/", "%2f").replace("\\", "%5c")

    def add_embedding(
        self,
        mat: Any,
        metadata: list | None = None,
        label_img: Any = None,
        global_step: int | None = None,
        tag: str = "default",
        metadata_header: list | None = None,
    ) -> None:
        """N x D points for the projector: ``<log_dir>/<step:05d>/<tag>/tensors.tsv``, with
        ``metadata.tsv``, ``sprite.png`` for ``label_img`` (N x C x H x W) and the shared
        ``projector_config.pbtxt``, as torch writes them."""
        mat = S.make_np(mat)
        step = 0 if global_step is None else global_step
        subdir = f"{str(step).zfill(5)}/{self._encode(tag)}"
        root = self._get_file_writer().get_logdir()
        path = os.path.join(root, subdir)
        fs = tf.io.gfile
        if fs.exists(path):
            if not fs.isdir(path):
                raise NotADirectoryError(f"Path: `{path}` exists, but is a file. Cannot proceed.")
            print("warning: Embedding dir exists, did you set global_step for add_embedding()?")
        else:
            fs.makedirs(path)
        if metadata is not None:
            if mat.shape[0] != len(metadata):
                raise AssertionError("#labels should equal with #data points")
            if metadata_header:
                if len(metadata_header) != len(metadata[0]):
                    raise AssertionError(
                        "len of header must be equal to the number of columns in metadata"
                    )
                lines = ["\t".join(str(e) for e in row) for row in [metadata_header, *metadata]]
            else:
                lines = [str(x) for x in metadata]
            _write(_gfile_join(path, "metadata.tsv"), ("\n".join(lines) + "\n").encode())
        if label_img is not None:
            imgs = S.make_np(label_img)
            if mat.shape[0] != imgs.shape[0]:
                raise AssertionError("#images should equal with #data points")
            _write(_gfile_join(path, "sprite.png"), _sprite(imgs))
        if mat.ndim != 2:
            raise AssertionError("mat should be 2D, where mat.size(0) is the number of data points")
        rows = ("\t".join(str(v) for v in row) + "\n" for row in mat.tolist())
        _write(_gfile_join(path, "tensors.tsv"), "".join(rows).encode())
        if not hasattr(self, "_projector_config"):
            self._projector_config = ProjectorConfig()
        info = EmbeddingInfo(
            tensor_name=f"{tag}:{str(step).zfill(5)}",
            tensor_path=_gfile_join(subdir, "tensors.tsv"),
        )
        if metadata is not None:
            info.metadata_path = _gfile_join(subdir, "metadata.tsv")
        if label_img is not None:
            info.sprite.image_path = _gfile_join(subdir, "sprite.png")
            info.sprite.single_image_dim.extend([imgs.shape[3], imgs.shape[2]])
        self._projector_config.embeddings.extend([info])
        config = str(self._projector_config)  # protobuf text format, as torch writes it
        _write(_gfile_join(root, "projector_config.pbtxt"), config.encode())

    # ------------------------------------------------------------------ closing
    def flush(self) -> None:
        for w in (self.all_writers or {}).values():
            w.flush()

    def close(self) -> None:
        if self.all_writers is None:
            return  # a second close does nothing
        for w in self.all_writers.values():
            w.flush()
            w.close()
        self.file_writer = self.all_writers = None

    def __enter__(self) -> SummaryWriter:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def _sprite(images: np.ndarray) -> bytes:
    """N x C x H x W images in [0, 1] tiled ceil(sqrt(N)) per row into a square PNG."""
    grid = S.make_grid(images, ncols=math.ceil(images.shape[0] ** 0.5))  # 3 x H' x W'
    side = grid.shape[2]
    square = np.zeros((side, side, 3))
    square[: grid.shape[1]] = grid.transpose(1, 2, 0)
    return S.encode_png(np.uint8((square * 255).clip(0, 255)))
