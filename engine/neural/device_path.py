"""The neural reenactor's per-frame path on one torch device, for ``--device cuda``.

``NeuralFaceReenactor`` builds the generator's input with numpy and cv2 and brings the correction
back with cv2, so on a GPU every frame would go host → device → host → device. Here the source's
square, crop and edge ramp go to the device once (``DeviceReenactorPath``); per frame only the
target landmarks and the two warps' maps go up, and only the finished crop comes down
(``PinnedRing``). The per-frame step has static shapes for a source, so it can be replayed as a
CUDA graph (``device_ops.GraphedModule``). The maps are still computed on the host (``engine/warp.py``).
"""

from __future__ import annotations

from typing import Protocol

import numpy as np
import torch

from facepaint.engine.backends.base import Backend
from facepaint.engine.errors import ConfigError, InputError
from facepaint.engine.neural.device_ops import Heatmaps, MapUpsampler, affine_back, back_grid, remap
from facepaint.engine.source_face import SourceFace
from facepaint.engine.warp import PiecewiseAffineWarp

Maps = tuple[np.ndarray, np.ndarray]
# (landmarks, coarse map x, coarse map y, full map x, full map y) on the device
FrameInputs = tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]


def _upload_image(image: np.ndarray, device: torch.device) -> torch.Tensor:
    """(H, W, 3) uint8 → (3, H, W) float32 0..255 on ``device``."""
    return torch.from_numpy(np.ascontiguousarray(image)).to(device).permute(2, 0, 1).float().contiguous()


class DeviceReenactorPath:
    """``NeuralFaceReenactor.generate`` + ``render`` for one source, as torch ops on ``device``.

    The math is the reenactor's: the coarse warp and the heatmaps feed the generator; the output
    crop is ``base + warp_back((face - coarse) * edge)``, clipped to 0..255, where ``base`` is the
    full-resolution geometric warp of the crop; the mixer's mask is the warped head mask grown by
    ``warp_back(person * edge)``. Warps and heatmaps are float32; the generator backend casts its
    input to its own precision and returns float32.

    Args:
        source: The prepared source face (its crop, head mask and warp).
        square: (S, S, 3) uint8 RGB source square (``warp_to_square`` of the crop).
        matrix: (2, 3) affine from crop pixels to square pixels.
        edge: (S, S) float32 ramp that fades the correction out at the square's border.
        coarse_warp: The square's warp (``CoarseWarp.warp``), for ``step_cells``.
        device: Where the path runs.
        interpolation: The full-resolution warp's resampling; only ``"linear"`` runs here.

    Raises:
        ConfigError: For an interpolation other than linear.
    """

    def __init__(self, source: SourceFace, square: np.ndarray, matrix: np.ndarray, edge: np.ndarray,
                 coarse_warp: PiecewiseAffineWarp, device: torch.device | str, interpolation: str = "linear") -> None:
        if interpolation != "linear":
            raise ConfigError(f"the device path resamples bilinearly, not '{interpolation}'; "
                              "use interpolation = \"linear\" with --device cuda")
        self.device = torch.device(device)
        self.size = square.shape[0]
        self.crop_size = (source.crop.shape[1], source.crop.shape[0])
        self.square = _upload_image(square, self.device)
        self.crop = _upload_image(source.crop, self.device)
        self.head_mask = torch.from_numpy(np.ascontiguousarray(source.head_mask, np.float32)).to(self.device)
        self.edge = torch.from_numpy(np.ascontiguousarray(edge, np.float32)).to(self.device)
        self._source_in = self.square / 127.5 - 1.0
        self._heatmaps = Heatmaps(self.size, device=self.device)
        self._grid = back_grid(matrix, self.size, self.crop_size, self.device)
        self._upsample = (MapUpsampler(coarse_warp, self.device), MapUpsampler(source.warp, self.device))

    def upload(self, landmarks_sq: np.ndarray, coarse_maps: Maps, full_maps: Maps) -> FrameInputs:
        """The per-frame host → device copies: (landmarks, coarse x, coarse y, full x, full y).

        Args:
            landmarks_sq: (478, 3) target landmarks in square pixels.
            coarse_maps: (map_x, map_y) of the coarse warp, (S, S) float32 each (``CoarseWarp.maps``),
                or its cell maps (``full=False``) for ``step_cells``.
            full_maps: (map_x, map_y) of the full-resolution warp, (h, w) float32 each
                (``GeometricFaceReenactor.maps``), or its cell maps for ``step_cells``.
        """
        def up(array: np.ndarray) -> torch.Tensor:
            return torch.from_numpy(np.ascontiguousarray(array, np.float32)).to(self.device, non_blocking=True)

        return up(landmarks_sq), up(coarse_maps[0]), up(coarse_maps[1]), up(full_maps[0]), up(full_maps[1])

    def generate(self, landmarks: torch.Tensor, map_x: torch.Tensor, map_y: torch.Tensor,
                 generator: Backend) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(face, coarse, person) in the square: faces (3, S, S) float32 0..255 (face unclipped),
        person (S, S) in [0, 1]; inputs on the device, as ``upload`` gives them; ``generator``'s
        outputs on this device too (a torch backend on it, or TensorRT)."""
        # cv2 remaps the uint8 square into uint8: round as it does, the generator was trained so.
        coarse = remap(self.square, map_x, map_y).round()
        x = torch.cat([self._source_in, coarse / 127.5 - 1.0, self._heatmaps(landmarks)])[None]
        out = generator.infer({"x": x})
        person = 1.0 - torch.softmax(out["segmentation"].float(), 1)[0, 0]
        return (out["face"][0].float() + 1.0) * 127.5, coarse, person

    def step(self, landmarks: torch.Tensor, coarse_x: torch.Tensor, coarse_y: torch.Tensor,
             full_x: torch.Tensor, full_y: torch.Tensor, generator: Backend) -> tuple[torch.Tensor, torch.Tensor]:
        """One frame on the device, from uploaded full maps (no host copy: CUDA-graph capturable).

        Returns:
            (image, person mask): (h, w, 3) uint8 RGB crop and (h, w) float32 in [0, 1].
        """
        with torch.inference_mode():
            face, coarse, person = self.generate(landmarks, coarse_x, coarse_y, generator)
            # Correction and person probability go back in one 4-channel warp (zero off the square).
            stack = torch.cat([(face - coarse) * self.edge, (person * self.edge)[None]])
            back = affine_back(stack, None, self.crop_size, grid=self._grid)
            base = remap(self.crop, full_x, full_y).round()
            # + 0.5 then truncation: the rounding of the numpy path's astype(uint8).
            image = (base + back[:3] + 0.5).clamp_(0.0, 255.0).to(torch.uint8).permute(1, 2, 0).contiguous()
            # Grown by the prediction, never cut (see NeuralFaceReenactor._person_mask).
            head = remap(self.head_mask[None], full_x, full_y, border="constant")[0]
            mask = torch.maximum(head, back[3])
        return image, mask

    def step_cells(self, landmarks: torch.Tensor, coarse_x: torch.Tensor, coarse_y: torch.Tensor,
                   full_x: torch.Tensor, full_y: torch.Tensor, generator: Backend) -> tuple[torch.Tensor, torch.Tensor]:
        """``step`` from the two warps' cell maps (``maps(..., full=False)``), finished here."""
        coarse, full = self._upsample
        return self.step(landmarks, *coarse(coarse_x, coarse_y), *full(full_x, full_y), generator=generator)


class CopyEvent(Protocol):
    """What ``PinnedRing.copy_from`` returns with its buffer (``torch.cuda.Event`` on CUDA)."""

    def synchronize(self) -> None:
        """Wait until the copy has landed."""


class _Done:
    """The event of a copy that is already done (CPU)."""

    def synchronize(self) -> None:
        """Nothing to wait for."""


class PinnedRing:
    """Host buffers reused round-robin for device → host copies of one shape and dtype.

    On CUDA each copy is first snapshotted on the current stream into a device buffer of the slot
    (microseconds; the source tensor may then be overwritten at once, as a CUDA graph's static
    output is by the next replay), then copied without blocking into the slot's pinned host
    buffer on a side stream: frame n + 1 computes while frame n copies, and the caller waits on the
    returned event only when it needs the pixels. On the CPU a copy is a plain copy into the
    preallocated buffer, with an event that is already done.

    A returned view stays valid until ``slots`` more copies have been issued.

    Args:
        shape: Shape of every copied tensor.
        dtype: Its dtype.
        slots: Buffers in the ring (2: one being read, one being written).
        device: The device the tensors come from.
    """

    def __init__(self, shape: tuple[int, ...], dtype: torch.dtype = torch.uint8, slots: int = 2,
                 device: torch.device | str = "cpu") -> None:
        if slots < 1:
            raise ValueError(f"a ring needs at least one slot, got {slots}")
        self.device = torch.device(device)
        self.shape = tuple(shape)
        self.dtype = dtype
        cuda = self.device.type == "cuda"
        self._buffers = [torch.empty(self.shape, dtype=dtype, pin_memory=cuda) for _ in range(slots)]
        self._staging = [torch.empty(self.shape, dtype=dtype, device=self.device) for _ in range(slots)] if cuda else []
        self._events: list[torch.cuda.Event | None] = [None] * slots
        self._stream = torch.cuda.Stream(self.device) if cuda else None
        self._next = 0

    def copy_from(self, tensor: torch.Tensor) -> tuple[np.ndarray, CopyEvent]:
        """Copy ``tensor`` into the next buffer.

        Args:
            tensor: Of the ring's shape and dtype, on the ring's device.

        Returns:
            (numpy view of the buffer, event to wait on before reading it).

        Raises:
            InputError: When the tensor does not fit the ring.
        """
        if tuple(tensor.shape) != self.shape or tensor.dtype != self.dtype or tensor.device.type != self.device.type:
            raise InputError(f"this ring copies {self.shape} {self.dtype} from {self.device}, "
                             f"got {tuple(tensor.shape)} {tensor.dtype} on {tensor.device}")
        slot = self._next
        self._next = (slot + 1) % len(self._buffers)
        buffer = self._buffers[slot]
        if self._stream is None:
            buffer.copy_(tensor)
            return buffer.numpy(), _Done()
        current = torch.cuda.current_stream(self.device)
        previous = self._events[slot]
        if previous is not None:  # a device-side wait: the slot's last copy has left its staging buffer
            current.wait_event(previous)
        self._staging[slot].copy_(tensor)
        self._stream.wait_stream(current)
        with torch.cuda.stream(self._stream):
            buffer.copy_(self._staging[slot], non_blocking=True)
            event = torch.cuda.Event()
            event.record(self._stream)
        self._events[slot] = event
        return buffer.numpy(), event
