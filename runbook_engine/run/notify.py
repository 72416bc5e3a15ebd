"""Notifications: a message when a run waits at a gate or an approval, when an approval
expires, and when a run ends, sent by e-mail and webhooks (apprise) in the background.

The run's context attaches a :class:`Notifier` to the journal (``Journal.listeners``)
when a settings file is in force (:mod:`.notify_settings`), for every run: started by the
CLI, the console or a notebook.  The notifier reads the records as written, so every
field is already redacted (the run's secrets are markers); the message is redacted once
more.  It never fails nor stops the run: messages are queued and sent by one background
thread, each channel tried ``attempts`` times with exponential backoff (tenacity).  When
the run's process stops (paused, finished, interrupted) it waits at most
``wait_at_end_seconds`` for what is still being sent, then journals one
``notification-sent`` or ``notification-failed`` per message and channel, naming the
channel, the event it was about and the attempts (never the message, never a secret).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from runbook_engine.errors import InputError
from runbook_engine.evidence.redact import Redactor
from runbook_engine.run.notify_settings import NotifySettings, load_settings, settings_path

if TYPE_CHECKING:
    from runbook_engine.run.store import RunRecord

#: Characters of a gate's instructions in its message (the run page has them all).
INSTRUCTIONS = 500
#: What a gate waits for, by the ``gate`` field of ``gate-awaiting``.
AWAITED = {
    "manual": "a person to do the manual step and confirm it",
    "command-by-hand": "a person to run the command by hand and confirm it",
    "interrupted": "a person to say whether the interrupted step was done",
}


@dataclass(frozen=True, slots=True)
class Message:
    """One notification: what it is about (``event``, ``step``), its title and text."""

    event: str
    step: str | None
    title: str
    body: str
    level: str  # apprise's notify type: info, success, warning, failure


@dataclass(frozen=True, slots=True)
class Delivery:
    """How sending one message to one channel ended."""

    message: Message
    channel: str
    sent: bool
    attempts: int
    reason: str | None = None

    def journal_fields(self) -> dict[str, Any]:
        """The fields of its ``notification-sent``/``-failed`` record (no message text)."""
        fields: dict[str, Any] = {
            "channel": self.channel,
            "about": self.message.event,
            "attempts": self.attempts,
        }
        if self.message.step:
            fields["about_step"] = self.message.step
        if self.reason:
            fields["reason"] = self.reason
        return fields


def compose(
    record: dict[str, Any], run: RunRecord, settings: NotifySettings, titles: dict[str, str]
) -> Message | None:
    """The message about journal ``record`` of ``run``, or ``None`` when the settings do not
    ask for one.  ``titles`` maps step ids to their titles."""
    event, step = record["event"], record.get("step")
    wanted = settings.events
    if event == "run-finished":
        failed = record.get("status") not in ("succeeded", "checked")
        if "run-finished" not in wanted and not (failed and "run-failed" in wanted):
            return None
    elif event not in wanted:
        return None
    about = f"{step} ({titles[step]})" if step and titles.get(step) else step
    lines = [f"Run: {run.run_id}", f"Runbook: {run.runbook_id}"]
    if run.env_name:
        lines.append(f"Environment: {run.env_name}")
    if run.change_id:
        lines.append(f"Change: {run.change_id}")
    lines.append(f"Operator: {run.operator}")
    if event == "gate-awaiting":
        title = f"Run {run.run_id} waits at step {step}"
        lines += [
            f"Step: {about} on {record.get('host')}",
            f"Awaited: {AWAITED.get(str(record.get('gate')), 'a person')}",
        ]
        if record.get("instructions"):
            lines.append("Instructions: " + str(record["instructions"]).strip()[:INSTRUCTIONS])
        level = "warning"
    elif event == "approval-requested":
        title = f"Run {run.run_id} waits for approval at step {step}"
        expiry = record.get("expires_hours")
        lines += [
            f"Step: {about}",
            f"Awaited: {record.get('required')} approval(s) from "
            f"{', '.join(map(str, record.get('approvers') or []))}"
            + (f" (an approval counts for {expiry:g} h)" if expiry else ""),
        ]
        level = "warning"
    elif event == "approval-expired":
        title = f"An approval of step {step} in run {run.run_id} expired"
        lines += [
            f"Step: {about}",
            f"Expired: the approval by {record.get('by')} given {record.get('given_at')} "
            f"(counts for {record.get('expires_hours')} h)",
            "Awaited: a fresh approval",
        ]
        level = "warning"
    elif event == "run-finished":
        outcome = str(record.get("outcome") or record.get("status"))
        title = f"Run {run.run_id} {'failed' if outcome == 'failed' else 'finished: ' + outcome}"
        counts = ", ".join(f"{n} {s}" for s, n in sorted((record.get("steps") or {}).items()))
        lines += [f"Outcome: {outcome}", f"Steps: {counts}"]
        level = "success" if outcome == "succeeded" else "failure"
    else:
        return None
    lines.append(f"Open: {settings.link(run.run_id)}")
    return Message(event, step, title, "\n".join(lines), level)


class Notifier:
    """Sends the messages of one run's journal records in the background.

    Args:
        settings: The checked settings file.
        run: The run (id, runbook, environment, change, operator).
        titles: Step ids to titles (as people see them).
        redactor: The run's redactor (applied to every message once more).
        send: Sends one message to one channel and says whether it went (default:
            apprise); raises nothing.
    """

    def __init__(
        self,
        settings: NotifySettings,
        run: RunRecord,
        titles: dict[str, str],
        redactor: Redactor,
        send: Callable[[str, Message], tuple[bool, str | None]] | None = None,
    ) -> None:
        self.settings, self.run, self.titles, self.redactor = settings, run, titles, redactor
        self._send = send or self._apprise
        self._jobs: queue.Queue[Message] = queue.Queue()
        self._done: list[Delivery] = []
        self._pending = 0
        self._lock = threading.Condition()
        self._thread: threading.Thread | None = None

    def observe(self, record: dict[str, Any]) -> None:
        """Journal listener: queue the message about ``record`` (never raises)."""
        try:
            if record.get("event") == "run-paused":
                return
            message = compose(record, self.run, self.settings, self.titles)
        except Exception:  # a notification never fails a run
            return
        if message is None:
            return
        message = Message(
            message.event,
            message.step,
            self.redactor.redact(message.title),
            self.redactor.redact(message.body),
            message.level,
        )
        with self._lock:
            self._pending += 1
        self._jobs.put(message)
        if self._thread is None:
            self._thread = threading.Thread(target=self._work, name="runbook-notify", daemon=True)
            self._thread.start()

    def flush(self, journal: Any) -> list[Delivery]:
        """Wait (at most ``wait_at_end_seconds``) for the messages being sent, then journal
        how each delivery ended; messages still being retried then are journaled as
        given up.  Returns the deliveries journaled."""
        with self._lock:
            self._lock.wait_for(lambda: self._pending == 0, self.settings.wait_at_end_seconds)
            done, self._done = self._done, []
            left = self._pending
        if left:
            done.append(
                Delivery(
                    Message("run-stopped", None, "", "", "info"),
                    "*",
                    False,
                    0,
                    f"{left} message(s) still being sent when the run's process stopped; given up",
                )
            )
        for delivery in done:
            event = "notification-sent" if delivery.sent else "notification-failed"
            journal.append(event, **delivery.journal_fields())
        return done

    # -- the background thread -----------------------------------------------------------------
    def _work(self) -> None:
        while True:
            message = self._jobs.get()
            results = [self._deliver(channel, message) for channel in self.settings.channels]
            with self._lock:
                self._done.extend(results)
                self._pending -= 1
                self._lock.notify_all()

    def _deliver(self, channel: Any, message: Message) -> Delivery:
        from tenacity import (
            RetryError,
            Retrying,
            retry_if_result,
            stop_after_attempt,
            wait_exponential,
        )

        hide = Redactor({**channel.secrets()})
        retrying = Retrying(
            stop=stop_after_attempt(self.settings.attempts),
            wait=wait_exponential(multiplier=self.settings.backoff_seconds, max=300),
            retry=retry_if_result(lambda outcome: not outcome[0]),
        )
        try:
            sent, reason = retrying(self._send, channel, message)
        except RetryError as exc:
            sent, reason = exc.last_attempt.result()
        except Exception as exc:  # a notification never fails a run
            sent, reason = False, f"{type(exc).__name__}: {exc}"
        attempts = retrying.statistics.get("attempt_number", 1)
        reason = hide.redact(reason) if reason else None
        return Delivery(message, channel.name, sent, attempts, reason)

    @staticmethod
    def _apprise(channel: Any, message: Message) -> tuple[bool, str | None]:
        import apprise

        try:
            url = channel.apprise_url()
        except InputError as exc:
            return False, str(exc)
        sender = apprise.Apprise()
        if not sender.add(url):
            return False, f"apprise does not accept the {channel.kind} settings"
        with apprise.LogCapture(level=apprise.logging.WARNING) as log:
            ok = bool(
                sender.notify(title=message.title, body=message.body, notify_type=message.level)
            )
            said = [line for line in log.getvalue().splitlines() if line.strip()]
        return ok, None if ok else (said[-1].split(" - ", 2)[-1] if said else "not sent")


class SettingsProblem:
    """Stands for the notifier when the settings file is wrong: the run goes on, and the
    problem is journaled once as ``notification-failed`` (channel ``settings``)."""

    def __init__(self, problem: str) -> None:
        self.problem: str | None = problem

    def flush(self, journal: Any) -> list[Delivery]:
        """Journal the problem (the first time)."""
        if self.problem is not None:
            journal.append("notification-failed", channel="settings", reason=self.problem)
            self.problem = None
        return []


def attach(
    journal: Any, state_dir: Path, run: RunRecord, shown: Any, redactor: Redactor, report: Any
) -> Notifier | SettingsProblem | None:
    """Listen to ``journal`` for the run's notifications when a settings file is in force;
    a wrong file is shown as a warning on ``report`` and journaled at the first flush.
    ``shown`` is the tailored runbook as people see it (step titles)."""
    try:
        path = settings_path(state_dir)
        if path is None:
            return None
        settings = load_settings(path)
        import apprise  # noqa: F401
    except ImportError:
        problem = f"{path}: notifications need apprise: pip install 'runbook-engine[console]'"
    except InputError as exc:
        problem = str(exc)
    else:
        titles = {ts.id: ts.step.display_title() for ts in shown.steps}
        notifier = Notifier(settings, run, titles, redactor)
        journal.listeners.append(notifier.observe)
        return notifier
    report.warning(f"notifications are off: {problem}")
    return SettingsProblem(problem)
