"""Sending e-mail over SMTP (escalations of overdue work items, alerts).

Settings from the environment: ``HUB_SMTP_HOST`` (no host: e-mail is switched off and callers are
told so), ``HUB_SMTP_PORT`` (25), ``HUB_SMTP_FROM``, ``HUB_SMTP_STARTTLS`` (``true`` to upgrade),
``HUB_SMTP_USERNAME`` / ``HUB_SMTP_PASSWORD`` (optional), ``HUB_SMTP_TIMEOUT_SECONDS`` (10).
Failures are classified like a connector's: a refused or unreachable server is ``TransientError``.
"""
from __future__ import annotations

import os
import smtplib
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from email.message import EmailMessage

from connectors.errors import PermanentError, TransientError


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int = 25
    sender: str = "integration-hub@council.example"
    starttls: bool = False
    username: str | None = None
    password: str | None = None
    timeout: float = 10.0

    @classmethod
    def from_env(cls) -> "SmtpSettings | None":
        host = os.environ.get("HUB_SMTP_HOST", "").strip()
        if not host:
            return None
        return cls(host=host, port=int(os.environ.get("HUB_SMTP_PORT", "25")),
                   sender=os.environ.get("HUB_SMTP_FROM") or cls.sender,
                   starttls=os.environ.get("HUB_SMTP_STARTTLS", "").lower() in ("1", "true", "yes"),
                   username=os.environ.get("HUB_SMTP_USERNAME") or None,
                   password=os.environ.get("HUB_SMTP_PASSWORD") or None,
                   timeout=float(os.environ.get("HUB_SMTP_TIMEOUT_SECONDS", "10")))


def send(settings: SmtpSettings, to: Sequence[str], subject: str, body: str) -> None:
    """Send one plain-text message. The body must hold no personal data (it is not logged, but
    mailboxes keep it)."""
    if not to:
        raise PermanentError("an e-mail needs at least one recipient", code="mail-config")
    message = EmailMessage()
    message["From"] = settings.sender
    message["To"] = ", ".join(to)
    message["Subject"] = subject[:200]
    message.set_content(body)
    try:
        with smtplib.SMTP(settings.host, settings.port, timeout=settings.timeout) as smtp:
            if settings.starttls:
                smtp.starttls(context=ssl.create_default_context())
            if settings.username and settings.password:
                smtp.login(settings.username, settings.password)
            smtp.send_message(message)
    except smtplib.SMTPAuthenticationError as exc:
        raise PermanentError(f"SMTP server {settings.host} refused the login", code="mail-auth") from exc
    except smtplib.SMTPRecipientsRefused as exc:
        raise PermanentError(f"SMTP server {settings.host} refused the recipients",
                             code="mail-recipients") from exc
    except (smtplib.SMTPException, OSError) as exc:
        raise TransientError(f"SMTP server {settings.host}:{settings.port} failed "
                             f"({type(exc).__name__})", code="mail") from exc
