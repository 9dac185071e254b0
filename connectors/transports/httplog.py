"""HTTP client logging without path values, query strings or bodies: the one place that sets it.

httpx logs every request at INFO (``HTTP Request: GET https://host/jobs/J1?uprn=... "HTTP/1.1
200"``) and urllib3 (under requests and zeep) at DEBUG, both with the whole URL, where a look-up's
parameters (a postcode, a reference) would be. ``redact_http_client_logs()`` does two things:

- pins the ``httpx`` and ``httpcore`` loggers to WARNING (unless set higher): their INFO/DEBUG
  lines repeat what the REST transport logs itself by path template (``CRM GET
  /api/v1/cases/{crm_id} -> 200``), with the values filled in;
- adds a filter to every logger that writes request URLs that cuts each URL at its ``?``, for the
  logging that stays on (urllib3 at DEBUG) or that an operator switches back on.

Neither library logs bodies; httpcore's trace records carry neither URLs nor bodies. Idempotent;
called when a SOAP transport, a REST client (the CRM client too) or the hub's web app is built.
"""
from __future__ import annotations

import logging
from typing import Any

#: Loggers that write request URLs.
URL_LOGGERS = ("httpx", "urllib3.connectionpool", "httpcore.http11", "httpcore.connection")
#: Loggers held at WARNING: their request lines duplicate the transports' template-level lines.
QUIET_LOGGERS = ("httpx", "httpcore")


def without_query(value: Any) -> Any:
    """A URL (httpx.URL or text) without its query string and fragment; anything else unchanged."""
    if type(value).__name__ == "URL" and hasattr(value, "copy_with"):
        try:
            return value.copy_with(query=None, fragment=None)
        except Exception:  # an odd URL object: fall back to its text
            value = str(value)
    if isinstance(value, str) and ("?" in value or "#" in value) and \
            (value.startswith(("/", "http://", "https://")) or "://" in value):
        return value.split("?", 1)[0].split("#", 1)[0]
    if isinstance(value, bytes) and b"?" in value and value.startswith((b"/", b"http")):
        return value.split(b"?", 1)[0]
    return value


class QueryStringFilter(logging.Filter):
    """Cuts query strings out of the arguments (and a preformatted message) of a log record."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(without_query(a) for a in record.args)
        elif isinstance(record.args, dict):
            record.args = {k: without_query(v) for k, v in record.args.items()}
        if not record.args and isinstance(record.msg, str) and "?" in record.msg:
            record.msg = " ".join(without_query(part) for part in record.msg.split(" "))
        return True


def redact_http_client_logs() -> None:
    """Quiet httpx and httpcore, and install the query-string filter on every logger that writes
    request URLs (once)."""
    for name in QUIET_LOGGERS:
        logger = logging.getLogger(name)
        if logger.level < logging.WARNING:   # NOTSET included
            logger.setLevel(logging.WARNING)
    for name in URL_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, QueryStringFilter) for f in logger.filters):
            logger.addFilter(QueryStringFilter())
