"""`{% page_url n %}`: this page's URL with `page=n`, keeping every other query parameter (filters)."""

from django import template

register = template.Library()


@register.simple_tag(takes_context=True)
def page_url(context, number) -> str:
    params = context["request"].GET.copy()
    params["page"] = number
    return "?" + params.urlencode()
