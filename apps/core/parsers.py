"""The API's JSON parser (DEFAULT_PARSER_CLASSES).

Its own module: the settings name it, and DRF reads DEFAULT_PARSER_CLASSES while `rest_framework.views`
is imported, which apps.core.drf imports for the exception handler.
"""

from rest_framework import exceptions, parsers

# No body of ours nests deeper than a handful of levels. Python's decoder recurses once per level
# (100,000 `[` is a RecursionError, a 500), and what it returns is walked again by serializers,
# the idempotency fingerprint and the JSON columns.
MAX_JSON_DEPTH = 32


def _deeper_than(value, limit: int) -> bool:
    # A loop with a stack, not recursion: the value may itself be as deep as the decoder allowed.
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > limit:
            return True
        children = node.values() if isinstance(node, dict) else node
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False


class JSONParser(parsers.JSONParser):
    """JSON bodies are objects, at most MAX_JSON_DEPTH levels deep.

    Every endpoint takes an object: a list, a string, a number or null at the top would reach
    `request.data.get(...)` in an action as something without `.get`."""

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError:  # nested past what the decoder allows: certainly past our limit
            raise exceptions.ParseError(f"JSON parse error - nested deeper than {MAX_JSON_DEPTH} levels.") from None
        if not isinstance(data, dict):
            raise exceptions.ParseError("JSON parse error - the body must be a JSON object.")
        if _deeper_than(data, MAX_JSON_DEPTH):
            raise exceptions.ParseError(f"JSON parse error - nested deeper than {MAX_JSON_DEPTH} levels.")
        return data
