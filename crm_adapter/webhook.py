"""Signed webhook receiver: the CRM pushes each created or changed case to the hub.

Signing (see docs/crm.md): ``X-Hub-Timestamp``: Unix seconds; ``X-Hub-Delivery``: a unique id per
delivery; ``X-Hub-Signature-256``: ``sha256=`` + hex HMAC-SHA256(secret, ts + "." + body).
The receiver checks, in order: headers present, timestamp within tolerance, signature, then claims
the delivery id (so a forged call never burns one), then validates the body. A push is only a fast
path: the scheduled pull catches anything a push missed, so nothing depends on every push arriving.
"""
from __future__ import annotations

import hashlib
import hmac
import logging
import time
from collections.abc import Callable

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from crm_adapter.models import CrmCase, invalid_fields, validation_summary

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Hub-Signature-256"
TIMESTAMP_HEADER = "X-Hub-Timestamp"
DELIVERY_HEADER = "X-Hub-Delivery"
SIGNATURE_PREFIX = "sha256="
WEBHOOK_PATH = "/webhooks/crm"
MAX_DELIVERY_ID_LENGTH = 200


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
    delivery id already claimed; nothing is recorded. 422: signed, but the body is not a case; the
    raw delivery goes to ``record_invalid`` so a person can act. 202: recorded, then ``trigger()``
    (its failure is only logged: the scheduled intake picks the case up). If recording itself
    fails, ``release_delivery`` (when given) frees the delivery id so the CRM's retry is accepted.
    """
    router = APIRouter()

    def deny(reason: str, delivery_id: str) -> JSONResponse:
        log.warning("CRM webhook refused (%s), delivery %s", reason, delivery_id[:64] or "-")
        return JSONResponse({"detail": reason}, status_code=401)

    def handle(headers: dict[str, str], body: bytes) -> JSONResponse:
        delivery_id = headers.get(DELIVERY_HEADER.lower(), "").strip()
        signature = headers.get(SIGNATURE_HEADER.lower(), "")
        timestamp = headers.get(TIMESTAMP_HEADER.lower(), "").strip()
        if not (delivery_id and signature and timestamp):
            return deny("missing signature headers", delivery_id)
        if len(delivery_id) > MAX_DELIVERY_ID_LENGTH:
            return deny("delivery id too long", "")
        if not (timestamp.isascii() and timestamp.isdigit() and len(timestamp) <= 12):
            return deny("timestamp is not Unix seconds", delivery_id)
        if abs(clock() - int(timestamp)) > tolerance_seconds:
            return deny("timestamp outside tolerance", delivery_id)
        if not verify(secret(), timestamp, body, signature):
            return deny("invalid signature", delivery_id)
        if not claim_delivery(delivery_id):
            return deny("delivery already received", delivery_id)
        try:
            case = CrmCase.model_validate_json(body)
        except ValidationError as exc:
            return invalid(delivery_id, exc, body)
        try:
            record_case(case)
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

    def invalid(delivery_id: str, exc: ValidationError, body: bytes) -> JSONResponse:
        fields = invalid_fields(exc)
        summary = validation_summary(exc)
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

    @router.post(WEBHOOK_PATH, status_code=202, summary="Receive a signed CRM case")
    async def receive_crm_case(request: Request) -> JSONResponse:
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > max_body_bytes:
            return JSONResponse({"detail": "body too large"}, status_code=413)
        body = await request.body()
        if len(body) > max_body_bytes:
            return JSONResponse({"detail": "body too large"}, status_code=413)
        headers = {k.lower(): v for k, v in request.headers.items()}
        return await run_in_threadpool(handle, headers, body)

    return router
