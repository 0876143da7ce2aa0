//! The server-rendered pages: login, password change, consent, device
//! code entry and plain messages. Every page is uncacheable, cannot be
//! framed (clickjacking), and carries its form's CSRF token.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use tradelab_auth::scope::ScopeSet;

/// The cookie holding the CSRF nonce each form's token is bound to
/// (`__Host-` prefixed over https: see [`crate::oauth::AuthServer::cookie_name`]).
pub const CSRF_COOKIE: &str = "tradelab_csrf";
/// The cookie naming the browser's login session (prefixed likewise).
pub const SESSION_COOKIE: &str = "tradelab_session";

/// Escapes text for HTML content and attribute values (`&`, `<`, `>`, `"`
/// and `'`).
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn hidden(carried: &[(String, String)], csrf: &str) -> String {
    let mut out = format!(r#"<input type="hidden" name="csrf" value="{}">"#, escape(csrf));
    for (k, v) in carried {
        out.push_str(&format!(
            r#"<input type="hidden" name="{}" value="{}">"#,
            escape(k),
            escape(v)
        ));
    }
    out
}

fn shell(title: &str, body: &str) -> String {
    format!(
        r#"<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>{t} · tradelab</title><style>
body{{font-family:system-ui,sans-serif;background:#f4f5f7;margin:0}}main{{max-width:26rem;margin:4rem auto;background:#fff;padding:2rem;border-radius:8px;box-shadow:0 1px 4px #0002}}
h1{{font-size:1.3rem;margin-top:0}}label{{display:block;margin:.8rem 0 .2rem}}input[type=text],input[type=password]{{width:100%;padding:.5rem;box-sizing:border-box}}
button{{margin-top:1rem;padding:.5rem 1.2rem;margin-right:.5rem}}.error{{color:#b00020}}li{{margin:.3rem 0}}code{{background:#eee;padding:0 .2rem}}
</style></head><body><main><h1>{t}</h1>{body}</main></body></html>"#,
        t = escape(title)
    )
}

/// A page response: never cached, never framed; sets `cookies`.
pub fn respond(status: StatusCode, title: &str, body: &str, cookies: &[String]) -> Response {
    let mut r = (status, axum::response::Html(shell(title, body))).into_response();
    let h = r.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'"),
    );
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    for c in cookies {
        if let Ok(v) = HeaderValue::from_str(c) {
            h.append(header::SET_COOKIE, v);
        }
    }
    r
}

/// A `Set-Cookie` value scoped to the OAuth pages.
pub fn set_cookie(name: &str, value: &str, max_age_secs: u64, secure: bool) -> String {
    format!(
        // Path=/ and no Domain, as a `__Host-` cookie must have.
        "{name}={value}; Path=/; Max-Age={max_age_secs}; HttpOnly; SameSite=Lax{}",
        if secure { "; Secure" } else { "" }
    )
}

/// A page with a title and one paragraph of text.
pub fn message(status: StatusCode, title: &str, text: &str) -> Response {
    respond(status, title, &format!("<p>{}</p>", escape(text)), &[])
}

/// The sign-in form, posting back to `/oauth/authorize` with the carried
/// request; `error`, if any, is shown above it.
pub fn login(
    carried: &[(String, String)],
    csrf: &str,
    client_name: &str,
    error: Option<&str>,
    cookies: &[String],
    status: StatusCode,
) -> Response {
    let error = error
        .map(|e| format!(r#"<p class="error">{}</p>"#, escape(e)))
        .unwrap_or_default();
    let body = format!(
        r#"<p>Sign in to continue to <strong>{client}</strong>.</p>{error}
<form method="post" action="/oauth/authorize">{hidden}
<label for="username">User name</label><input type="text" id="username" name="username" autocomplete="username" required autofocus>
<label for="password">Password</label><input type="password" id="password" name="password" autocomplete="current-password" required>
<button type="submit" name="action" value="login">Sign in</button></form>"#,
        client = escape(client_name),
        hidden = hidden(carried, csrf),
    );
    respond(status, "Sign in to tradelab", &body, cookies)
}

/// The form that replaces a one-time password, posting to
/// `/oauth/password`; 400 when it shows an `error`.
pub fn change_password(
    carried: &[(String, String)],
    csrf: &str,
    ask_current: bool,
    error: Option<&str>,
    cookies: &[String],
) -> Response {
    let error = error
        .map(|e| format!(r#"<p class="error">{}</p>"#, escape(e)))
        .unwrap_or_default();
    let (intro, current) = if ask_current {
        (
            "Choose a new password",
            r#"<label for="current_password">Current password</label><input type="password" id="current_password" name="current_password" autocomplete="current-password" required>"#,
        )
    } else {
        ("This password was for one use. Choose a new one", "")
    };
    let body = format!(
        r#"<p>{intro} (at least {min} characters). Every application signed in as you will have to sign in again.</p>{error}
<form method="post" action="/oauth/password">{hidden}{current}
<label for="new_password">New password</label><input type="password" id="new_password" name="new_password" autocomplete="new-password" required>
<label for="confirm">Repeat it</label><input type="password" id="confirm" name="confirm" autocomplete="new-password" required>
<button type="submit">Change password</button></form>"#,
        min = tradelab_auth::password::MIN_LENGTH,
        hidden = hidden(carried, csrf),
    );
    let status = if error.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::BAD_REQUEST
    };
    respond(status, "Change your password", &body, cookies)
}

fn scope_list(scopes: &ScopeSet) -> String {
    let items: String = scopes
        .iter()
        .map(|s| {
            format!(
                "<li><code>{}</code>: {}</li>",
                escape(s),
                tradelab_auth::scope::describe(s)
            )
        })
        .collect();
    format!("<ul>{items}</ul>")
}

/// The consent page: who is signed in, which client asks for which
/// scopes, and Allow or Deny posting to `/oauth/consent`.
pub fn consent(
    carried: &[(String, String)],
    csrf: &str,
    client_name: &str,
    username: &str,
    scopes: &ScopeSet,
    cookies: &[String],
) -> Response {
    let body = format!(
        r#"<p>Signed in as <strong>{user}</strong>.</p><p><strong>{client}</strong> asks to:</p>{list}
<form method="post" action="/oauth/consent">{hidden}
<button type="submit" name="decision" value="allow">Allow</button><button type="submit" name="decision" value="deny">Deny</button></form>"#,
        user = escape(username),
        client = escape(client_name),
        list = scope_list(scopes),
        hidden = hidden(carried, csrf),
    );
    respond(StatusCode::OK, "Allow access?", &body, cookies)
}

/// The form where a user types the code a device shows, posting to
/// `/oauth/device`; 400 when it shows an `error`.
pub fn device_entry(csrf: &str, user_code: &str, error: Option<&str>, cookies: &[String]) -> Response {
    let error = error
        .map(|e| format!(r#"<p class="error">{}</p>"#, escape(e)))
        .unwrap_or_default();
    let body = format!(
        r#"<p>Enter the code your device shows.</p>{error}
<form method="post" action="/oauth/device"><input type="hidden" name="csrf" value="{csrf}">
<label for="user_code">Code</label><input type="text" id="user_code" name="user_code" value="{code}" autocomplete="off" required autofocus>
<button type="submit" name="decision" value="review">Continue</button></form>"#,
        csrf = escape(csrf),
        code = escape(user_code),
    );
    let status = if error.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::BAD_REQUEST
    };
    respond(status, "Connect a device", &body, cookies)
}

/// The page asking whether the device showing `user_code` (and its client)
/// may have `scopes`, with Allow or Deny posting to `/oauth/device`.
pub fn device_confirm(
    csrf: &str,
    user_code: &str,
    client_name: &str,
    username: &str,
    scopes: &ScopeSet,
    cookies: &[String],
) -> Response {
    let body = format!(
        r#"<p>Signed in as <strong>{user}</strong>.</p><p>The device showing <code>{code}</code> (<strong>{client}</strong>) asks to:</p>{list}
<form method="post" action="/oauth/device"><input type="hidden" name="csrf" value="{csrf}"><input type="hidden" name="user_code" value="{code}">
<button type="submit" name="decision" value="allow">Allow</button><button type="submit" name="decision" value="deny">Deny</button></form>"#,
        user = escape(username),
        code = escape(user_code),
        client = escape(client_name),
        list = scope_list(scopes),
        csrf = escape(csrf),
    );
    respond(StatusCode::OK, "Allow this device?", &body, cookies)
}

#[cfg(test)]
mod tests {
    #[test]
    fn escapes_markup() {
        assert_eq!(
            super::escape(r#"<a href="x">'&'</a>"#),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
    }
}
