"""What Django's error page and error reports may show."""

from django.views.debug import SafeExceptionReporterFilter


class SecretsHiddenFilter(SafeExceptionReporterFilter):
    """Hide what `sensitive_variables` and `sensitive_post_parameters` mark, with DEBUG on too.

    Django's own filter steps aside under DEBUG ("your site is not safe anyway"), but DEBUG pages
    are shown on staging servers and pasted into screenshots and bug reports; an endpoint key or
    a connector secret on one is a leaked secret. Settings whose names look secret are hidden
    either way.
    """

    def is_active(self, request) -> bool:
        return True
