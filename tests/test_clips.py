"""A clip to edit is checked before anything is stored or sent: a real video by its bytes and by
ffmpeg reading it, of a size and length the form takes; stored under a name we make."""

import io

import pytest

from tests.conftest import MP4, PNG, clip
from videos import clips


@pytest.mark.parametrize(("container", "content_type", "extension"), [
    ("mp4", "video/mp4", "mp4"),
    ("mov", "video/quicktime", "mov"),
    ("webm", "video/webm", "webm"),
])  # fmt: skip
def test_a_real_clip_is_taken_with_its_length_and_its_real_extension(container, content_type, extension):
    upload = io.BytesIO(clip(2.0, container=container))
    upload.seek(100)

    checked = clips.checked_clip(upload)

    assert (checked.content_type, checked.seconds) == (content_type, 2.0)
    assert checked.name.endswith(f".{extension}") and len(checked.name) == 33 + len(extension)
    assert upload.tell() == 0  # left at its start, to be stored


def test_the_simulators_sample_is_a_clip_of_three_seconds():
    assert clips.checked_clip(io.BytesIO(MP4)).seconds == 3.0


@pytest.mark.parametrize("data", [PNG, b"hello" * 200, b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 2000])
def test_what_is_not_a_video_is_refused(data):
    with pytest.raises(clips.ClipProblem) as refused:
        clips.checked_clip(io.BytesIO(data))
    assert str(refused.value) in (clips.NOT_A_CLIP, "The file could not be read as a video.")


def test_a_video_cut_short_is_refused():
    whole = clip(2.0)
    with pytest.raises(clips.ClipProblem, match="could not be read as a video"):
        clips.checked_clip(io.BytesIO(whole[: len(whole) // 3]))


def test_a_clip_longer_than_the_limit_is_refused_with_its_length():
    with pytest.raises(clips.ClipProblem) as refused:
        clips.checked_clip(io.BytesIO(clip(31.0)))
    assert str(refused.value) == "The clip is 31.0 seconds long; clips of 1 to 30 seconds can be edited."


def test_a_clip_too_large_is_refused_before_ffmpeg_reads_it(monkeypatch):
    monkeypatch.setattr(clips, "CLIP_MAX_BYTES", 5000)
    monkeypatch.setattr(clips, "_probe", lambda *args: pytest.fail("ffmpeg was asked"))
    with pytest.raises(clips.ClipProblem, match=r"The clip is 0\.0 MB; clips of up to 0 MB"):
        clips.checked_clip(io.BytesIO(clip(2.0)))
