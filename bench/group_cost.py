"""What a group's rules add to a form post: a user in no group, then a member of a group with every
rule set (a shared budget, allowed models, the longest video, videos in progress at once) and
MEMBERS members who each spent this month.

    python -m bench.group_cost    # PostgreSQL of BENCH_DATABASE_URL, Redis of BENCH_BROKER_URL

Per request, in this process (Django's test client): wall and CPU milliseconds (median and 95th
percentile) and database queries, as bench.api_cost measures them. Production settings (DEBUG
off); a test database made for the run and dropped.
"""

import functools
import secrets
import sys
import uuid

import django
import redis

from bench.api_cost import BODY, ROUNDS, configure, timed

MEMBERS = 50


def main() -> None:
    configure()
    django.setup()
    from django.conf import settings
    from django.contrib.auth.models import Group, User
    from django.test import Client
    from django.test.utils import setup_databases, setup_test_environment, teardown_databases

    from videos.catalog import VideoRequest
    from videos.models import GroupPolicy
    from videos.services import creation

    setup_test_environment()
    names = setup_databases(verbosity=0, interactive=False)
    try:
        alone = User.objects.create_user("alone", password=secrets.token_urlsafe(20))
        group = Group.objects.create(name="Interns")
        GroupPolicy.objects.create(
            group=group, monthly_credits=10**9, allowed_models=["gen4.5"], max_duration=10, max_active=10**4
        )
        members = [User.objects.create_user(f"member{n}") for n in range(MEMBERS)]
        group.user_set.add(*members)
        for member in members:  # each has spent this month
            creation.generation_create(owner=member, request=VideoRequest(prompt="Waves"), enqueue=False)

        def form_post(browser: Client) -> None:
            data = {"prompt": BODY["promptText"], "model": "gen4.5", "duration": 5, "token": uuid.uuid4()}
            answer = browser.post("/videos/", data, secure=True, HTTP_ACCEPT="application/json")
            assert answer.status_code == 201, answer.content

        print(f"A form post, in-process, {ROUNDS} rounds (median / p95):")
        for name, user in (("in no group", alone), (f"member of a group of {MEMBERS} with rules", members[0])):
            browser = Client()
            browser.force_login(user)
            row = timed(functools.partial(form_post, browser))
            print(
                f"  {name:38} {row['wall_ms']:6.2f} / {row['wall_p95_ms']:6.2f} ms wall   "
                f"{row['cpu_ms']:6.2f} / {row['cpu_p95_ms']:6.2f} ms CPU   {row['queries']:.0f} queries"
            )
        sys.stdout.flush()
    finally:
        teardown_databases(names, verbosity=0)
        redis.Redis.from_url(settings.CELERY_BROKER_URL).delete(settings.CELERY_TASK_DEFAULT_QUEUE)


if __name__ == "__main__":
    main()
