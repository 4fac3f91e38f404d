"""The Generate form as a user meets it: the prompt's rules come from the catalog, Edit & re-run
fills the form from an earlier job (its image too), and the input image is shown to its owner."""

import json
import re

import pytest
from django.core.files.base import ContentFile
from django.core.files.uploadedfile import SimpleUploadedFile

from tests.conftest import MP4, PNG, clip, picture
from videos import catalog
from videos.models import SpendEntry, Status, VideoGeneration
from videos.services import inputs, steps

pytestmark = pytest.mark.django_db
DASHBOARD = "/videos/"


def png_upload(data: bytes = PNG) -> SimpleUploadedFile:
    return SimpleUploadedFile("frame.png", data, content_type="image/png")


def field_errors(content: str, field: str) -> str:
    match = re.search(rf'<ul class="errorlist" id="{field}-errors"[^>]*>(.*?)</ul>', content, re.S)
    assert match, f"no error list for {field!r}"
    return match.group(1)


def image_job(make_job, **overrides):
    fields = {
        "status": Status.SUCCEEDED,
        "endpoint": "image_to_video",
        "model": "gen4_turbo",
        "ratio": "832:1104",
        "duration": 3,
        "seed": 7,
        "prompt": "The wave rolls in",
        "image": ContentFile(PNG, name="frame.png"),
    }
    return make_job(**{**fields, **overrides})


# --- the prompt -------------------------------------------------------------------------------


def test_an_image_without_a_prompt_is_accepted_where_the_model_needs_none(
    alice, media, broker, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = alice.post(DASHBOARD, {"prompt": "", "model": "gen4_turbo", "image": png_upload()})

    assert response.status_code == 302
    job = VideoGeneration.objects.get()
    assert (job.prompt, job.model, job.endpoint) == ("", "gen4_turbo", "image_to_video")
    assert "(no description)" in alice.get(DASHBOARD).content.decode()


def test_a_model_that_needs_a_prompt_still_refuses_an_image_without_one(alice, media, broker):
    response = alice.post(DASHBOARD, {"prompt": "", "model": "gen4.5", "image": png_upload()})
    assert response.status_code == 400
    assert "cannot be empty" in field_errors(response.content.decode(), "prompt")
    assert VideoGeneration.objects.count() == 0


def test_the_prompt_box_never_cuts_a_paste_and_describes_its_counter_and_shortcut(alice):
    content = alice.get(DASHBOARD).content.decode()
    textarea = re.search(r"<textarea[^>]*>", content)
    assert textarea and "maxlength" not in textarea.group(0)
    assert 'aria-describedby="prompt-count prompt-keys"' in textarea.group(0)
    assert 'id="prompt-count"' in content and "Up to 1,000 characters" in content
    assert 'id="prompt-keys"' in content and "Ctrl+Enter" in content


def test_a_page_sent_back_with_errors_asks_for_the_file_again(alice, media, broker):
    without_script = alice.post(DASHBOARD, {"prompt": "", "model": "gen4.5", "image": png_upload()})
    with_script = alice.post(
        DASHBOARD, {"prompt": "", "model": "gen4.5", "image": png_upload()}, headers={"Accept": "application/json"}
    )
    assert "Choose the image again" in field_errors(without_script.content.decode(), "image")
    # The script keeps the chosen file: no such message there.
    assert "image" not in with_script.json()["errors"]


# --- Edit & re-run ----------------------------------------------------------------------------


def test_an_ended_card_links_to_edit_and_re_run_and_a_running_one_does_not(alice, make_job):
    ended = make_job(status=Status.FAILED, prompt="ended")
    running = make_job(status=Status.RUNNING, prompt="running")
    content = alice.get(DASHBOARD).content.decode()
    assert f'href="/videos/?from={ended.pk}#generate-form">Edit &amp; re-run<span class="visually-hidden">' in content
    assert f"?from={running.pk}" not in content
    assert f'href="/videos/?from={ended.pk}#generate-form"' in alice.get(f"/videos/{ended.pk}/").content.decode()


def test_edit_and_re_run_fills_the_form_with_the_jobs_settings_and_image(alice, make_job, media):
    job = image_job(make_job)
    content = alice.get(f"{DASHBOARD}?from={job.pk}").content.decode()

    assert re.search(r"<textarea[^>]*>\s*The wave rolls in</textarea>", content)
    assert '<option value="gen4_turbo" selected>Gen-4 Turbo</option>' in content
    assert '<option value="832:1104" selected>832:1104</option>' in content
    assert '<option value="3" selected>3 s</option>' in content
    assert re.search(r'<input[^>]*name="seed"[^>]*value="7"', content)
    assert f'<input type="checkbox" name="from_generation" value="{job.pk}" data-kind="image" checked>' in content
    assert f'<img src="/videos/{job.pk}/image"' in content
    assert '<details class="advanced" open>' in content


def test_edit_and_re_run_of_someone_elses_job_is_a_plain_form(alice, make_job, other_user, media):
    job = image_job(make_job, owner=other_user, prompt="Bob's secret idea")
    for query in (f"?from={job.pk}", "?from=99999", "?from=abc"):
        response = alice.get(DASHBOARD + query)
        assert response.status_code == 200
        assert "Bob's secret idea" not in response.content.decode()
        assert 'name="from_generation"' not in response.content.decode()


def test_the_re_run_form_reuses_the_earlier_jobs_stored_image(
    alice, make_job, media, broker, django_capture_on_commit_callbacks
):
    job = image_job(make_job)
    with django_capture_on_commit_callbacks(execute=True):
        response = alice.post(DASHBOARD, {"prompt": "The wave rolls out", "from_generation": str(job.pk)})

    assert response.status_code == 302
    new = VideoGeneration.objects.exclude(pk=job.pk).get()
    assert (new.prompt, new.endpoint, new.model) == ("The wave rolls out", "image_to_video", "gen4_turbo")
    assert new.image.name != job.image.name  # its own copy: deleting one job keeps the other's
    with new.image.open("rb") as f:
        assert f.read() == PNG


def test_a_new_file_replaces_the_reused_image_and_unticking_drops_it(
    alice, make_job, media, broker, django_capture_on_commit_callbacks
):
    job = image_job(make_job)
    other_png = picture("PNG", (10, 10))
    with django_capture_on_commit_callbacks(execute=True):
        alice.post(DASHBOARD, {"prompt": "new file", "from_generation": str(job.pk), "image": png_upload(other_png)})
        alice.post(DASHBOARD, {"prompt": "no image"})  # the box unticked: not sent

    with VideoGeneration.objects.get(prompt="new file").image.open("rb") as f:
        assert f.read() == other_png
    assert VideoGeneration.objects.get(prompt="no image").endpoint == "text_to_video"


def test_the_image_of_someone_elses_job_cannot_be_reused(alice, make_job, other_user, media, broker):
    job = image_job(make_job, owner=other_user)
    response = alice.post(DASHBOARD, {"prompt": "steal it", "from_generation": str(job.pk)})
    assert response.status_code == 400
    assert "no longer available" in field_errors(response.content.decode(), "image")
    assert VideoGeneration.objects.filter(owner__username="alice").count() == 0


# --- the input image --------------------------------------------------------------------------


def test_the_input_image_is_served_to_its_owner_and_shown_on_card_and_detail(alice, make_job, media):
    job = image_job(make_job)
    response = alice.get(f"/videos/{job.pk}/image")
    assert response.status_code == 200
    assert response["Content-Type"] == "image/png"
    assert b"".join(response.streaming_content) == PNG
    assert f'<img class="input-thumb" src="/videos/{job.pk}/image"' in alice.get(DASHBOARD).content.decode()
    assert f'<img class="input-image" src="/videos/{job.pk}/image"' in alice.get(f"/videos/{job.pk}/").content.decode()


def test_the_input_image_is_for_its_owner_and_staff_only(client, alice, make_job, other_user, admin_user, media):
    job = image_job(make_job, owner=other_user)
    assert alice.get(f"/videos/{job.pk}/image").status_code == 404
    client.force_login(admin_user)
    assert client.get(f"/videos/{job.pk}/image").status_code == 200


def test_a_job_without_a_stored_image_has_no_image_to_serve(alice, make_job):
    job = make_job()
    assert alice.get(f"/videos/{job.pk}/image").status_code == 404


def test_an_image_url_is_named_on_the_detail_page_never_loaded(alice, make_job):
    job = make_job(endpoint="image_to_video", model="gen4_turbo", image_url="https://images.example.com/a/b.png")
    detail = alice.get(f"/videos/{job.pk}/").content.decode()
    assert "From a link on" in detail and ">images.example.com</a>" in detail
    assert '<img class="input-image"' not in detail
    assert not re.search(r'<img[^>]+src="https?://', detail)


def test_a_reused_image_gone_from_storage_is_asked_for_again(alice, make_job, media, broker):
    job = image_job(make_job)
    job.image.storage.delete(job.image.name)
    response = alice.post(DASHBOARD, {"prompt": "again", "from_generation": str(job.pk)})
    assert response.status_code == 400
    assert "no longer available" in field_errors(response.content.decode(), "image")


# --- every model, and only its own fields ---------------------------------------------------------


def _pickers(content: str) -> dict:
    match = re.search(r'<script id="pickers" type="application/json">(.*?)</script>', content, re.S)
    assert match, "no pickers on the page"
    return json.loads(match.group(1))


def test_the_model_menu_offers_every_model_grouped_by_its_maker(alice):
    content = alice.get(DASHBOARD).content.decode()
    menu = re.search(r'<select name="model".*?</select>', content, re.S).group(0)

    groups = re.findall(r'<optgroup label="([^"]+)">(.*?)</optgroup>', menu, re.S)
    assert [label for label, _ in groups] == [
        "Runway", "Google", "Kling (Kuaishou)", "MiniMax", "ByteDance", "xAI", "Alibaba", "HappyHorse"
    ]  # fmt: skip
    offered = re.findall(r'<option value="([^"]+)"', menu)
    assert sorted(offered) == sorted(catalog.MODELS)
    assert '<option value="seedance2">Seedance 2.0</option>' in dict(groups)["ByteDance"]


def test_the_pickers_say_what_each_model_takes_and_costs(alice, settings):
    settings.RUNWAY_PRICES = {"wan3": 9.5}
    offers = _pickers(alice.get(DASHBOARD).content.decode())["offers"]

    veo = offers["veo3.1"]["text_to_video"]
    assert (veo["price"], veo["priceSilent"], veo["priceKnown"]) == (40, 20, True)
    assert (veo["audio"], veo["negativePrompt"], veo["resolutions"]) == (True, True, [])
    hailuo = offers["hailuo3"]["image_to_video"]
    assert hailuo["resolutions"] == ["768p", "2k", "768P", "2K"] and hailuo["seed"] is False
    assert offers["kling3.0_pro"]["text_to_video"]["price"] == settings.RUNWAY_PRICE_CEILING
    assert offers["kling3.0_pro"]["text_to_video"]["priceKnown"] is False
    assert offers["wan3"]["text_to_video"]["price"] == 9.5
    assert offers["seedance2_5"]["text_to_video"]["promptMax"] == 15000
    assert "text_to_video" not in offers["gen4_turbo"]


def test_a_veo_job_without_sound_keeps_its_settings_and_is_reserved_at_the_silent_price(
    alice, broker, django_capture_on_commit_callbacks
):
    form = {"prompt": "Waves", "model": "veo3.1", "duration": "8", "audio": "off", "negative_prompt": "gulls"}
    with django_capture_on_commit_callbacks(execute=True):
        response = alice.post(DASHBOARD, form)

    assert response.status_code == 302
    job = VideoGeneration.objects.get()
    assert job.params == {
        "ratio": "1280:720",
        "duration": 8,
        "seed": job.seed,
        "audio": False,
        "negativePrompt": "gulls",
    }
    assert (job.audio, job.negative_prompt) == (False, "gulls")
    assert SpendEntry.objects.get(generation_number=job.pk).credits == 160
    assert steps.generation_payload(generation=job) == {"model": "veo3.1", "promptText": "Waves", **job.params}


def test_a_model_without_a_price_is_reserved_at_the_ceiling(alice, broker, settings):
    settings.RUNWAY_PRICE_CEILING = 50
    response = alice.post(DASHBOARD, {"prompt": "Rain", "model": "kling3.0_pro", "ratio": "1920:1080", "duration": "5"})

    assert response.status_code == 302
    job = VideoGeneration.objects.get()
    assert job.params == {"ratio": "1920:1080", "duration": 5}  # Kling 3.0 takes no seed
    assert SpendEntry.objects.get(generation_number=job.pk).credits == 250


def test_the_ceiling_keeps_an_unpriced_job_inside_the_budget(alice, broker, settings):
    settings.RUNWAY_MONTHLY_BUDGET_PER_USER = 400
    response = alice.post(DASHBOARD, {"prompt": "Rain", "model": "kling3.0_pro", "ratio": "1920:1080", "duration": "5"})

    assert response.status_code == 400
    assert "would cost about 500 credits" in response.content.decode()
    assert VideoGeneration.objects.count() == 0


def test_a_setting_the_chosen_model_does_not_take_is_refused_next_to_its_field(alice, broker):
    response = alice.post(DASHBOARD, {"prompt": "Rain", "model": "gen4.5", "resolution": "720p", "audio": "off"})

    assert response.status_code == 400
    content = response.content.decode()
    assert "Gen-4.5 takes no resolution." in field_errors(content, "resolution")
    assert "Gen-4.5 has no choice of sound." in field_errors(content, "audio")
    assert VideoGeneration.objects.count() == 0


def test_edit_and_re_run_keeps_a_models_own_settings(alice, make_job):
    job = make_job(
        status=Status.SUCCEEDED, model="hailuo3", prompt="Dance", ratio="16:9", duration=6, seed=None,
        params={"resolution": "2k"},
    )  # fmt: skip
    assert job.params == {"resolution": "2k", "ratio": "16:9", "duration": 6}
    content = alice.get(f"{DASHBOARD}?from={job.pk}").content.decode()

    assert re.search(r'<option value="hailuo3" selected>', content)
    assert re.search(r'<option value="2k" selected>', content)


# --- a clip to edit: video to video -------------------------------------------------------------


def clip_upload(data: bytes | None = None, name: str = "holiday.mp4") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, clip(2.0) if data is None else data, content_type="video/mp4")


def test_a_clip_makes_an_edit_of_it_with_the_default_model_reserved_by_its_length(alice, media, broker):
    response = alice.post(DASHBOARD, {"prompt": "Make it snow", "video": clip_upload()})

    assert response.status_code == 302
    job = VideoGeneration.objects.get()
    assert (job.endpoint, job.model, job.clip_seconds, job.params) == (
        "video_to_video",
        "aleph2",
        2.0,
        {"seed": job.seed},
    )
    assert job.clip.name.startswith("inputs/") and job.clip.name.endswith(".mp4") and "holiday" not in job.clip.name
    # Aleph has no published price: reserved at the ceiling for each second of the clip.
    assert SpendEntry.objects.get(generation_number=job.pk).credits == 2 * 100
    page = alice.get(f"/videos/{job.pk}/").content.decode()
    assert f'src="/videos/{job.pk}/clip"' in page and "from a clip" in page
    served = alice.get(f"/videos/{job.pk}/clip")
    assert served["Content-Type"] == "video/mp4"


def test_a_clip_with_a_model_that_takes_its_own_duration(alice, media, broker):
    response = alice.post(DASHBOARD, {"prompt": "Dance", "model": "seedance2", "duration": "6", "video": clip_upload()})

    assert response.status_code == 302
    job = VideoGeneration.objects.get()
    assert (job.model, job.duration) == ("seedance2", 6)
    assert SpendEntry.objects.get(generation_number=job.pk).credits == 6 * 100


@pytest.mark.parametrize(("form", "field", "words"), [
    ({"video": "not a video"}, "video", "not an MP4, QuickTime (.mov) or WebM video"),
    ({"video": "image"}, "image", "Give a clip to edit or an image to start from, not both."),
    ({"model": "gen4.5"}, "model", "Gen-4.5 cannot edit a clip"),
    ({"ratio": "16:9"}, "ratio", "Aleph 2.0 takes no ratio when it edits a clip."),
])  # fmt: skip
def test_a_clip_request_that_cannot_be_sent_is_refused_next_to_its_field(alice, media, broker, form, field, words):
    data = {"prompt": "Make it snow", "video": clip_upload(), **form}
    if form.get("video") == "not a video":
        data["video"] = clip_upload(PNG, "sneaky.mp4")
    elif form.get("video") == "image":
        data.update(video=clip_upload(), image=png_upload())

    response = alice.post(DASHBOARD, data)

    assert response.status_code == 400
    assert words in field_errors(response.content.decode(), field)
    assert VideoGeneration.objects.count() == 0


def test_re_run_of_an_edit_sends_the_stored_clip_again(alice, media, broker, make_job):
    source = make_job(
        status=Status.SUCCEEDED, endpoint="video_to_video", model="aleph2", ratio=None, duration=None, seed=5,
        clip=ContentFile(clip(2.0), name="clip.mp4"), clip_seconds=2.0,
    )  # fmt: skip

    answer = alice.post(f"/videos/{source.pk}/rerun/")

    assert answer.status_code in (200, 302)
    copy = VideoGeneration.objects.exclude(pk=source.pk).get()
    assert (copy.endpoint, copy.model, copy.seed, copy.clip_seconds) == ("video_to_video", "aleph2", 5, 2.0)
    assert copy.clip.name != source.clip.name
    assert copy.clip.read() == source.clip.read()


def test_edit_and_re_run_of_an_edit_offers_its_clip_again(alice, media, broker, make_job):
    source = make_job(
        status=Status.SUCCEEDED, endpoint="video_to_video", model="aleph2", ratio=None, duration=None, seed=5,
        clip=ContentFile(clip(2.0), name="clip.mp4"), clip_seconds=2.0,
    )  # fmt: skip
    form = alice.get(f"{DASHBOARD}?from={source.pk}").content.decode()
    assert f"Edit the clip of video #{source.pk} again (2.0 s;" in form

    response = alice.post(DASHBOARD, {"prompt": "Now with rain", "model": "aleph2", "from_generation": source.pk})

    assert response.status_code == 302
    copy = VideoGeneration.objects.exclude(pk=source.pk).get()
    assert (copy.prompt, copy.endpoint, copy.clip_seconds) == ("Now with rain", "video_to_video", 2.0)


# --- upscaling a finished video -----------------------------------------------------------------


def done_job(make_job, stored_video, **fields):
    return make_job(status=Status.SUCCEEDED, progress=100, video_file=stored_video, duration=2, **fields)


def test_a_finished_card_offers_to_upscale_it_with_its_price_first(alice, make_job, media, stored_video):
    job = done_job(make_job, stored_video)

    page = alice.get(DASHBOARD).content.decode()

    # Magnific has no published price: at most the ceiling, for each second of the video.
    assert f'action="/videos/{job.pk}/upscale/"' in page
    assert "Upscale · at most 200 credits" in page
    running = make_job(status=Status.RUNNING)
    assert f'action="/videos/{running.pk}/upscale/"' not in alice.get(DASHBOARD).content.decode()


def test_upscale_makes_a_new_job_from_our_copy_linked_to_the_original(alice, make_job, media, broker, stored_video):
    source = done_job(make_job, stored_video, prompt="A lighthouse")

    response = alice.post(f"/videos/{source.pk}/upscale/")

    upscaled = VideoGeneration.objects.exclude(pk=source.pk).get()
    assert response.status_code == 302 and response["Location"] == f"/videos/{upscaled.pk}/"
    assert (upscaled.endpoint, upscaled.model, upscaled.source_id) == (
        "video_upscale", "magnific_video_upscaler_creative", source.pk
    )  # fmt: skip
    assert upscaled.clip.read() == MP4 and upscaled.clip_seconds == 3.0  # the stored copy, measured
    assert upscaled.prompt == "A lighthouse"  # its label; an upscaler is sent no prompt
    payload = steps.generation_payload(generation=upscaled)
    assert payload == {"model": "magnific_video_upscaler_creative", "videoUri": inputs.data_uri(MP4, "video/mp4")}
    assert SpendEntry.objects.get(generation_number=upscaled.pk).credits == 3 * 100
    detail = alice.get(f"/videos/{upscaled.pk}/").content.decode()
    assert f'upscaled from <a href="/videos/{source.pk}/">video #{source.pk}</a>' in detail


def test_only_a_finished_video_of_ones_own_can_be_upscaled(alice, make_job, other_user, media, stored_video):
    failed = make_job(status=Status.FAILED)
    assert alice.post(f"/videos/{failed.pk}/upscale/").status_code == 302
    theirs = done_job(make_job, stored_video, owner=other_user)
    assert alice.post(f"/videos/{theirs.pk}/upscale/").status_code == 404
    assert VideoGeneration.objects.count() == 2


# --- a character driven by a performance: Act-Two ---------------------------------------------------


def test_a_performance_drives_the_character_image_with_act_two(alice, media, broker):
    form = {
        "prompt": "The captain speaks",
        "image": png_upload(),
        "performance": clip_upload(name="me.mp4"),
        "body_control": "on",
        "expression_intensity": "4",
        "ratio": "960:960",
    }
    response = alice.post(DASHBOARD, form)

    assert response.status_code == 302, response.content.decode()[:500]
    job = VideoGeneration.objects.get()
    assert (job.endpoint, job.model, job.performance_seconds) == ("character_performance", "act_two", 2.0)
    assert job.params == {"ratio": "960:960", "seed": job.seed, "bodyControl": True, "expressionIntensity": 4}
    assert SpendEntry.objects.get(generation_number=job.pk).credits == 2 * 100  # by the performance's seconds
    payload = steps.generation_payload(generation=job)
    with job.image.open("rb") as image, job.performance.open("rb") as performance:
        assert payload["character"] == {"type": "image", "uri": inputs.data_uri(image.read(), "image/png")}
        assert payload["reference"] == {"type": "video", "uri": inputs.data_uri(performance.read(), "video/mp4")}
    assert "promptText" not in payload  # Act-Two takes none: the description is the history's label
    assert payload["model"] == "act_two" and payload["bodyControl"] is True


def test_a_character_may_be_a_clip(alice, media, broker):
    response = alice.post(DASHBOARD, {"prompt": "", "video": clip_upload(), "performance": clip_upload(name="me.mp4")})

    assert response.status_code == 302
    job = VideoGeneration.objects.get()
    assert steps.generation_payload(generation=job)["character"]["type"] == "video"


@pytest.mark.parametrize(("form", "field", "words"), [
    ({}, "image", "Give the character to drive: an image or a clip of them."),
    ({"image": True, "video": True}, "video", "The character is an image or a clip, not both."),
    ({"image": True, "model": "gen4.5"}, "model", "Gen-4.5 cannot drive a character"),
    ({"image": True, "expression_intensity": "9"}, "expression_intensity", "Select a valid choice"),
    ({"image": True, "duration": "5"}, "duration", "Act-Two takes no duration."),
])  # fmt: skip
def test_a_performance_that_cannot_be_sent_is_refused_next_to_its_field(alice, media, broker, form, field, words):
    data = {
        "prompt": "x",
        "performance": clip_upload(name="me.mp4"),
        **{k: v for k, v in form.items() if v is not True},
    }
    if form.get("image"):
        data["image"] = png_upload()
    if form.get("video"):
        data["video"] = clip_upload()

    response = alice.post(DASHBOARD, data)

    assert response.status_code == 400
    assert words in field_errors(response.content.decode(), field)
    assert VideoGeneration.objects.count() == 0


def test_act_two_without_a_performance_says_so_as_the_model_is_chosen(alice):
    problems = _pickers(alice.get(DASHBOARD).content.decode())["modelProblems"]
    assert problems["image_to_video"]["act_two"] == (
        "Act-Two drives a character with a performance clip: add one, or choose another model."
    )


# --- a first and a last frame -----------------------------------------------------------------------


def test_a_first_and_a_last_frame_go_to_a_model_that_takes_both(alice, media, broker):
    last = SimpleUploadedFile("end.jpg", picture("JPEG"), content_type="image/jpeg")
    response = alice.post(
        DASHBOARD, {"prompt": "Dawn to dusk", "model": "veo3.1", "image": png_upload(), "last_image": last}
    )

    assert response.status_code == 302
    job = VideoGeneration.objects.get()
    assert job.last_image.name.endswith(".jpg") and "end" not in job.last_image.name
    with job.image.open("rb") as first, job.last_image.open("rb") as final:
        frames = [
            {"uri": inputs.data_uri(first.read(), "image/png"), "position": "first"},
            {"uri": inputs.data_uri(final.read(), "image/jpeg"), "position": "last"},
        ]
    assert steps.generation_payload(generation=job)["promptImage"] == frames


@pytest.mark.parametrize(("form", "words"), [
    ({"model": "gen4_turbo", "image": True}, "Gen-4 Turbo takes no last frame: only a first one."),
    ({"model": "veo3.1"}, "A last frame needs a first frame: add an image to start from."),
    ({"model": "veo3.1", "image": True, "last": b"not an image"}, "not a JPEG, PNG or WebP image"),
])  # fmt: skip
def test_a_last_frame_that_cannot_be_sent_is_refused_next_to_it(alice, media, broker, form, words):
    data = {"prompt": "Dawn", "model": form["model"]}
    data["last_image"] = SimpleUploadedFile("end.png", form.get("last", PNG), content_type="image/png")
    if form.get("image"):
        data["image"] = png_upload()

    response = alice.post(DASHBOARD, data)

    assert response.status_code == 400
    assert words in field_errors(response.content.decode(), "last_image")
    assert VideoGeneration.objects.count() == 0


def test_a_last_frame_goes_with_a_first_frame_given_by_its_url(alice, media, broker):
    last = SimpleUploadedFile("end.png", PNG, content_type="image/png")
    url = "https://images.example.com/dawn.png"
    response = alice.post(DASHBOARD, {"prompt": "Dawn", "model": "veo3.1", "image_url": url, "last_image": last})

    assert response.status_code == 302
    frames = steps.generation_payload(generation=VideoGeneration.objects.get())["promptImage"]
    assert frames == [{"uri": url, "position": "first"}, {"uri": inputs.data_uri(PNG, "image/png"), "position": "last"}]


# --- "Email me when it is done" ---------------------------------------------------------------


def test_the_form_offers_the_email_only_when_mail_can_reach_the_user(alice, user, settings):
    settings.EMAIL_CONFIGURED = False
    user.email = "alice@example.com"
    user.save()
    assert 'name="notify"' not in alice.get(DASHBOARD).content.decode()  # no mail settings

    settings.EMAIL_CONFIGURED = True
    page = alice.get(DASHBOARD).content.decode()
    box = '<input type="checkbox" name="notify" id="id_notify">'
    assert f'<label class="checkbox">{box} Email me at alice@example.com when it is done</label>' in page

    user.email = ""
    user.save()
    assert 'name="notify"' not in alice.get(DASHBOARD).content.decode()  # no address to send to


@pytest.mark.parametrize(
    ("configured", "email", "ticked", "stored"),
    [
        (True, "alice@example.com", True, True),
        (True, "alice@example.com", False, False),
        (False, "alice@example.com", True, False),  # not offered: a forged tick asks for nothing
        (True, "", True, False),
    ],
)
def test_a_ticked_box_is_stored_with_the_job(alice, user, settings, broker, configured, email, ticked, stored):
    settings.EMAIL_CONFIGURED = configured
    user.email = email
    user.save()
    data = {"prompt": "A fox in the snow", **({"notify": "on"} if ticked else {})}

    assert alice.post(DASHBOARD, data).status_code == 302

    assert VideoGeneration.objects.get().notify_when_done is stored


def test_the_videos_page_says_an_email_is_coming(alice, user, make_job):
    user.email = "alice@example.com"
    user.save()
    asked = make_job(notify_when_done=True, status=Status.RUNNING)
    not_asked = make_job(status=Status.RUNNING)

    assert "You will be emailed at alice@example.com when it ends" in alice.get(f"/videos/{asked.pk}/").content.decode()
    assert "emailed" not in alice.get(f"/videos/{not_asked.pk}/").content.decode()
