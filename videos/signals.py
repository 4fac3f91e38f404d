"""The one hook the product needs from Django's signals: a user deleted anywhere (the admin page,
its bulk action, `User.delete()` in a shell) first has their jobs stopped and removed through the
services. The work itself is in videos/services/actions.py; this only calls it."""

from typing import Any

from django.conf import settings
from django.db.models.signals import pre_delete
from django.dispatch import receiver

from videos.services import actions


@receiver(pre_delete, sender=settings.AUTH_USER_MODEL)
def remove_the_users_generations(sender: Any, instance: Any, **kwargs: Any) -> None:
    actions.user_generations_remove(user_id=instance.pk)
