"""`{{ url|safe_url }}`: every link from data in a template goes through config.links."""

from django import template

from config.links import safe_http_url

register = template.Library()


@register.filter
def safe_url(value: object) -> str:
    """The address if it is an absolute http(s) one, else "" (render no link for it)."""
    return safe_http_url(value)
