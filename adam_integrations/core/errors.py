"""The one exception hierarchy of adam-integrations: every error a user can act on.

Each class also derives from the built-in exception a Python user would expect
(``ValueError`` for bad values, ``TypeError`` for bad types, ``LookupError`` for a name
that is not known), so ``except ValueError`` keeps working. Every message says what
was wrong and how to fix it.
"""

from __future__ import annotations

EMBEDDED_INSTALL_HINT = "pip install 'adam-integrations[embedded]'"


class AdamError(Exception):
    """Base class of every error raised on purpose by adam-integrations.

    ``param`` names the argument or request field that was wrong, when one was (OpenAI's
    error objects carry it as ``param``).
    """

    def __init__(self, *args: object, param: str | None = None) -> None:
        super().__init__(*args)
        self.param = param


class InvalidRequestError(AdamError, ValueError):
    """A request argument has a value that cannot work (empty prompt, max_tokens <= 0, ...)."""


class InvalidInputTypeError(AdamError, TypeError):
    """A request argument has the wrong type (for example a number given to ``embed``)."""


class TemplateLimitError(InvalidRequestError):
    """A chat template broke a limit while it rendered: it ran too long, built too much
    text, or called itself without end (``core.chat_template``)."""


class UnknownOptionError(InvalidRequestError, TypeError):
    """An option name that nothing takes (a misspelt generation or backend option). Also a
    ``TypeError``, as Python's own "unexpected keyword argument" is."""


class AlreadyExistsError(InvalidRequestError):
    """Something is already where a file or model would go and is not this package's to
    replace (a 409 from ``adam serve``): a model someone else made, a folder where a blob
    belongs. The message says how to clear the way, or replace it on purpose."""


class TooLargeError(InvalidRequestError):
    """More data than the limit it was sent against (a 413 from ``adam serve``); the
    message names the limit and the setting that raises it."""


class StorageFullError(AdamError, OSError):
    """The disk a file goes to has no room for it, or would keep less than its reserve (a
    507 from ``adam serve``); nothing half-written is left."""


class UnknownBackendError(AdamError, LookupError):
    """The backend name is not registered; the message lists the ones that are."""


class UnknownDomainError(AdamError, LookupError):
    """The domain profile name is not known; the message lists the ones that are."""


class ModelNotFoundError(AdamError, LookupError):
    """The model reference names nothing that can be loaded here."""


class EmbeddedModelMissingError(ModelNotFoundError):
    """No model was named, nothing usable is on disk, and the embedded defaults are absent."""


class ModelLoadError(AdamError):
    """The model was found but could not be loaded (unsupported architecture, broken files)."""


class UnsupportedOperationError(AdamError):
    """The loaded model cannot do what was asked (e.g. ``embed`` on a chat-only model)."""


class SchemaRelaxationWarning(UserWarning):
    """A JSON-schema keyword of a request is not enforced while decoding (the docs list
    which); the answer is still JSON for the rest of the schema."""


class ServerBusyError(AdamError):
    """A server cannot take the request now (its queue is full, or it is shutting down);
    retrying later may succeed."""


class AddressInUseError(AdamError, OSError):
    """``adam serve``'s address is taken by another server; the message says by what, if
    it can tell, and how to pick another."""


class RequestTimeoutError(AdamError, TimeoutError):
    """A request ran longer than the limit it was given."""
