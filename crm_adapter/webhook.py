"""Signed webhook receiver: the CRM pushes each created or changed case to the hub.

Signing (see docs/crm.md): ``X-Hub-Timestamp``: Unix seconds; ``X-Hub-Delivery``: a unique id per
delivery; ``X-Hub-Signature-256``: ``sha256=`` + hex HMAC-SHA256(secret, ts + "." + body).
The receiver checks, in order, before reading the body: headers present, delivery id a short
printable text, timestamp within tolerance (an unsigned request costs no body read and no work);
then it reads the body incrementally and refuses it past ``max_body_bytes`` (declared length or
not, chunked or not) before buffering more; then the signature, then claims the delivery id (so a
forged call never burns one), then validates the body at the edge against the ledger's columns
(``crm_adapter.models``: lengths, NUL bytes, integer ranges, nesting depth). A signed body that
is not a storable case is answered 422 naming the fields and kept (``record_invalid``), on every
database alike; 503 only when the ledger cannot be reached (the CRM may retry), never for input
that can never succeed. A push is only a fast path: the scheduled pull catches anything a push
missed, so nothing depends on every push arriving.
"""
from __future__ import annotations

import hashlib
import hmac
import logging
import re
import time
from collections.abc import Callable

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from connectors.transports.jsonreader import BodyNotJson
from crm_adapter.models import (MAX_DELIVERY_ID, CaseRefused, CrmCase, invalid_fields,
                                parse_json_body, validation_summary)

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Hub-Signature-256"
TIMESTAMP_HEADER = "X-Hub-Timestamp"
DELIVERY_HEADER = "X-Hub-Delivery"
SIGNATURE_PREFIX = "sha256="
WEBHOOK_PATH = "/webhooks/crm"
MAX_DELIVERY_ID_LENGTH = MAX_DELIVERY_ID
_DELIVERY_ID = re.compile(r"[\x21-\x7e]{1,%d}" % MAX_DELIVERY_ID)


def sign(secret: bytes, timestamp: str, body: bytes) -> str:
    """``"sha256=" + hex HMAC-SHA256`` over ``timestamp + "." + body``."""
    message = timestamp.encode("utf-8") + b"." + body
    return SIGNATURE_PREFIX + hmac.new(secret, message, hashlib.sha256).hexdigest()


def verify(secret: bytes, timestamp: str, body: bytes, signature: str) -> bool:
    """True when ``signature`` is the signature of ``timestamp`` and ``body`` (constant time)."""
    expected = sign(secret, timestamp, body).encode("ascii")
    return hmac.compare_digest(expected, signature.encode("utf-8", "replace"))


def signed_headers(secret: bytes, body: bytes, delivery_id: str,
                   timestamp: int | None = None) -> dict[str, str]:
    """The headers a sender adds to a webhook delivery of ``body``."""
    ts = str(int(time.time()) if timestamp is None else timestamp)
    return {SIGNATURE_HEADER: sign(secret, ts, body), TIMESTAMP_HEADER: ts,
            DELIVERY_HEADER: delivery_id, "Content-Type": "application/json"}


def webhook_router(*, secret: Callable[[], bytes], record_case: Callable[[CrmCase], object],
                   claim_delivery: Callable[[str], bool], trigger: Callable[[], None] | None = None,
                   record_invalid: Callable[[str, str, bytes], None] | None = None,
                   tolerance_seconds: int = 300, clock: Callable[[], float] = time.time,
                   release_delivery: Callable[[str], None] | None = None,
                   max_body_bytes: int = 1_000_000) -> APIRouter:
    """A router with ``POST /webhooks/crm`` that records each correctly signed case.

    401: missing or invalid signature, timestamp outside ``tolerance_seconds`` either way, or a
    delivery id already claimed; nothing is recorded. 413: body over ``max_body_bytes`` (refused
    while reading). 422: signed, but the body is not a storable case; the raw delivery goes to
    ``record_invalid`` so a person can act. 202: recorded, then ``trigger()`` (its failure is only
    logged: the scheduled intake picks the case up). If recording fails for a reason that may pass
    (``record_case`` raising anything but ``CaseRefused``), ``release_delivery`` (when given) frees
    the delivery id and the answer is 503, so the CRM's retry is accepted.
    """
    router = APIRouter()

    def deny(reason: str, delivery_id: str) -> JSONResponse:
        log.warning("CRM webhook refused (%s), delivery %s", reason, delivery_id[:64] or "-")
        return JSONResponse({"detail": reason}, status_code=401)

    def precheck(headers: dict[str, str]) -> JSONResponse | None:
        """The checks that need no body: an unsigned request is refused before it is read."""
        delivery_id = headers.get(DELIVERY_HEADER.lower(), "").strip()
        signature = headers.get(SIGNATURE_HEADER.lower(), "")
        timestamp = headers.get(TIMESTAMP_HEADER.lower(), "").strip()
        if not (delivery_id and signature and timestamp):
            return deny("missing signature headers", delivery_id if delivery_id.isprintable() else "")
        if not _DELIVERY_ID.fullmatch(delivery_id):
            return deny(f"delivery id must be 1 to {MAX_DELIVERY_ID} printable ASCII characters", "")
        if not (timestamp.isascii() and timestamp.isdigit() and len(timestamp) <= 12):
            return deny("timestamp is not Unix seconds", delivery_id)
        if abs(clock() - int(timestamp)) > tolerance_seconds:
            return deny("timestamp outside tolerance", delivery_id)
        if not signature.startswith(SIGNATURE_PREFIX) or len(signature) != len(SIGNATURE_PREFIX) + 64:
            return deny("invalid signature", delivery_id)
        return None

    def handle(headers: dict[str, str], body: bytes) -> JSONResponse:
        delivery_id = headers.get(DELIVERY_HEADER.lower(), "").strip()
        signature = headers.get(SIGNATURE_HEADER.lower(), "")
        timestamp = headers.get(TIMESTAMP_HEADER.lower(), "").strip()
        if not verify(secret(), timestamp, body, signature):
            return deny("invalid signature", delivery_id)
        if not claim_delivery(delivery_id):
            return deny("delivery already received", delivery_id)
        try:
            case = CrmCase.model_validate(parse_json_body(body))
        except BodyNotJson as exc:
            return invalid(delivery_id, ["body"], f"body: {exc}", body)
        except ValidationError as exc:
            return invalid(delivery_id, invalid_fields(exc), validation_summary(exc), body)
        try:
            record_case(case)
        except CaseRefused as exc:
            return invalid(delivery_id, [getattr(exc, "field", None) or "body"],
                           f"the ledger refused the case: {exc}", body)
        except Exception as exc:  # exception text may quote case data: log its type only
            log.error("CRM webhook: recording case %s v%s failed (%s), delivery %s",
                      case.crm_id, case.version, type(exc).__name__, delivery_id)
            release(delivery_id)
            return JSONResponse({"detail": "could not record the case; retry"}, status_code=503)
        log.info("CRM webhook recorded case %s v%s, delivery %s", case.crm_id, case.version,
                 delivery_id)
        if trigger is not None:
            try:
                trigger()
            except Exception as exc:  # the case is recorded; the scheduled intake picks it up
                log.warning("CRM webhook: trigger failed (%s) after delivery %s",
                            type(exc).__name__, delivery_id)
        return JSONResponse({"status": "accepted", "crm_id": case.crm_id,
                             "version": case.version}, status_code=202)

    def invalid(delivery_id: str, fields: list[str], summary: str, body: bytes) -> JSONResponse:
        log.warning("CRM webhook delivery %s is not a case: fields %s", delivery_id, fields)
        if record_invalid is None:
            log.error("CRM webhook delivery %s kept nowhere: no record_invalid handler",
                      delivery_id)
        else:
            try:
                record_invalid(delivery_id, summary, body)
            except Exception as exc:
                log.error("CRM webhook: keeping invalid delivery %s failed (%s)", delivery_id,
                          type(exc).__name__)
                release(delivery_id)
                return JSONResponse({"detail": "could not keep the delivery; retry"},
                                    status_code=503)
        return JSONResponse({"detail": f"body is not a case: {summary}", "fields": fields},
                            status_code=422)

    def release(delivery_id: str) -> None:
        if release_delivery is None:
            return
        try:
            release_delivery(delivery_id)
        except Exception as exc:
            log.error("CRM webhook: releasing delivery %s failed (%s)", delivery_id,
                      type(exc).__name__)

    def too_large() -> JSONResponse:
        log.warning("CRM webhook refused a body over %d bytes", max_body_bytes)
        return JSONResponse({"detail": f"body too large (limit {max_body_bytes} bytes)"},
                            status_code=413)

    @router.post(WEBHOOK_PATH, status_code=202, summary="Receive a signed CRM case")
    async def receive_crm_case(request: Request) -> JSONResponse:
        headers = {k.lower(): v for k, v in request.headers.items()}
        refused = precheck(headers)
        if refused is not None:
            return refused   # nothing read, nothing done
        declared = headers.get("content-length", "")
        if declared and (not declared.isdigit() or int(declared) > max_body_bytes):
            return too_large() if declared.isdigit() else JSONResponse(
                {"detail": "bad Content-Length"}, status_code=400)
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > max_body_bytes:
                return too_large()   # stop reading: the rest is never buffered
        return await run_in_threadpool(handle, headers, bytes(body))

    return router
