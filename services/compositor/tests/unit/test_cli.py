"""`mixdown compose` argument and input errors (no media needed)."""

from __future__ import annotations

import argparse
import io
import json
from pathlib import Path

import pytest

from services.compositor import cli
from services.compositor.sources import SourceListError, load_manifest, load_recordings_dir


def run(argv: list[str]) -> tuple[int, str]:
    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    err = io.StringIO()
    return cli.run(parser.parse_args(argv), err), err.getvalue()


@pytest.fixture
def manifest(tmp_path: Path) -> Path:
    (tmp_path / "a.mkv").write_bytes(b"")
    path = tmp_path / "m.json"
    path.write_text(
        json.dumps({"tracks": [{"path": "a.mkv", "kind": "video", "track_name": "cam", "offset_ms": 5}]})
    )
    return path


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        (["--layout", "{not json"], "neither a preset"),
        (["--layout", '{"r": {"video_sources": []}}'], "video_sources"),
        (["--resolution", "4000x3000"], "Resolution"),
        (["--resolution", "1920x1080"], "Resolution"),
        (["--workers", "0"], "--workers"),
    ],
)
def test_bad_arguments_exit_2(manifest: Path, tmp_path: Path, extra: list[str], needle: str) -> None:
    code, err = run([str(manifest), "-o", str(tmp_path / "o.mp4"), "--quiet", *extra])
    assert code == cli.EXIT_INPUT
    assert needle in err and err.startswith("mixdown compose:")


def test_missing_input_exit_2(tmp_path: Path) -> None:
    code, err = run([str(tmp_path / "nope"), "-o", str(tmp_path / "o.mp4"), "--quiet"])
    assert code == cli.EXIT_INPUT and "does not exist" in err


def test_manifest_is_resolved_relative_to_itself(manifest: Path) -> None:
    [track] = load_manifest(manifest)
    assert track.path == str((manifest.parent / "a.mkv").resolve())
    assert (track.kind, track.track_name, track.offset_ms) == ("video", "cam", 5)


@pytest.mark.parametrize(
    "content",
    [
        "[]",
        '{"tracks": []}',
        '{"tracks": [{"kind": "video"}]}',
        '{"tracks": [{"path": "a.mkv", "kind": "data"}]}',
        '{"tracks": [{"path": "missing.mkv", "kind": "video"}]}',
        '{"tracks": [{"path": "a.mkv", "kind": "video", "offset_ms": "5"}]}',
    ],
)
def test_bad_manifests(manifest: Path, content: str) -> None:
    manifest.write_text(content)
    with pytest.raises(SourceListError):
        load_manifest(manifest)


def test_recordings_dir_reads_twilio_recording_json(tmp_path: Path) -> None:
    rt_v, rt_a, rt_d = "RT" + "1" * 32, "RT" + "2" * 32, "RT" + "3" * 32
    for sid, ext, kind in ((rt_v, "mkv", "video"), (rt_a, "mka", "audio"), (rt_d, "mkv", "data")):
        (tmp_path / f"{sid}.{ext}").write_bytes(b"")
        (tmp_path / f"{sid}.json").write_text(
            json.dumps(
                {
                    "sid": sid,
                    "source_sid": "MT" + sid[2:],
                    "type": kind,
                    "codec": "VP8" if kind == "video" else "OPUS",
                    "track_name": f"alice-{kind}",
                    "offset": 1234567,
                    "status": "completed",
                    "grouping_sids": {"room_sid": "RM" + "0" * 32, "participant_sid": "PA" + "9" * 32},
                }
            )
        )
    tracks = load_recordings_dir(tmp_path)
    assert [t.kind for t in tracks] == ["video", "audio"]
    assert tracks[0].sids == (rt_v, "MT" + rt_v[2:], "PA" + "9" * 32)
    assert (
        tracks[0].offset_ms == 1234567 and tracks[0].codec == "VP8" and tracks[1].track_name == "alice-audio"
    )


def test_register_adds_the_compose_command() -> None:
    parser = argparse.ArgumentParser()
    cli.register(parser.add_subparsers())
    args = parser.parse_args(["compose", "room/", "-o", "x.webm", "--no-trim", "--layout", "speaker"])
    assert args.func is cli.run and args.trim is False and args.layout == "speaker"
