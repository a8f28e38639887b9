"""dlib's face-recognition ResNet (``dlib_face_recognition_resnet_model_v1.dat``) run with numpy.

The dlib-bin wheel is built without BLAS, so ``compute_face_descriptor`` spends ~100 ms on one 150x150 chip on this
machine. The network is small (29 convolutions, ~0.55 GFLOP), so this module reads the weights from dlib's own file
and runs the same network as im2col + numpy matrix products (OpenBLAS): ~15 ms a chip, and the outputs equal dlib's
to ~1e-6 (float32 rounding; pinned by a test against dlib), so the vectors, the thresholds and the stored embeddings
are unchanged.

The architecture is the one in dlib's ``dnn_face_recognition_ex.cpp``::

    input_rgb_image_sized<150> (x - (122.782, 117.001, 104.298)) / 256
    con 7x7/2 (32) affine relu, max_pool 3x3/2
    residual blocks: relu(affine(con3x3(relu(affine(con3x3/s(x))))) + skip), skip = x, or avg_pool 2x2/2 (x) when
    s = 2 (the sum zero-pads the smaller tensor at the bottom/right and the extra channels, as dlib's add_prev does)
    3 x 32, 4 x 64, 3 x 128, 3 x 256, 1 x 256 blocks (the first of each but 32 with stride 2)
    global average pool, fc 256 -> 128 without bias

Only the layers' parameters are read from the file (dlib's serialisation: variable-length integers, tensors as a
version, 4 dimensions and little-endian float32s); the structure read back is checked against the architecture above
and anything unexpected raises ``ValueError`` (the engine then falls back to dlib's own implementation).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

__all__ = ["DlibResNet"]

_MEAN_RGB = np.array([122.782, 117.001, 104.298], dtype=np.float32)
_CHIP = 150
_BATCH = 8  # chips per forward pass (bounds the im2col buffers to ~30 MB)
# (filters, kernel, stride) of the 29 convolutions, in forward order.
_CONVS = (
    [(32, 7, 2)]
    + [(32, 3, 1)] * 6
    + [(64, 3, 2)]
    + [(64, 3, 1)] * 7
    + [(128, 3, 2)]
    + [(128, 3, 1)] * 5
    + [(256, 3, 2)]
    + [(256, 3, 1)] * 5
    + [(256, 3, 2), (256, 3, 1)]
)


class _Reader:
    """dlib's serialisation: ints as a length byte (low nibble; bit 7 = negative) + little-endian bytes."""

    def __init__(self, data: bytes, pos: int) -> None:
        self.data = data
        self.pos = pos

    def int(self) -> int:
        head = self.data[self.pos]
        size = head & 0x0F
        value = int.from_bytes(self.data[self.pos + 1 : self.pos + 1 + size], "little")
        self.pos += 1 + size
        return -value if head & 0x80 else value

    def string(self) -> str:
        size = self.int()
        text = self.data[self.pos : self.pos + size].decode("ascii", errors="replace")
        self.pos += size
        return text

    def tensor(self) -> np.ndarray:
        version = self.int()
        if version != 2:
            raise ValueError(f"unsupported dlib tensor version {version}")
        shape = [self.int() for _ in range(4)]
        count = int(np.prod(shape))
        values = np.frombuffer(self.data, dtype="<f4", count=count, offset=self.pos).astype(np.float32)
        self.pos += 4 * count
        return values


def _layer_offsets(data: bytes, names: tuple[str, ...]) -> list[tuple[int, str]]:
    found = []
    for name in names:
        key = bytes([1, len(name)]) + name.encode()
        at = data.find(key)
        while at >= 0:
            found.append((at, name))
            at = data.find(key, at + 1)
    return sorted(found)


class DlibResNet:
    """The ResNet's weights with each affine (frozen batch norm) folded into the convolution before it."""

    dim = 128

    def __init__(self, convs: list[tuple[np.ndarray, np.ndarray, int, int, int]], fc: np.ndarray) -> None:
        self._convs = convs  # (weights (k*k*cin, cout), bias (cout,), kernel, stride, padding)
        self._fc = fc  # (256, 128)

    @classmethod
    def load(cls, path: Path | str) -> DlibResNet:
        data = Path(path).read_bytes()
        layers = _layer_offsets(data, ("con_4", "affine_", "fc_2", "avg_pool_2", "max_pool_2"))
        # Float payloads can contain the same bytes as a layer name by chance: parse in order, skipping any offset
        # inside a layer already read.
        con: list[tuple[np.ndarray, list[int]]] = []
        affine: list[np.ndarray] = []
        pools: list[tuple[str, list[int]]] = []
        fc: np.ndarray | None = None
        end = 0
        for offset, name in layers:
            if offset < end:
                continue
            reader = _Reader(data, offset)
            if reader.string() != name:
                continue
            if name == "con_4":
                params = reader.tensor()
                con.append((params, [reader.int() for _ in range(7)]))
            elif name == "affine_":
                affine.append(reader.tensor())
            elif name == "fc_2":
                outputs, inputs = reader.int(), reader.int()
                fc = reader.tensor().reshape(inputs, outputs)
            else:
                pools.append((name, [reader.int() for _ in range(6)]))
            end = reader.pos
        expected_pools = [("max_pool_2", [3, 3, 2, 2, 0, 0])] + [("avg_pool_2", [2, 2, 2, 2, 0, 0])] * 4
        if (
            len(con) != len(_CONVS)
            or len(affine) != len(_CONVS)
            or fc is None
            or fc.shape != (256, cls.dim)
            or pools[:5] != expected_pools
        ):
            raise ValueError(f"{path} does not hold dlib's face-recognition ResNet v1")
        convs = []
        cin = 3
        for (params, (filters, kr, kc, stride_y, stride_x, pad_y, pad_x)), aff, (want_f, want_k, want_s) in zip(
            con, affine, _CONVS, strict=True
        ):
            if (filters, kr, kc, stride_y, stride_x) != (want_f, want_k, want_k, want_s, want_s) or pad_y != pad_x:
                raise ValueError(f"{path}: unexpected convolution {filters}x{kr}x{kc}/{stride_y}")
            n = filters * cin * kr * kc
            if params.size != n + filters or aff.size != 2 * filters:
                raise ValueError(f"{path}: unexpected parameter count")
            gamma, beta = aff[:filters], aff[filters:]
            # dlib filters are (cout, cin, kr, kc) cross-correlation kernels; im2col below orders (kr, kc, cin).
            weights = params[:n].reshape(filters, cin, kr, kc).transpose(2, 3, 1, 0).reshape(kr * kc * cin, filters)
            bias = params[n:] * gamma + beta
            convs.append((np.ascontiguousarray(weights * gamma[None, :], dtype=np.float32), bias, kr, stride_y, pad_y))
            cin = filters
        return cls(convs, np.ascontiguousarray(fc, dtype=np.float32))

    def __call__(self, chips: list[np.ndarray]) -> np.ndarray:
        """Raw (not normalised) 128-d descriptors of 150x150 RGB uint8 chips: what dlib's
        ``compute_face_descriptor`` returns for the same chips (num_jitters 0)."""
        if not chips:
            return np.zeros((0, self.dim), dtype=np.float32)
        for chip in chips:
            if chip.shape != (_CHIP, _CHIP, 3):
                raise ValueError(f"expected a {_CHIP}x{_CHIP} RGB chip, got {chip.shape}")
        out = [self._forward(chips[i : i + _BATCH]) for i in range(0, len(chips), _BATCH)]
        return np.concatenate(out).astype(np.float32)

    def _forward(self, chips: list[np.ndarray]) -> np.ndarray:
        x = (np.stack(chips).astype(np.float32) - _MEAN_RGB) * np.float32(1 / 256)
        x = np.maximum(_conv(x, self._convs[0]), 0)
        x = _pool(x, 3, 2, np.max)
        for first, second in zip(self._convs[1::2], self._convs[2::2], strict=True):
            y = _conv(np.maximum(_conv(x, first), 0), second)
            skip = _pool(x, 2, 2, np.mean) if first[3] == 2 else x
            x = np.maximum(_add_padded(y, skip), 0)
        return x.mean(axis=(1, 2)) @ self._fc


def _windows(x: np.ndarray, kernel: int, stride: int) -> np.ndarray:
    """(n, oh, ow, c, k, k) view of the kernel windows of NHWC ``x`` (no padding)."""
    _, height, width, _ = x.shape
    oh, ow = (height - kernel) // stride + 1, (width - kernel) // stride + 1
    view = sliding_window_view(x, (kernel, kernel), axis=(1, 2))
    return view[:, : (oh - 1) * stride + 1 : stride, : (ow - 1) * stride + 1 : stride]


def _conv(x: np.ndarray, layer: tuple[np.ndarray, np.ndarray, int, int, int]) -> np.ndarray:
    weights, bias, kernel, stride, pad = layer
    if pad:
        x = np.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
    win = _windows(x, kernel, stride)
    n, oh, ow, channels = win.shape[:4]
    cols = win.transpose(0, 1, 2, 4, 5, 3).reshape(n * oh * ow, kernel * kernel * channels)
    out = cols @ weights
    out += bias
    return out.reshape(n, oh, ow, -1)


def _pool(x: np.ndarray, kernel: int, stride: int, op: object) -> np.ndarray:
    return op(_windows(x, kernel, stride), axis=(4, 5)).astype(np.float32)  # type: ignore[operator]


def _add_padded(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """dlib's add_prev: the output has the larger of each dimension; missing values count as zero."""
    if a.shape == b.shape:
        return a + b
    out = np.zeros([max(i, j) for i, j in zip(a.shape, b.shape, strict=True)], dtype=np.float32)
    out[: a.shape[0], : a.shape[1], : a.shape[2], : a.shape[3]] += a
    out[: b.shape[0], : b.shape[1], : b.shape[2], : b.shape[3]] += b
    return out
