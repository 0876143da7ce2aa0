#!/usr/bin/env python3
"""An independent OAuth 2.0 client (Python's authlib) against `tradelab serve`.

The Rust integration test starts a server, registers the user and the two
clients below, and runs this script. Every flow is driven by a third-party
library that knows nothing about tradelab, so passing means the server speaks
the published protocols, not just what tradelab's own client expects:

* RFC 8414  authorization server metadata (every endpoint is read from it)
* RFC 6749  authorization code grant (with a real HTML sign-in and consent,
            parsed from the server's forms), refresh token grant, client
            credentials grant, and their error answers (section 5.2)
* RFC 7636  PKCE with S256: a wrong or missing code_verifier is refused
* RFC 9207  the `iss` parameter of the authorization response
* RFC 9068  the access token is an `at+jwt` JWT, checked here with
            authlib.jose against the published JWKS (EdDSA / Ed25519)
* RFC 6750  bearer tokens at the resource server: 401 without a token,
            401 `invalid_token` for a bad one, 403 `insufficient_scope`
* RFC 7662  token introspection, authenticated as a confidential client
* RFC 7009  token revocation (a refresh token takes its whole sign-in along)
* RFC 9700  (OAuth security BCP) refresh token rotation with reuse detection,
            and authorization code replay revoking what the code bought

Usage (all arguments required):

    oauth_authlib_client.py --server http://127.0.0.1:PORT --user ada \\
        --password PASSWORD --public-client authlib-public \\
        --redirect-uri http://127.0.0.1:9/cb --service-client authlib-service \\
        --service-secret SECRET

`ada` must be a researcher (may get data:read ... trade, not admin); the public
client has grants authorization_code + refresh_token and exactly that redirect
URI (never fetched: the script reads the Location header of the consent
answer); the service client is confidential with grant client_credentials and
scopes `data:read models:read`.

Output: one line per check, `ok: ...` or `FAIL: ...`, then a last line of JSON
`{"passed": N, "failed": M, "secrets": [...]}`. "secrets" lists every token,
code, verifier, cookie, secret and password the script saw or sent, so the
caller can assert that none of them shows up in the server's log. Exit status
0 only if every check passed. Each sign-in is separate, so every check works
on tokens that no earlier check has used up.
"""

import argparse
import json
import sys
import time
import warnings
from html.parser import HTMLParser
from urllib.parse import parse_qs, urljoin, urlsplit

import requests
from authlib.common.security import generate_token
from authlib.integrations.base_client.errors import OAuthError
from authlib.integrations.requests_client import OAuth2Session

# authlib 1.x warns that authlib.jose will move to joserfc in 2.0; it is the
# API this check is meant to use, so the warning is only noise on stderr.
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from authlib.jose import JsonWebKey, JsonWebToken

TIMEOUT = 10  # seconds per HTTP request; the server answers in milliseconds
AUDIENCE = "tradelab-api"
READ_SCOPES = "data:read models:read"
WRONG_PASSWORD = "definitely-not-adas-password-7x"
WRONG_SECRET = "tls_definitely-not-the-service-secret-7x"


# ---------------------------------------------------------------------------
# Bookkeeping


class Report:
    """Counts checks, prints them, and remembers every secret seen."""

    def __init__(self):
        self.passed = 0
        self.failed = 0
        self.secrets = []

    def secret(self, *values):
        for v in values:
            if isinstance(v, str) and v and v not in self.secrets:
                self.secrets.append(v)

    def redact(self, text):
        """FAIL details never print a secret (short ones would only garble the text)."""
        text = str(text)
        for s in sorted(self.secrets, key=len, reverse=True):
            if len(s) >= 8:
                text = text.replace(s, "<secret>")
        return text

    def check(self, condition, what, detail=""):
        if condition:
            self.passed += 1
            print(f"ok: {what}", flush=True)
        else:
            self.failed += 1
            extra = f" ({self.redact(detail)})" if detail else ""
            print(f"FAIL: {what}{extra}", flush=True)
        return bool(condition)

    def summary(self):
        return json.dumps({"passed": self.passed, "failed": self.failed, "secrets": self.secrets})


class Ctx:
    """The command line, the server's metadata and keys, and the report."""

    def __init__(self, args, report):
        self.args = args
        self.report = report
        self.server = args.server.rstrip("/")
        self.md = {}
        self.jwks = None

    def check(self, *a, **kw):
        return self.report.check(*a, **kw)


def answer(resp):
    """A short description of an HTTP answer for FAIL lines (no bodies of 2xx)."""
    body = resp.text[:300].replace("\n", " ") if resp.status_code >= 300 else ""
    return f"HTTP {resp.status_code} {body}".strip()


def refused(err, raw):
    """Why a token request failed, for FAIL lines."""
    return f"error={err}, {answer(raw)}" if raw is not None else f"error={err}, no HTTP answer"


def json_or_empty(resp):
    try:
        v = resp.json()
        return v if isinstance(v, dict) else {}
    except ValueError:
        return {}


# ---------------------------------------------------------------------------
# Helpers shared by the flows


class HiddenForm(HTMLParser):
    """The first <form> of a page: its action, hidden inputs, other input names."""

    def __init__(self, html):
        super().__init__()
        self.action = None
        self.hidden = {}
        self.visible = set()
        self._in_form = False
        self._done = False
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if self._done:
            return
        if tag == "form":
            self.action, self._in_form = a.get("action"), True
        elif tag == "input" and self._in_form and a.get("name"):
            if a.get("type") == "hidden":
                self.hidden[a["name"]] = a.get("value") or ""
            else:
                self.visible.add(a["name"])

    def handle_endtag(self, tag):
        if tag == "form" and self._in_form:
            self._in_form, self._done = False, True


def public_session(ctx, scope=READ_SCOPES):
    """authlib's client for the public client, keeping the raw token answers.

    authlib hides the HTTP answer of the token endpoint (and even copies the old
    refresh token into its state when the answer has none), so a compliance hook
    keeps the last raw answer for the status, header and rotation checks.
    """
    a = ctx.args
    oauth = OAuth2Session(
        a.public_client,
        scope=scope,
        redirect_uri=a.redirect_uri,
        code_challenge_method="S256",
        token_endpoint_auth_method="none",
        revocation_endpoint_auth_method="none",
    )
    return with_raw_answers(oauth)


def service_session(ctx, secret=None, scope=None):
    a = ctx.args
    oauth = OAuth2Session(a.service_client, secret or a.service_secret, scope=scope)
    return with_raw_answers(oauth)


def with_raw_answers(oauth):
    oauth.last_answer = None

    def keep(resp):
        oauth.last_answer = resp
        return resp

    oauth.register_compliance_hook("access_token_response", keep)
    oauth.register_compliance_hook("refresh_token_response", keep)
    return oauth


def token_call(ctx, oauth, fn, *args, **kwargs):
    """Runs an authlib token request; returns (token or None, raw answer, error code)."""
    oauth.last_answer = None
    try:
        token = fn(*args, **kwargs)
    except OAuthError as e:
        return None, oauth.last_answer, e.error
    keep_token_secrets(ctx, token)
    return token, oauth.last_answer, None


def keep_token_secrets(ctx, token):
    if token:
        ctx.report.secret(token.get("access_token"), token.get("refresh_token"))


def authorize(ctx, scope=READ_SCOPES, decision="allow", password=None):
    """Browser part of the code flow: authorization URL, sign-in form, consent form.

    Returns (oauth, code_verifier, state, answer) where answer is the server's
    answer to the last form (the 303 to the redirect URI when all went well).
    """
    a = ctx.args
    oauth = public_session(ctx, scope)
    verifier = generate_token(48)
    ctx.report.secret(verifier)
    url, state = oauth.create_authorization_url(ctx.md["authorization_endpoint"], code_verifier=verifier)

    browser = requests.Session()  # keeps the CSRF and session cookies
    page = browser.get(url, allow_redirects=False, timeout=TIMEOUT)
    keep_cookies(ctx, browser)
    if page.status_code != 200:
        return oauth, verifier, state, page
    form = HiddenForm(page.text)
    if "password" in form.visible:  # the sign-in page (no browser session yet)
        password = a.password if password is None else password
        ctx.report.secret(form.hidden.get("csrf"), password)
        fields = dict(form.hidden, username=a.user, password=password, action="login")
        page = browser.post(urljoin(url, form.action), data=fields, allow_redirects=False, timeout=TIMEOUT)
        keep_cookies(ctx, browser)
        form = HiddenForm(page.text)
        if page.status_code != 200 or "password" in form.visible:  # refused: the sign-in page again
            return oauth, verifier, state, page
    # The consent page: its hidden fields carry the request and the CSRF token.
    ctx.report.secret(form.hidden.get("csrf"))
    done = browser.post(
        urljoin(url, form.action or ""),
        data=dict(form.hidden, decision=decision),
        allow_redirects=False,
        timeout=TIMEOUT,
    )
    keep_cookies(ctx, browser)
    return oauth, verifier, state, done


def keep_cookies(ctx, browser):
    for c in browser.cookies:
        ctx.report.secret(c.value)


def redirect_params(resp):
    """The query of a redirect to the client, or None when the answer is no redirect."""
    loc = resp.headers.get("Location")
    if resp.status_code not in (302, 303) or not loc:
        return None, None
    return loc, {k: v[0] for k, v in parse_qs(urlsplit(loc).query).items()}


def sign_in(ctx, label, scope=READ_SCOPES):
    """A complete browser sign-in; returns (oauth, verifier, location) or None.

    Checks what every successful authorization response must carry: back to the
    registered redirect URI with a code, the same state (RFC 6749 4.1.2) and the
    issuer (RFC 9207).
    """
    oauth, verifier, state, done = authorize(ctx, scope)
    loc, q = redirect_params(done)
    if not ctx.check(
        q is not None and "code" in q, f"{label}: sign-in and consent redirect back with a code", answer(done)
    ):
        return None
    ctx.report.secret(q["code"])
    ctx.check(
        loc.split("?")[0] == ctx.args.redirect_uri,
        f"{label}: redirected to the registered redirect URI",
        loc.split("?")[0],
    )
    ctx.check(q.get("state") == state, f"{label}: state comes back unchanged", q.get("state"))
    ctx.check(q.get("iss") == ctx.md.get("issuer"), f"{label}: iss parameter equals the metadata issuer", q.get("iss"))
    return oauth, verifier, loc


def sign_in_and_redeem(ctx, label, scope=READ_SCOPES):
    """sign_in, then the code is exchanged at the token endpoint; returns (oauth, token, location, verifier)."""
    got = sign_in(ctx, label, scope)
    if not got:
        return None
    oauth, verifier, loc = got
    token, raw, err = token_call(
        ctx, oauth, oauth.fetch_token, ctx.md["token_endpoint"], authorization_response=loc, code_verifier=verifier
    )
    if not ctx.check(token is not None, f"{label}: the code and verifier buy tokens", refused(err, raw)):
        return None
    return oauth, token, loc, verifier


def bearer(ctx, path, token):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return requests.get(ctx.server + path, headers=headers, timeout=TIMEOUT)


def introspect(ctx, token, hint=None):
    """RFC 7662, authenticated as the confidential client with HTTP Basic."""
    svc = service_session(ctx)
    resp = svc.introspect_token(ctx.md["introspection_endpoint"], token=token, token_type_hint=hint)
    return resp.status_code, json_or_empty(resp)


def revoke(ctx, oauth, token, hint=None):
    """RFC 7009, as whatever client `oauth` is (the public one sends client_id only)."""
    return oauth.revoke_token(ctx.md["revocation_endpoint"], token=token, token_type_hint=hint)


def is_active(ctx, token):
    status, body = introspect(ctx, token)
    return status == 200 and body.get("active") is True


def expect_token_error(ctx, what, result, error, status=400):
    """A refused token request: the status and `error` of RFC 6749 section 5.2."""
    token, raw, err = result
    got_status = raw.status_code if raw is not None else None
    errors = (error,) if isinstance(error, str) else error
    ctx.check(
        token is None and err in errors and got_status == status,
        what,
        f"expected HTTP {status} {'/'.join(errors)}, got HTTP {got_status} {err}",
    )
    return raw


def verify_access_token(ctx, label, access_token, client_id, username=None):
    """RFC 9068: an at+jwt signed by a key of the JWKS, with the required claims."""
    jwt = JsonWebToken(["EdDSA"])  # any other alg (none, HS256, ...) is refused
    try:
        claims = jwt.decode(
            access_token,
            ctx.jwks,  # a KeySet: authlib picks the key by the header's kid
            claims_options={
                "iss": {"essential": True, "value": ctx.md["issuer"]},
                "aud": {"essential": True, "value": AUDIENCE},
                "exp": {"essential": True},
                "iat": {"essential": True},
                "sub": {"essential": True},
                "jti": {"essential": True},
                "client_id": {"essential": True, "value": client_id},
                "scope": {"essential": True},
            },
        )
        claims.validate(leeway=30)
    except Exception as e:  # noqa: BLE001 - any failure of the library is the finding
        ctx.check(False, f"{label}: access token verifies with authlib.jose and the JWKS", f"{type(e).__name__}: {e}")
        return None
    ctx.check(True, f"{label}: access token verifies with authlib.jose and the JWKS (iss, aud, exp, client_id)")
    h = claims.header
    ctx.check(
        h.get("alg") == "EdDSA" and h.get("typ") == "at+jwt" and h.get("kid"),
        f"{label}: JWT header is alg EdDSA, typ at+jwt, with a kid",
        {k: h.get(k) for k in ("alg", "typ")},
    )
    if username is not None:
        got = claims.get("username")
        ctx.check(got == username, f"{label}: token names the user {username}", got)
    return claims


# ---------------------------------------------------------------------------
# The flows, in the order they run


def flow_metadata(ctx):
    """RFC 8414: the metadata, and the JWKS it points to."""
    r = requests.get(ctx.server + "/.well-known/oauth-authorization-server", timeout=TIMEOUT)
    if not ctx.check(r.status_code == 200, "metadata: /.well-known/oauth-authorization-server answers 200", answer(r)):
        return
    md = json_or_empty(r)
    needed = [
        "issuer",
        "authorization_endpoint",
        "token_endpoint",
        "jwks_uri",
        "revocation_endpoint",
        "introspection_endpoint",
    ]
    missing = [k for k in needed if not md.get(k)]
    if not ctx.check(not missing, "metadata: lists issuer and every endpoint", f"missing {missing}"):
        return
    ctx.md = md
    # RFC 8414 section 3.3: the issuer must equal the URL the metadata was fetched for.
    ctx.check(md["issuer"] == ctx.server, "metadata: issuer equals the server URL", md["issuer"])
    ctx.check("S256" in md.get("code_challenge_methods_supported", []), "metadata: PKCE S256 supported")
    ctx.check(md.get("authorization_response_iss_parameter_supported") is True, "metadata: announces the iss parameter")

    r = requests.get(md["jwks_uri"], timeout=TIMEOUT)
    keys = json_or_empty(r).get("keys") or []
    ok = r.status_code == 200 and keys and all(k.get("kid") and "d" not in k for k in keys)
    if ctx.check(ok, "metadata: JWKS has keys with kid and no private parts", answer(r)):
        ctx.jwks = JsonWebKey.import_key_set({"keys": keys})


def flow_resource_without_token(ctx):
    """RFC 6750 section 3: the challenge without a token and with a forged one."""
    r = bearer(ctx, "/v1/runs", None)
    ctx.check(
        r.status_code == 401 and r.headers.get("WWW-Authenticate", "").startswith("Bearer"),
        "resource: no token gives 401 with WWW-Authenticate: Bearer",
        f"{answer(r)} WWW-Authenticate={r.headers.get('WWW-Authenticate')}",
    )
    r = bearer(ctx, "/v1/runs", "not.a.token")
    ctx.check(
        r.status_code == 401 and 'error="invalid_token"' in r.headers.get("WWW-Authenticate", ""),
        "resource: a malformed token gives 401 error=invalid_token",
        f"{answer(r)} WWW-Authenticate={r.headers.get('WWW-Authenticate')}",
    )


def flow_authorization_errors(ctx):
    """Authorization requests that must not yield a code (RFC 6749 4.1.2.1, RFC 7636 4.4.1)."""
    a = ctx.args
    endpoint = ctx.md["authorization_endpoint"]
    challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"  # RFC 7636 appendix B
    base = {
        "response_type": "code",
        "client_id": a.public_client,
        "redirect_uri": a.redirect_uri,
        "scope": "data:read",
        "state": "s-authz-errors",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }

    def get(**changes):
        params = {k: v for k, v in dict(base, **changes).items() if v is not None}
        return requests.get(endpoint, params=params, allow_redirects=False, timeout=TIMEOUT)

    # A redirect URI that is not registered must never be redirected to (4.1.2.1).
    r = get(redirect_uri=a.redirect_uri.rsplit("/", 1)[0] + "/not-registered")
    ctx.check(
        r.status_code == 400 and "Location" not in r.headers,
        "authorize: unregistered redirect_uri gives a 400 page and no redirect",
        f"{answer(r)} Location={r.headers.get('Location')}",
    )
    r = get(client_id="no-such-client")
    ctx.check(
        r.status_code == 400 and "Location" not in r.headers,
        "authorize: unknown client_id gives a 400 page and no redirect",
        f"{answer(r)} Location={r.headers.get('Location')}",
    )
    # With a valid client and redirect URI, errors go back to the client.
    for what, changes, error in [
        ("without code_challenge", {"code_challenge": None, "code_challenge_method": None}, "invalid_request"),
        ("with code_challenge_method=plain", {"code_challenge_method": "plain"}, "invalid_request"),
        ("with response_type=token", {"response_type": "token"}, "unsupported_response_type"),
    ]:
        r = get(**changes)
        _, q = redirect_params(r)
        ctx.check(
            q is not None and q.get("error") == error and q.get("state") == base["state"] and "code" not in q,
            f"authorize: a request {what} is sent back with error={error} and the state",
            f"{answer(r)} Location={r.headers.get('Location')}",
        )

    # A wrong password: the sign-in page again, no session cookie, no redirect.
    ctx.report.secret(WRONG_PASSWORD)
    _, _, _, r = authorize(ctx, password=WRONG_PASSWORD)
    ctx.check(
        r.status_code in (200, 400, 401, 403) and "Location" not in r.headers and "tradelab_session" not in r.cookies,
        "authorize: a wrong password gets no session and no redirect",
        answer(r),
    )

    # The user says no: access_denied goes back with the state (4.1.2.1).
    _, _, state, r = authorize(ctx, decision="deny")
    _, q = redirect_params(r)
    ctx.check(
        q is not None and q.get("error") == "access_denied" and q.get("state") == state and "code" not in q,
        "authorize: denying consent redirects back with error=access_denied and the state",
        f"{answer(r)} Location={r.headers.get('Location')}",
    )


def flow_code_grant(ctx):
    """Sign-in A: the code grant, the token answer, the JWT, and the scopes at the API."""
    got = sign_in_and_redeem(ctx, "code grant")
    if not got:
        return None
    oauth, token, _, _ = got
    raw = oauth.last_answer
    ctx.check(
        "no-store" in raw.headers.get("Cache-Control", ""),
        "code grant: token answer has Cache-Control: no-store",
        raw.headers.get("Cache-Control"),
    )
    body = raw.json()
    kind = body.get("token_type")
    ctx.check(str(kind).lower() == "bearer", "code grant: token_type is Bearer", kind)
    ctx.check(
        isinstance(body.get("expires_in"), int) and body["expires_in"] > 0,
        "code grant: expires_in is a positive integer",
        body.get("expires_in"),
    )
    ctx.check(bool(body.get("refresh_token")), "code grant: a refresh token comes with it")
    ctx.check(
        set(str(body.get("scope", "")).split()) == set(READ_SCOPES.split()),
        f"code grant: scope is the requested `{READ_SCOPES}`",
        body.get("scope"),
    )
    claims = verify_access_token(ctx, "code grant", token["access_token"], ctx.args.public_client, ctx.args.user)
    if claims is not None:
        ctx.check("data:read" in str(claims.get("scope", "")).split(), "code grant: token scope contains data:read")

    r = bearer(ctx, "/v1/runs", token["access_token"])
    ctx.check(
        r.status_code == 200 and isinstance(r.json(), list),
        "code grant: GET /v1/runs (data:read) answers 200 with a list",
        answer(r),
    )
    r = bearer(ctx, "/metrics", token["access_token"])
    challenge = r.headers.get("WWW-Authenticate", "")
    ctx.check(
        r.status_code == 403 and challenge.startswith("Bearer") and "insufficient_scope" in challenge,
        "code grant: GET /metrics (admin) answers 403 with error=insufficient_scope",
        f"{answer(r)} WWW-Authenticate={challenge}",
    )
    return token


def flow_introspection(ctx, token):
    """RFC 7662 on sign-in A's live tokens, and who may ask."""
    a = ctx.args
    status, body = introspect(ctx, token["access_token"])
    ctx.check(
        status == 200
        and body.get("active") is True
        and body.get("client_id") == a.public_client
        and body.get("username") == a.user
        and "data:read" in str(body.get("scope", "")).split(),
        "introspection: live access token is active with client_id, scope and username",
        f"HTTP {status} {body}",
    )
    status, body = introspect(ctx, token["refresh_token"], hint="refresh_token")
    ctx.check(
        status == 200 and body.get("active") is True and body.get("token_type") == "refresh_token",
        "introspection: live refresh token is active with token_type refresh_token",
        f"HTTP {status} {body}",
    )
    status, body = introspect(ctx, "tlr_no-such-token")
    ctx.check(
        status == 200 and body == {"active": False}, "introspection: an unknown token is just {active: false}", body
    )

    # Section 2.1: the endpoint needs client authentication.
    url = ctx.md["introspection_endpoint"]
    r = requests.post(url, data={"token": token["access_token"]}, timeout=TIMEOUT)
    ctx.check(r.status_code == 401, "introspection: without client authentication it answers 401", answer(r))
    ctx.report.secret(WRONG_SECRET)
    r = service_session(ctx, secret=WRONG_SECRET).introspect_token(url, token=token["access_token"])
    ctx.check(r.status_code == 401, "introspection: a wrong client secret answers 401", answer(r))
    r = public_session(ctx).introspect_token(url, token=token["access_token"])
    ctx.check(r.status_code == 401, "introspection: a public client (no secret) may not introspect", answer(r))


def flow_refresh_and_revocation(ctx, token):
    """Sign-in A goes on: rotation, revoking one access token, then the whole sign-in."""
    a = ctx.args
    t_url = ctx.md["token_endpoint"]
    oauth = public_session(ctx)
    a1, r1 = token["access_token"], token["refresh_token"]

    t2, raw, err = token_call(ctx, oauth, oauth.refresh_token, t_url, refresh_token=r1)
    if not ctx.check(t2 is not None, "refresh: the refresh token buys new tokens", refused(err, raw)):
        return
    # Read the raw answer: authlib would copy the old refresh token in if none came.
    body = raw.json()
    a2, r2 = body.get("access_token"), body.get("refresh_token")
    ctx.check(r2 and r2 != r1, "refresh: a new refresh token comes back (rotation)")
    ctx.check(a2 and a2 != a1, "refresh: a new access token comes back")
    ctx.check(
        set(str(body.get("scope", "")).split()) == set(READ_SCOPES.split()),
        "refresh: the scope stays the same",
        body.get("scope"),
    )
    verify_access_token(ctx, "refresh", a2, a.public_client, a.user)
    r = bearer(ctx, "/v1/runs", a2)
    ctx.check(r.status_code == 200, "refresh: the new access token reads /v1/runs", answer(r))

    # Revoking one access token (RFC 7009) kills that token only.
    r = revoke(ctx, oauth, a2, "access_token")
    ctx.check(r.status_code == 200, "revocation: revoking an access token answers 200", answer(r))
    ctx.check(not is_active(ctx, a2), "revocation: the revoked access token introspects inactive")
    r = bearer(ctx, "/v1/runs", a2)
    ctx.check(r.status_code == 401, "revocation: the revoked access token gets 401 at /v1/runs", answer(r))
    ctx.check(is_active(ctx, r2), "revocation: the refresh token of that sign-in stays active")

    t3, raw, err = token_call(ctx, oauth, oauth.refresh_token, t_url, refresh_token=r2)
    what = "refresh: the sign-in still refreshes after one access token is revoked"
    if not ctx.check(t3 is not None, what, refused(err, raw)):
        return
    a3, r3 = t3["access_token"], raw.json().get("refresh_token")

    # Revoking the refresh token revokes the whole sign-in.
    r = revoke(ctx, oauth, r3, "refresh_token")
    ctx.check(r.status_code == 200, "revocation: revoking the refresh token answers 200", answer(r))
    ctx.check(not is_active(ctx, r3), "revocation: the revoked refresh token introspects inactive")
    ctx.check(not is_active(ctx, a3), "revocation: the access token of that sign-in introspects inactive")
    for name, tok in (("latest", a3), ("first", a1)):
        r = bearer(ctx, "/v1/runs", tok)
        ctx.check(r.status_code == 401, f"revocation: the {name} access token of that sign-in gets 401", answer(r))
    expect_token_error(
        ctx,
        "revocation: the revoked refresh token is refused (400 invalid_grant)",
        token_call(ctx, oauth, oauth.refresh_token, t_url, refresh_token=r3),
        "invalid_grant",
    )
    # Section 2.2: an invalid token is no error; the client cannot do anything about it.
    r = revoke(ctx, oauth, "tlr_no-such-token", "refresh_token")
    ctx.check(r.status_code == 200, "revocation: revoking an unknown token answers 200", answer(r))


def flow_revocation_edges(ctx):
    """Sign-in B: a token of another client is not revoked; a wrong hint still revokes."""
    got = sign_in_and_redeem(ctx, "revocation edges")
    if not got:
        return
    oauth, token, _, _ = got
    access, refresh = token["access_token"], token["refresh_token"]
    # RFC 7009 2.1: the server checks that the token was issued to the caller
    # and refuses the request otherwise. Only the effect is checked here (the
    # tokens stay active): tradelab answers 200 and ignores the request, as it
    # does for unknown tokens (2.2), so the answer does not tell another client
    # whether the token exists.
    revoke(ctx, service_session(ctx), refresh, "refresh_token")
    revoke(ctx, service_session(ctx), access, "access_token")
    ctx.check(
        is_active(ctx, refresh) and is_active(ctx, access),
        "revocation: another client cannot revoke this client's tokens",
    )
    # RFC 7009 2.1: a wrong token_type_hint must not stop the search.
    r = revoke(ctx, oauth, refresh, "access_token")
    ctx.check(r.status_code == 200, "revocation: a refresh token sent with hint access_token answers 200", answer(r))
    ctx.check(
        not is_active(ctx, refresh) and not is_active(ctx, access),
        "revocation: ... and is revoked all the same, with its sign-in",
    )


def flow_refresh_reuse(ctx):
    """Sign-in C: replaying a rotated refresh token revokes the family (RFC 9700 4.14.2)."""
    got = sign_in_and_redeem(ctx, "refresh reuse")
    if not got:
        return
    oauth, token, _, _ = got
    t_url = ctx.md["token_endpoint"]
    r1 = token["refresh_token"]
    t2, raw, err = token_call(ctx, oauth, oauth.refresh_token, t_url, refresh_token=r1)
    if not ctx.check(t2 is not None, "refresh reuse: first use of the refresh token works", refused(err, raw)):
        return
    a2, r2 = t2["access_token"], raw.json().get("refresh_token")
    expect_token_error(
        ctx,
        "refresh reuse: the rotated-out refresh token is refused (400 invalid_grant)",
        token_call(ctx, oauth, oauth.refresh_token, t_url, refresh_token=r1),
        "invalid_grant",
    )
    expect_token_error(
        ctx,
        "refresh reuse: after the replay the newest refresh token is refused too",
        token_call(ctx, oauth, oauth.refresh_token, t_url, refresh_token=r2),
        "invalid_grant",
    )
    r = bearer(ctx, "/v1/runs", a2)
    ctx.check(r.status_code == 401, "refresh reuse: the newest access token gets 401 at /v1/runs", answer(r))
    ctx.check(not is_active(ctx, a2), "refresh reuse: the newest access token introspects inactive")


def flow_refresh_scope(ctx):
    """Sign-in D: a refresh may narrow the scope but not widen it (RFC 6749 section 6)."""
    got = sign_in_and_redeem(ctx, "refresh scope")
    if not got:
        return
    oauth, token, _, _ = got
    t_url = ctx.md["token_endpoint"]
    t2, raw, err = token_call(
        ctx, oauth, oauth.refresh_token, t_url, refresh_token=token["refresh_token"], scope="data:read"
    )
    if not ctx.check(
        t2 is not None and raw.json().get("scope") == "data:read",
        "refresh scope: a refresh asking for data:read only gets exactly data:read",
        refused(err, raw),
    ):
        return
    r2 = raw.json().get("refresh_token")
    expect_token_error(
        ctx,
        "refresh scope: asking for a scope never granted (train) is refused with invalid_scope",
        token_call(ctx, oauth, oauth.refresh_token, t_url, refresh_token=r2, scope="data:read train"),
        "invalid_scope",
    )
    # A refused request issues nothing, so it must not use the refresh token up:
    # RFC 6749 section 6 lets the server drop the old refresh token only "after
    # issuing a new refresh token". Otherwise a client's mistake looks like theft.
    t3, raw, err = token_call(ctx, oauth, oauth.refresh_token, t_url, refresh_token=r2, scope="data:read")
    ctx.check(
        t3 is not None,
        "refresh scope: the refresh token still works after that refused request",
        refused(err, raw),
    )


def flow_code_misuse(ctx):
    """Sign-ins E-H: a code needs the right redirect_uri and verifier, and works once."""
    t_url = ctx.md["token_endpoint"]
    other_uri = ctx.args.redirect_uri + "-other"

    got = sign_in(ctx, "wrong redirect_uri")
    if got:
        oauth, verifier, loc = got
        expect_token_error(
            ctx,
            "code: a redirect_uri other than the authorization request's is refused (invalid_grant)",
            token_call(
                ctx,
                oauth,
                oauth.fetch_token,
                t_url,
                authorization_response=loc,
                code_verifier=verifier,
                redirect_uri=other_uri,
            ),
            "invalid_grant",
        )

    got = sign_in(ctx, "wrong verifier")
    if got:
        oauth, verifier, loc = got
        wrong = generate_token(48)
        ctx.report.secret(wrong)
        expect_token_error(
            ctx,
            "code: a wrong PKCE code_verifier is refused (invalid_grant)",
            token_call(ctx, oauth, oauth.fetch_token, t_url, authorization_response=loc, code_verifier=wrong),
            "invalid_grant",
        )

    got = sign_in(ctx, "missing verifier")
    if got:
        oauth, _, loc = got
        expect_token_error(
            ctx,
            "code: a redemption without code_verifier is refused",
            token_call(ctx, oauth, oauth.fetch_token, t_url, authorization_response=loc),
            ("invalid_grant", "invalid_request"),
        )

    got = sign_in_and_redeem(ctx, "code replay")
    if got:
        oauth, token, loc, verifier = got
        expect_token_error(
            ctx,
            "code replay: a second redemption of the code is refused (invalid_grant)",
            token_call(ctx, oauth, oauth.fetch_token, t_url, authorization_response=loc, code_verifier=verifier),
            "invalid_grant",
        )
        # RFC 6749 4.1.2 (SHOULD) / RFC 9700: what the code bought is revoked.
        r = bearer(ctx, "/v1/runs", token["access_token"])
        ctx.check(r.status_code == 401, "code replay: the tokens of the first redemption then get 401", answer(r))
        ctx.check(not is_active(ctx, token["refresh_token"]), "code replay: ... and its refresh token is inactive")


def flow_client_credentials(ctx):
    """RFC 6749 4.4: the service client's own token, and what it may not get."""
    a = ctx.args
    t_url = ctx.md["token_endpoint"]
    ctx.report.secret(a.service_secret)

    svc = service_session(ctx, scope="data:read")
    token, raw, err = token_call(ctx, svc, svc.fetch_token, t_url, grant_type="client_credentials")
    what = "client credentials: the service client gets a token (HTTP Basic)"
    if ctx.check(token is not None, what, refused(err, raw)):
        body = raw.json()
        ctx.check("refresh_token" not in body, "client credentials: no refresh token comes with it (4.4.3)")
        ctx.check(body.get("scope") == "data:read", "client credentials: scope is data:read", body.get("scope"))
        verify_access_token(ctx, "client credentials", token["access_token"], a.service_client)
        r = bearer(ctx, "/v1/runs", token["access_token"])
        ctx.check(r.status_code == 200, "client credentials: GET /v1/runs answers 200", answer(r))
        r = bearer(ctx, "/metrics", token["access_token"])
        ctx.check(r.status_code == 403, "client credentials: GET /metrics (admin) answers 403", answer(r))
        status, body = introspect(ctx, token["access_token"])
        ctx.check(
            body.get("active") is True and body.get("client_id") == a.service_client and "username" not in body,
            "client credentials: introspects active, for the client, with no user",
            body,
        )

    svc = service_session(ctx, scope="train")
    expect_token_error(
        ctx,
        "client credentials: a scope the client may not have (train) gives invalid_scope",
        token_call(ctx, svc, svc.fetch_token, t_url, grant_type="client_credentials"),
        "invalid_scope",
    )
    ctx.report.secret(WRONG_SECRET)
    svc = service_session(ctx, secret=WRONG_SECRET, scope="data:read")
    raw = expect_token_error(
        ctx,
        "client credentials: a wrong secret gives 401 invalid_client",
        token_call(ctx, svc, svc.fetch_token, t_url, grant_type="client_credentials"),
        "invalid_client",
        status=401,
    )
    # RFC 6749 5.2: after a failed HTTP Basic attempt the 401 MUST carry WWW-Authenticate.
    ctx.check(
        raw is not None and raw.headers.get("WWW-Authenticate", "").startswith("Basic"),
        "client credentials: that 401 carries WWW-Authenticate: Basic",
        raw is not None and raw.headers.get("WWW-Authenticate"),
    )
    pub = public_session(ctx, scope="data:read")
    expect_token_error(
        ctx,
        "client credentials: the public client may not use this grant",
        token_call(ctx, pub, pub.fetch_token, t_url, grant_type="client_credentials"),
        ("unauthorized_client", "invalid_client"),
        status=400,
    )


# ---------------------------------------------------------------------------


def finish(ctx):
    print(ctx.report.summary(), flush=True)
    return 0 if ctx.report.failed == 0 else 1


def run_flow(ctx, flow, *args):
    """One flow; an exception is a failed check, and the next flow still runs."""
    try:
        return flow(ctx, *args)
    except Exception as e:  # noqa: BLE001
        ctx.check(False, f"{flow.__name__} ran to the end", f"{type(e).__name__}: {e}")
        return None


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--server", required=True)
    p.add_argument("--user", required=True)
    p.add_argument("--password", required=True)
    p.add_argument("--public-client", required=True)
    p.add_argument("--redirect-uri", required=True)
    p.add_argument("--service-client", required=True)
    p.add_argument("--service-secret", required=True)
    args = p.parse_args()

    report = Report()
    report.secret(args.password, args.service_secret)
    ctx = Ctx(args, report)
    started = time.monotonic()

    run_flow(ctx, flow_metadata)
    if not ctx.md.get("token_endpoint"):
        return finish(ctx)  # nothing else can run without the endpoints
    run_flow(ctx, flow_resource_without_token)
    run_flow(ctx, flow_authorization_errors)
    token = run_flow(ctx, flow_code_grant)
    if token:
        run_flow(ctx, flow_introspection, token)
        run_flow(ctx, flow_refresh_and_revocation, token)
    run_flow(ctx, flow_revocation_edges)
    run_flow(ctx, flow_refresh_reuse)
    run_flow(ctx, flow_refresh_scope)
    run_flow(ctx, flow_code_misuse)
    run_flow(ctx, flow_client_credentials)

    print(f"# {report.passed + report.failed} checks in {time.monotonic() - started:.1f} s", file=sys.stderr)
    return finish(ctx)


if __name__ == "__main__":
    sys.exit(main())
