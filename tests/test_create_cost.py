"""What making a job costs the database: each way of making one, its queries counted. A change that
adds a query to the create path fails here; the limits it checks are tested in test_creation.py
and test_forms_and_access.py.

Counted as PostgreSQL runs them (transaction=True: the create's own transaction is the outermost),
without the statements that only open or close a transaction (SQLite sends BEGIN and COMMIT as
statements, PostgreSQL does not).
"""

import re
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from tests.test_forms_and_access import page_token
from videos.catalog import VideoRequest
from videos.models import SpendEntry, UserBudget, VideoGeneration
from videos.services import creation, ledger

pytestmark = pytest.mark.django_db(transaction=True)

DASHBOARD = reverse("videos:dashboard")
TRANSACTION_CONTROL = re.compile(r"^(BEGIN|COMMIT|ROLLBACK|SAVEPOINT|RELEASE SAVEPOINT)\b", re.IGNORECASE)


class Counted(list[str]):
    """The statements that read or wrote, in order."""


@contextmanager
def statements() -> Iterator[Counted]:
    counted = Counted()
    with CaptureQueriesContext(connection) as context:
        yield counted
    counted.extend(q["sql"] for q in context.captured_queries if not TRANSACTION_CONTROL.match(q["sql"]))


def kinds(counted: Counted) -> list[str]:
    return [sql.split()[0].upper() + " " + _table(sql) for sql in counted]


def _table(sql: str) -> str:
    """The statement's own table, not its subqueries'."""
    while re.search(r"\([^()]*\)", sql):
        sql = re.sub(r"\([^()]*\)", "", sql)
    match = re.search(r'(?:FROM|INTO|UPDATE) "(\w+)"', sql)
    return match.group(1) if match else "?"


CREATE = [
    "SELECT auth_user",  # the owner's row, locked
    "SELECT auth_user",  # with every figure the limits need
    "INSERT videos_videogeneration",
    "INSERT videos_spendentry",  # the reservation
]


def test_a_service_create_locks_and_checks_in_one_read_then_writes_the_job_and_its_reservation(user, broker):
    UserBudget.objects.create(user=user, monthly_credits=5000)  # a budget of their own, read in the same query

    with statements() as counted:
        job = creation.generation_create(owner=user, request=VideoRequest(prompt="A lighthouse"), enqueue=False)

    assert kinds(counted) == CREATE
    assert "FOR UPDATE" in counted[0] or connection.vendor == "sqlite"  # SQLite locks the whole file
    assert job.cost_credits == SpendEntry.objects.get(generation=job).credits > 0
    assert job.cost_final is False


def test_a_form_post_costs_six_queries(alice, broker):
    token = page_token(alice.get(DASHBOARD).content)

    with statements() as counted:
        response = alice.post(DASHBOARD, {"prompt": "Waves at night", "token": token})

    assert response.status_code == 302
    assert kinds(counted) == ["SELECT django_session", "SELECT auth_user", *CREATE]  # the request's session and user
    assert VideoGeneration.objects.count() == 1


def test_the_pages_script_gets_the_new_card_for_the_same_six_queries(alice, broker):
    token = page_token(alice.get(DASHBOARD).content)

    with statements() as counted:
        response = alice.post(DASHBOARD, {"prompt": "Waves at night", "token": token}, HTTP_ACCEPT="application/json")

    assert response.status_code == 201
    assert kinds(counted) == ["SELECT django_session", "SELECT auth_user", *CREATE]
    job = VideoGeneration.objects.get()
    credits = SpendEntry.objects.get(generation=job).credits
    card = response.json()["html"]
    # What the card shows without reading the job again: its reserved cost, its place in line.
    assert f"about {ledger.credits_text(credits)}" in card
    assert "Next in line" in card


def test_the_same_form_posted_again_costs_a_read_and_makes_nothing(alice, broker):
    data = {"prompt": "Waves at night", "token": page_token(alice.get(DASHBOARD).content)}
    alice.post(DASHBOARD, data)

    with statements() as counted:
        response = alice.post(DASHBOARD, data)

    assert response.status_code == 302
    # The session, the user, the lock, the figures that find the first job, and that job with its cost.
    assert [kind.split()[0] for kind in kinds(counted)] == ["SELECT"] * 5
    assert VideoGeneration.objects.count() == 1
