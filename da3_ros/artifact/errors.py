"""The two errors of the artefact contract: a backend that cannot run here, an artefact that does not fit."""


class BackendUnavailableError(RuntimeError):
    """The requested backend cannot run here; the message says why (e.g. 'tensorrt not importable')."""


class EngineMismatchError(ValueError):
    """An exported model/engine does not match the configuration or the runtime; the message says
    what differs and what to rebuild."""
