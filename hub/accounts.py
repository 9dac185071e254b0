"""Staff accounts: who may sign in to the hub's pages, with which role and for which teams.

Passwords are stored as argon2id hashes (argon2-cffi); a wrong password, an unknown name and a
disabled account all fail the same way, in the same time. Sign-in is rate limited per account name
and per client (a digest of the address, never the address itself).

Roles:
- ``member``: a back-office team member; sees and acts on the work items of their own teams only.
- ``operations``: every team's work items (personal data only of teams they belong to), the
  operations pages, replay, management information. Always a member of the ``operations`` team.
- ``admin``: manages accounts; sees management information; no work items unless given teams.
"""
from __future__ import annotations

import hashlib
import os
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from connectors import catalog
from hub import audit
from hub.ledger.models import Account, LoginAttempt, utcnow

MEMBER = "member"
OPERATIONS = "operations"
ADMIN = "admin"
ROLES = (MEMBER, OPERATIONS, ADMIN)
OPERATIONS_TEAM = "operations"

MIN_PASSWORD_LENGTH = 12
MAX_PASSWORD_LENGTH = 256
USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{1,79}$")



@lru_cache(maxsize=1)
def _argon2() -> tuple[PasswordHasher, str]:
    """The hasher (argon2id, RFC 9106 low-memory profile unless HUB_ARGON2_TIME_COST and
    HUB_ARGON2_MEMORY_KIB say otherwise; the test suite uses a cheaper profile), and a hash to
    verify against when the name is unknown, so that it takes as long as a wrong password."""
    hasher = PasswordHasher(time_cost=int(os.environ.get("HUB_ARGON2_TIME_COST", "3")),
                            memory_cost=max(8192, int(os.environ.get("HUB_ARGON2_MEMORY_KIB", "65536"))))
    return hasher, hasher.hash(secrets.token_urlsafe(16))


class _Hasher:
    def hash(self, password: str) -> str:
        return _argon2()[0].hash(password)

    def verify(self, password_hash: str, password: str) -> bool:
        return _argon2()[0].verify(password_hash, password)

    def check_needs_rehash(self, password_hash: str) -> bool:
        return _argon2()[0].check_needs_rehash(password_hash)


_hasher = _Hasher()


class AccountError(ValueError):
    """A request about an account that cannot be carried out (the message says why)."""


class LoginThrottled(Exception):
    """Too many failed sign-ins recently; ``retry_after`` seconds until the next try."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"too many failed sign-ins; try again in {retry_after} s")
        self.retry_after = retry_after


def known_teams() -> list[str]:
    """Every team that owns work items: one per back-office system, and operations."""
    return sorted({e.team for e in catalog.SYSTEMS.values()} | {OPERATIONS_TEAM})


@dataclass(frozen=True)
class StaffUser:
    """The signed-in person, as the pages and the desk see them."""

    id: int
    username: str
    display_name: str
    role: str
    teams: frozenset[str]
    must_change_password: bool = False

    @property
    def is_operations(self) -> bool:
        return self.role == OPERATIONS

    @property
    def is_admin(self) -> bool:
        return self.role == ADMIN

    @property
    def sees_every_team(self) -> bool:
        """Operations staff see every team's work items."""
        return self.is_operations

    def visible_teams(self) -> frozenset[str] | None:
        """Teams whose work items this person may see; ``None`` means every team."""
        return None if self.sees_every_team else self.teams

    def can_see_team(self, team: str) -> bool:
        return self.sees_every_team or team in self.teams

    def owns_team(self, team: str) -> bool:
        """Members of the owning team (only they) see the case's personal data."""
        return team in self.teams

    @property
    def has_desk(self) -> bool:
        return self.sees_every_team or bool(self.teams)


def _teams(value: str) -> frozenset[str]:
    return frozenset(t for t in (value or "").split(",") if t)


def as_user(account: Account) -> StaffUser:
    return StaffUser(id=account.id, username=account.username, display_name=account.display_name,
                     role=account.role, teams=_teams(account.teams),
                     must_change_password=account.must_change_password)


def generate_password() -> str:
    """A random password to hand to a person once (they choose their own at first sign-in)."""
    return secrets.token_urlsafe(15)


def check_password_rules(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AccountError(f"the password must be at least {MIN_PASSWORD_LENGTH} characters")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise AccountError(f"the password must be at most {MAX_PASSWORD_LENGTH} characters")


def _normalise_teams(role: str, teams: Iterable[str]) -> str:
    chosen = {t.strip().lower() for t in teams if t.strip()}
    unknown = chosen - set(known_teams())
    if unknown:
        raise AccountError(f"unknown team(s) {sorted(unknown)}; known: {known_teams()}")
    if role == OPERATIONS:
        chosen.add(OPERATIONS_TEAM)
    if role == MEMBER and not chosen:
        raise AccountError("a team member needs at least one team")
    return ",".join(sorted(chosen))


def add_account(session: Session, *, username: str, role: str, teams: Iterable[str] = (),
                display_name: str | None = None, password: str | None = None,
                actor: str = "system") -> tuple[Account, str]:
    """Create an account; returns it and its first password (generated unless given)."""
    username = username.strip().lower()
    if not USERNAME.match(username):
        raise AccountError("a user name is 2-80 characters: lower-case letters, digits, . _ -")
    if role not in ROLES:
        raise AccountError(f"unknown role {role!r}; one of {list(ROLES)}")
    if session.scalar(select(Account.id).where(Account.username == username)):
        raise AccountError(f"an account {username!r} already exists")
    password = password or generate_password()
    check_password_rules(password)
    name = (display_name or username).strip()[:120] or username
    account = Account(username=username, display_name=name, role=role,
                      teams=_normalise_teams(role, teams), password_hash=_hasher.hash(password),
                      must_change_password=True, disabled=False, created_at=utcnow())
    session.add(account)
    session.flush()
    audit.record(session, actor=actor, action="account_added", target=f"account:{username}",
                 state_after="active", detail=f"role {role}; teams {account.teams or '-'}")
    return account, password


def find(session: Session, username: str) -> Account:
    account = session.scalar(select(Account).where(Account.username == username.strip().lower()))
    if account is None:
        raise AccountError(f"no account {username!r}")
    return account


def disable(session: Session, username: str, *, actor: str = "system") -> Account:
    """Stop an account signing in; its sessions end at once."""
    from hub.web import sessions

    account = find(session, username)
    before = "disabled" if account.disabled else "active"
    account.disabled = True
    sessions.end_all(session, account.id)
    audit.record(session, actor=actor, action="account_disabled", target=f"account:{account.username}",
                 state_before=before, state_after="disabled")
    return account


def enable(session: Session, username: str, *, actor: str = "system") -> Account:
    account = find(session, username)
    before = "disabled" if account.disabled else "active"
    account.disabled = False
    audit.record(session, actor=actor, action="account_enabled", target=f"account:{account.username}",
                 state_before=before, state_after="active")
    return account


def reset_password(session: Session, username: str, *, actor: str = "system") -> str:
    """A new one-time password; the person must choose their own when they next sign in."""
    from hub.web import sessions

    account = find(session, username)
    password = generate_password()
    account.password_hash = _hasher.hash(password)
    account.must_change_password = True
    account.password_changed_at = utcnow()
    sessions.end_all(session, account.id)
    audit.record(session, actor=actor, action="password_reset", target=f"account:{account.username}")
    return password


def change_password(session: Session, account_id: int, *, current: str, new: str) -> None:
    """The person sets their own password (checked against the current one)."""
    account = session.get(Account, account_id)
    if account is None or account.disabled:
        raise AccountError("the account is not active")
    if not _verify(account.password_hash, current):
        raise AccountError("the current password is not right")
    check_password_rules(new)
    if new == current:
        raise AccountError("choose a password different from the current one")
    account.password_hash = _hasher.hash(new)
    account.must_change_password = False
    account.password_changed_at = utcnow()
    audit.record(session, actor=account.username, action="password_changed",
                 target=f"account:{account.username}")


def list_accounts(session: Session) -> list[Account]:
    return list(session.scalars(select(Account).order_by(Account.username)))


def _verify(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


# -- signing in --------------------------------------------------------------------------------

@dataclass(frozen=True)
class LoginLimits:
    """Failed sign-ins allowed per account name and per client within ``window``."""

    per_username: int = 5
    per_client: int = 20
    window: timedelta = timedelta(minutes=15)

    @classmethod
    def from_env(cls) -> "LoginLimits":
        return cls(per_username=int(os.environ.get("HUB_LOGIN_MAX_FAILURES", "5")),
                   per_client=int(os.environ.get("HUB_LOGIN_MAX_FAILURES_PER_CLIENT", "20")),
                   window=timedelta(minutes=int(os.environ.get("HUB_LOGIN_WINDOW_MINUTES", "15"))))


def client_digest(address: str | None) -> str:
    """A stable stand-in for a client address, so that the address itself is never stored."""
    return hashlib.sha256(f"hub-login:{address or '-'}".encode()).hexdigest()[:32]


def _throttle(session: Session, username: str, client: str, limits: LoginLimits,
              now: datetime) -> None:
    """Refuse before checking the password when a name or client failed too often lately
    (failures before the account's last successful sign-in do not count)."""
    window_start = now - limits.window
    for column, value, allowed in ((LoginAttempt.username, username, limits.per_username),
                                   (LoginAttempt.client, client, limits.per_client)):
        last_success = session.scalar(select(func.max(LoginAttempt.at)).where(
            column == value, LoginAttempt.succeeded.is_(True)))
        since = max(window_start, last_success) if last_success else window_start
        failures = list(session.scalars(
            select(LoginAttempt.at).where(column == value, LoginAttempt.at > since,
                                          LoginAttempt.succeeded.is_(False))
            .order_by(LoginAttempt.at.desc()).limit(allowed)))
        if len(failures) >= allowed:
            oldest = failures[-1]
            raise LoginThrottled(max(1, int((oldest + limits.window - now).total_seconds())))


def authenticate(session: Session, username: str, password: str, *, client: str,
                 limits: LoginLimits | None = None) -> StaffUser | None:
    """The account for a name and password; None when refused (the failed try is recorded in the
    caller's transaction, so commit it); ``LoginThrottled`` before any check when locked out."""
    limits = limits or LoginLimits.from_env()
    now = utcnow()
    name = (username or "").strip().lower()[:80]
    _throttle(session, name, client, limits, now)
    account = session.scalar(select(Account).where(Account.username == name)) if name else None
    if password and len(password) <= MAX_PASSWORD_LENGTH:
        ok = _verify(account.password_hash if account else _argon2()[1], password)
    else:
        ok = False
    ok = ok and account is not None and not account.disabled
    session.add(LoginAttempt(username=name, client=client, at=now, succeeded=ok))
    if not ok or account is None:
        return None
    if _hasher.check_needs_rehash(account.password_hash):
        account.password_hash = _hasher.hash(password)
    account.last_login_at = now
    session.execute(delete(LoginAttempt).where(LoginAttempt.at < now - timedelta(days=1)))
    return as_user(account)

