"""Logging in and out of the web app; the session cookie and its CSRF token."""

from __future__ import annotations

from typing import Any

from tests.web.conftest import Site, shoot


def test_login_then_logout(anon: Any, site: Site) -> None:
    anon.goto(f"{site.url}/datasets/{site.ds}?q=count()%20%3E%202")
    anon.wait_for_url("**/login?next=*")
    shoot(anon, "login")
    anon.fill("#key", "ocula_wrong")
    anon.click("button[type=submit]")
    error = anon.wait_for_selector("#login-error:not([hidden])")
    assert "invalid or revoked" in error.inner_text()
    anon.fill("#key", site.key)
    anon.click("button[type=submit]")
    anon.wait_for_selector(".tile")  # back where the person was going, query and all
    assert anon.input_value("#query") == "count() > 2"
    cookie = next(c for c in anon.context.cookies() if c["name"] == "ocula_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    assert site.key not in cookie["value"]
    anon.click("#logout")
    anon.wait_for_url("**/login")
    anon.goto(site.url + "/")
    anon.wait_for_url("**/login?next=*")


def test_api_refuses_a_browser_without_a_session(anon: Any, site: Site) -> None:
    answer = anon.context.request.get(f"{site.url}/api/v1/datasets")
    assert answer.status == 401
    assert answer.headers["www-authenticate"].startswith("Bearer")


def test_cookie_writes_need_the_csrf_token(page: Any, site: Site) -> None:
    page.goto(site.url + "/")
    token = page.locator('meta[name="csrf-token"]').get_attribute("content")
    url = f"{site.url}/api/v1/datasets"
    assert page.context.request.get(url).ok  # reads by cookie need no token
    refused = page.context.request.post(url, data={"name": "forged"})
    assert refused.status == 403 and refused.json()["error"] == "csrf"
    wrong = page.context.request.post(url, data={"name": "forged"},
                                      headers={"X-CSRF-Token": "0" * 64})
    assert wrong.status == 403
    made = page.context.request.post(url, data={"name": "from the browser"},
                                     headers={"X-CSRF-Token": token})
    assert made.status == 201, made.text()
    site.service.delete_dataset(made.json()["id"])
    # A key needs no token.
    keyed = page.context.request.post(url, data={"name": "by key"},
                                      headers={"Authorization": f"Bearer {site.key}"})
    assert keyed.status == 201
    site.service.delete_dataset(keyed.json()["id"])


def test_revoking_the_key_ends_the_session(anon: Any, site: Site) -> None:
    key = site.service.create_key("short-lived")["key"]
    assert anon.context.request.post(f"{site.url}/login", data={"key": key}).ok
    assert anon.context.request.get(f"{site.url}/api/v1/datasets").ok
    site.service.revoke_key("short-lived")
    assert anon.context.request.get(f"{site.url}/api/v1/datasets").status == 401
    anon.goto(site.url + "/")
    anon.wait_for_url("**/login?next=*")
