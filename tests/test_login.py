"""Failed logins (django-axes, runway_project/lockout.py) and the password-reset pages."""

import re
from datetime import timedelta

import pytest
from axes.models import AccessAttempt
from django.conf import settings
from django.core import mail
from django.test import Client

from runway_project.lockout import client_ip_address

pytestmark = pytest.mark.django_db
LOGIN = "/accounts/login/"
ADMIN_LOGIN = "/admin/login/"
PASSWORD = "a-long-test-password"  # tests/conftest.py's `user`
HOME = "192.0.2.10"
ELSEWHERE = "198.51.100.20"


def fail_until_locked(client: Client, url: str, username: str, address: str = HOME):
    """The allowed number of wrong passwords: all but the last are refused as usual."""
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        response = client.post(url, {"username": username, "password": "wrong"}, REMOTE_ADDR=address)
        assert response.status_code == 200
    return client.post(url, {"username": username, "password": "wrong"}, REMOTE_ADDR=address)


def log_in(client: Client, url: str, username: str, password: str = PASSWORD, address: str = HOME):
    return client.post(url, {"username": username, "password": password}, REMOTE_ADDR=address)


def test_failures_lock_the_user_out_with_the_cool_off_shown(client, user):
    locked = fail_until_locked(client, LOGIN, "alice")

    assert locked.status_code == 429
    page = locked.content.decode()
    assert "Too many failed logins" in page
    assert f"after {settings.AXES_FAILURE_LIMIT} failed attempts" in page
    assert "Try again in 15 minutes" in page
    assert 'href="/accounts/login/"' in page  # the site's own layout, not a bare line of text

    refused = log_in(client, LOGIN, "alice")
    assert refused.status_code == 429
    assert "_auth_user_id" not in client.session


def test_the_right_password_works_again_after_the_cool_off(client, user):
    fail_until_locked(client, LOGIN, "alice")
    assert log_in(client, LOGIN, "alice").status_code == 429

    # The lockout's age is the time of the last failure that axes recorded: move it back.
    attempt = AccessAttempt.objects.get(username="alice")
    attempt.attempt_time -= settings.AXES_COOLOFF_TIME + timedelta(seconds=1)
    attempt.save()

    response = log_in(client, LOGIN, "alice")
    assert response.status_code == 302
    assert client.session["_auth_user_id"] == str(user.pk)
    assert not AccessAttempt.objects.exists()  # success forgets the failures


def test_a_failure_during_the_cool_off_starts_it_again(client, user):
    fail_until_locked(client, LOGIN, "alice")
    attempt = AccessAttempt.objects.get(username="alice")
    attempt.attempt_time -= settings.AXES_COOLOFF_TIME - timedelta(minutes=1)
    attempt.save()

    assert log_in(client, LOGIN, "alice", password="wrong").status_code == 429
    attempt = AccessAttempt.objects.get(username="alice")
    attempt.attempt_time -= timedelta(minutes=2)
    attempt.save()

    assert log_in(client, LOGIN, "alice").status_code == 429


def test_the_lockout_is_for_that_user_from_that_address_only(client, user, other_user):
    fail_until_locked(client, LOGIN, "alice")

    elsewhere = Client()
    assert log_in(elsewhere, LOGIN, "alice", address=ELSEWHERE).status_code == 302
    bob = Client()
    assert log_in(bob, LOGIN, "bob", password="another-test-password").status_code == 302


def fail_with_other_names(count: int, address: str = HOME) -> None:
    """`count` wrong passwords from `address`, each for a user name of its own, none locked out."""
    for number in range(count):
        response = Client().post(LOGIN, {"username": f"name-{number}", "password": PASSWORD}, REMOTE_ADDR=address)
        assert response.status_code == 200, number


def test_one_address_trying_a_password_on_many_names_is_locked_out_at_the_address_limit(user, other_user):
    assert settings.AXES_LOCKOUT_PARAMETERS == [["username", "ip_address"], "ip_address"]  # the default
    limit = settings.AXES_ADDRESS_FAILURE_LIMIT
    assert limit > settings.AXES_FAILURE_LIMIT
    fail_with_other_names(limit - 1)

    locked = Client().post(LOGIN, {"username": "one-more-name", "password": PASSWORD}, REMOTE_ADDR=HOME)

    assert locked.status_code == 429
    page = locked.content.decode()
    assert f"Logging in from your network address is locked after {limit} failed attempts" in page
    assert "whatever the user names" in page and "Try again in 15 minutes" in page
    # Every name from that address, the right password too; other addresses are not concerned.
    assert log_in(Client(), LOGIN, "alice").status_code == 429
    assert log_in(Client(), LOGIN, "bob", password="another-test-password", address=ELSEWHERE).status_code == 302


def test_a_team_behind_one_address_shares_the_address_limit_not_each_others_lockouts(client, user):
    # Colleagues behind one router mistype their own passwords: each name counts up to its own limit.
    fail_with_other_names(settings.AXES_ADDRESS_FAILURE_LIMIT - 1)

    assert log_in(client, LOGIN, "alice").status_code == 302


def test_a_successful_login_forgets_that_users_failures_not_the_addresss(user):
    fail_with_other_names(settings.AXES_ADDRESS_FAILURE_LIMIT - 3)
    assert log_in(Client(), LOGIN, "alice", password="wrong").status_code == 200  # one short of the limit now

    assert log_in(Client(), LOGIN, "alice").status_code == 302
    assert not AccessAttempt.objects.filter(username="alice").exists()  # hers forgotten, two short again
    # Logging in with one account between guesses at others does not start the address's count again.
    assert log_in(Client(), LOGIN, "someone-else", password="wrong").status_code == 200
    assert log_in(Client(), LOGIN, "another-name", password="wrong").status_code == 200
    assert log_in(Client(), LOGIN, "a-third-name", password="wrong").status_code == 429


def test_the_address_limit_is_a_setting(user, settings):
    settings.AXES_ADDRESS_FAILURE_LIMIT = 8
    fail_with_other_names(7)

    assert log_in(Client(), LOGIN, "name-7", password="wrong").status_code == 429
    assert "locked after 8 failed attempts" in log_in(Client(), LOGIN, "alice").content.decode()


def test_behind_a_proxy_the_address_counted_is_the_clients(user, settings):
    settings.TRUSTED_PROXY_COUNT = 1
    settings.AXES_ADDRESS_FAILURE_LIMIT = 3
    for name in ("a", "b", "c"):
        Client().post(LOGIN, {"username": name, "password": "wrong"}, REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR=HOME)

    def from_client(address: str) -> int:
        response = Client().post(
            LOGIN, {"username": "alice", "password": PASSWORD}, REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR=address
        )
        return response.status_code

    assert from_client(HOME) == 429
    assert from_client(ELSEWHERE) == 302  # the proxy's own address is not locked out


def test_the_admin_login_is_locked_out_too(client, admin_user):
    locked = fail_until_locked(client, ADMIN_LOGIN, "admin")
    assert locked.status_code == 429
    assert "Too many failed logins" in locked.content.decode()

    assert log_in(client, ADMIN_LOGIN, "admin", password="password").status_code == 429
    assert log_in(Client(), LOGIN, "admin", password="password").status_code == 429  # same count
    assert client.get("/admin/").status_code == 302  # still to the login page


def test_staff_see_and_clear_a_lockout_in_the_admin(client, user, admin_user):
    fail_until_locked(client, LOGIN, "alice")
    staff = Client()
    staff.force_login(admin_user)

    index = staff.get("/admin/").content.decode()
    assert "Access attempts" in index and "Access logs" in index
    listing = staff.get("/admin/axes/accessattempt/")
    assert listing.status_code == 200
    assert "alice" in listing.content.decode() and HOME in listing.content.decode()

    attempt = AccessAttempt.objects.get(username="alice")
    cleared = staff.post(
        "/admin/axes/accessattempt/",
        {"action": "delete_selected", "_selected_action": [attempt.pk], "post": "yes"},
    )
    assert cleared.status_code == 302
    assert not AccessAttempt.objects.exists()
    assert log_in(client, LOGIN, "alice").status_code == 302


def test_the_client_address_behind_proxies_is_the_one_the_outermost_saw(rf, settings):
    request = rf.get("/", REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="6.6.6.6, 203.0.113.7, 10.0.0.1")
    assert client_ip_address(request) == "10.0.0.2"  # no proxy configured: a forged header is ignored

    settings.TRUSTED_PROXY_COUNT = 2
    assert client_ip_address(request) == "203.0.113.7"  # not the client's own "6.6.6.6"

    settings.TRUSTED_PROXY_COUNT = 4
    assert client_ip_address(request) == "10.0.0.2"  # fewer entries than proxies: not trusted


def test_behind_a_proxy_each_client_is_counted_on_its_own(client, user, settings):
    settings.TRUSTED_PROXY_COUNT = 1
    for _ in range(settings.AXES_FAILURE_LIMIT):
        client.post(
            LOGIN, {"username": "alice", "password": "wrong"}, REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR=HOME
        )

    assert AccessAttempt.objects.get().ip_address == HOME
    again = Client().post(
        LOGIN, {"username": "alice", "password": PASSWORD}, REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR=HOME
    )
    assert again.status_code == 429
    other = Client()
    response = other.post(
        LOGIN, {"username": "alice", "password": PASSWORD}, REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR=ELSEWHERE
    )
    assert response.status_code == 302


@pytest.mark.parametrize(
    "url",
    ["/accounts/password_reset/", "/accounts/password_reset/done/", "/accounts/reset/done/", "/accounts/reset/MQ/x-y/"],
)
def test_password_reset_pages_are_not_found_without_email(client, url):
    assert not settings.PASSWORD_RESET_ENABLED  # the tests set no EMAIL_URL
    assert client.get(url).status_code == 404
    assert "/accounts/password_reset/" not in client.get(LOGIN).content.decode()


def test_password_reset_sends_mail_when_email_is_configured(client, user, settings):
    user.email = "alice@example.com"
    user.save()
    settings.PASSWORD_RESET_ENABLED = True

    assert 'href="/accounts/password_reset/"' in client.get(LOGIN).content.decode()
    assert client.get("/accounts/password_reset/").status_code == 200
    response = client.post("/accounts/password_reset/", {"email": "alice@example.com"})

    assert response.status_code == 302
    assert "Check your email" in client.get(response["Location"]).content.decode()
    assert len(mail.outbox) == 1
    link = re.search(r"http://testserver(/accounts/reset/\S+/)", mail.outbox[0].body)
    assert link, mail.outbox[0].body

    form = client.get(link.group(1), follow=True)
    assert "Choose a new password" in form.content.decode()
    new_password = "a-brand-new-test-password"
    done = client.post(
        form.redirect_chain[-1][0], {"new_password1": new_password, "new_password2": new_password}, follow=True
    )
    assert "Password changed" in done.content.decode()
    assert log_in(Client(), LOGIN, "alice", password=new_password).status_code == 302
