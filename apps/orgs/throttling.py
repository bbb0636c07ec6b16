from rest_framework.throttling import SimpleRateThrottle

from apps.orgs.access import request_access


class PrincipalRateThrottle(SimpleRateThrottle):
    """Requests per principal (API token or user), counted in the cache (Redis in production).

    Keyed on the principal rather than the IP, so one CI pipeline's token cannot starve the
    people of its organization who share a NAT address.
    """

    scope = "principal"

    def get_cache_key(self, request, view):
        access = request_access(request)
        if access.user is None and access.token is None:
            return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}
        return self.cache_format % {"scope": self.scope, "ident": access.principal}
