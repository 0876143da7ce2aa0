//! Scopes name what a token may do; roles name what a person may be given.
//!
//! | scope          | grants                                              |
//! |----------------|-----------------------------------------------------|
//! | `data:read`    | data sets, runs, backtests, jobs                    |
//! | `models:read`  | the registry and model downloads                    |
//! | `models:write` | stage changes and registry garbage collection       |
//! | `train`        | starting and cancelling training jobs               |
//! | `backtest`     | starting and cancelling backtest jobs               |
//! | `trade`        | the decision endpoint, starting and stopping trading sessions |
//! | `admin`        | metrics, users and clients                          |

use std::fmt;

/// Reading data sets, runs, backtests and jobs.
pub const DATA_READ: &str = "data:read";
/// Reading the model registry and downloading models.
pub const MODELS_READ: &str = "models:read";
/// Changing model stages and garbage-collecting the registry.
pub const MODELS_WRITE: &str = "models:write";
/// Starting and cancelling training jobs.
pub const TRAIN: &str = "train";
/// Starting and cancelling backtest jobs.
pub const BACKTEST: &str = "backtest";
/// Asking models for trading decisions (the decision endpoint), and
/// starting and stopping trading sessions.
pub const TRADE: &str = "trade";
/// Administering the server: metrics, users and clients.
pub const ADMIN: &str = "admin";
/// OpenID-style scope the authorization server accepts and ignores, so
/// generic clients that always ask for it are not refused.
pub const OFFLINE_ACCESS: &str = "offline_access";

/// Every scope this server knows, in display order.
pub const ALL: &[&str] = &[DATA_READ, MODELS_READ, MODELS_WRITE, TRAIN, BACKTEST, TRADE, ADMIN];

/// What a scope lets a client do, in words (consent pages, API docs).
pub fn describe(scope: &str) -> &'static str {
    match scope {
        DATA_READ => "read data sets, runs, backtests and jobs",
        MODELS_READ => "read and download models",
        MODELS_WRITE => "change model stages and clean up the registry",
        TRAIN => "start and cancel training jobs",
        BACKTEST => "start and cancel backtests",
        TRADE => "ask models for trading decisions; start and stop trading sessions",
        ADMIN => "administer the server (metrics, users, clients)",
        _ => "",
    }
}

/// A user's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// May be granted every scope.
    Admin,
    /// Every scope but `admin`: reads, model stages, training, backtests
    /// and trading.
    Researcher,
    /// Read-only: `data:read` and `models:read`.
    Viewer,
}

impl Role {
    /// A role from its lower-case name (`admin`, `researcher`, `viewer`);
    /// `Err` says what the valid names are.
    pub fn parse(text: &str) -> Result<Role, String> {
        match text {
            "admin" => Ok(Role::Admin),
            "researcher" => Ok(Role::Researcher),
            "viewer" => Ok(Role::Viewer),
            other => Err(format!("`{other}` is not a role; use admin, researcher or viewer")),
        }
    }

    /// The lower-case name [`Role::parse`] accepts.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Researcher => "researcher",
            Role::Viewer => "viewer",
        }
    }

    /// The scopes a person in this role may be granted.
    pub fn scopes(self) -> ScopeSet {
        let list: &[&str] = match self {
            Role::Admin => ALL,
            Role::Researcher => &[DATA_READ, MODELS_READ, MODELS_WRITE, TRAIN, BACKTEST, TRADE],
            Role::Viewer => &[DATA_READ, MODELS_READ],
        };
        ScopeSet(list.iter().map(|s| s.to_string()).collect())
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A set of known scopes, kept sorted in [`ALL`]'s order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ScopeSet(Vec<String>);

impl ScopeSet {
    /// Parses a space-separated scope string (RFC 6749 §3.3). Unknown
    /// scopes are an error naming them; `offline_access` is dropped.
    pub fn parse(text: &str) -> Result<ScopeSet, String> {
        let mut out = Vec::new();
        for word in text.split(' ').filter(|w| !w.is_empty()) {
            if word == OFFLINE_ACCESS {
                continue;
            }
            if !ALL.contains(&word) {
                return Err(format!("`{word}` is not a scope; the scopes are {}", ALL.join(", ")));
            }
            if !out.iter().any(|s| s == word) {
                out.push(word.to_string());
            }
        }
        out.sort_by_key(|s| ALL.iter().position(|a| a == s));
        Ok(ScopeSet(out))
    }

    /// Every known scope ([`ALL`]).
    pub fn all() -> ScopeSet {
        ScopeSet(ALL.iter().map(|s| s.to_string()).collect())
    }

    /// Whether `scope` is in the set.
    pub fn contains(&self, scope: &str) -> bool {
        self.0.iter().any(|s| s == scope)
    }

    /// Whether the set has no scopes (a request that asked for none).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The scopes in both sets.
    pub fn intersect(&self, other: &ScopeSet) -> ScopeSet {
        ScopeSet(self.0.iter().filter(|s| other.contains(s)).cloned().collect())
    }

    /// Whether every scope here is also in `other`.
    pub fn is_subset_of(&self, other: &ScopeSet) -> bool {
        self.0.iter().all(|s| other.contains(s))
    }

    /// The scopes, in [`ALL`]'s order.
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(String::as_str)
    }
}

impl fmt::Display for ScopeSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.join(" "))
    }
}

/// What a client may be given: the requested scopes (all the client's own
/// when none are asked for) within what the client and the user allow.
/// `Err` names a requested scope outside those limits (`invalid_scope`).
pub fn grantable(requested: &ScopeSet, client: &ScopeSet, user: Option<Role>) -> Result<ScopeSet, String> {
    let limit = match user {
        Some(role) => client.intersect(&role.scopes()),
        None => client.clone(),
    };
    if requested.is_empty() {
        return Ok(limit);
    }
    match requested.iter().find(|s| !limit.contains(s)) {
        Some(s) => Err(format!("the scope `{s}` is not available to this client or user")),
        None => Ok(requested.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_orders_dedups_and_rejects_unknown() {
        let s = ScopeSet::parse("train  data:read train offline_access").unwrap();
        assert_eq!(s.to_string(), "data:read train");
        assert!(ScopeSet::parse("data:write").unwrap_err().contains("data:write"));
        assert!(ScopeSet::parse("").unwrap().is_empty());
    }

    #[test]
    fn roles_limit_grants() {
        let client = ScopeSet::all();
        let viewer = grantable(&ScopeSet::parse("").unwrap(), &client, Some(Role::Viewer)).unwrap();
        assert_eq!(viewer.to_string(), "data:read models:read");
        assert!(grantable(&ScopeSet::parse("train").unwrap(), &client, Some(Role::Viewer)).is_err());
        assert!(grantable(&ScopeSet::parse("admin").unwrap(), &client, Some(Role::Researcher)).is_err());
        let narrow = ScopeSet::parse("data:read").unwrap();
        assert!(grantable(&ScopeSet::parse("trade").unwrap(), &narrow, Some(Role::Admin)).is_err());
        assert_eq!(grantable(&ScopeSet::parse("").unwrap(), &narrow, None).unwrap(), narrow);
        assert_eq!(Role::parse("admin").unwrap(), Role::Admin);
        assert!(Role::parse("root").is_err());
    }
}
