"""Minimal SDP reading for WHIP/WHEP: m-sections with their mid, direction, msid and codecs.

Only what the room service needs to name tracks and check offers; it never rewrites SDP.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

Direction = Literal["sendrecv", "sendonly", "recvonly", "inactive"]
_DIRECTIONS: Final[frozenset[str]] = frozenset({"sendrecv", "sendonly", "recvonly", "inactive"})


class SdpError(ValueError):
    """The text is not an SDP this service can use."""


@dataclass(frozen=True)
class Codec:
    payload_type: int
    name: str  # as written in a=rtpmap, e.g. "VP8", "opus", "H264"
    clock_rate: int
    channels: int | None = None
    fmtp: str | None = None


@dataclass(frozen=True)
class MediaSection:
    """One `m=` section. `port` 0 means the section is rejected/disabled."""

    index: int
    kind: str  # audio | video | application
    port: int
    protocol: str
    formats: tuple[str, ...]
    mid: str | None
    direction: Direction
    msid_stream: str | None
    msid_track: str | None
    codecs: tuple[Codec, ...]

    @property
    def sends(self) -> bool:
        """Does the offerer send media on this section?"""
        return self.port != 0 and self.direction in ("sendrecv", "sendonly")

    @property
    def receives(self) -> bool:
        """Does the offerer want to receive media on this section?"""
        return self.port != 0 and self.direction in ("sendrecv", "recvonly")

    def codec_names(self) -> tuple[str, ...]:
        """Upper-case codec names in preference order, without RTX/FEC helpers."""
        helpers = {"RTX", "RED", "ULPFEC", "FLEXFEC-03", "CN", "TELEPHONE-EVENT"}
        names: list[str] = []
        for codec in self.codecs:
            name = codec.name.upper()
            if name not in helpers and name not in names:
                names.append(name)
        return tuple(names)


@dataclass(frozen=True)
class SessionDescription:
    media: tuple[MediaSection, ...]
    session_direction: Direction

    def by_mid(self, mid: str) -> MediaSection | None:
        return next((m for m in self.media if m.mid == mid), None)


@dataclass
class _Builder:
    index: int
    kind: str
    port: int
    protocol: str
    formats: tuple[str, ...]
    mid: str | None = None
    direction: Direction | None = None
    msid_stream: str | None = None
    msid_track: str | None = None
    rtpmap: dict[int, tuple[str, int, int | None]] | None = None
    fmtp: dict[int, str] | None = None

    def build(self, default_direction: Direction) -> MediaSection:
        rtpmap = self.rtpmap or {}
        fmtp = self.fmtp or {}
        codecs = []
        for fmt in self.formats:
            if not fmt.isdigit():
                continue
            pt = int(fmt)
            if pt in rtpmap:
                name, rate, channels = rtpmap[pt]
                codecs.append(Codec(pt, name, rate, channels, fmtp.get(pt)))
        return MediaSection(
            index=self.index,
            kind=self.kind,
            port=self.port,
            protocol=self.protocol,
            formats=self.formats,
            mid=self.mid,
            direction=self.direction or default_direction,
            msid_stream=self.msid_stream,
            msid_track=self.msid_track,
            codecs=tuple(codecs),
        )


def _direction(value: str) -> Direction:
    if value == "sendrecv":
        return "sendrecv"
    if value == "sendonly":
        return "sendonly"
    if value == "recvonly":
        return "recvonly"
    return "inactive"


def parse_sdp(text: str) -> SessionDescription:
    """Parse an SDP body. Raises `SdpError` when it has no `v=0` line or a malformed `m=` line."""
    lines = [line.strip() for line in text.replace("\r\n", "\n").split("\n") if line.strip()]
    if not lines or lines[0] != "v=0":
        raise SdpError("SDP must start with v=0")
    session_direction: Direction = "sendrecv"
    sections: list[_Builder] = []
    for line in lines[1:]:
        if len(line) < 2 or line[1] != "=":
            raise SdpError("malformed SDP line")
        kind, value = line[0], line[2:]
        if kind == "m":
            parts = value.split()
            if len(parts) < 3 or not parts[1].split("/")[0].isdigit():
                raise SdpError("malformed m= line")
            sections.append(
                _Builder(
                    index=len(sections),
                    kind=parts[0],
                    port=int(parts[1].split("/")[0]),
                    protocol=parts[2],
                    formats=tuple(parts[3:]),
                )
            )
            continue
        if kind != "a":
            continue
        name, _, arg = value.partition(":")
        current = sections[-1] if sections else None
        if name in _DIRECTIONS:
            if current is None:
                session_direction = _direction(name)
            else:
                current.direction = _direction(name)
        elif current is None:
            continue
        elif name == "mid":
            current.mid = arg.strip()
        elif name == "msid":
            ids = arg.split()
            current.msid_stream = ids[0] if ids else None
            current.msid_track = ids[1] if len(ids) > 1 else None
        elif name == "rtpmap":
            _add_rtpmap(current, arg)
        elif name == "fmtp":
            pt_text, _, params = arg.partition(" ")
            if pt_text.isdigit():
                current.fmtp = {**(current.fmtp or {}), int(pt_text): params.strip()}
    return SessionDescription(
        media=tuple(b.build(session_direction) for b in sections),
        session_direction=session_direction,
    )


def _add_rtpmap(section: _Builder, arg: str) -> None:
    pt_text, _, encoding = arg.partition(" ")
    fields = encoding.strip().split("/")
    if not pt_text.isdigit() or len(fields) < 2 or not fields[1].isdigit():
        raise SdpError("malformed a=rtpmap line")
    channels = int(fields[2]) if len(fields) > 2 and fields[2].isdigit() else None
    section.rtpmap = {**(section.rtpmap or {}), int(pt_text): (fields[0], int(fields[1]), channels)}
