"""A bot's knowledge page: upload, add a web page or sitemap, replace, re-sync, delete; live
sync progress. And the bot's public help pages (knowledge/help_pages.py): no sign-in."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.http import JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from bots import selectors as bot_selectors
from bots.models import MANAGER_ROLES, Bot
from config.links import safe_http_url
from knowledge import help_pages, selectors, services
from knowledge.forms import WebSourceForm
from knowledge.parsers import MAX_UPLOAD_BYTES, ParseError


def _bot_for(request, org, bot, *, manage=False):
    membership = bot_selectors.membership_get(user=request.user, organization_slug=org)
    if manage and membership.role not in MANAGER_ROLES:
        raise PermissionDenied("Only owners and admins change a bot's knowledge.")
    return membership, bot_selectors.bot_get(membership=membership, bot_slug=bot)


def _page(request, membership, bot, *, error="", status=200, web_form=None):
    sources = list(selectors.source_list(bot=bot))
    context = {
        "membership": membership,
        "organization": membership.organization,
        "bot": bot,
        "sources": sources,
        "syncing": selectors.busy(bot=bot, sources=sources),
        "error": error,
        "max_upload_mb": MAX_UPLOAD_BYTES // (1024 * 1024),
        "web_form": web_form or WebSourceForm(),
        "retrieval": selectors.retrieval_profile_get(bot=bot),
        "team_answers": selectors.team_answer_list(bot=bot),
    }
    template = "knowledge/bot_knowledge.html"
    if request.htmx and not error:
        template += "#sources"
    return render(request, template, context, status=status)


@login_required
@require_GET
def knowledge(request, org, bot):
    membership, bot = _bot_for(request, org, bot)
    return _page(request, membership, bot)


def _uploaded(request):
    upload = request.FILES.get("file")
    if upload is None:
        raise ParseError("Choose a file to upload.")
    if upload.size > MAX_UPLOAD_BYTES:
        raise ParseError(
            f"{upload.name} is {upload.size / 1024 / 1024:.0f} MB; the limit is "
            f"{MAX_UPLOAD_BYTES // (1024 * 1024)} MB. Split it into smaller files."
        )
    return upload.name, upload.read()


@login_required
@require_POST
def source_upload(request, org, bot):
    membership, bot = _bot_for(request, org, bot, manage=True)
    try:
        filename, data = _uploaded(request)
        source = services.source_upload(bot=bot, filename=filename, data=data)
    except ParseError as exc:
        return _page(request, membership, bot, error=str(exc), status=400)
    messages.success(request, f"{source.name} uploaded; checking it now.")
    return redirect("bot_knowledge", org, bot.slug)


@login_required
@require_POST
def source_add_url(request, org, bot):
    membership, bot = _bot_for(request, org, bot, manage=True)
    form = WebSourceForm(request.POST)
    if form.is_valid():
        try:
            source = services.source_add_url(bot=bot, **form.cleaned_data)
        except ValidationError as exc:
            form.add_error("url", exc)
    if form.errors:
        return _page(request, membership, bot, error=form.error_text(), web_form=form, status=400)
    messages.success(request, f"{source.name} added; fetching it now.")
    return redirect("bot_knowledge", org, bot.slug)


@login_required
@require_POST
def source_replace(request, org, bot, source_id):
    membership, bot = _bot_for(request, org, bot, manage=True)
    source = selectors.source_get(bot=bot, source_id=source_id)
    try:
        filename, data = _uploaded(request)
        services.source_upload(bot=bot, filename=filename, data=data, source=source)
    except ParseError as exc:
        error = f"{source.name} was not replaced; its previous version keeps serving. {exc}"
        return _page(request, membership, bot, error=error, status=400)
    messages.success(
        request,
        f"New version of {source.name} uploaded; checking it now. "
        "The current version keeps serving until the new one passes.",
    )
    return redirect("bot_knowledge", org, bot.slug)


@login_required
@require_POST
def source_resync(request, org, bot, source_id):
    _membership, bot = _bot_for(request, org, bot, manage=True)
    source = selectors.source_get(bot=bot, source_id=source_id)
    services.source_resync(source=source)
    messages.success(request, f"{source.name} queued for sync.")
    return redirect("bot_knowledge", org, bot.slug)


@login_required
@require_POST
def source_delete(request, org, bot, source_id):
    _membership, bot = _bot_for(request, org, bot, manage=True)
    source = selectors.source_get(bot=bot, source_id=source_id)
    services.source_delete(source=source)
    messages.success(request, f"{source.name} deleted.")
    return redirect("bot_knowledge", org, bot.slug)


@login_required
@require_POST
def team_answer_delete(request, org, bot, answer_id):
    """Owners and admins remove an answer an agent saved; the team source syncs without it."""
    _membership, bot = _bot_for(request, org, bot, manage=True)
    answer = selectors.team_answer_get(bot=bot, answer_id=answer_id)
    services.team_answer_delete(answer=answer)
    messages.success(request, f"Team answer “{answer.question}” deleted.")
    return redirect("bot_knowledge", org, bot.slug)


@require_GET
def api_sync_status(request):
    """GET /api/v1/kb/sync_status: with `Authorization: Bearer <bot secret key>`, or as a
    signed-in member with ?org=<slug>&bot=<slug>."""
    header = request.headers.get("Authorization", "")
    if header.startswith("Bearer "):
        bot = Bot.objects.filter(secret_key=header.removeprefix("Bearer ").strip()).first()
        if bot is None:
            return JsonResponse({"error": "Unknown API key."}, status=401)
    elif request.user.is_authenticated:
        if not request.GET.get("org") or not request.GET.get("bot"):
            return JsonResponse({"error": "Give ?org=<slug>&bot=<slug>."}, status=400)
        _membership, bot = _bot_for(request, request.GET["org"], request.GET["bot"])
    else:
        return JsonResponse(
            {"error": "Authenticate with 'Authorization: Bearer <bot secret key>'."}, status=401
        )
    return JsonResponse(selectors.sync_status(bot=bot))


HELP_PAGE_SIZE = 200


@require_GET
def help_index(request, org, bot):
    bot = selectors.help_bot_get(organization_slug=org, bot_slug=bot)
    page = Paginator(selectors.help_documents(bot=bot), HELP_PAGE_SIZE).get_page(
        request.GET.get("page")
    )
    documents = [(d, help_pages.help_page_path(bot=bot, document=d)) for d in page.object_list]
    context = {"bot": bot, "page": page, "documents": documents}
    return render(request, "knowledge/help_index.html", context)


@require_GET
def help_document(request, org, bot, document_id, title_slug):
    bot = selectors.help_bot_get(organization_slug=org, bot_slug=bot)
    document = selectors.help_document_get(bot=bot, document_id=document_id)
    if title_slug != help_pages.document_slug(document.title):
        # A renamed document keeps its links: the id decides, the slug is for people.
        slug = help_pages.document_slug(document.title)
        return redirect("help_document", org, bot.slug, document.pk, slug, permanent=True)
    context = {
        "bot": bot,
        "document": document,
        "sections": help_pages.page_sections(document.body, document.title),
        "source_url": safe_http_url(document.url),
    }
    return render(request, "knowledge/help_document.html", context)
