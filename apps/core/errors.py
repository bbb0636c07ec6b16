class ApplicationError(Exception):
    """A business-rule refusal with a message meant for the user.

    Services raise it; the API turns it into the one error shape, HTML views into a form error.
    """

    def __init__(self, message: str, *, code: str = "invalid", detail: dict | None = None, status: int = 400):
        super().__init__(message)
        self.message = message
        self.code = code
        self.detail = detail or {}
        self.status = status
