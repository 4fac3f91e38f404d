"""`python manage.py api_key create USERNAME [--name NAME] [--webhook URL]`: a key for scripts.

The key is printed alone on the last line, so `KEY=$(... | tail -1)` takes it; a webhook's
`whsec_...` secret on the line before. Neither is stored as it is shown: keep them now.
"""

from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from api import services


class Command(BaseCommand):
    help = "Make an API key for a user's scripts (Runway's API, served by this site)."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        create = sub.add_parser("create", help="Make a key; it is printed once, on the last line.")
        create.add_argument("username")
        create.add_argument("--name", default="", help="What the key is for.")
        create.add_argument("--webhook", default="", help="An https URL to deliver the key's jobs' endings to.")

    def handle(self, *args: Any, **options: Any) -> None:
        user = get_user_model().objects.filter(username=options["username"]).first()
        if user is None:
            raise CommandError(f"No user named {options['username']!r}.")
        try:
            made = services.api_key_create(user=user, name=options["name"], webhook_url=options["webhook"])
        except ValidationError as exc:
            raise CommandError(" ".join(exc.messages)) from None
        self.stdout.write(f"Key {made.api_key.prefix}… for {user.get_username()}: shown once, keep it now.")
        if made.webhook_secret:
            self.stdout.write(made.webhook_secret)
        self.stdout.write(made.key)
