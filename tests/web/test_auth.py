"""Signing in and out: argon2 accounts, sessions with expiry, CSRF, cookie flags, headers, rate limit."""
from __future__ import annotations

from datetime import timedelta

from hub import accounts
from hub.ledger import db
from hub.ledger.models import LoginAttempt, WebSession
from tests.web.support import PASSWORD, add_user, client, csrf_of, shift, sign_in


def test_a_page_sends_a_stranger_to_sign_in_and_an_api_answers_401(app) -> None:
    stranger = client(app)
    page = stranger.get("/desk?team=revenues")
    assert page.status_code == 303
    assert page.headers["location"] == "/login?next=%2Fdesk%3Fteam%3Drevenues"
    assert stranger.get("/api/work-items").status_code == 401
    assert stranger.get("/api/systems").status_code == 401


def test_passwords_are_argon2_hashes(app, sqlite_ledger: str) -> None:
    add_user(sqlite_ledger, "jo.bloggs", teams=["revenues"])
    with db.session_scope(sqlite_ledger) as session:
        stored = accounts.find(session, "jo.bloggs").password_hash
    assert stored.startswith("$argon2id$") and PASSWORD not in stored


def test_sign_in_sets_a_locked_down_cookie_and_security_headers(app, sqlite_ledger: str) -> None:
    add_user(sqlite_ledger, "jo.bloggs", teams=["revenues"])
    browser = client(app)
    form = browser.get("/login")
    answer = browser.post("/login", data={"username": "Jo.Bloggs", "password": PASSWORD,
                                          "csrf_token": csrf_of(form.text), "next": "/desk?kind=x"})
    assert answer.status_code == 303 and answer.headers["location"] == "/desk?kind=x"
    cookie = next(v for k, v in answer.headers.multi_items() if k == "set-cookie"
                  and v.startswith("hub_session="))
    flags = cookie.lower()
    assert "httponly" in flags and "secure" in flags and "samesite=lax" in flags
    desk = browser.get("/desk")
    assert desk.status_code == 200
    headers = desk.headers
    assert "frame-ancestors 'self'" in headers["content-security-policy"]
    assert "script-src 'self'" in headers["content-security-policy"]
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["x-frame-options"] == "SAMEORIGIN"
    assert headers["referrer-policy"] == "same-origin"
    assert headers["cache-control"] == "no-store"


def test_a_wrong_password_and_an_unknown_name_fail_alike(app, sqlite_ledger: str) -> None:
    add_user(sqlite_ledger, "jo.bloggs", teams=["revenues"])
    browser = client(app)
    token = csrf_of(browser.get("/login").text)
    wrong = browser.post("/login", data={"username": "jo.bloggs", "password": "nope",
                                         "csrf_token": token})
    unknown = browser.post("/login", data={"username": "nobody", "password": "nope",
                                           "csrf_token": token})
    assert wrong.status_code == unknown.status_code == 401
    assert "The user name or password is not right." in wrong.text
    assert "The user name or password is not right." in unknown.text
    assert "hub_session=" not in wrong.headers.get("set-cookie", "")


def test_sign_in_is_rate_limited_per_account(app, sqlite_ledger: str) -> None:
    add_user(sqlite_ledger, "jo.bloggs", teams=["revenues"])
    browser = client(app)
    token = csrf_of(browser.get("/login").text)
    for _ in range(5):
        assert browser.post("/login", data={"username": "jo.bloggs", "password": "guess",
                                            "csrf_token": token}).status_code == 401
    refused = browser.post("/login", data={"username": "jo.bloggs", "password": PASSWORD,
                                           "csrf_token": token})
    assert refused.status_code == 429, "even the right password waits out the lock"
    assert 0 < int(refused.headers["retry-after"]) <= 900
    shift(sqlite_ledger, LoginAttempt, "at", by=-timedelta(minutes=16))   # the window passes
    assert browser.post("/login", data={"username": "jo.bloggs", "password": PASSWORD,
                                        "csrf_token": token}).status_code == 303


def test_failures_before_a_successful_sign_in_are_forgiven(sqlite_ledger: str) -> None:
    add_user(sqlite_ledger, "jo.bloggs", teams=["revenues"])
    with db.session_scope(sqlite_ledger) as session:
        for _ in range(4):
            assert accounts.authenticate(session, "jo.bloggs", "bad", client="c") is None
        assert accounts.authenticate(session, "jo.bloggs", PASSWORD, client="c") is not None
        for _ in range(4):
            assert accounts.authenticate(session, "jo.bloggs", "bad", client="c") is None
        assert accounts.authenticate(session, "jo.bloggs", PASSWORD, client="c").username == "jo.bloggs"


def test_the_sign_in_form_needs_its_own_token(app, sqlite_ledger: str) -> None:
    add_user(sqlite_ledger, "jo.bloggs", teams=["revenues"])
    forged = client(app).post("/login", data={"username": "jo.bloggs", "password": PASSWORD})
    assert forged.status_code == 403 and "hub_session=" not in forged.headers.get("set-cookie", "")


def test_next_never_leaves_the_hub(app, sqlite_ledger: str) -> None:
    add_user(sqlite_ledger, "jo.bloggs", teams=["revenues"])
    for target in ("//evil.example/x", "https://evil.example/", "/\\evil.example"):
        browser = client(app)
        token = csrf_of(browser.get("/login").text)
        answer = browser.post("/login", data={"username": "jo.bloggs", "password": PASSWORD,
                                              "csrf_token": token, "next": target})
        assert answer.headers["location"] == "/desk", target


def test_sign_out_needs_the_csrf_token_and_ends_the_session(app, sqlite_ledger: str) -> None:
    add_user(sqlite_ledger, "jo.bloggs", teams=["revenues"])
    browser = sign_in(app, "jo.bloggs")
    page = browser.get("/desk")
    assert browser.post("/logout").status_code == 403, "no token: refused"
    assert browser.post("/logout", data={"csrf_token": "forged"}).status_code == 403
    assert browser.get("/desk").status_code == 200, "still signed in after the forged posts"
    cookie = browser.cookies.get("hub_session")
    out = browser.post("/logout", data={"csrf_token": csrf_of(page.text)})
    assert out.status_code == 303 and out.headers["location"] == "/login"
    replay = client(app)
    replay.cookies.set("hub_session", cookie, domain="hub.test")
    assert replay.get("/desk").status_code == 303, "the old cookie no longer works"


def test_sessions_expire_when_idle_and_at_their_maximum_age(app, sqlite_ledger: str) -> None:
    add_user(sqlite_ledger, "jo.bloggs", teams=["revenues"])
    browser = sign_in(app, "jo.bloggs")
    assert browser.get("/desk").status_code == 200
    shift(sqlite_ledger, WebSession, "last_seen_at", by=-timedelta(minutes=31))
    assert browser.get("/desk").status_code == 303
    browser = sign_in(app, "jo.bloggs")
    shift(sqlite_ledger, WebSession, "expires_at", by=-timedelta(hours=8))
    assert browser.get("/desk").status_code == 303


def test_disabling_an_account_ends_its_sessions(app, sqlite_ledger: str) -> None:
    add_user(sqlite_ledger, "jo.bloggs", teams=["revenues"])
    browser = sign_in(app, "jo.bloggs")
    with db.session_scope(sqlite_ledger) as session:
        accounts.disable(session, "jo.bloggs", actor="admin")
    assert browser.get("/desk").status_code == 303
    token = csrf_of(browser.get("/login").text)
    assert browser.post("/login", data={"username": "jo.bloggs", "password": PASSWORD,
                                        "csrf_token": token}).status_code == 401


def test_a_one_time_password_must_be_changed_before_anything_else(app, sqlite_ledger: str) -> None:
    add_user(sqlite_ledger, "jo.bloggs", teams=["revenues"], must_change=True)
    browser = client(app)
    token = csrf_of(browser.get("/login").text)
    first = browser.post("/login", data={"username": "jo.bloggs", "password": PASSWORD,
                                         "csrf_token": token})
    assert first.headers["location"] == "/account/password"
    assert browser.get("/desk").headers["location"] == "/account/password"
    form = browser.get("/account/password")
    short = browser.post("/account/password", data={"csrf_token": csrf_of(form.text), "current": PASSWORD,
                                                   "new": "short", "confirm": "short"})
    assert short.status_code == 422 and "at least 12 characters" in short.text
    new = "a much longer pass phrase"
    done = browser.post("/account/password", data={"csrf_token": csrf_of(form.text), "current": PASSWORD,
                                                  "new": new, "confirm": new})
    assert done.status_code == 303, done.text[:300]
    assert browser.get("/desk").status_code == 200
    assert sign_in(app, "jo.bloggs", new).get("/desk").status_code == 200


def test_machine_api_clients_keep_their_bearer_token(app, sqlite_ledger: str) -> None:
    api = client(app)
    assert api.get("/api/work-items", headers={"Authorization": "Bearer machine-token"}).status_code == 200
    assert api.get("/api/work-items", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert api.get("/api/systems", headers={"Authorization": "Bearer machine-token"}).status_code == 200
    assert api.get("/api/openapi.json", headers={"Authorization": "Bearer machine-token"}).status_code == 200
    assert api.get("/openapi.json").status_code == 404 and api.get("/docs").status_code == 404


def test_api_systems_lists_every_instance_even_idle_ones(app, sqlite_ledger: str) -> None:
    """/api/systems answers hub.systems.overview: every registered instance, zero counts before
    any traffic, and no connection check yet."""
    from connectors import catalog

    listed = client(app).get("/api/systems",
                             headers={"Authorization": "Bearer machine-token"}).json()
    assert set(catalog.SYSTEMS) <= set(listed)
    housing = listed["housing_repairs"]
    assert housing["registered"] is True and housing["team"] == "housing"
    assert housing["received"] == housing["pending"] == 0 and housing["last_check"] is None
