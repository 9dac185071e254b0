"""What the hub exchanges with the CRM: a case (in) and a write-back (out)."""
from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints, ValidationError,
                      field_validator)

CrmId = Annotated[str, StringConstraints(min_length=1, max_length=200, strip_whitespace=True)]

#: Status words the CRM shows the contact-centre agent for a case.
WriteBackStatus = Literal["in_progress", "completed", "needs_review", "rejected"]


Channel = Literal["telephone", "face_to_face", "web", "email", "other"]
_CHANNELS = {"telephone": "telephone", "phone": "telephone", "tel": "telephone", "call": "telephone",
             "face_to_face": "face_to_face", "face-to-face": "face_to_face", "face to face": "face_to_face",
             "f2f": "face_to_face", "in_person": "face_to_face", "counter": "face_to_face",
             "web": "web", "online": "web", "web_form": "web", "webform": "web", "portal": "web",
             "app": "web", "email": "email", "e-mail": "email", "e_mail": "email", "mail": "email"}


def normalise_channel(value: Any) -> str | None:
    """A CRM's channel word as one of ``Channel``; unknown words are ``other``, absence is None."""
    if value is None or not isinstance(value, str) or not value.strip():
        return None
    return _CHANNELS.get(value.strip().lower()[:40], "other")


class CrmCase(BaseModel):
    """One version of a CRM case. The hub records it idempotently on ``(crm_id, version)``.

    Fields the CRM adds beyond these (status, notes...) are ignored.
    """

    model_config = ConfigDict(frozen=True, extra="ignore")

    crm_id: CrmId
    version: int = Field(ge=1)
    """Goes up by one each time the case's data changes in the CRM."""
    case_type: Annotated[str, StringConstraints(min_length=1, max_length=100)]
    updated_at: AwareDatetime
    data: dict[str, Any]
    """The case's fields as the CRM holds them (may contain personal data: never log)."""
    channel: Channel | None = None
    """How the customer came (telephone, face_to_face, web, email; anything else is ``other``)."""
    created_at: AwareDatetime | None = None
    """When the request was first recorded in the CRM (optional; else version 1's ``updated_at``)."""

    @field_validator("channel", mode="before")
    @classmethod
    def _channel(cls, value: Any) -> str | None:
        return normalise_channel(value)

    @field_validator("created_at", mode="wrap")
    @classmethod
    def _created_at(cls, value: Any, handler: Any) -> Any:
        try:
            return handler(value)
        except ValidationError:   # an optional field the hub can do without: read tolerantly
            return None


class WriteBack(BaseModel):
    """An outcome the hub reports back to a CRM case (closed loop)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    idempotency_key: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    """The hub's outbox id; the CRM applies each key once."""
    status: WriteBackStatus
    note: Annotated[str, StringConstraints(max_length=4000)]
    """Shown to the contact-centre agent; no personal data is needed."""
    backoffice_reference: str | None = None
    backoffice_system: str | None = None


def validation_summary(exc: ValidationError) -> str:
    """``field: message; ...`` for a validation error, without the offending values."""
    parts = []
    for error in exc.errors(include_input=False, include_url=False):
        location = ".".join(str(p) for p in error["loc"]) or "body"
        parts.append(f"{location}: {error['msg']}")
    return "; ".join(parts)


def invalid_fields(exc: ValidationError) -> list[str]:
    """The dotted names of the fields a validation error is about."""
    return sorted({".".join(str(p) for p in e["loc"]) or "body" for e in exc.errors()})
