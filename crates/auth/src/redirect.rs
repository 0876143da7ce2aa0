//! Redirect URIs: registered exactly, matched exactly (RFC 9700 §4.1.1).
//!
//! The one exception is RFC 8252 §7.3: a native app (the tradelab CLI)
//! listens on a loopback IP address at a port the OS picks, so for a
//! registered `http://127.0.0.1/...` or `http://[::1]/...` URI any port
//! matches; scheme, host, path and query must still be identical.

/// Why a URI cannot be registered.
pub fn check_registrable(uri: &str) -> Result<(), String> {
    let (scheme, rest) = uri
        .split_once("://")
        .ok_or_else(|| format!("`{uri}` is not an absolute URI (it needs a scheme such as https://)"))?;
    if uri.contains('#') {
        return Err(format!(
            "`{uri}` has a fragment; redirect URIs may not (RFC 6749 §3.1.2)"
        ));
    }
    // Userinfo (`user@host`) hides the real host from naive parsing:
    // `http://127.0.0.1:1@evil.example/cb` goes to evil.example.
    let authority = rest.split(['/', '?']).next().unwrap_or("");
    if authority.contains('@') {
        return Err(format!(
            "`{uri}` has userinfo (`...@`) before its host; redirect URIs may not"
        ));
    }
    let host = authority_host(rest);
    match scheme {
        "https" => Ok(()),
        "http" if is_loopback(host) || host == "localhost" => Ok(()),
        "http" => Err(format!(
            "`{uri}` uses http:// for a remote host; only loopback redirects may (use https://)"
        )),
        _ if scheme.contains('.') => Ok(()), // a private-use scheme, e.g. com.example.app
        _ => Err(format!(
            "`{uri}` has scheme `{scheme}`; use https://, http://127.0.0.1 or a reverse-domain scheme"
        )),
    }
}

fn authority_host(after_scheme: &str) -> &str {
    let authority = after_scheme.split(['/', '?']).next().unwrap_or("");
    if let Some(v6) = authority.strip_prefix('[') {
        return v6.split(']').next().unwrap_or("");
    }
    authority.split(':').next().unwrap_or("")
}

fn is_loopback(host: &str) -> bool {
    host == "127.0.0.1" || host == "::1"
}

/// Splits `http://HOST:PORT/rest` into (`http://HOST`, `/rest`), dropping the port.
fn without_port(uri: &str) -> Option<(String, &str)> {
    let rest = uri.strip_prefix("http://")?;
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let host = if authority.starts_with('[') {
        let close = authority.find(']')?;
        let port = &authority[close + 1..];
        if !(port.is_empty()
            || port
                .strip_prefix(':')
                .is_some_and(|p| p.bytes().all(|b| b.is_ascii_digit())))
        {
            return None;
        }
        &authority[..=close]
    } else {
        let (h, port) = authority.split_once(':').unwrap_or((authority, ""));
        if !port.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        h
    };
    Some((format!("http://{host}"), tail))
}

/// Whether the `presented` redirect URI is one of `registered`.
pub fn matches(registered: &[String], presented: &str) -> bool {
    registered.iter().any(|r| {
        if r == presented {
            return true;
        }
        let loopback = r.strip_prefix("http://").map(authority_host).is_some_and(is_loopback);
        if !loopback {
            return false;
        }
        match (without_port(r), without_port(presented)) {
            (Some((rh, rt)), Some((ph, pt))) => rh == ph && rt == pt,
            _ => false,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reg(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn exact_match_only_for_web_clients() {
        let r = reg(&["https://app.example.com/callback"]);
        assert!(matches(&r, "https://app.example.com/callback"));
        assert!(!matches(&r, "https://app.example.com/callback/"));
        assert!(!matches(&r, "https://app.example.com/callback?x=1"));
        assert!(!matches(&r, "https://app.example.com:8443/callback"));
        assert!(!matches(&r, "https://evil.example.com/callback"));
        assert!(!matches(&r, "https://app.example.com.evil.com/callback"));
    }

    #[test]
    fn loopback_ignores_only_the_port() {
        let r = reg(&["http://127.0.0.1/callback", "http://[::1]/callback"]);
        assert!(matches(&r, "http://127.0.0.1:53122/callback"));
        assert!(matches(&r, "http://127.0.0.1/callback"));
        assert!(matches(&r, "http://[::1]:4000/callback"));
        assert!(!matches(&r, "http://127.0.0.1:53122/other"));
        assert!(!matches(&r, "http://127.0.0.1:53122/callback?x"));
        assert!(!matches(&r, "http://localhost:53122/callback"));
        assert!(!matches(&r, "http://127.0.0.1:80@evil.com/callback"));
        assert!(!matches(&r, "https://127.0.0.1:53122/callback"));
        // A `localhost` registration is matched exactly (it may resolve elsewhere).
        assert!(!matches(
            &reg(&["http://localhost:3000/cb"]),
            "http://localhost:3001/cb"
        ));
    }

    #[test]
    fn registration_rules() {
        assert!(check_registrable("https://app.example.com/cb").is_ok());
        assert!(check_registrable("http://127.0.0.1/callback").is_ok());
        assert!(check_registrable("http://localhost:5173/callback").is_ok());
        assert!(check_registrable("com.example.app:/cb").is_err()); // no "://"
        assert!(check_registrable("com.example.app://cb").is_ok());
        assert!(check_registrable("http://example.com/cb").is_err());
        assert!(check_registrable("https://app.example.com/cb#x").is_err());
        assert!(check_registrable("javascript://alert").is_err());
        assert!(check_registrable("/relative").is_err());
        // Userinfo would make a remote host pass as loopback.
        let e = check_registrable("http://127.0.0.1:1@evil.example/cb").unwrap_err();
        assert!(e.contains("userinfo"), "{e}");
        assert!(check_registrable("https://user@app.example.com/cb").is_err());
        assert!(
            check_registrable("https://app.example.com/cb?next=a@b").is_ok(),
            "an @ in the query is not userinfo"
        );
    }
}
