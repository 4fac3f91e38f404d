"""Collections: a user puts their own videos into named collections (a video may be in several),
opens one as a page, and may share it with their groups, which shares its done videos with them
too (models.GenerationQuerySet.visible_to). Only its owner changes a collection; anyone who may
not see one is answered as if it did not exist."""

from django.contrib.auth.models import Group, User
from django.db import IntegrityError, transaction
from django.db.models import Count, Exists, OuterRef, Q, QuerySet

from videos.models import Collection, CollectionItem, VideoGeneration

NAME_MAX = 100


class CollectionError(Exception):
    """What a user asked of a collection that cannot be done; the message is for them."""


def collections_visible_to(user: User) -> QuerySet[Collection]:
    """The user's own collections, and those shared with a group they are in (every one for staff),
    each with how many videos it holds."""
    collections = Collection.objects.select_related("owner").annotate(size=Count("items"))
    if user.is_staff:
        return collections
    memberships = Group.user_set.through.objects
    together = memberships.filter(
        user_id=OuterRef("owner_id"), group_id__in=memberships.filter(user_id=user.pk).values("group_id")
    )
    return collections.filter(Q(owner=user) | Q(shared_with_groups=True) & Q(Exists(together)))


def collection_videos(*, collection: Collection, viewer: User) -> QuerySet[VideoGeneration]:
    """The videos of a collection the viewer may see, newest first: all of its owner's; its done
    ones for the members of its owner's groups (when shared)."""
    return (
        VideoGeneration.objects.visible_to(viewer)
        .filter(collection_items__collection=collection)
        .with_cost()
        .select_related("owner")
    )


def collection_create(*, owner: User, name: str) -> Collection:
    name = " ".join(name.split())
    if not name:
        raise CollectionError("Give the collection a name.")
    if len(name) > NAME_MAX:
        raise CollectionError(f"A collection's name has at most {NAME_MAX} characters.")
    try:
        with transaction.atomic():
            return Collection.objects.create(owner=owner, name=name)
    except IntegrityError:
        raise CollectionError(f"You already have a collection named “{name}”.") from None


def collection_add(*, owner: User, collection_id: int, generation_id: int) -> Collection:
    """Put the owner's video into their collection (again: nothing changes)."""
    collection = Collection.objects.get(pk=collection_id, owner=owner)
    generation = VideoGeneration.objects.visible().get(pk=generation_id, owner=owner)
    CollectionItem.objects.bulk_create(
        [CollectionItem(collection=collection, generation=generation)], ignore_conflicts=True
    )
    return collection


def collection_remove(*, owner: User, collection_id: int, generation_id: int) -> Collection:
    collection = Collection.objects.get(pk=collection_id, owner=owner)
    collection.items.filter(generation_id=generation_id).delete()
    return collection


def collection_share(*, owner: User, collection_id: int, shared: bool) -> Collection:
    """Share the collection (its page and its done videos) with the owner's groups, or take it back: at once."""
    collection = Collection.objects.get(pk=collection_id, owner=owner)
    if shared and not owner.groups.exists():
        raise CollectionError("You are in no group yet: ask staff to add you to one, then share it.")
    collection.shared_with_groups = shared
    collection.save(update_fields=["shared_with_groups"])
    return collection


def collection_delete(*, owner: User, collection_id: int) -> str:
    """Delete the collection (its videos stay); its name, for the message."""
    collection = Collection.objects.get(pk=collection_id, owner=owner)
    collection.delete()
    return collection.name
