"""Customers: who is chatting, anonymous or verified by the site's signature."""

from __future__ import annotations

import hashlib
import hmac
import json
import re

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction

from bots.models import Bot
from conversations.models import Conversation, Customer, Message
from conversations.services.common import (
    ConversationStateError,
    CustomerIdentityError,
    Status,
    _broadcast_message,
    _lock,
)

VISITOR_ID = re.compile(r"[A-Za-z0-9_-]{8,64}")
MAX_EXTERNAL_ID = Customer._meta.get_field("external_id").max_length
MAX_ATTRIBUTES = 50
MAX_ATTRIBUTES_BYTES = 4096


def identity_signature(*, bot: Bot, user_id: str) -> str:
    """What the site's server sends as `user_hash`: hex HMAC-SHA256 of its user id."""
    return hmac.new(bot.secret_key.encode(), user_id.encode(), hashlib.sha256).hexdigest()


def customer_identify(
    *,
    bot: Bot,
    visitor_id: str,
    user_id: str = "",
    user_hash: str = "",
    name: str = "",
    email: str = "",
    attributes: dict | None = None,
    create: bool = True,
) -> Customer | None:
    """The customer behind a widget or API session, created on first sight.

    With `create=False` (the widget's `hello`) a customer not seen before is checked but not
    stored, and None returned: they are created with their first message or request, so a
    visitor who only loads a page with the widget leaves no row.

    Without `user_id` the customer is anonymous, one per browser (`visitor_id`). With it, the
    site vouches for who this is by signing the id with the bot's secret key, and the customer
    is one per site user across devices; an unsigned or wrongly signed id is refused, never
    downgraded to anonymous, so a misconfigured site notices. Name, e-mail and attributes are
    what the page says about the customer and are updated (attributes merged) when given.
    """
    if visitor_id and not VISITOR_ID.fullmatch(visitor_id):
        raise CustomerIdentityError(
            "The visitor id must be 8 to 64 characters: letters, digits, '-' or '_'."
        )
    if user_id:
        if len(user_id) > MAX_EXTERNAL_ID:
            raise CustomerIdentityError(f"The user id is longer than {MAX_EXTERNAL_ID} characters.")
        if not user_hash:
            raise CustomerIdentityError(
                "A user id needs its signature (user_hash): the hex HMAC-SHA256 of the id with "
                "the bot's secret key, computed on your server."
            )
        expected = identity_signature(bot=bot, user_id=user_id).encode()
        if not hmac.compare_digest(expected, user_hash.strip().lower().encode()):
            raise CustomerIdentityError(
                "The user id's signature does not match: sign the id with this bot's secret key "
                "(HMAC-SHA256, hex)."
            )
        lookup = {"bot": bot, "external_id": user_id}
    elif visitor_id:
        lookup = {"bot": bot, "external_id": "", "visitor_id": visitor_id}
    else:
        raise CustomerIdentityError("A visitor id or a signed user id is required.")
    name = name.strip()[: Customer._meta.get_field("name").max_length]
    email = email.strip()
    if email:
        try:
            validate_email(email)
        except ValidationError:
            raise CustomerIdentityError(f"{email[:100]} is not an e-mail address.") from None

    if not create and not Customer.objects.filter(**lookup).exists():
        return None
    with transaction.atomic():
        # get_or_create survives the race of two first messages: it inserts in a savepoint and,
        # on the unique constraint's IntegrityError, reads the row the other request created.
        customer, _ = Customer.objects.get_or_create(**lookup, defaults={"visitor_id": visitor_id})
        # Locked so that two sessions merging attributes do not drop each other's keys.
        customer.refresh_from_db(from_queryset=Customer.objects.select_for_update())
        if visitor_id:
            customer.visitor_id = visitor_id  # a verified customer's latest device
        if name:
            customer.name = name
        if email:
            customer.email = email
        if attributes is not None:
            customer.attributes = _attributes_merge(customer.attributes, attributes)
        customer.save(update_fields=["visitor_id", "name", "email", "attributes", "last_seen_at"])
    return customer


def _attributes_merge(current: dict, new: dict) -> dict:
    if not isinstance(new, dict) or not all(isinstance(key, str) for key in new):
        raise CustomerIdentityError("Attributes must be an object of names and values.")
    merged = {**current, **new}
    try:
        size = len(json.dumps(merged, ensure_ascii=False, allow_nan=False).encode())
    except (TypeError, ValueError):
        raise CustomerIdentityError(
            "Attribute values must be plain JSON: text, numbers, true/false, null, lists, objects."
        ) from None
    if len(merged) > MAX_ATTRIBUTES:
        raise CustomerIdentityError(
            f"A customer has at most {MAX_ATTRIBUTES} attributes; this would make {len(merged)}."
        )
    if size > MAX_ATTRIBUTES_BYTES:
        raise CustomerIdentityError(
            f"A customer's attributes are at most {MAX_ATTRIBUTES_BYTES} bytes of JSON; this "
            f"would make {size}."
        )
    return merged


def customer_leave_email(*, conversation: Conversation, email: str) -> Customer:
    """The customer's address for an answer by e-mail (offered out of hours, when no one can
    answer in the chat): saved on the customer, confirmed in the conversation with a system
    message. Raises CustomerIdentityError for an address that is not one, and
    ConversationStateError for a closed conversation."""
    email = email.strip()
    if not email:
        raise CustomerIdentityError("Please enter your e-mail address.")
    if len(email) > Customer._meta.get_field("email").max_length:
        raise CustomerIdentityError("That e-mail address is too long.")
    try:
        validate_email(email)
    except ValidationError:
        raise CustomerIdentityError(f"{email[:100]} is not an e-mail address.") from None
    with transaction.atomic():
        _lock(conversation)
        if conversation.status == Status.CLOSED:
            raise ConversationStateError("This conversation is closed.")
        customer = conversation.customer
        customer.email = email
        customer.save(update_fields=["email", "last_seen_at"])
        message = Message.objects.create(
            conversation=conversation,
            sender=Message.Sender.SYSTEM,
            text=f"Thank you. We'll answer you at {email}, and here in the chat.",
            # The promise agents' replies keep (escalation.notifications).
            extras={"email_left": email},
        )
        _broadcast_message("message.created", message)
    return customer
