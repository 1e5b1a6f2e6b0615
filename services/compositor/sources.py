"""Turning inputs on disk into SourceTracks: a directory of Twilio recordings (each RT….mkv/.mka beside its
Recording resource JSON RT….json, as Twilio's API returns it) or a small manifest
`{"tracks": [{"path", "kind", "track_name", "offset_ms"}]}` with paths relative to the manifest."""

from __future__ import annotations

import json
from pathlib import Path

from services.compositor.errors import PermanentError
from services.compositor.job import Kind, SourceTrack

_MEDIA_EXTENSIONS = (".mkv", ".mka", ".webm")


class SourceListError(PermanentError):
    """The inputs describe no usable recordings or are malformed."""


def _kind(value: object, where: str) -> Kind:
    if value == "video":
        return "video"
    if value == "audio":
        return "audio"
    raise SourceListError(f"{where}: kind/type must be audio or video")


def load_manifest(path: Path) -> list[SourceTrack]:
    """Read a manifest file. Raises SourceListError naming the offending entry."""
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise SourceListError(f"cannot read manifest {path.name}: {exc}") from exc
    tracks = data.get("tracks") if isinstance(data, dict) else None
    if not isinstance(tracks, list) or not tracks:
        raise SourceListError(f"manifest {path.name} needs a non-empty 'tracks' list")
    result = []
    for i, entry in enumerate(tracks):
        where = f"manifest track {i}"
        if not isinstance(entry, dict) or not isinstance(entry.get("path"), str):
            raise SourceListError(f"{where}: needs a 'path'")
        offset = entry.get("offset_ms", 0)
        if isinstance(offset, bool) or not isinstance(offset, int):
            raise SourceListError(f"{where}: offset_ms must be an integer")
        media = entry["path"]
        location = media if "://" in media else str((path.parent / media).resolve())
        if "://" not in media and not Path(location).is_file():
            raise SourceListError(f"{where}: file {media} not found")
        sids = entry.get("sids", [])
        result.append(
            SourceTrack(
                path=location,
                kind=_kind(entry.get("kind"), where),
                track_name=str(entry.get("track_name") or Path(media).stem),
                offset_ms=offset,
                sids=tuple(str(s) for s in sids) if isinstance(sids, list) else (),
            )
        )
    return result


def load_recordings_dir(folder: Path) -> list[SourceTrack]:
    """Read every RT….json with a media file of the same stem next to it; recordings of type `data` and
    recordings that are not `completed` (when a status is present) are skipped."""
    result = []
    for meta_path in sorted(folder.glob("*.json")):
        media = next(
            (meta_path.with_suffix(ext) for ext in _MEDIA_EXTENSIONS if meta_path.with_suffix(ext).exists()),
            None,
        )
        if media is None:
            continue
        try:
            meta = json.loads(meta_path.read_text())
        except json.JSONDecodeError as exc:
            raise SourceListError(f"{meta_path.name} is not valid JSON") from exc
        if not isinstance(meta, dict) or meta.get("type") == "data":
            continue
        if meta.get("status", "completed") != "completed":
            continue
        offset = meta.get("offset", 0)
        if isinstance(offset, bool) or not isinstance(offset, int):
            raise SourceListError(f"{meta_path.name}: offset must be an integer")
        grouping = meta.get("grouping_sids") or {}
        sids = [
            meta.get("sid"),
            meta.get("source_sid"),
            grouping.get("participant_sid") if isinstance(grouping, dict) else None,
        ]
        result.append(
            SourceTrack(
                path=str(media.resolve()),
                kind=_kind(meta.get("type"), meta_path.name),
                track_name=str(meta.get("track_name") or meta.get("source_sid") or media.stem),
                offset_ms=offset,
                sids=tuple(s for s in sids if isinstance(s, str)),
                codec=str(meta.get("codec") or ""),
            )
        )
    if not result:
        raise SourceListError(f"no recordings (RT….json beside .mkv/.mka) in {folder}")
    return result


def load_sources(location: Path) -> list[SourceTrack]:
    """A directory of recordings or a manifest file."""
    if location.is_dir():
        return load_recordings_dir(location)
    if location.is_file():
        return load_manifest(location)
    raise SourceListError(f"{location} does not exist")
