"""Our API keys (issue 23's first part): made and shown once, stored only as a hash and a prefix,
found again by the prefix and one comparison, revocable by staff; a webhook URL must lead, by the
addresses it resolves to, to the public internet."""

import io
from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from api import addresses, keys, services
from api.models import ApiKey

pytestmark = pytest.mark.django_db
PUBLIC = "93.184.215.14"  # an address on the internet, for a resolver that answers without DNS


def public_resolver(host: str, port: int) -> list[str]:
    return [PUBLIC]


def test_a_key_is_shown_once_and_stored_only_as_its_hash_and_prefix(user):
    made = services.api_key_create(user=user, name="nightly batch")

    row = ApiKey.objects.get()
    assert made.key.startswith(row.prefix + "_") and row.prefix.startswith("rwv_") and len(row.prefix) == 12
    assert row.hashed == keys.key_hash(made.key) and len(made.key) > 50
    stored = [str(value) for value in ApiKey.objects.values().get().values()]
    assert not any(made.key in value for value in stored)
    assert made.key not in repr(row) and made.key not in str(row)


def test_the_key_finds_its_row_and_notes_its_use_at_most_once_a_minute(user, django_assert_num_queries):
    made = services.api_key_create(user=user)

    with django_assert_num_queries(2):  # the lookup, and last_used_at
        assert services.api_key_authenticate(made.key).user == user
    with django_assert_num_queries(1):  # used a moment ago: no write
        assert services.api_key_authenticate(made.key) is not None
    ApiKey.objects.update(last_used_at=timezone.now() - timedelta(minutes=2))
    with django_assert_num_queries(2):
        services.api_key_authenticate(made.key)


@pytest.mark.parametrize("change", ["secret", "prefix", "garbage", "empty"])
def test_a_wrong_key_finds_nothing(user, change):
    made = services.api_key_create(user=user)
    wrong = {
        "secret": made.key[:-4] + "AAAA",
        "prefix": "rwv_00000000" + made.key[12:],
        "garbage": "key_" + "ab" * 64,
        "empty": "",
    }[change]
    assert services.api_key_authenticate(wrong) is None


def test_a_revoked_key_or_an_inactive_users_finds_nothing(user, other_user):
    revoked = services.api_key_create(user=user)
    revoked.api_key.revoke()
    inactive = services.api_key_create(user=other_user)
    other_user.is_active = False
    other_user.save()

    assert services.api_key_authenticate(revoked.key) is None
    assert services.api_key_authenticate(inactive.key) is None


def test_the_command_prints_the_key_alone_on_its_last_line_and_the_webhook_secret_before(user, monkeypatch):
    monkeypatch.setattr(addresses, "resolve", public_resolver)
    out = io.StringIO()

    call_command(
        "api_key", "create", user.username, "--name", "CI", "--webhook", "https://hooks.example.com/in", stdout=out
    )

    *_, secret, key = out.getvalue().splitlines()
    row = ApiKey.objects.get()
    assert services.api_key_authenticate(key) == row and row.name == "CI"
    assert secret.startswith("whsec_") and secret == row.webhook_secret
    assert row.webhook_url == "https://hooks.example.com/in"


def test_the_command_refuses_an_unknown_user_and_a_private_webhook(user):
    with pytest.raises(CommandError, match="No user named 'nobody'"):
        call_command("api_key", "create", "nobody", stdout=io.StringIO())
    with pytest.raises(CommandError, match="private, loopback or link-local"):
        call_command("api_key", "create", user.username, "--webhook", "https://127.1/hook", stdout=io.StringIO())
    assert not ApiKey.objects.exists()


@pytest.mark.parametrize(
    "url",
    [
        "https://127.1/hook",  # 127.0.0.1 in short
        "https://0177.0.0.1/hook",  # octal
        "https://2130706433/hook",  # one number
        "https://0x7f.1/hook",  # hex
        "https://[::1]/hook",
        "https://[::ffff:127.0.0.1]/hook",  # IPv4 in IPv6
        "https://10.0.0.5/hook",
        "https://169.254.169.254/latest/meta-data",  # a cloud's metadata service
        "https://localhost./hook",
        "http://hooks.example.com/hook",  # not https
        "ftp://hooks.example.com/hook",
    ],
)
def test_a_webhook_that_leads_anywhere_but_the_internet_is_refused(url):
    assert addresses.url_problem(url, allow_private=False) is not None


def test_a_name_is_judged_by_what_it_resolves_to():
    private = addresses.url_problem(
        "https://hooks.example.com/", allow_private=False, resolver=lambda h, p: ["10.1.2.3"]
    )
    mixed = addresses.url_problem(
        "https://hooks.example.com/", allow_private=False, resolver=lambda h, p: [PUBLIC, "127.0.0.1"]
    )
    assert private is not None and mixed is not None
    assert addresses.url_problem("https://hooks.example.com/", allow_private=False, resolver=public_resolver) is None


def test_private_addresses_are_allowed_when_the_setting_says_so():
    assert addresses.url_problem("http://127.0.0.1:8000/hook", allow_private=True) is None


def test_staff_see_keys_by_their_prefix_and_revoke_them(admin_client, user):
    made = services.api_key_create(user=user, name="nightly")

    page = admin_client.get("/admin/api/apikey/").content.decode()
    assert made.api_key.prefix in page and made.key not in page and made.api_key.hashed not in page
    assert admin_client.get("/admin/api/apikey/add/").status_code == 403
    admin_client.post("/admin/api/apikey/", {"action": "revoke", "_selected_action": [made.api_key.pk]})
    assert services.api_key_authenticate(made.key) is None


# --- the owner's page ----------------------------------------------------------------------------


def test_the_page_makes_a_key_shows_it_once_and_lists_it_by_its_prefix(alice, user):
    made_page = alice.post("/keys/", {"name": "nightly batch"})

    row = ApiKey.objects.get()
    content = made_page.content.decode()
    key = content.split("<code>")[1].split("</code>")[0]
    assert services.api_key_authenticate(key) == row and row.user == user and row.name == "nightly batch"
    assert "no-store" in made_page["Cache-Control"]
    again = alice.get("/keys/").content.decode()
    assert key not in again and f"{row.prefix}…" in again and "nightly batch" in again


def test_a_private_webhook_is_refused_next_to_its_field_and_no_key_is_made(alice):
    response = alice.post("/keys/", {"name": "x", "webhook_url": "https://127.1/hook"})

    assert response.status_code == 400
    assert "private, loopback or link-local" in response.content.decode()
    assert not ApiKey.objects.exists()


def test_an_owner_revokes_their_key_and_nobody_elses(alice, user, other_user):
    mine = services.api_key_create(user=user)
    theirs = services.api_key_create(user=other_user)

    assert alice.post(f"/keys/{theirs.api_key.pk}/revoke/").status_code == 404
    assert alice.post(f"/keys/{mine.api_key.pk}/revoke/").status_code == 302

    assert services.api_key_authenticate(mine.key) is None
    assert services.api_key_authenticate(theirs.key) is not None
    assert "revoked" in alice.get("/keys/").content.decode()


def test_the_page_is_for_logged_in_users(client):
    assert client.get("/keys/").status_code == 302
