"""User code under a leash: a time limit per call, every way out of it turned into an ordinary exception.

occsens runs code it did not write: a conformance implementation, a ``--model-path`` factory and its
model. ``call`` runs such a callable in a daemon thread and waits at most ``timeout`` seconds; past it,
``TimedOut`` names the callable and the limit (the thread is left behind: Python cannot stop it, but
as a daemon it never keeps the process alive). Whatever the code raises comes back to the caller: an
``Exception`` as it is; any other ``BaseException`` but ``KeyboardInterrupt`` (``SystemExit``,
``GeneratorExit``, ``asyncio.CancelledError``, ``pytest.fail``'s outcome) as ``Escaped``, an
``Exception`` that says what it was, so one ``except Exception`` handles every failure of user code
(``ExitCalled`` excepted: code that meant to end the process ends the command).

``exit_trapped`` replaces ``os._exit`` while a command runs, so user code that calls it raises
``ExitCalled`` instead of ending the process silently with whatever status it chose.

``occsens.errors.printable`` (re-exported here) escapes terminal control sequences in text that came
from user code before it is shown.

Imports nothing heavy: the command line uses it before torch loads.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable, Iterator
from typing import Any, NoReturn

from occsens.errors import OcclusionError, printable

__all__ = ["DEFAULT_TIMEOUT", "Escaped", "ExitCalled", "TimedOut", "call", "exit_trapped", "printable"]

# Ten minutes per call: a generous bound for one call of an occlusion implementation on the
# conformance suite's small cases (milliseconds each) or one forward of a user's model on one batch
# (a large ImageNet model on CPU takes seconds); what it is for is turning "hangs forever, prints
# nothing" into a message. ``--timeout`` changes it.
DEFAULT_TIMEOUT = 600.0


class TimedOut(OcclusionError):
    """User code did not return within its time limit."""


class Escaped(Exception):  # noqa: N818 - the user code's own exception, carried
    """User code raised a ``BaseException`` that is not an ``Exception``; ``original`` is it."""

    def __init__(self, original: BaseException) -> None:
        self.original = original
        message = str(original)
        super().__init__(f"{type(original).__name__}: {message}" if message else type(original).__name__)


class ExitCalled(BaseException):  # noqa: N818 - BaseException, so user code's ``except Exception`` lets it by
    """User code called ``os._exit`` while ``exit_trapped`` was on."""

    def __init__(self, status: Any) -> None:
        self.status = status
        super().__init__(f"os._exit({status!r}) was called")


def call(fn: Callable[..., Any], *args: Any, timeout: float | None, what: str, **kwargs: Any) -> Any:
    """``fn(*args, **kwargs)`` run in a daemon thread, at most ``timeout`` seconds (None: no limit).

    ``what`` names the callable in the ``TimedOut`` message ("implementation my_occ:attribute").
    A ``KeyboardInterrupt`` in the waiting thread stops the wait and is raised as it is.
    """
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["value"] = fn(*args, **kwargs)
        except BaseException as exc:  # noqa: BLE001 - every way out of user code is carried back
            outcome["error"] = exc

    worker = threading.Thread(target=run, name=f"occsens: {what}", daemon=True)
    worker.start()
    worker.join(timeout)
    if worker.is_alive():
        raise TimedOut(
            f"{what} did not return within {timeout:g} s (--timeout): it may be stuck (waiting on "
            "input, a lock or the network) or far slower than expected; raise --timeout if it only "
            "needs longer"
        )
    if "error" in outcome:
        error = outcome["error"]
        if isinstance(error, (Exception, KeyboardInterrupt, ExitCalled)):
            raise error
        raise Escaped(error) from error
    return outcome.get("value")


def timeout_seconds(value: Any, name: str = "timeout") -> float | None:
    """``value`` as a time limit in seconds: a positive finite number, or None for no limit."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < float("inf"):
        raise OcclusionError(f"{name} must be a number of seconds > 0 (or None for no limit), got {value!r}")
    return float(value)


@contextlib.contextmanager
def exit_trapped() -> Iterator[None]:
    """While inside, ``os._exit(status)`` raises ``ExitCalled`` instead of ending the process."""

    def refused(status: Any) -> NoReturn:
        raise ExitCalled(status)

    original = os._exit
    os._exit = refused  # type: ignore[assignment]
    try:
        yield
    finally:
        os._exit = original
