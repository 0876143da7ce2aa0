//! The `auth:` section: the authorization server's issuer, token lifetimes,
//! key rotation, login and token-endpoint rate limits, and browser origins.

use serde::{Deserialize, Serialize};
use tradelab_core::settings::Validator;

/// `tradelab serve`'s authorization server and the API's token checks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthSettings {
    /// The issuer URL tokens carry and clients are told (RFC 8414); empty:
    /// `http://` and the address the server listens on.
    pub issuer: String,
    /// The `aud` every access token carries and the API requires.
    pub audience: String,
    /// Access-token lifetime, seconds.
    pub access_token_secs: u64,
    /// Refresh-token lifetime, days (each use replaces the token).
    pub refresh_token_days: u64,
    /// Clock skew tolerated when checking `exp` and `iat`, seconds.
    pub clock_skew_secs: u64,
    /// A new signing key is made at start when the current one is older.
    pub key_rotation_days: u64,
    /// The file holding the key-encryption key that seals signing keys in
    /// the database (64 hex digits, mode 0600, made when missing); empty:
    /// beside an SQLite database (`tradelab.db.key`). The environment
    /// variable `TRADELAB_KEY_ENCRYPTION_KEY` overrides it; PostgreSQL
    /// needs one of the two, the same on every server.
    pub key_file: String,
    /// Failed sign-ins per user name and address in `login_window_secs`
    /// before that pair is locked out (for doubling periods); an address
    /// gets ten times this many attempts in all.
    pub login_attempts: usize,
    /// The window those attempts are counted in, seconds.
    pub login_window_secs: u64,
    /// Token-endpoint requests a minute per authenticated client (per
    /// client and address for a public one; twice this per address), and
    /// device authorization requests per address.
    pub token_requests_per_minute: usize,
    /// Browser origins (e.g. the dashboard's `https://app.example.com`)
    /// allowed to call the API and the token endpoint; exact matches.
    pub cors_origins: Vec<String>,
}

impl Default for AuthSettings {
    /// The same values as `config/settings.yaml` (a test checks they agree).
    fn default() -> Self {
        AuthSettings {
            issuer: String::new(),
            audience: "tradelab-api".into(),
            access_token_secs: 300,
            refresh_token_days: 30,
            clock_skew_secs: 30,
            key_rotation_days: 30,
            key_file: String::new(),
            login_attempts: 5,
            login_window_secs: 300,
            token_requests_per_minute: 60,
            cors_origins: Vec::new(),
        }
    }
}

impl AuthSettings {
    /// Range checks that types alone cannot express.
    pub fn validate(&self, v: &mut Validator) {
        let au = self;
        v.check(
            au.issuer.is_empty() || au.issuer.starts_with("https://") || au.issuer.starts_with("http://"),
            "auth.issuer",
            &au.issuer,
            "is not an http(s) URL",
            "empty (the listen address) or a URL like https://tradelab.example.com",
        );
        v.check(
            !au.issuer.ends_with('/') && !au.issuer.contains(['?', '#']),
            "auth.issuer",
            &au.issuer,
            "ends with / or has a query or fragment",
            "a URL without a trailing slash, query or fragment (RFC 8414)",
        );
        v.check(
            !au.audience.trim().is_empty(),
            "auth.audience",
            &au.audience,
            "is empty",
            "a name, like tradelab-api",
        );
        v.int_range("auth.access_token_secs", au.access_token_secs as usize, 10, 86_400);
        v.int_range("auth.refresh_token_days", au.refresh_token_days as usize, 1, 365);
        v.int_range("auth.clock_skew_secs", au.clock_skew_secs as usize, 0, 300);
        v.int_range("auth.key_rotation_days", au.key_rotation_days as usize, 1, 3650);
        v.int_range("auth.login_attempts", au.login_attempts, 1, 1000);
        v.int_range("auth.login_window_secs", au.login_window_secs as usize, 1, 86_400);
        v.int_range(
            "auth.token_requests_per_minute",
            au.token_requests_per_minute,
            1,
            1_000_000,
        );
        for (i, o) in au.cors_origins.iter().enumerate() {
            let ok = (o.starts_with("https://") || o.starts_with("http://"))
                && o.matches('/').count() == 2
                && !o.ends_with('/')
                && o != "*";
            v.check(
                ok,
                &format!("auth.cors_origins[{i}]"),
                o,
                "is not an origin",
                "scheme://host[:port] with no path, like https://app.example.com (no wildcards)",
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tradelab_core::settings::refused_key;

    #[test]
    fn the_default_is_the_files_section_and_passes_its_checks() {
        let from_file: AuthSettings = tradelab_core::settings::default_section("auth");
        assert_eq!(from_file, AuthSettings::default());
        assert_eq!(refused_key(|_| {}, AuthSettings::validate), None);
        assert_eq!(
            refused_key(
                |a| {
                    a.issuer = "https://tradelab.example.com".into();
                    a.cors_origins = vec!["http://127.0.0.1:5173".into()];
                },
                AuthSettings::validate
            ),
            None
        );
    }

    #[test]
    fn every_bound_is_refused_with_its_key() {
        type Edit = fn(&mut AuthSettings);
        let cases: [(Edit, &str); 10] = [
            (|a| a.issuer = "ftp://x".into(), "auth.issuer"),
            (|a| a.issuer = "https://x/".into(), "auth.issuer"),
            (|a| a.issuer = "https://x?a=1".into(), "auth.issuer"),
            (|a| a.audience = String::new(), "auth.audience"),
            (|a| a.access_token_secs = 1, "auth.access_token_secs"),
            (|a| a.refresh_token_days = 0, "auth.refresh_token_days"),
            (|a| a.login_attempts = 0, "auth.login_attempts"),
            (|a| a.token_requests_per_minute = 0, "auth.token_requests_per_minute"),
            (|a| a.cors_origins = vec!["*".into()], "auth.cors_origins[0]"),
            (
                |a| a.cors_origins = vec!["https://a".into(), "https://a/b".into()],
                "auth.cors_origins[1]",
            ),
        ];
        for (edit, key) in cases {
            assert_eq!(refused_key(edit, AuthSettings::validate).as_deref(), Some(key));
        }
    }
}
