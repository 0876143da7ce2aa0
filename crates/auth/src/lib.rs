//! OAuth 2.0 building blocks for tradelab's authorization and resource
//! servers, free of I/O so every rule is unit-tested on its own.
//!
//! - [`csrf`]: CSRF tokens bound to a cookie nonce and the login session;
//! - [`grant`]: grant type names and the command line's client id;
//! - [`jwt`]: access tokens as JWTs (RFC 9068) signed with EdDSA (Ed25519),
//!   `kid`-addressed keys, the JWKS document (RFC 7517), and verification
//!   that checks algorithm, signature, issuer, audience and lifetime;
//! - [`pkce`]: the S256 code challenge (RFC 7636);
//! - [`password`]: argon2id password hashes;
//! - [`secret`]: opaque random tokens (codes, refresh tokens, client
//!   secrets) and the hashes they are stored as;
//! - [`scope`]: scopes, roles and what each role may be granted;
//! - [`redirect`]: exact redirect-URI matching (with RFC 8252's loopback
//!   port rule for native apps);
//! - [`ratelimit`]: a sliding-window limiter for login and token endpoints;
//! - [`sealed`]: signing keys encrypted at rest under a key-encryption key.

#![warn(missing_docs)]

pub mod csrf;
pub mod grant;
pub mod jwt;
pub mod password;
pub mod pkce;
pub mod ratelimit;
pub mod redirect;
pub mod scope;
pub mod sealed;
pub mod secret;
pub mod settings;
pub use settings::AuthSettings;

/// base64url without padding, as JOSE and PKCE use it.
pub(crate) fn b64url(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

pub(crate) fn b64url_decode(text: &str) -> Option<Vec<u8>> {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(text).ok()
}
