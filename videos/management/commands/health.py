"""`manage.py health`: the health report of /healthz, for people and cron, or with --worker whether
this machine's worker takes messages, for its supervisor; exit code 1 when unhealthy."""

import json
import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from django.utils import timezone

from videos.services import health


class Command(BaseCommand):
    help = (
        "Check the database, the broker, the queue, beat's last sweep and overdue jobs, one line each; "
        "exit code 0 when all are ok, 1 otherwise."
    )
    # The report is the check: Django's own would fail first on a database that is down.
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--json", action="store_true", help="Print the report as /healthz does, for machines.")
        parser.add_argument(
            "--worker",
            action="store_true",
            help="Check only that this machine's worker takes messages (its WORKER_HEARTBEAT_FILE): a "
            "supervisor's liveness probe, which asks neither the database nor the broker.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["worker"]:
            report = health.HealthReport(checked_at=timezone.now(), checks=(health.worker_check(),))
        else:
            report = health.health_check()
        if options["json"]:
            self.stdout.write(json.dumps(report.as_json(), indent=2))
        else:
            for check in report.checks:
                self.stdout.write(f"{'ok' if check.ok else 'FAIL':<4}  {check.name:<12}  {check.summary}")
        if not report.healthy:
            sys.exit(1)
