"""Image encodes (thumbnails): JPEG, PNG or WebP stills of the decoded video, at a low rate.

An image encode hangs off the video track's shared decoder like any other encoder, so a thumbnail
costs no second decode. Frames are picked by their presentation time (``Framerate``, or
``SkipFrames`` as fps_in / (n + 1); OME's sample profile uses 1 per second, the default here),
scaled with swscale to the encode's size (one dimension given keeps the aspect ratio) and encoded
as one self-contained picture each. Encoded tracks use OME's image time base 1/90000.
"""

from __future__ import annotations

import logging
from dataclasses import astuple, dataclass
from typing import Any

import av
from av.codec.context import Flags

from kiln.config.values import number
from kiln.media.model import Codec, MediaKind, Packet, Track
from kiln.media.stream.bypass import codec_of
from kiln.media.transcode.codecs import VIDEO_TIME_BASE, CodecOpenError, Encoder, video_context
from kiln.media.transcode.settings import EncodeKey, EncodeSettingsError, output_size

log = logging.getLogger(__name__)

DEFAULT_IMAGE_FRAMERATE = 1.0
JPEG_QSCALE = 3  # ffmpeg's -q:v for mjpeg (2 best .. 31 worst): good stills at a few kB for 320x180
FF_QP2LAMBDA = 118


@dataclass(frozen=True, slots=True)
class ImageFormat:
    encoder: str
    pix_fmt: str
    extension: str
    content_type: str


IMAGE_FORMATS = {
    Codec.JPEG: ImageFormat("mjpeg", "yuvj420p", "jpg", "image/jpeg"),
    Codec.PNG: ImageFormat("png", "rgb24", "png", "image/png"),
    Codec.WEBP: ImageFormat("libwebp", "yuv420p", "webp", "image/webp"),
}


@dataclass(frozen=True, slots=True)
class ImageSettings:
    codec: Codec
    width: int
    height: int
    framerate: float  # images per second

    @property
    def key(self) -> EncodeKey:
        return ("image", *astuple(self))

    @property
    def format(self) -> ImageFormat:
        return IMAGE_FORMATS[self.codec]



def image_settings(encode: dict[str, Any], source: Track, input_fps: float) -> ImageSettings:
    codec = codec_of(encode.get("codec"))
    if codec not in IMAGE_FORMATS:
        raise EncodeSettingsError(f"image codec {encode.get('codec')!r} cannot be encoded")
    width, height = output_size(int(number(encode.get("width")) or 0), int(number(encode.get("height")) or 0),
                                source.width, source.height)
    skip = number(encode.get("skipFrames"))
    wanted = number(encode.get("framerate"))
    if skip is not None and 0 <= skip <= 120 and input_fps > 0:
        fps = input_fps / (int(skip) + 1)
    elif wanted is not None and wanted > 0:
        fps = wanted
    else:
        fps = DEFAULT_IMAGE_FRAMERATE
    return ImageSettings(codec, width, height, round(fps, 3))


class ImageEncoder(Encoder[av.VideoFrame]):
    """One still per 1/framerate seconds of input time; every packet is a complete image file."""

    def __init__(self, settings: ImageSettings, label: str) -> None:
        self.settings = settings
        self.label = label
        fmt = settings.format
        try:
            ctx = video_context(fmt.encoder, "w")
            ctx.width, ctx.height, ctx.pix_fmt = settings.width, settings.height, fmt.pix_fmt
            ctx.time_base = VIDEO_TIME_BASE
            if settings.codec is Codec.JPEG:
                ctx.flags |= Flags.qscale
                ctx.options = {"global_quality": str(JPEG_QSCALE * FF_QP2LAMBDA)}
            ctx.open()
        except (av.error.FFmpegError, ValueError) as exc:
            raise CodecOpenError(f"the {settings.codec.value} encoder could not be opened: {exc}") from exc
        self.ctx = ctx
        track = Track(0, MediaKind.VIDEO, settings.codec, VIDEO_TIME_BASE, width=settings.width,
                      height=settings.height, framerate_conf=settings.framerate)
        super().__init__(track)
        self.interval = 1.0 / settings.framerate if settings.framerate > 0 else 1.0
        self._next: float | None = None   # input time (s) from which the next image is due
        self._last: float | None = None

    def _due(self, t: float) -> bool:
        """Whether the frame at input time ``t`` (s) becomes an image; keeps a steady 1/framerate grid."""
        last, self._last = self._last, t
        went_back = last is not None and t < last - self.interval  # a new publish restarting its clock
        if self._next is not None and t < self._next and not went_back:
            return False
        if self._next is None or went_back or t >= self._next + self.interval:
            self._next = t + self.interval
        else:
            self._next += self.interval
        return True

    def encode(self, frame: av.VideoFrame) -> list[Packet]:
        self.counters.frames_in += 1
        t = float(frame.pts * frame.time_base) if frame.pts is not None and frame.time_base else 0.0
        if not self._due(t):
            return []
        s = self.settings
        picture = frame.reformat(width=s.width, height=s.height, format=s.format.pix_fmt)
        pts = round(t / VIDEO_TIME_BASE)
        picture.pts, picture.time_base = pts, VIDEO_TIME_BASE
        picture.pict_type = av.video.frame.PictureType.NONE
        out: list[Packet] = []
        for p in self.ctx.encode(picture):
            out.append(Packet(0, pts, pts, VIDEO_TIME_BASE, bytes(p), keyframe=True))
        return out

    def flush(self) -> list[Packet]:
        return []  # every image is emitted as it is encoded

    def image_rate(self) -> float:
        return self.settings.framerate

