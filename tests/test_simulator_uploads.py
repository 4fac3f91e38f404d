"""Ephemeral uploads over real HTTP: POST /v1/uploads hands out an upload URL, its form fields and a
runway:// URI; a multipart POST of those fields and the file to the URL stores it (as an S3 presigned
POST would); the URI then works in a create.
"""

import hashlib
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from runway_simulator import ManualClock, RunwaySimulator, uploads

KEY = "key_" + secrets.token_hex(64)
HEADERS = {"Authorization": f"Bearer {KEY}", "X-Runway-Version": "2024-11-06"}
PICTURE = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4  # 1,032 bytes: Runway takes 512 B to 200 MB


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def sim(clock: ManualClock) -> Iterator[RunwaySimulator]:
    with RunwaySimulator(api_key=KEY, clock=clock) as simulator:
        yield simulator


def start(sim: RunwaySimulator, body: Any = None) -> requests.Response:
    body = {"filename": "frame.png", "type": "ephemeral"} if body is None else body
    return requests.post(f"{sim.base_url}/v1/uploads", json=body, headers=HEADERS, timeout=5)


def started(sim: RunwaySimulator) -> dict[str, Any]:
    response = start(sim)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


def send(upload: dict[str, Any], *, fields: dict[str, str] | None = None, data: bytes = PICTURE) -> requests.Response:
    form = upload["fields"] if fields is None else fields
    return requests.post(upload["uploadUrl"], data=form, files={"file": ("frame.png", data, "image/png")}, timeout=5)


def create_with(sim: RunwaySimulator, uri: str) -> requests.Response:
    body = {"model": "gen4_turbo", "ratio": "1280:720", "duration": 5, "promptImage": uri}
    return requests.post(f"{sim.base_url}/v1/image_to_video", json=body, headers=HEADERS, timeout=5)


def test_an_upload_then_its_file_then_a_create_that_uses_its_runway_uri(sim: RunwaySimulator) -> None:
    upload = started(sim)
    sent = send(upload)
    created = create_with(sim, upload["runwayUri"])

    assert set(upload) == {"uploadUrl", "fields", "runwayUri"}
    assert upload["uploadUrl"].startswith(sim.base_url + "/_sim/uploads/")
    assert upload["runwayUri"].startswith("runway://")
    assert all(isinstance(value, str) for value in upload["fields"].values())
    assert sent.status_code == 204
    assert created.status_code == 200, created.text
    [stored] = sim.uploads
    assert (stored.filename, stored.size, stored.content_type) == ("frame.png", len(PICTURE), "image/png")
    assert stored.sha256 == hashlib.sha256(PICTURE).hexdigest()
    assert sim.creates == 1


def test_the_upload_url_needs_no_key_but_the_api_does(sim: RunwaySimulator) -> None:
    unauthorised = requests.post(
        f"{sim.base_url}/v1/uploads", json={"filename": "a.png", "type": "ephemeral"}, timeout=5
    )
    upload = started(sim)

    assert unauthorised.status_code == 401
    assert send(upload).status_code == 204  # send() carries no Authorization header


def test_the_sdks_metadata_field_is_taken_beside_the_fields_handed_out(sim: RunwaySimulator) -> None:
    upload = started(sim)

    assert send(upload, fields={**upload["fields"], "metadata": '{"scene": 1}'}).status_code == 204


@pytest.mark.parametrize(
    ("body", "issues"),
    [
        ({"type": "ephemeral"}, [{"path": ["filename"], "message": "Required"}]),
        (
            {"filename": "a.png", "type": "permanent"},
            [{"path": ["type"], "message": "Invalid enum value. Expected 'ephemeral', received 'permanent'"}],
        ),
        (
            {"filename": "", "type": "ephemeral"},
            [{"path": ["filename"], "message": "String must contain at least 1 character(s)"}],
        ),
        (
            {"filename": "a.png", "type": "ephemeral", "size": 10},
            [{"path": [], "message": "Unrecognized key(s) in object: 'size'"}],
        ),
        ("a.png", [{"path": [], "message": "Expected object, received string"}]),
    ],
    ids=["no-filename", "not-ephemeral", "empty-filename", "unknown-key", "not-an-object"],
)
def test_a_wrong_upload_request_is_400_and_hands_out_nothing(
    sim: RunwaySimulator, body: Any, issues: list[Any]
) -> None:
    response = start(sim, body)

    assert response.status_code == 400
    assert response.json()["issues"] == issues
    assert sim.uploads == []


@pytest.mark.parametrize(
    "change",
    [
        lambda fields: {name: value for name, value in list(fields.items())[1:]},
        lambda fields: {**fields, next(iter(fields)): "someone-else's"},
        lambda fields: {**fields, "acl": "public-read"},
    ],
    ids=["missing-field", "changed-field", "extra-field"],
)
def test_a_form_without_exactly_the_fields_handed_out_is_403_and_stores_nothing(
    sim: RunwaySimulator, change: Any
) -> None:
    upload = started(sim)

    response = send(upload, fields=change(upload["fields"]))

    assert response.status_code == 403
    assert "policy" in response.json()["error"]
    assert sim.uploads[0].arrived is None
    assert create_with(sim, upload["runwayUri"]).status_code == 400


def test_a_second_file_for_the_same_upload_is_409_and_the_first_stays(sim: RunwaySimulator) -> None:
    upload = started(sim)
    first = send(upload)

    second = send(upload, data=PICTURE[::-1])

    assert (first.status_code, second.status_code) == (204, 409)
    assert sim.uploads[0].sha256 == hashlib.sha256(PICTURE).hexdigest()


@pytest.mark.parametrize(("size", "status"), [(0, 400), (511, 400), (512, 204)])
def test_a_file_under_512_bytes_is_400(sim: RunwaySimulator, size: int, status: int) -> None:
    upload = started(sim)

    response = send(upload, data=b"x" * size)

    assert response.status_code == status
    assert (sim.uploads[0].size is not None) == (status == 204)


def test_a_file_over_the_largest_size_is_400(sim: RunwaySimulator, monkeypatch: pytest.MonkeyPatch) -> None:
    # 200 MB in Runway's API; a thousandth of it here, so that the test sends no 200 MB.
    monkeypatch.setattr(uploads, "MAX_FILE_BYTES", 200 * 1024)
    upload = started(sim)

    too_large = send(upload, data=b"x" * (200 * 1024 + 1))
    largest = send(upload, data=b"x" * 200 * 1024)

    assert (too_large.status_code, largest.status_code) == (400, 204)
    assert "204800 bytes" in too_large.json()["error"]


def test_a_body_that_is_not_a_multipart_form_is_400(sim: RunwaySimulator) -> None:
    upload = started(sim)

    response = requests.post(upload["uploadUrl"], json=upload["fields"], timeout=5)

    assert response.status_code == 400


def test_an_upload_url_never_handed_out_is_404_and_only_post_is_allowed(sim: RunwaySimulator) -> None:
    upload = started(sim)
    unknown = upload["uploadUrl"].rsplit("/", 1)[0] + "/acf9ba3d-a513-42c9-a646-96e8bc97c691"

    assert send({**upload, "uploadUrl": unknown}).status_code == 404
    got = requests.get(upload["uploadUrl"], timeout=5)
    assert (got.status_code, got.headers["Allow"]) == (405, "POST")


def test_an_uploaded_file_is_still_usable_after_a_restart_on_the_same_state_file(tmp_path: Path) -> None:
    state = str(tmp_path / "simulator.json")
    clock = ManualClock()
    with RunwaySimulator(api_key=KEY, clock=clock, state_file=state) as first:
        upload = started(first)
        assert send(upload).status_code == 204
    clock.advance(3600.0)
    with RunwaySimulator(api_key=KEY, clock=clock, state_file=state) as second:
        created = create_with(second, upload["runwayUri"])
        clock.advance(23 * 3600.0)
        expired = create_with(second, upload["runwayUri"])

    assert created.status_code == 200, created.text
    assert expired.status_code == 400
