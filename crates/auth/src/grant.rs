//! The grant types (RFC 6749 section 4, RFC 8628) the authorization server
//! accepts, and the public client the command line signs in with. Shared
//! by the server, which issues tokens, and `tradelab login`, which asks.

/// The public client `tradelab login` uses, registered at the server's first start.
pub const CLI_CLIENT_ID: &str = "tradelab-cli";
/// The public client the web dashboard (served by `tradelab serve` at `/`)
/// uses, registered at every start with redirects to this server's
/// `/callback`; first-party, so it is not shown a consent page.
pub const DASHBOARD_CLIENT_ID: &str = "tradelab-dashboard";
/// Authorization code with PKCE (RFC 6749 4.1, RFC 7636).
pub const AUTHORIZATION_CODE: &str = "authorization_code";
/// Refresh token rotation (RFC 6749 section 6).
pub const REFRESH_TOKEN: &str = "refresh_token";
/// Client credentials for services (RFC 6749 4.4).
pub const CLIENT_CREDENTIALS: &str = "client_credentials";
/// The device authorization grant (RFC 8628).
pub const DEVICE_CODE: &str = "urn:ietf:params:oauth:grant-type:device_code";
