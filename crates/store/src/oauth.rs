//! The authorization server's records: users, clients, authorization
//! codes, grants (token families), refresh tokens, revoked access tokens,
//! signing keys and device codes.
//!
//! Every one-time secret is redeemed with a conditional `UPDATE ... WHERE
//! used_ms IS NULL`, so two requests racing with the same code or refresh
//! token cannot both win, on either database: the loser sees a reuse, and
//! reuse revokes the family (RFC 9700 §4.14).

use sqlx::Row;

use crate::error::StoreError;
use crate::{new_id, now_ms, Store};

/// A person who can sign in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRecord {
    /// The user's random hex id (a token's `sub`).
    pub id: String,
    /// The unique name the user signs in with.
    pub username: String,
    /// The password's hash as the caller made it (an argon2id PHC string).
    pub password_hash: String,
    /// The role's name (`admin`, `researcher`, `viewer`).
    pub role: String,
    /// Whether the user must choose a new password before authorizing
    /// anything (set for a temporary password).
    pub must_change_password: bool,
    /// When the user was disabled, milliseconds since the Unix epoch;
    /// `None` while enabled.
    pub disabled_ms: Option<i64>,
    /// When the user was created, milliseconds since the Unix epoch.
    pub created_ms: i64,
}

/// A registered OAuth client (an application that asks for tokens).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientRecord {
    /// The client's unique id, chosen at registration.
    pub client_id: String,
    /// A name for people (consent pages, listings).
    pub name: String,
    /// `None` for a public client.
    pub secret_hash: Option<String>,
    /// The redirect URIs the client may use (matched exactly, but for a
    /// loopback URI's port).
    pub redirect_uris: Vec<String>,
    /// The grant types the client may use (`authorization_code`,
    /// `refresh_token`...).
    pub grant_types: Vec<String>,
    /// The scopes the client may be granted, space-separated.
    pub scopes: String,
    /// Whether it is a resource server (an API checking tokens it is
    /// shown), the only kind of client that may introspect tokens.
    pub resource_server: bool,
    /// When the client was registered, milliseconds since the Unix epoch.
    pub created_ms: i64,
}

/// A grant: one token family (the access and refresh tokens issued from one
/// authorization), revoked as a whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantRecord {
    /// The grant's random hex id (an access token's `sid`).
    pub id: String,
    /// The client it was issued to.
    pub client_id: String,
    /// The user who authorized it; `None` for client credentials.
    pub user_id: Option<String>,
    /// The scopes granted, space-separated.
    pub scope: String,
    /// When it was created, milliseconds since the Unix epoch.
    pub created_ms: i64,
    /// When it was revoked, milliseconds since the Unix epoch; `None` while
    /// live.
    pub revoked_ms: Option<i64>,
}

/// An authorization code to store, issued to a signed-in user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewCode<'a> {
    /// The code's hash (the code itself is never stored).
    pub code_hash: &'a str,
    /// The client the code was issued to.
    pub client_id: &'a str,
    /// The user who authorized it.
    pub user_id: &'a str,
    /// The redirect URI of the request, which redemption must repeat.
    pub redirect_uri: &'a str,
    /// The scopes authorized, space-separated.
    pub scope: &'a str,
    /// The PKCE code challenge (RFC 7636), if the client sent one.
    pub code_challenge: Option<&'a str>,
    /// When the code stops working, milliseconds since the Unix epoch.
    pub expires_ms: i64,
}

/// A stored authorization code, as its redemption finds it (see
/// [`NewCode`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeRecord {
    /// The client the code was issued to.
    pub client_id: String,
    /// The user who authorized it.
    pub user_id: String,
    /// The redirect URI of the request.
    pub redirect_uri: String,
    /// The scopes authorized, space-separated.
    pub scope: String,
    /// The PKCE code challenge, if the client sent one.
    pub code_challenge: Option<String>,
    /// When the code stops working, milliseconds since the Unix epoch (the
    /// caller checks it).
    pub expires_ms: i64,
    /// The grant its first redemption created, once
    /// [`Store::attach_grant_to_code`] has recorded it.
    pub grant_id: Option<String>,
}

/// What presenting an authorization code found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CodeRedemption {
    /// First use: it is now spent.
    Fresh(CodeRecord),
    /// Spent before: a replay. The caller revokes `grant_id`.
    Reused(CodeRecord),
    /// No such code.
    Unknown,
}

/// What presenting a refresh token found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefreshUse {
    /// First use, unexpired, grant live: it is now spent.
    Fresh(GrantRecord),
    /// Spent before: the family has been revoked here.
    Reused {
        /// The family that was revoked.
        grant_id: String,
    },
    /// Expired, or its grant was revoked.
    Dead,
    /// No such refresh token.
    Unknown,
}

/// A stored token-signing key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SigningKeyRecord {
    /// The key id tokens name it by.
    pub kid: String,
    /// The JWS algorithm it signs with (`EdDSA`).
    pub algorithm: String,
    /// The private key as the caller stored it: sealed under the
    /// key-encryption key (`tradelab_auth::sealed`); databases from before
    /// sealing hold a bare PKCS#8 document, which the caller reseals.
    pub private_key: Vec<u8>,
    /// When it was added, milliseconds since the Unix epoch.
    pub created_ms: i64,
    /// When a newer key replaced it, milliseconds since the Unix epoch;
    /// `None` for the current key.
    pub retired_ms: Option<i64>,
}

/// A device authorization request (RFC 8628), as the person approving it
/// sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceRecord {
    /// The short code the person types to find the request.
    pub user_code: String,
    /// The client (device) asking.
    pub client_id: String,
    /// The scopes asked for, space-separated.
    pub scope: String,
    /// When the request lapses, milliseconds since the Unix epoch.
    pub expires_ms: i64,
    /// `pending`, `approved`, `denied` or `used`.
    pub state: String,
}

/// What a device-code poll found (RFC 8628 §3.5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DevicePoll {
    /// The user has not answered yet; poll again.
    Pending,
    /// Polled faster than the interval.
    SlowDown,
    /// Approved by `user_id`; the code is now spent.
    Approved {
        /// The user who approved.
        user_id: String,
        /// The client the request came from.
        client_id: String,
        /// The scopes asked for, space-separated.
        scope: String,
    },
    /// The user refused.
    Denied,
    /// The request lapsed, or its code was already spent.
    Expired,
    /// No such device code.
    Unknown,
}

fn user_record(r: &sqlx::any::AnyRow) -> Result<UserRecord, StoreError> {
    Ok(UserRecord {
        id: r.try_get("id")?,
        username: r.try_get("username")?,
        password_hash: r.try_get("password_hash")?,
        role: r.try_get("role")?,
        must_change_password: r.try_get::<i64, _>("must_change_password")? != 0,
        disabled_ms: r.try_get("disabled_ms")?,
        created_ms: r.try_get("created_ms")?,
    })
}

fn json_list(text: &str) -> Result<Vec<String>, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::Invalid(format!("stored client list is damaged: {e}")))
}

fn client_record(r: &sqlx::any::AnyRow) -> Result<ClientRecord, StoreError> {
    Ok(ClientRecord {
        client_id: r.try_get("client_id")?,
        name: r.try_get("name")?,
        secret_hash: r.try_get("secret_hash")?,
        redirect_uris: json_list(&r.try_get::<String, _>("redirect_uris")?)?,
        grant_types: json_list(&r.try_get::<String, _>("grant_types")?)?,
        scopes: r.try_get("scopes")?,
        resource_server: r.try_get::<i64, _>("resource_server")? != 0,
        created_ms: r.try_get("created_ms")?,
    })
}

fn grant_record(r: &sqlx::any::AnyRow) -> Result<GrantRecord, StoreError> {
    Ok(GrantRecord {
        id: r.try_get("id")?,
        client_id: r.try_get("client_id")?,
        user_id: r.try_get("user_id")?,
        scope: r.try_get("scope")?,
        created_ms: r.try_get("created_ms")?,
        revoked_ms: r.try_get("revoked_ms")?,
    })
}

fn code_record(r: &sqlx::any::AnyRow) -> Result<CodeRecord, StoreError> {
    Ok(CodeRecord {
        client_id: r.try_get("client_id")?,
        user_id: r.try_get("user_id")?,
        redirect_uri: r.try_get("redirect_uri")?,
        scope: r.try_get("scope")?,
        code_challenge: r.try_get("code_challenge")?,
        expires_ms: r.try_get("expires_ms")?,
        grant_id: r.try_get("grant_id")?,
    })
}

/// A unique-constraint violation, on either database.
fn is_unique_violation(e: &sqlx::Error) -> bool {
    e.as_database_error().is_some_and(|d| {
        d.code().is_some_and(|c| c == "23505" || c == "2067" || c == "1555") || d.message().contains("UNIQUE")
    })
}

const USER_COLUMNS: &str =
    "SELECT id, username, password_hash, role, must_change_password, disabled_ms, created_ms FROM auth_users";
const CLIENT_COLUMNS: &str =
    "SELECT client_id, name, secret_hash, redirect_uris, grant_types, scopes, resource_server, created_ms FROM auth_clients";
const GRANT_COLUMNS: &str = "SELECT id, client_id, user_id, scope, created_ms, revoked_ms FROM auth_grants";

impl Store {
    // ---- users ----

    /// Adds a user and returns it; [`StoreError::Invalid`] if the name is
    /// taken.
    pub async fn create_user(
        &self,
        username: &str,
        password_hash: &str,
        role: &str,
        must_change_password: bool,
    ) -> Result<UserRecord, StoreError> {
        let id = new_id();
        sqlx::query(
            "INSERT INTO auth_users (id, username, password_hash, role, must_change_password, created_ms) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&id)
        .bind(username)
        .bind(password_hash)
        .bind(role)
        .bind(must_change_password as i64)
        .bind(now_ms())
        .execute(&self.pool)
        .await
        .map_err(|e| {
            if is_unique_violation(&e) {
                StoreError::Invalid(format!("a user `{username}` already exists; choose another name"))
            } else {
                e.into()
            }
        })?;
        self.user(&id).await
    }

    /// The user with id `id`; [`StoreError::NotFound`] if there is none.
    pub async fn user(&self, id: &str) -> Result<UserRecord, StoreError> {
        let row = sqlx::query(&format!("{USER_COLUMNS} WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("no user with id `{id}`")))?;
        user_record(&row)
    }

    /// The user called `username`, if any.
    pub async fn user_by_name(&self, username: &str) -> Result<Option<UserRecord>, StoreError> {
        let row = sqlx::query(&format!("{USER_COLUMNS} WHERE username = $1"))
            .bind(username)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(user_record).transpose()
    }

    /// Every user, by name.
    pub async fn users(&self) -> Result<Vec<UserRecord>, StoreError> {
        let rows = sqlx::query(&format!("{USER_COLUMNS} ORDER BY username"))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(user_record).collect()
    }

    /// Enabled administrators.
    pub async fn active_admins(&self) -> Result<i64, StoreError> {
        Ok(
            sqlx::query("SELECT COUNT(*) AS n FROM auth_users WHERE role = 'admin' AND disabled_ms IS NULL")
                .fetch_one(&self.pool)
                .await?
                .try_get("n")?,
        )
    }

    /// Disables (or re-enables) a user; disabling revokes every grant the
    /// user holds, so their tokens stop working at once.
    pub async fn set_user_disabled(&self, username: &str, disabled: bool) -> Result<UserRecord, StoreError> {
        let user = self.user_by_name(username).await?.ok_or_else(|| {
            StoreError::NotFound(format!("no user `{username}`; `tradelab auth user list` shows them"))
        })?;
        let now = now_ms();
        sqlx::query("UPDATE auth_users SET disabled_ms = $1 WHERE id = $2")
            .bind(disabled.then_some(now))
            .bind(&user.id)
            .execute(&self.pool)
            .await?;
        if disabled {
            sqlx::query(
                "UPDATE auth_grants SET revoked_ms = $1, revoked_reason = 'user disabled' WHERE user_id = $2 AND revoked_ms IS NULL",
            )
            .bind(now)
            .bind(&user.id)
            .execute(&self.pool)
            .await?;
        }
        self.user(&user.id).await
    }

    /// Replaces a user's password hash and sets whether it must be changed
    /// at the next sign-in; [`StoreError::NotFound`] for an unknown id.
    pub async fn set_password(&self, user_id: &str, password_hash: &str, must_change: bool) -> Result<(), StoreError> {
        let done = sqlx::query("UPDATE auth_users SET password_hash = $1, must_change_password = $2 WHERE id = $3")
            .bind(password_hash)
            .bind(must_change as i64)
            .bind(user_id)
            .execute(&self.pool)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("no user with id `{user_id}`")));
        }
        Ok(())
    }

    /// A user's own password change: the new hash, no pending change, and
    /// every grant they hold revoked (tokens issued under the old password
    /// stop working). Returns how many grants were revoked.
    pub async fn change_password(&self, user_id: &str, password_hash: &str) -> Result<u64, StoreError> {
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query("UPDATE auth_users SET password_hash = $1, must_change_password = 0 WHERE id = $2")
            .bind(password_hash)
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("no user with id `{user_id}`")));
        }
        let revoked = sqlx::query(
            "UPDATE auth_grants SET revoked_ms = $1, revoked_reason = 'password changed' WHERE user_id = $2 AND revoked_ms IS NULL",
        )
        .bind(now_ms())
        .bind(user_id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        Ok(revoked)
    }

    // ---- clients ----

    /// Registers a client; [`StoreError::Invalid`] if the id is taken.
    pub async fn create_client(&self, c: &ClientRecord) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO auth_clients (client_id, name, secret_hash, redirect_uris, grant_types, scopes, resource_server, created_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&c.client_id)
        .bind(&c.name)
        .bind(&c.secret_hash)
        .bind(serde_json::to_string(&c.redirect_uris).expect("strings serialise"))
        .bind(serde_json::to_string(&c.grant_types).expect("strings serialise"))
        .bind(&c.scopes)
        .bind(c.resource_server as i64)
        .bind(c.created_ms)
        .execute(&self.pool)
        .await
        .map_err(|e| {
            if is_unique_violation(&e) {
                StoreError::Invalid(format!("a client `{}` already exists; choose another id", c.client_id))
            } else {
                e.into()
            }
        })?;
        Ok(())
    }

    /// Replaces a client's redirect URIs (the dashboard's follow the
    /// server's issuer, which a setting can change between starts).
    pub async fn set_client_redirect_uris(&self, client_id: &str, uris: &[String]) -> Result<(), StoreError> {
        let done = sqlx::query("UPDATE auth_clients SET redirect_uris = $1 WHERE client_id = $2")
            .bind(serde_json::to_string(uris).expect("strings serialise"))
            .bind(client_id)
            .execute(&self.pool)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("no client `{client_id}`")));
        }
        Ok(())
    }

    /// The client with id `client_id`, if any.
    pub async fn client(&self, client_id: &str) -> Result<Option<ClientRecord>, StoreError> {
        let row = sqlx::query(&format!("{CLIENT_COLUMNS} WHERE client_id = $1"))
            .bind(client_id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(client_record).transpose()
    }

    /// Every client, by id.
    pub async fn clients(&self) -> Result<Vec<ClientRecord>, StoreError> {
        let rows = sqlx::query(&format!("{CLIENT_COLUMNS} ORDER BY client_id"))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(client_record).collect()
    }

    /// Removes a client and revokes every grant it holds.
    pub async fn remove_client(&self, client_id: &str) -> Result<(), StoreError> {
        let done = sqlx::query("DELETE FROM auth_clients WHERE client_id = $1")
            .bind(client_id)
            .execute(&self.pool)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!(
                "no client `{client_id}`; `tradelab auth client list` shows them"
            )));
        }
        sqlx::query(
            "UPDATE auth_grants SET revoked_ms = $1, revoked_reason = 'client removed' WHERE client_id = $2 AND revoked_ms IS NULL",
        )
        .bind(now_ms())
        .bind(client_id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    // ---- grants ----

    /// Starts a token family for `client_id` (and `user_id`, unless client
    /// credentials); returns its id.
    pub async fn create_grant(
        &self,
        client_id: &str,
        user_id: Option<&str>,
        scope: &str,
    ) -> Result<String, StoreError> {
        let id = new_id();
        sqlx::query("INSERT INTO auth_grants (id, client_id, user_id, scope, created_ms) VALUES ($1, $2, $3, $4, $5)")
            .bind(&id)
            .bind(client_id)
            .bind(user_id)
            .bind(scope)
            .bind(now_ms())
            .execute(&self.pool)
            .await?;
        Ok(id)
    }

    /// The grant with id `id`, revoked or not, if any.
    pub async fn grant(&self, id: &str) -> Result<Option<GrantRecord>, StoreError> {
        let row = sqlx::query(&format!("{GRANT_COLUMNS} WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(grant_record).transpose()
    }

    /// Revokes a token family; `false` if it was already revoked or unknown.
    pub async fn revoke_grant(&self, id: &str, reason: &str) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE auth_grants SET revoked_ms = $1, revoked_reason = $2 WHERE id = $3 AND revoked_ms IS NULL",
        )
        .bind(now_ms())
        .bind(reason)
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Whether an access token from grant `grant_id` with id `jti` has been
    /// revoked (its family, or it alone). An unknown grant counts as revoked.
    pub async fn access_revoked(&self, grant_id: &str, jti: &str) -> Result<bool, StoreError> {
        let row = sqlx::query(
            "SELECT (SELECT COUNT(*) FROM auth_grants WHERE id = $1 AND revoked_ms IS NULL) AS live, \
             (SELECT COUNT(*) FROM auth_revoked_access WHERE jti = $2) AS revoked",
        )
        .bind(grant_id)
        .bind(jti)
        .fetch_one(&self.pool)
        .await?;
        Ok(row.try_get::<i64, _>("live")? == 0 || row.try_get::<i64, _>("revoked")? > 0)
    }

    /// Revokes one access token until it would have expired anyway.
    pub async fn revoke_access(&self, jti: &str, expires_ms: i64) -> Result<(), StoreError> {
        // Forget revocations of tokens that have expired by now.
        sqlx::query("DELETE FROM auth_revoked_access WHERE expires_ms < $1")
            .bind(now_ms())
            .execute(&self.pool)
            .await?;
        sqlx::query("INSERT INTO auth_revoked_access (jti, expires_ms) VALUES ($1, $2) ON CONFLICT (jti) DO NOTHING")
            .bind(jti)
            .bind(expires_ms)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    // ---- authorization codes ----

    /// Stores an authorization code (by its hash) until it is redeemed.
    pub async fn store_code(&self, c: &NewCode<'_>) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO auth_codes (code_hash, client_id, user_id, redirect_uri, scope, code_challenge, expires_ms) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(c.code_hash)
        .bind(c.client_id)
        .bind(c.user_id)
        .bind(c.redirect_uri)
        .bind(c.scope)
        .bind(c.code_challenge)
        .bind(c.expires_ms)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Deletes authorization and device codes that expired before
    /// `before_ms`; returns how many.
    pub async fn purge_expired_codes(&self, before_ms: i64) -> Result<u64, StoreError> {
        let mut n = 0;
        for table in ["auth_codes", "auth_device_codes"] {
            n += sqlx::query(&format!("DELETE FROM {table} WHERE expires_ms < $1"))
                .bind(before_ms)
                .execute(&self.pool)
                .await?
                .rows_affected();
        }
        Ok(n)
    }

    /// Spends the code with hash `code_hash`, or reports it spent before.
    pub async fn redeem_code(&self, code_hash: &str) -> Result<CodeRedemption, StoreError> {
        let spent = sqlx::query("UPDATE auth_codes SET used_ms = $1 WHERE code_hash = $2 AND used_ms IS NULL")
            .bind(now_ms())
            .bind(code_hash)
            .execute(&self.pool)
            .await?
            .rows_affected()
            > 0;
        let row = sqlx::query(
            "SELECT client_id, user_id, redirect_uri, scope, code_challenge, expires_ms, grant_id FROM auth_codes WHERE code_hash = $1",
        )
        .bind(code_hash)
        .fetch_optional(&self.pool)
        .await?;
        Ok(match row {
            None => CodeRedemption::Unknown,
            Some(r) if spent => CodeRedemption::Fresh(code_record(&r)?),
            Some(r) => CodeRedemption::Reused(code_record(&r)?),
        })
    }

    /// Records which grant a code's redemption created.
    pub async fn attach_grant_to_code(&self, code_hash: &str, grant_id: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE auth_codes SET grant_id = $1 WHERE code_hash = $2")
            .bind(grant_id)
            .bind(code_hash)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    // ---- refresh tokens ----

    /// Stores a refresh token (by its hash) of grant `grant_id`, usable
    /// once until `expires_ms` (milliseconds since the Unix epoch).
    pub async fn store_refresh(&self, token_hash: &str, grant_id: &str, expires_ms: i64) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO auth_refresh_tokens (token_hash, grant_id, expires_ms, created_ms) VALUES ($1, $2, $3, $4)",
        )
        .bind(token_hash)
        .bind(grant_id)
        .bind(expires_ms)
        .bind(now_ms())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Spends a refresh token. A second use revokes its whole family.
    pub async fn use_refresh(&self, token_hash: &str) -> Result<RefreshUse, StoreError> {
        let now = now_ms();
        let row = sqlx::query("SELECT grant_id, expires_ms, used_ms FROM auth_refresh_tokens WHERE token_hash = $1")
            .bind(token_hash)
            .fetch_optional(&self.pool)
            .await?;
        let Some(row) = row else {
            return Ok(RefreshUse::Unknown);
        };
        let grant_id: String = row.try_get("grant_id")?;
        let spent =
            sqlx::query("UPDATE auth_refresh_tokens SET used_ms = $1 WHERE token_hash = $2 AND used_ms IS NULL")
                .bind(now)
                .bind(token_hash)
                .execute(&self.pool)
                .await?
                .rows_affected()
                > 0;
        if !spent {
            self.revoke_grant(&grant_id, "refresh token reused").await?;
            return Ok(RefreshUse::Reused { grant_id });
        }
        let grant = self.grant(&grant_id).await?;
        match grant {
            Some(g) if g.revoked_ms.is_none() && row.try_get::<i64, _>("expires_ms")? > now => Ok(RefreshUse::Fresh(g)),
            _ => Ok(RefreshUse::Dead),
        }
    }

    /// The grant a refresh token belongs to, spent or not (for revocation
    /// and introspection), with whether it can still be used.
    pub async fn refresh_token_state(&self, token_hash: &str) -> Result<Option<(GrantRecord, bool)>, StoreError> {
        let row = sqlx::query("SELECT grant_id, expires_ms, used_ms FROM auth_refresh_tokens WHERE token_hash = $1")
            .bind(token_hash)
            .fetch_optional(&self.pool)
            .await?;
        let Some(row) = row else { return Ok(None) };
        let Some(grant) = self.grant(&row.try_get::<String, _>("grant_id")?).await? else {
            return Ok(None);
        };
        let usable = grant.revoked_ms.is_none()
            && row.try_get::<Option<i64>, _>("used_ms")?.is_none()
            && row.try_get::<i64, _>("expires_ms")? > now_ms();
        Ok(Some((grant, usable)))
    }

    // ---- signing keys ----

    /// Every stored signing key, current and retired, oldest first.
    pub async fn signing_keys(&self) -> Result<Vec<SigningKeyRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT kid, algorithm, private_key, created_ms, retired_ms FROM auth_signing_keys ORDER BY created_ms, kid",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(SigningKeyRecord {
                    kid: r.try_get("kid")?,
                    algorithm: r.try_get("algorithm")?,
                    private_key: hex::decode(r.try_get::<String, _>("private_key")?)
                        .map_err(|e| StoreError::Invalid(format!("a stored signing key is damaged: {e}")))?,
                    created_ms: r.try_get("created_ms")?,
                    retired_ms: r.try_get("retired_ms")?,
                })
            })
            .collect()
    }

    /// Adds a signing key and retires every other one (they stay published
    /// until [`Store::drop_retired_keys`] removes them).
    pub async fn rotate_signing_key(&self, kid: &str, algorithm: &str, private_key: &[u8]) -> Result<(), StoreError> {
        let now = now_ms();
        let mut tx = self.pool.begin().await?;
        sqlx::query("UPDATE auth_signing_keys SET retired_ms = $1 WHERE retired_ms IS NULL")
            .bind(now)
            .execute(&mut *tx)
            .await?;
        sqlx::query("INSERT INTO auth_signing_keys (kid, algorithm, private_key, created_ms) VALUES ($1, $2, $3, $4)")
            .bind(kid)
            .bind(algorithm)
            .bind(hex::encode(private_key))
            .bind(now)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Replaces a key's stored form (sealing a key stored bare).
    pub async fn reseal_signing_key(&self, kid: &str, private_key: &[u8]) -> Result<(), StoreError> {
        sqlx::query("UPDATE auth_signing_keys SET private_key = $1 WHERE kid = $2")
            .bind(hex::encode(private_key))
            .bind(kid)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Deletes keys retired before `before_ms` (no live token uses them).
    pub async fn drop_retired_keys(&self, before_ms: i64) -> Result<u64, StoreError> {
        Ok(
            sqlx::query("DELETE FROM auth_signing_keys WHERE retired_ms IS NOT NULL AND retired_ms < $1")
                .bind(before_ms)
                .execute(&self.pool)
                .await?
                .rows_affected(),
        )
    }

    // ---- device authorization ----

    /// Stores a pending device request: the device polls with the device
    /// code (stored by its hash), the person types `user_code`.
    pub async fn create_device_code(
        &self,
        device_code_hash: &str,
        user_code: &str,
        client_id: &str,
        scope: &str,
        expires_ms: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO auth_device_codes (device_code_hash, user_code, client_id, scope, expires_ms, state) VALUES ($1, $2, $3, $4, $5, 'pending')",
        )
        .bind(device_code_hash)
        .bind(user_code)
        .bind(client_id)
        .bind(scope)
        .bind(expires_ms)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// A pending, unexpired device request by the code its user typed.
    pub async fn pending_device(&self, user_code: &str) -> Result<Option<DeviceRecord>, StoreError> {
        let row = sqlx::query(
            "SELECT user_code, client_id, scope, expires_ms, state FROM auth_device_codes WHERE user_code = $1 AND state = 'pending' AND expires_ms > $2",
        )
        .bind(user_code)
        .bind(now_ms())
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            Ok(DeviceRecord {
                user_code: r.try_get("user_code")?,
                client_id: r.try_get("client_id")?,
                scope: r.try_get("scope")?,
                expires_ms: r.try_get("expires_ms")?,
                state: r.try_get("state")?,
            })
        })
        .transpose()
    }

    /// Records the user's answer to a pending device request.
    pub async fn decide_device(&self, user_code: &str, user_id: &str, approve: bool) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE auth_device_codes SET state = $1, user_id = $2 WHERE user_code = $3 AND state = 'pending' AND expires_ms > $4",
        )
        .bind(if approve { "approved" } else { "denied" })
        .bind(user_id)
        .bind(user_code)
        .bind(now_ms())
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// A device's poll for its token; `min_interval_ms` between polls.
    pub async fn poll_device(&self, device_code_hash: &str, min_interval_ms: i64) -> Result<DevicePoll, StoreError> {
        let now = now_ms();
        let row = sqlx::query(
            "SELECT client_id, scope, expires_ms, last_poll_ms, user_id, state FROM auth_device_codes WHERE device_code_hash = $1",
        )
        .bind(device_code_hash)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(DevicePoll::Unknown) };
        sqlx::query("UPDATE auth_device_codes SET last_poll_ms = $1 WHERE device_code_hash = $2")
            .bind(now)
            .bind(device_code_hash)
            .execute(&self.pool)
            .await?;
        if row.try_get::<i64, _>("expires_ms")? <= now {
            return Ok(DevicePoll::Expired);
        }
        let state: String = row.try_get("state")?;
        match state.as_str() {
            "denied" => Ok(DevicePoll::Denied),
            "used" => Ok(DevicePoll::Expired),
            "approved" => {
                let spent = sqlx::query(
                    "UPDATE auth_device_codes SET state = 'used' WHERE device_code_hash = $1 AND state = 'approved'",
                )
                .bind(device_code_hash)
                .execute(&self.pool)
                .await?
                .rows_affected()
                    > 0;
                if !spent {
                    return Ok(DevicePoll::Expired);
                }
                Ok(DevicePoll::Approved {
                    user_id: row.try_get::<Option<String>, _>("user_id")?.unwrap_or_default(),
                    client_id: row.try_get("client_id")?,
                    scope: row.try_get("scope")?,
                })
            }
            _ => {
                let last: Option<i64> = row.try_get("last_poll_ms")?;
                if last.is_some_and(|l| now - l < min_interval_ms) {
                    Ok(DevicePoll::SlowDown)
                } else {
                    Ok(DevicePoll::Pending)
                }
            }
        }
    }
}
