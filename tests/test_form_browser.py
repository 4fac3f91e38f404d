"""The Generate form and the history in a real browser (Chromium via Playwright): the prompt's
counter and Ctrl+Enter, the image preview, drop and removal, the file kept after a refusal, Edit &
re-run, the history's search and filters, and times in the browser's own zone.

No worker: what these tests create stays queued (the `broker` fixture empties the test queue).
The browser fixtures come from test_browser.py; tests name them as arguments, which ruff reads as
redefining the imports."""
# ruff: noqa: F811

import re
from collections.abc import Iterator

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from playwright.sync_api import Page, expect

from tests.conftest import PNG, clip
from tests.test_browser import PASSWORD, browser, logged_in, page, watch_for_problems  # noqa: F401 (fixtures)
from videos.models import Status, VideoGeneration

pytestmark = [pytest.mark.stack, pytest.mark.django_db(transaction=True)]

GENERATE = re.compile(r"^Generate")


def carol_job(django_user_model, **fields) -> VideoGeneration:
    values = {
        "owner": django_user_model.objects.get(username="carol"),
        "prompt": "A lighthouse in a storm",
        "endpoint": "text_to_video",
        "model": "gen4.5",
        "ratio": "1280:720",
        "duration": 5,
        "seed": 11,
        "status": Status.SUCCEEDED,
        "progress": 100,
    }
    values = {**values, **fields}
    return VideoGeneration.objects.create(**values, prompt_folded=values["prompt"].casefold())


def stored_png() -> str:
    return default_storage.save("inputs/test/frame.png", ContentFile(PNG))


def open_advanced(page: Page) -> None:
    page.get_by_text("Model, ratio, duration, seed, image").click()


IMAGE_LOADED = "img => img.complete && img.naturalWidth > 0"


def test_the_counter_counts_as_runway_does_never_cuts_a_paste_and_ctrl_enter_submits(logged_in, broker):
    page = logged_in
    prompt = page.get_by_label("Describe your video")
    counter = page.locator("#prompt-count")
    expect(counter).to_have_text("0 of 1,000 characters (an emoji counts as two).")

    prompt.fill("a" * 999 + "🎬")  # 1,001 UTF-16 units, as Runway counts
    expect(counter).to_have_text("1,001 of 1,000 characters: 1 too many, shorten it to generate.")
    expect(counter).to_have_class(re.compile(r"\bover\b"))
    assert prompt.input_value() == "a" * 999 + "🎬", "the paste was cut"

    prompt.press("Control+Enter")
    expect(page.locator("#prompt-errors")).to_contain_text("too long: 1001 characters")
    assert prompt.input_value() == "a" * 999 + "🎬"
    page.shots.take("too-long")  # type: ignore[attr-defined]

    prompt.fill("A quiet harbour at dawn")
    expect(counter).to_have_text("23 of 1,000 characters (an emoji counts as two).")
    prompt.press("Control+Enter")
    expect(page.locator(".generation").first.locator(".prompt")).to_have_text("A quiet harbour at dawn")
    assert VideoGeneration.objects.get().prompt == "A quiet harbour at dawn"


def test_a_chosen_image_is_previewed_kept_after_a_refusal_and_can_be_removed(logged_in, broker):
    page = logged_in
    open_advanced(page)
    page.set_input_files("#id_image", files=[{"name": "frame.png", "mimeType": "image/png", "buffer": PNG}])
    preview = page.locator("#image-preview img")
    expect(preview).to_be_visible()
    assert preview.get_attribute("src").startswith("blob:")
    page.wait_for_function(f"() => ({IMAGE_LOADED})(document.querySelector('#image-preview img'))")

    page.select_option("#id_model", "gen4.5")  # needs a prompt, even with an image
    page.get_by_role("button", name=GENERATE).click()
    expect(page.locator("#prompt-errors")).to_contain_text("cannot be empty")
    assert page.eval_on_selector("#id_image", "input => input.files.length") == 1, "the file was cleared"
    expect(preview).to_be_visible()
    page.shots.take("kept")  # type: ignore[attr-defined]

    page.get_by_role("button", name="Remove image").click()
    expect(page.locator("#image-preview")).to_be_hidden()
    assert page.eval_on_selector("#id_image", "input => input.files.length") == 0
    assert VideoGeneration.objects.count() == 0


# A PNG made in the page, dropped on the form as a file dragged from the desktop would be.
DROP_A_PICTURE = """async () => {
    const canvas = document.createElement("canvas");
    canvas.width = 64; canvas.height = 36;
    canvas.getContext("2d").fillRect(0, 0, 64, 36);
    const blob = await new Promise(done => canvas.toBlob(done, "image/png"));
    const dropped = new DataTransfer();
    dropped.items.add(new File([blob], "dropped.png", { type: "image/png" }));
    const form = document.getElementById("generate-form");
    for (const type of ["dragenter", "dragover", "drop"]) {
        form.dispatchEvent(new DragEvent(type, { dataTransfer: dropped, bubbles: true, cancelable: true }));
    }
}"""


def test_an_image_dropped_on_the_form_makes_a_video_from_it_without_a_prompt(logged_in, broker):
    page = logged_in
    page.evaluate(DROP_A_PICTURE)
    expect(page.locator("details.advanced")).to_have_attribute("open", "")
    expect(page.locator("#image-preview img")).to_be_visible()
    assert page.eval_on_selector("#id_image", "input => input.files[0].name") == "dropped.png"
    # Gen-4 Turbo from an image needs no description.
    page.select_option("#id_model", "gen4_turbo")
    page.get_by_role("button", name=GENERATE).click()

    card = page.locator(".generation").first
    expect(card.locator(".prompt")).to_have_text("(no description)")
    thumbnail = card.locator("img.input-thumb")
    expect(thumbnail).to_be_visible()
    page.wait_for_function(f"() => ({IMAGE_LOADED})(document.querySelector('.generation img.input-thumb'))")
    job = VideoGeneration.objects.get()
    assert (job.endpoint, job.model, job.prompt) == ("image_to_video", "gen4_turbo", "")
    expect(page.locator("#image-preview")).to_be_hidden()  # the form is ready for the next one


def test_edit_and_re_run_puts_prompt_settings_and_image_back_in_the_form(logged_in, django_user_model, broker):
    page = logged_in
    source = carol_job(
        django_user_model,
        prompt="The wave rolls in",
        endpoint="image_to_video",
        model="gen4_turbo",
        ratio="832:1104",
        duration=3,
        seed=7,
        image=stored_png(),
    )
    page.reload()
    page.locator(f"#generation-{source.pk}").get_by_role("link", name="Edit & re-run").click()

    expect(page).to_have_url(re.compile(rf"\?from={source.pk}#generate-form$"))
    expect(page.get_by_label("Describe your video")).to_have_value("The wave rolls in")
    expect(page.locator("#id_model")).to_have_value("gen4_turbo")
    expect(page.locator("#id_ratio")).to_have_value("832:1104")  # kept by the pickers, as the image is reused
    expect(page.locator("#id_duration")).to_have_value("3")
    expect(page.locator("#id_seed")).to_have_value("7")
    reuse = page.get_by_label(re.compile(rf"Use the image of video #{source.pk}"))
    expect(reuse).to_be_checked()
    page.wait_for_function(f"() => ({IMAGE_LOADED})(document.querySelector('#reused-image img'))")
    page.shots.take("prefilled")  # type: ignore[attr-defined]

    page.get_by_label("Describe your video").fill("The wave rolls out")
    page.get_by_role("button", name=GENERATE).click()
    expect(page.locator(".generation").first.locator(".prompt")).to_have_text("The wave rolls out")
    new = VideoGeneration.objects.exclude(pk=source.pk).get()
    settings = (new.endpoint, new.model, new.ratio, new.duration, new.seed)
    assert settings == ("image_to_video", "gen4_turbo", "832:1104", 3, 7)
    with new.image.open("rb") as f:
        assert f.read() == PNG


def test_the_history_is_searched_and_filtered_in_the_page(logged_in, django_user_model):
    page = logged_in
    carol_job(django_user_model, prompt="A storm over the sea", status=Status.CANCELLED, model="veo3.1")
    carol_job(django_user_model, prompt="A storm in a teacup", status=Status.TIMED_OUT)
    carol_job(django_user_model, prompt="A sunny meadow")
    page.reload()
    expect(page.locator(".generation")).to_have_count(3)

    page.get_by_label("Search descriptions").fill("STORM")
    page.get_by_role("button", name="Search").click()
    expect(page).to_have_url(re.compile(r"q=STORM"))
    expect(page.locator(".generation")).to_have_count(2)

    page.get_by_role("link", name="Timed out").click()
    expect(page.locator(".generation .prompt")).to_have_text(["A storm in a teacup"])
    expect(page.get_by_role("link", name="Timed out")).to_have_attribute("aria-current", "page")
    expect(page.get_by_label("Search descriptions")).to_have_value("STORM")

    page.get_by_role("search").get_by_label("Model").select_option("veo3.1")  # the history's, not the form's
    page.get_by_role("button", name="Search").click()
    expect(page.locator(".no-match")).to_contain_text("No videos match.")
    page.shots.take("no-match")  # type: ignore[attr-defined]
    page.get_by_role("link", name="Clear the search and filters").click()
    expect(page.locator(".generation")).to_have_count(3)
    # The model filter names models as people know them.
    expect(page.locator(".generation .meta").first).to_contain_text("Gen-4.5")


@pytest.fixture
def tokyo_page(browser) -> Iterator[Page]:
    context = browser.new_context(timezone_id="Asia/Tokyo", viewport={"width": 1100, "height": 900})
    page = context.new_page()
    problems = watch_for_problems(page)
    yield page
    context.close()
    assert problems == []


def test_times_are_shown_in_the_browsers_time_zone(tokyo_page, live_server, django_user_model):
    django_user_model.objects.create_user(username="carol", password=PASSWORD)
    job = carol_job(django_user_model)
    VideoGeneration.objects.filter(pk=job.pk).update(created_at="2026-11-29T13:05:00Z")
    page = tokyo_page
    page.goto(live_server.url + "/accounts/login/")  # its script tells the server the zone
    page.get_by_label("Username").fill("carol")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()

    time = page.locator(f"#generation-{job.pk} time")
    expect(time).to_have_text("Nov 29, 22:05")
    expect(time).to_have_attribute("title", "Nov 29, 2026, 22:05 JST")
    expect(time).to_have_attribute("datetime", "2026-11-29T13:05:00+00:00")


def test_a_model_that_needs_an_image_says_so_at_once_by_name_and_shows_its_own_price(logged_in, broker):
    page = logged_in
    open_advanced(page)
    page.select_option("#id_model", "gen4_turbo")

    expect(page.locator("#model-errors")).to_have_text(
        "Gen-4 Turbo needs an image to start from: add one, or choose a model that starts from text alone."
    )
    expect(page.locator("#estimate")).to_contain_text("Estimated cost: 25 credits (US$0.25)")  # Gen-4 Turbo's, 5 s
    page.shots.take("needs-an-image")  # type: ignore[attr-defined]

    page.set_input_files("#id_image", files=[{"name": "frame.png", "mimeType": "image/png", "buffer": PNG}])
    expect(page.locator("#model-errors")).to_be_empty()
    expect(page.locator("#estimate")).to_contain_text("25 credits")
    page.select_option("#id_model", "veo3.1")
    expect(page.locator("#estimate")).to_contain_text("Estimated cost: 160 credits")  # Veo 3.1, 4 s
    assert VideoGeneration.objects.count() == 0


def test_the_form_shows_only_the_chosen_models_fields_its_limit_and_its_price(logged_in, broker, settings):
    page = logged_in
    open_advanced(page)
    fields = {
        name: page.locator(f".field-{name}") for name in ("ratio", "resolution", "seed", "audio", "negative_prompt")
    }

    def shown() -> set[str]:
        return {name for name, field in fields.items() if field.is_visible()}

    expect(fields["seed"]).to_be_visible()  # Gen-4.5, the default
    assert shown() == {"ratio", "seed"}
    page.select_option("#id_model", "veo3.1")
    expect(fields["audio"]).to_be_visible()
    assert shown() == {"ratio", "seed", "audio", "negative_prompt"}
    page.select_option("#id_audio", "off")
    expect(page.locator("#estimate")).to_contain_text("Estimated cost: 80 credits")  # 4 s without sound, 20/s
    page.select_option("#id_model", "hailuo3")
    expect(fields["resolution"]).to_be_visible()
    assert shown() == {"ratio", "resolution"}
    assert page.locator("#id_seed").is_disabled(), "a hidden field is not sent"
    expect(page.locator("#estimate")).to_contain_text(
        f"Estimated cost: at most {int(settings.RUNWAY_PRICE_CEILING) * 6:,} credits"
    )
    page.select_option("#id_resolution", "2k")
    page.get_by_label("Describe your video").fill("Dancers")
    expect(page.locator("#prompt-count")).to_have_text(re.compile(r"^7 of 2,500 characters"))
    page.select_option("#id_model", "seedance2_5")
    expect(page.locator("#prompt-count")).to_have_text(re.compile(r"^7 of 15,000 characters"))
    page.get_by_role("button", name=GENERATE).click()
    expect(page.locator(".generation").first.locator(".prompt")).to_have_text("Dancers")
    job = VideoGeneration.objects.get()
    assert (job.model, job.endpoint) == ("seedance2_5", "text_to_video")
    # Hailuo's resolution, hidden with Seedance, is not sent; the sound, which Seedance has too, is kept.
    assert "resolution" not in job.params and job.params["audio"] is False


def test_a_clip_or_a_performance_decides_the_endpoint_and_its_price_counts_the_clips_seconds(logged_in, broker):
    page = logged_in
    open_advanced(page)
    fields = {
        name: page.locator(f".field-{name}") for name in ("ratio", "duration", "body_control", "expression_intensity")
    }

    page.set_input_files("#id_video", files=[{"name": "holiday.mp4", "mimeType": "video/mp4", "buffer": clip(3.0)}])
    # Aleph 2.0 by default: no published price, at most the ceiling for each of the clip's 3 seconds.
    expect(page.locator("#estimate")).to_contain_text("Estimated cost: at most 300 credits")
    expect(fields["ratio"]).to_be_hidden()
    expect(fields["duration"]).to_be_hidden()
    page.select_option("#id_model", "gen4.5")
    expect(page.locator("#model-errors")).to_have_text(
        "Gen-4.5 cannot edit a clip: remove the clip, or choose a model that edits one."
    )
    page.select_option("#id_model", "")

    page.set_input_files("#id_performance", files=[{"name": "me.mp4", "mimeType": "video/mp4", "buffer": clip(2.0)}])
    expect(fields["body_control"]).to_be_visible()  # Act-Two, driving the clip as its character
    expect(fields["expression_intensity"]).to_be_visible()
    expect(fields["ratio"]).to_be_visible()
    expect(page.locator("#estimate")).to_contain_text("Estimated cost: at most 200 credits")
    expect(page.locator("#prompt-help")).to_have_text(
        "Act-Two takes no description: it names the video in your history."
    )
    page.select_option("#id_body_control", "on")
    page.get_by_label("Describe your video").fill("Me as the captain")
    page.get_by_role("button", name=GENERATE).click()

    expect(page.locator(".generation").first.locator(".prompt")).to_have_text("Me as the captain")
    job = VideoGeneration.objects.get()
    assert (job.endpoint, job.model, job.params["bodyControl"]) == ("character_performance", "act_two", True)
    assert (job.clip_seconds, job.performance_seconds) == (3.0, 2.0)


def test_a_last_frame_is_offered_with_an_image_for_the_models_that_take_one(logged_in, broker):
    page = logged_in
    open_advanced(page)
    last = page.locator(".field-last_image")
    page.select_option("#id_model", "veo3.1")
    expect(last).to_be_hidden()  # no first frame yet

    page.set_input_files("#id_image", files=[{"name": "dawn.png", "mimeType": "image/png", "buffer": PNG}])
    expect(last).to_be_visible()
    page.select_option("#id_model", "gen4_turbo")
    expect(last).to_be_hidden()
    page.select_option("#id_model", "kling3.0_pro")
    expect(last).to_be_visible()
    page.set_input_files("#id_last_image", files=[{"name": "dusk.png", "mimeType": "image/png", "buffer": PNG}])
    page.get_by_label("Describe your video").fill("Dawn to dusk")
    page.get_by_role("button", name=GENERATE).click()

    expect(page.locator(".generation").first.locator(".prompt")).to_have_text("Dawn to dusk")
    job = VideoGeneration.objects.get()
    assert (job.model, job.endpoint) == ("kling3.0_pro", "image_to_video") and job.last_image


def test_the_servers_messages_go_once_the_field_they_are_about_is_changed(logged_in, broker):
    page = logged_in
    prompt = page.get_by_label("Describe your video")
    prompt.fill("a" * 1001)
    page.get_by_role("button", name=GENERATE).click()
    expect(page.locator("#prompt-errors")).to_contain_text("too long: 1001 characters")
    prompt.fill("A quiet harbour at dawn")
    expect(page.locator("#prompt-errors")).to_be_empty()

    open_advanced(page)
    page.select_option("#id_model", "gen4_turbo")  # and no image
    page.get_by_role("button", name=GENERATE).click()
    expect(page.locator("#model-errors")).to_contain_text("Gen-4 Turbo needs an image")
    expect(page.locator("#model-errors li")).to_have_count(1)  # said once, not by the server and the page both
    page.select_option("#id_model", "gen4.5")
    expect(page.locator("#model-errors")).to_be_empty()
    page.get_by_role("button", name=GENERATE).click()
    expect(page.locator(".generation").first.locator(".prompt")).to_have_text("A quiet harbour at dawn")


def test_an_image_over_the_limit_is_refused_before_anything_is_uploaded(logged_in, broker, settings):
    page = logged_in
    posts: list[str] = []
    page.on("request", lambda request: posts.append(request.url) if request.method == "POST" else None)
    open_advanced(page)
    too_large = PNG + b"\0" * (25_000_000 - len(PNG))  # 25 MB, a PNG by its first bytes

    page.set_input_files("#id_image", files=[{"name": "huge.png", "mimeType": "image/png", "buffer": too_large}])

    expect(page.locator("#image-errors")).to_have_text("The image is 25.0 MB; images of up to 20 MB can be used.")
    assert page.eval_on_selector("#id_image", "input => input.files.length") == 0  # not sent with the form
    expect(page.locator("#image-preview")).to_be_hidden()
    page.set_input_files("#id_image", files=[{"name": "notes.txt", "mimeType": "text/plain", "buffer": b"hello"}])
    expect(page.locator("#image-errors")).to_have_text("The file is not a JPEG, PNG or WebP image.")
    page.set_input_files("#id_image", files=[{"name": "frame.png", "mimeType": "image/png", "buffer": PNG}])
    expect(page.locator("#image-errors")).to_be_empty()
    expect(page.locator("#image-preview img")).to_be_visible()
    assert posts == []
    page.shots.take("image-refused")  # type: ignore[attr-defined]


def test_what_was_spent_follows_a_new_video_without_a_reload(logged_in, broker):
    page = logged_in
    spend = page.locator("#account .spend")
    expect(spend).to_contain_text("This month: 0 credits (US$0.00)")
    expect(spend).to_contain_text("Today: 0 of 50 videos")

    page.get_by_label("Describe your video").fill("A quiet harbour at dawn")
    page.get_by_role("button", name=GENERATE).click()

    expect(spend).to_contain_text("This month: 60 credits (US$0.60)")  # its reservation, at once
    expect(spend).to_contain_text("Today: 1 of 50 videos")
