"""The audit log page, /o/<org>/audit/: owners and admins read who changed what."""

from __future__ import annotations

from django import forms
from django.contrib.auth.decorators import login_required
from django.shortcuts import render
from django.views.decorators.http import require_GET

from audit import selectors
from bots import selectors as bot_selectors


class FilterForm(forms.Form):
    actor = forms.TypedChoiceField(label="Person", required=False, coerce=int, empty_value=None)
    kind = forms.ChoiceField(label="Kind", required=False)
    since = forms.DateField(label="From", required=False, widget=forms.DateInput({"type": "date"}))
    until = forms.DateField(label="To", required=False, widget=forms.DateInput({"type": "date"}))

    def __init__(self, *args, members, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["actor"].choices = [("", "Anyone")] + [
            (m.user_id, m.user.display_name) for m in members
        ]
        self.fields["kind"].choices = [("", "Every kind")] + [
            (key, label) for key, (label, _models) in selectors.KINDS.items()
        ]

    def clean(self):
        data = super().clean()
        if data.get("since") and data.get("until") and data["since"] > data["until"]:
            raise forms.ValidationError("“From” is after “To”: swap the dates.")
        return data


@login_required
@require_GET
def audit_log(request, org):
    membership = bot_selectors.membership_get(user=request.user, organization_slug=org)
    selectors.audit_access(membership=membership)
    members = bot_selectors.membership_list(organization=membership.organization)
    form = FilterForm(request.GET or None, members=members)
    status = 200
    if form.is_bound and not form.is_valid():
        # A bad filter shows everything with the error, rather than an empty or a broken page.
        filters, status = selectors.Filters(), 400
    else:
        data = form.cleaned_data if form.is_bound else {}
        filters = selectors.Filters(
            actor=data.get("actor"),
            kind=data.get("kind") or "",
            since=data.get("since"),
            until=data.get("until"),
        )
    page = selectors.audit_page(
        membership=membership, filters=filters, before=request.GET.get("before")
    )
    query = request.GET.copy()
    query.pop("before", None)
    return render(
        request,
        "audit/audit_log.html",
        {
            "membership": membership,
            "organization": membership.organization,
            "form": form,
            "page": page,
            "query": query.urlencode(),
        },
        status=status,
    )
