import hmac

from django.utils import timezone
from rest_framework import authentication, exceptions

from apps.orgs.models import TOKEN_PREFIX, ApiToken, Membership, hash_token_secret

# last_used_at is written at most this often per token, so a busy CI pipeline does not
# turn every read into a write.
LAST_USED_RESOLUTION_SECONDS = 60


class BearerTokenAuthentication(authentication.BaseAuthentication):
    """`Authorization: Bearer rdy_<lookup>_<secret>` → (None, ApiToken)."""

    keyword = "Bearer"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).decode("latin-1")
        if not header:
            return None
        scheme, _, raw = header.partition(" ")
        if scheme.lower() != "bearer":
            return None
        raw = raw.strip()
        if not raw.startswith(TOKEN_PREFIX) or raw.count("_") < 2:
            raise exceptions.AuthenticationFailed("Malformed API token.")
        lookup, _, secret = raw[len(TOKEN_PREFIX) :].partition("_")
        token = ApiToken.objects.select_related("organization", "acts_for").filter(lookup_id=lookup).first()
        # Compare a hash even when the lookup misses, so timing does not reveal valid ids.
        expected = token.secret_hash if token else "0" * 64
        if not hmac.compare_digest(expected, hash_token_secret(secret)) or token is None:
            raise exceptions.AuthenticationFailed("Invalid API token.")
        if not token.is_active:
            raise exceptions.AuthenticationFailed(f"API token is {token.status}.")
        if token.acts_for_id and not token.acts_for.is_active:
            # A personal token is its person: a deactivated account no longer reads or writes, by any
            # route. Organization tokens belong to the organization and outlive their creator.
            raise exceptions.AuthenticationFailed("API token's member is deactivated.")
        if (
            token.acts_for_id
            and not Membership.objects.filter(organization_id=token.organization_id, user_id=token.acts_for_id).exists()
        ):
            raise exceptions.AuthenticationFailed("API token's member has left the organization.")
        now = timezone.now()
        if token.last_used_at is None or (now - token.last_used_at).total_seconds() > LAST_USED_RESOLUTION_SECONDS:
            ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
            token.last_used_at = now
        return (None, token)

    def authenticate_header(self, request):
        return self.keyword
