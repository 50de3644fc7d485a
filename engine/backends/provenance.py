"""Provenance header of TensorRT engine files: write, read, and refuse a mismatch.

A serialized engine only runs on the TensorRT version and GPU model it was built with, so every
``.engine`` file starts with what it was built for and from::

    b"FPENGINE" | uint32 little-endian header length | header (UTF-8 JSON) | serialized engine

The loader compares the header with this machine and refuses a mismatch with the command that
rebuilds the engine. Nothing here imports TensorRT, so the checks are testable anywhere.
"""

from __future__ import annotations

import dataclasses
import json
import struct
from pathlib import Path
from typing import Any

from facepaint.engine.errors import ConfigError, EngineMismatch, ModelError

MAGIC = b"FPENGINE"
HEADER_VERSION = 1
_LENGTH = struct.Struct("<I")
# A header is a few hundred bytes; anything far larger means this is not our file.
_MAX_HEADER = 1 << 20


@dataclasses.dataclass(frozen=True)
class ShapeProfile:
    """Optimization profile of one input: smallest, typical and largest shape.

    Attributes:
        name: Input tensor name.
        min: Smallest shape the engine accepts.
        opt: Shape TensorRT tunes for.
        max: Largest shape the engine accepts.
    """

    name: str
    min: tuple[int, ...]
    opt: tuple[int, ...]
    max: tuple[int, ...]

    def __post_init__(self) -> None:
        for field in ("min", "opt", "max"):
            object.__setattr__(self, field, tuple(int(d) for d in getattr(self, field)))
        if not len(self.min) == len(self.opt) == len(self.max):
            raise ConfigError(f"profile '{self.name}': min/opt/max ranks differ: {self.min}, {self.opt}, {self.max}")
        if any(not lo <= op <= hi for lo, op, hi in zip(self.min, self.opt, self.max, strict=True)):
            raise ConfigError(f"profile '{self.name}': need min <= opt <= max per axis, got "
                              f"{self.min}, {self.opt}, {self.max}")

    def contains(self, shape: tuple[int, ...]) -> bool:
        """Whether ``shape`` lies within ``[min, max]`` on every axis."""
        if len(shape) != len(self.min):
            return False
        return all(lo <= s <= hi for lo, s, hi in zip(self.min, shape, self.max, strict=True))

    def to_text(self) -> str:
        """Return the command-line form ``name=1x3x64x64:1x3x256x256:1x3x512x512``."""
        dims = ":".join("x".join(str(d) for d in shape) for shape in (self.min, self.opt, self.max))
        return f"{self.name}={dims}"


def parse_profile(text: str) -> ShapeProfile:
    """Parse ``name=MIN:OPT:MAX`` (shapes written ``1x3x64x64``); one shape means a static input.

    Raises:
        ConfigError: If the text is malformed.
    """
    name, sep, dims = text.partition("=")
    shapes = dims.split(":") if sep else []
    if not name or len(shapes) not in (1, 3):
        raise ConfigError(f"profile must be NAME=MIN:OPT:MAX or NAME=SHAPE (shapes like 1x3x256x256), got '{text}'")
    try:
        parsed = [tuple(int(d) for d in s.split("x")) for s in shapes]
    except ValueError:
        raise ConfigError(f"profile '{text}': shapes are integers joined by 'x', like 1x3x256x256") from None
    lo, opt, hi = parsed * 3 if len(parsed) == 1 else parsed
    return ShapeProfile(name, lo, opt, hi)


@dataclasses.dataclass(frozen=True)
class EngineHeader:
    """What an engine was built for and from.

    Attributes:
        tensorrt: TensorRT version that built it (``tensorrt.__version__``).
        gpu_name: GPU model (``torch.cuda.get_device_name``).
        compute_capability: ``"major.minor"``, for example ``"8.9"``.
        precision: ``fp16`` or ``fp32`` (what was actually built).
        profiles: Input optimization profiles.
        source: Path of the ONNX file it was built from.
        source_sha256: SHA-256 of that file.
        header_version: Layout version of this header.
    """

    tensorrt: str
    gpu_name: str
    compute_capability: str
    precision: str
    profiles: tuple[ShapeProfile, ...]
    source: str
    source_sha256: str
    header_version: int = HEADER_VERSION

    def to_json(self) -> dict[str, Any]:
        """Return the JSON-ready mapping."""
        data = dataclasses.asdict(self)
        data["profiles"] = [dataclasses.asdict(p) for p in self.profiles]
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> EngineHeader:
        """Build a header from its JSON mapping.

        Raises:
            ModelError: If keys are missing or unknown.
        """
        if not isinstance(data, dict):
            raise ModelError(f"engine header is malformed: a JSON {type(data).__name__}, not an object")
        data = dict(data)  # the caller's mapping is left as it was
        try:
            profiles = tuple(ShapeProfile(**p) for p in data.pop("profiles"))
            return cls(profiles=profiles, **data)
        except (KeyError, TypeError, ValueError, AttributeError, ConfigError) as exc:
            raise ModelError(f"engine header is malformed: {' '.join(str(exc).split())}") from None


@dataclasses.dataclass(frozen=True)
class EngineTarget:
    """What the loader needs an engine to match (this machine plus the caller's request).

    Attributes:
        tensorrt: Installed TensorRT version.
        gpu_name: GPU that will run the engine.
        compute_capability: Its ``"major.minor"``.
        precision: Requested precision, or None to take the engine's own (the header is the truth;
            a caller's value only checks it).
        allow_fp32: Accept an fp32 engine when fp16 is requested.
        source_sha256: Hash of the source the engine must come from, or ``None`` not to check it.
    """

    tensorrt: str
    gpu_name: str
    compute_capability: str
    precision: str | None
    allow_fp32: bool = False
    source_sha256: str | None = None


def write_engine_file(path: str | Path, header: EngineHeader, payload: bytes) -> Path:
    """Write header and serialized engine to ``path`` (through a temporary file, then renamed)."""
    path = Path(path)
    blob = json.dumps(header.to_json(), sort_keys=True).encode("utf-8")
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as handle:
        handle.write(MAGIC + _LENGTH.pack(len(blob)) + blob)
        handle.write(payload)
    tmp.replace(path)
    return path


def read_engine_file(path: str | Path) -> tuple[EngineHeader, bytes]:
    """Read the header and the serialized engine.

    Raises:
        ModelError: If the file is missing or has no valid provenance header.
    """
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise ModelError(f"cannot read engine '{path}': {exc}") from None
    start = len(MAGIC) + _LENGTH.size
    if not data.startswith(MAGIC) or len(data) < start:
        raise ModelError(f"'{path}' has no facepaint provenance header (a bare TensorRT engine?); "
                         "rebuild it with 'facepaint-live compile --format tensorrt --model MODEL.onnx --out DIR'")
    (length,) = _LENGTH.unpack_from(data, len(MAGIC))
    if length > _MAX_HEADER or start + length > len(data):
        raise ModelError(f"'{path}': engine header length {length} is corrupt")
    try:
        header = json.loads(data[start:start + length].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelError(f"'{path}': engine header is not JSON: {exc}") from None
    return EngineHeader.from_json(header), data[start + length:]


def rebuild_command(header: EngineHeader, engine_path: str | Path, precision: str | None = None) -> str:
    """Return the command that rebuilds ``engine_path`` from its source on this machine."""
    parts = ["facepaint-live compile --format tensorrt --model", header.source, "--out", str(Path(engine_path).parent),
             "--precision", precision or header.precision]
    parts += [f"--profile {p.to_text()}" for p in header.profiles]
    return " ".join(parts)


def mismatches(header: EngineHeader, target: EngineTarget) -> list[str]:
    """Return one ``what: built for X, here Y`` line per field that does not match."""
    found = []
    pairs = (("TensorRT", header.tensorrt, target.tensorrt), ("GPU", header.gpu_name, target.gpu_name),
             ("compute capability", header.compute_capability, target.compute_capability))
    found += [f"{what}: built for {built}, here {here}" for what, built, here in pairs if built != here]
    fp32_allowed = target.allow_fp32 and target.precision == "fp16" and header.precision == "fp32"
    if target.precision is not None and header.precision != target.precision and not fp32_allowed:
        found.append(f"precision: built as {header.precision}, asked for {target.precision}")
    if target.source_sha256 is not None and target.source_sha256 != header.source_sha256:
        found.append(f"source {header.source}: built from sha256 {header.source_sha256[:12]}, "
                     f"file now {target.source_sha256[:12]}")
    return found


def check_header(header: EngineHeader, target: EngineTarget, engine_path: str | Path) -> None:
    """Refuse an engine built for another TensorRT, GPU, precision or source.

    Raises:
        EngineMismatch: With every mismatch and the command that rebuilds the engine.
    """
    if header.header_version != HEADER_VERSION:
        raise EngineMismatch(f"engine '{engine_path}' has header version {header.header_version}, this "
                             f"facepaint reads {HEADER_VERSION}; rebuild: {rebuild_command(header, engine_path)}")
    found = mismatches(header, target)
    if found:
        raise EngineMismatch(f"engine '{engine_path}' does not match this machine ({'; '.join(found)}); "
                             f"rebuild it: {rebuild_command(header, engine_path, target.precision)}")
