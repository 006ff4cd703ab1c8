"""The widget's public endpoints (its script, its config, the full-page and iframe chat) and the
member pages around it: Integrations (the embed snippets) and the Playground (chat with the bot
and read each answer's trace).

The widget itself is static/widget/widget.js; it speaks docs/chat-protocol.md to
chat.consumers.widget.WidgetConsumer. The config endpoint applies the socket's origin rule, so
a site that may not embed a bot learns it before opening a socket.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpResponse, JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils.html import escape
from django.views.decorators.cache import never_cache
from django.views.decorators.clickjacking import xframe_options_exempt
from django.views.decorators.http import condition, require_GET, require_POST

from actions.demo import DEMO_CUSTOMER
from audit import services as audit_services
from bots import selectors as bot_selectors
from bots import services as bot_services
from bots.models import Bot, validate_origin
from chat.consumers.widget import origin_allowed
from config.csp import frame_ancestors_replace
from config.origins import own_origins, request_addressed_origin
from conversations import selectors, services, trace_display
from conversations.models import Message
from knowledge import selectors as knowledge_selectors

WIDGET_JS = settings.BASE_DIR / "static" / "widget" / "widget.js"
# The snippet's URL carries no version, so an updated widget reaches sites within the hour.
WIDGET_JS_MAX_AGE = 3600
CONFIG_MAX_AGE = 60


# --- Public: the script, its config, the chat as a page and as an iframe -----------------------
@lru_cache(maxsize=2)
def _widget_script(mtime_ns: int) -> tuple[bytes, str]:
    data = WIDGET_JS.read_bytes()
    return data, hashlib.sha256(data).hexdigest()[:20]


def _widget_script_now() -> tuple[bytes, str]:
    # Keyed by modification time: an edited widget.js is served without a restart.
    return _widget_script(WIDGET_JS.stat().st_mtime_ns)


@require_GET
@condition(etag_func=lambda request: _widget_script_now()[1])
def widget_js(request):
    data, _etag = _widget_script_now()
    response = HttpResponse(data, content_type="text/javascript; charset=utf-8")
    response["Cache-Control"] = f"public, max-age={WIDGET_JS_MAX_AGE}"
    # Any site may load the script; what it may then do is checked per bot and origin.
    response["Access-Control-Allow-Origin"] = "*"
    return response


@require_GET
def widget_config(request, public_key):
    bot = bot_selectors.bot_for_public_key(public_key=public_key)
    if bot is None:
        return JsonResponse({"error": "There is no bot with this key."}, status=404)
    # The socket's own rule (origin_allowed). Browsers send Origin on cross-site fetches; a
    # same-origin page or a script sends none, and the config is public anyway. The socket
    # refuses a disallowed origin regardless.
    origin = request.headers.get("Origin")
    if origin and not origin_allowed(bot, origin, addressed=request_addressed_origin(request)):
        response = JsonResponse(
            {
                "error": f"{origin} may not embed this chat: add it to the bot's allowed "
                "origins (Integrations page)."
            },
            status=403,
        )
    else:
        response = JsonResponse(
            {
                "name": bot.name,
                "greeting": bot.greeting,
                "colour": bot.colour,
                "position": bot.widget_position,
            }
        )
        response["Cache-Control"] = f"public, max-age={CONFIG_MAX_AGE}"
    if origin:
        # Echoed on the 403 too, so the refused page can read and log why.
        response["Access-Control-Allow-Origin"] = origin
        response["Vary"] = "Origin"
    return response


def _public_bot(public_key: str) -> Bot:
    bot = bot_selectors.bot_for_public_key(public_key=public_key)
    if bot is None:
        raise Http404("There is no bot with this key.")
    return bot


@require_GET
def chat_page(request, public_key):
    """The shareable full-page chat: the widget, opened, filling the page."""
    bot = _public_bot(public_key)
    return render(request, "chat/widget_page.html", {"bot": bot, "framed": False})


def frame_ancestors(bot: Bot, *, addressed) -> str:
    """The sites that may frame the chat: this server's own origins, the list the socket and
    config.json use (SITE_URL's too, which 'self' would leave out when the page was asked for
    by another name), and the bot's allowed origins. Each of those is validated again here,
    so a stray value can never inject another directive into the header."""
    if "*" in bot.allowed_origins:
        return "*"
    origins = own_origins(addressed=addressed)
    for origin in bot.allowed_origins:
        try:
            validate_origin(origin)
        except ValidationError:
            continue
        if not any(c in origin for c in " ;,\r\n'\"") and origin.rstrip("/") not in origins:
            origins.append(origin.rstrip("/"))
    return " ".join(origins)


@xframe_options_exempt
@require_GET
def widget_frame(request, public_key):
    """The chat for an <iframe>: framing is allowed here only, by this server's own pages and
    the bot's allowed origins."""
    bot = _public_bot(public_key)
    response = render(request, "chat/widget_page.html", {"bot": bot, "framed": True})
    ancestors = frame_ancestors(bot, addressed=request_addressed_origin(request))
    frame_ancestors_replace(response, ancestors.split())
    return response


# --- Members: Integrations and Playground ------------------------------------------------------
def _bot_for(request, org, bot):
    membership = bot_selectors.membership_get(user=request.user, organization_slug=org)
    return membership, bot_selectors.bot_get(membership=membership, bot_slug=bot)


def site_url(request) -> str:
    return settings.SITE_URL or request.build_absolute_uri("/").rstrip("/")


def snippets(*, bot: Bot, base: str) -> dict[str, str]:
    """HTML for the owner to paste into their own site: every value in it is escaped, so a bot
    named `Q"><script>…` gives a title, not a script on the owner's site."""
    frame = base + reverse("widget_frame", args=[bot.public_key])
    # Plain text (escaped again where a page shows it), not markup for our own pages.
    return {
        "script": f'<script src="{escape(base + reverse("widget_js"))}" '
        f'data-bot="{escape(bot.public_key)}" async></script>',
        "iframe": f'<iframe src="{escape(frame)}" title="Chat with {escape(bot.name)}" '
        'width="380" height="600" style="border:0"></iframe>',
        "page": base + reverse("chat_page", args=[bot.public_key]),
    }


@login_required
@require_GET
def integrations(request, org, bot):
    membership, bot = _bot_for(request, org, bot)
    return render(
        request,
        "chat/integrations.html",
        {
            "membership": membership,
            "organization": membership.organization,
            "bot": bot,
            "snippets": snippets(bot=bot, base=site_url(request)),
            "own_origins": own_origins(addressed=request_addressed_origin(request)),
        },
    )


@login_required
@require_POST
@never_cache
def secret_reveal(request, org, bot):
    """The bot's secret key, for owners and admins only, asked for one click at a time so it
    is not in the page's HTML (or a screenshot of it) until someone means to see it."""
    membership, bot = _bot_for(request, org, bot)
    if not membership.can_manage:
        raise PermissionDenied("Only owners and admins see the bot's secret key.")
    audit_services.secret_revealed_record(bot=bot)
    context = {"membership": membership, "organization": membership.organization, "bot": bot}
    return render(request, "chat/integrations.html#secret", {**context, "reveal": True})


@login_required
@require_POST
@never_cache
def secret_rotate(request, org, bot):
    """A new secret key for the bot, shown once in its place; the old one stops working."""
    membership, bot = _bot_for(request, org, bot)
    if not membership.can_manage:
        raise PermissionDenied("Only owners and admins rotate the bot's secret key.")
    bot = bot_services.bot_rotate_secret(bot=bot)
    context = {"membership": membership, "organization": membership.organization, "bot": bot}
    return render(
        request, "chat/integrations.html#secret", {**context, "reveal": True, "rotated": True}
    )


@login_required
@require_GET
def playground(request, org, bot):
    membership, bot = _bot_for(request, org, bot)
    identity = None
    if settings.DEMO_SHOP:
        # The member chats as the demo shop's signed-in customer, so the bot's account actions
        # (lookup_order, start_refund) can be tried at once: signed like a site's server signs
        # its customers (identity verification), on this server's own page only.
        identity = {
            "user_id": DEMO_CUSTOMER,
            "user_hash": services.identity_signature(bot=bot, user_id=DEMO_CUSTOMER),
        }
    return render(
        request,
        "chat/playground.html",
        {
            "membership": membership,
            "organization": membership.organization,
            "bot": bot,
            "identity": identity,
        },
    )


@login_required
@require_GET
def playground_trace(request, org, bot, message_id):
    """How the bot arrived at one answer, for members of the bot's organization only."""
    membership, bot = _bot_for(request, org, bot)
    message = selectors.message_get_for_bot(bot=bot, message_id=message_id)
    # The bot is already the member's; the conversation check is the one every member read of
    # a conversation goes through, so a change to who may read one applies here too.
    selectors.conversation_get_for_member(
        user=request.user, conversation_id=message.conversation_id
    )
    if message.sender != Message.Sender.AI:
        raise Http404("Only the bot's answers have a trace.")
    if request.headers.get("Accept", "").startswith("application/json"):
        return JsonResponse({"message_id": message.pk, "trace": message.trace})
    chunks = knowledge_selectors.chunk_summaries(
        bot=bot, chunk_ids=trace_display.retrieved_chunk_ids(message.trace)
    )
    return render(
        request,
        "chat/playground.html#trace",
        {
            "membership": membership,
            "organization": membership.organization,
            "bot": bot,
            "message": message,
            "trace": trace_display.sections(message.trace, chunks=chunks),
            "raw": trace_display.raw(message.trace),
        },
    )
