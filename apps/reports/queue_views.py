""" "Waiting for you": the page, the top bar's badge and GET /api/v1/me/queue/.

One queue per person across all their organizations (a waiver in one org is as urgent as a gate in
another, and the person should not have to switch orgs to find out); each row names its org.
"""

from django.contrib.auth.mixins import LoginRequiredMixin
from django.views.generic import TemplateView
from drf_spectacular.utils import extend_schema
from rest_framework import generics, serializers

from apps.orgs.access import request_access
from apps.orgs.mixins import CURRENT_ORG_SESSION_KEY
from apps.orgs.selectors import organization_list
from apps.reports.queue import queue_for


def request_queue(request) -> list:
    """The signed-in person's queue, computed once per request (the badge and the page share it)."""
    cached = getattr(request, "_readiness_queue", None)
    if cached is None:
        cached = request._readiness_queue = queue_for(access=request_access(request))
    return cached


def queue_badge(request):
    """Context processor: the count on the top bar's "Waiting for you" badge."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    # A callable: the template calls it only where the badge is drawn, so fragments polled by the
    # run page (rendered with the same context processors) do not compute the queue each time.
    return {"queue_count": lambda: len(request_queue(request))}


class QueueView(LoginRequiredMixin, TemplateView):
    template_name = "reports/queue.html"

    def get_context_data(self, **kwargs):
        items = request_queue(self.request)
        groups = {}
        for item in items:
            groups.setdefault(item.organization, []).append(item)
        # Keep the top bar of the organization the person came from (this page belongs to none).
        access = request_access(self.request)
        current = self.request.session.get(CURRENT_ORG_SESSION_KEY)
        org = organization_list(access=access).filter(slug=current).first() if current else None
        if org is not None:
            kwargs.update(org=org, can_write=access.can_write(org.pk), can_admin=access.can_admin(org.pk))
        return super().get_context_data(groups=groups, count=len(items), **kwargs)


class QueueItemSerializer(serializers.Serializer):
    kind = serializers.CharField(help_text="waiver, gate, follow_up or blocker.")
    kind_label = serializers.CharField()
    organization = serializers.CharField(source="organization.slug")
    project = serializers.IntegerField(source="project.pk")
    project_name = serializers.CharField(source="project.name")
    title = serializers.CharField()
    detail = serializers.CharField()
    url = serializers.SerializerMethodField(help_text="The page where the action is taken.")
    since = serializers.DateTimeField()
    object_id = serializers.IntegerField(help_text="The waiver, follow-up or project the row is about.")

    def get_url(self, item) -> str:
        return self.context["request"].build_absolute_uri(item.url)


@extend_schema(tags=["me"])
class MyQueueView(generics.ListAPIView):
    """What the caller can act on now across their organizations: waivers to decide, gates to sign,
    follow-ups to close, failing blockers on projects they own. An organization token is nobody,
    and a viewer may act on nothing: both get an empty list."""

    serializer_class = QueueItemSerializer
    filter_backends = []  # a computed list, not a queryset

    def get_queryset(self):
        return request_queue(self.request)
