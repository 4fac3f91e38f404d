"""A database outage in a web request (runway_project/errors.py): a clear 503 page, not a traceback.

The real outage, a PostgreSQL cut off behind a proxy while gunicorn serves, is in
tests/test_database_outage.py; these check the two ways the page is reached, on either database.
"""

import pytest
from django.db import OperationalError
from django.http import HttpRequest, HttpResponse
from django.test import RequestFactory
from django.urls import path

from runway_project import errors
from runway_project.urls import urlpatterns as project_urls


def database_gone(request: HttpRequest) -> HttpResponse:
    raise OperationalError('connection to server at "db.internal" (10.0.0.5), port 5432 failed: Connection refused')


def broken(request: HttpRequest) -> HttpResponse:
    raise ValueError("a bug")


urlpatterns = [path("db-gone/", database_gone), path("broken/", broken), *project_urls]
handler500 = "runway_project.errors.server_error"


@pytest.mark.urls("tests.test_errors")
def test_a_view_that_finds_no_database_answers_a_clear_503(client, caplog):
    client.raise_request_exception = False
    response = client.get("/db-gone/")

    assert response.status_code == 503
    assert response["Retry-After"] == "30"
    page = response.content.decode()
    assert "Back in a moment" in page
    assert "cannot reach its database" in page
    assert "10.0.0.5" not in page and "Traceback" not in page
    assert "Database unavailable during GET /db-gone/" in caplog.text


@pytest.mark.urls("tests.test_errors")
def test_any_other_error_is_still_a_500(client):
    client.raise_request_exception = False
    assert client.get("/broken/").status_code == 500


def test_the_500_handler_answers_503_for_a_database_outage_met_outside_a_view():
    request = RequestFactory().get("/")
    try:
        raise OperationalError("server closed the connection unexpectedly")
    except OperationalError:
        response = errors.server_error(request)
    assert response.status_code == 503
    assert "Back in a moment" in response.content.decode()


def test_the_500_handler_answers_500_otherwise():
    request = RequestFactory().get("/")
    try:
        raise ValueError("a bug")
    except ValueError:
        response = errors.server_error(request)
    assert response.status_code == 500
