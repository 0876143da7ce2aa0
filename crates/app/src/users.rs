//! Administering who signs in and which applications ask for tokens, as
//! `tradelab auth` and the admin API both do it: names checked, a one-time
//! password made when none is given, the last enabled administrator kept,
//! the dashboard's own client kept. Refusals are [`StoreError::Invalid`]
//! (the API answers 422), unknown names [`StoreError::NotFound`] (404).

use tradelab_auth::grant::DASHBOARD_CLIENT_ID;
use tradelab_auth::password;
use tradelab_auth::scope::Role;
use tradelab_store::oauth::UserRecord;
use tradelab_store::{Store, StoreError};

/// `name` as a user name or client id (`what` says which): 1 to 64
/// letters, digits, `-`, `_`, `.` or `@`.
pub fn check_name(name: &str, what: &str) -> Result<(), StoreError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '@'));
    if ok {
        Ok(())
    } else {
        Err(StoreError::Invalid(format!(
            "`{name}` is not a valid {what}: use 1 to 64 letters, digits, '-', '_', '.' or '@'"
        )))
    }
}

/// A user just added.
#[derive(Debug)]
pub struct AddedUser {
    /// The stored user.
    pub user: UserRecord,
    /// The password made for them when none was given: shown once, to be
    /// changed at the first sign-in.
    pub one_time_password: Option<String>,
}

/// Adds user `username` with `role` (admin, researcher or viewer). With a
/// `password` (checked as a new password is), they sign in with it; without
/// one, a random one-time password is made and must be changed at the first
/// sign-in.
pub async fn add_user(
    store: &Store,
    username: &str,
    role: &str,
    password: Option<String>,
) -> Result<AddedUser, StoreError> {
    check_name(username, "user name")?;
    let role = Role::parse(role).map_err(StoreError::Invalid)?;
    let (secret, one_time) = match password {
        Some(p) => {
            password::check_new_password(&p).map_err(StoreError::Invalid)?;
            (p, false)
        }
        None => (password::random_password(), true),
    };
    let hash = password::hash_password(&secret);
    let user = store.create_user(username, &hash, role.as_str(), one_time).await?;
    Ok(AddedUser {
        user,
        one_time_password: one_time.then_some(secret),
    })
}

/// Enables or disables user `username`; disabling revokes every token they
/// hold. The last enabled administrator cannot be disabled: nobody could
/// administer the server after.
pub async fn set_user_enabled(store: &Store, username: &str, enabled: bool) -> Result<UserRecord, StoreError> {
    if !enabled {
        if let Some(u) = store.user_by_name(username).await? {
            if u.role == Role::Admin.as_str() && u.disabled_ms.is_none() && store.active_admins().await? <= 1 {
                return Err(StoreError::Invalid(format!(
                    "`{username}` is the last enabled administrator; add another before disabling this one"
                )));
            }
        }
    }
    store.set_user_disabled(username, !enabled).await
}

/// Removes client `client_id` and revokes its tokens. The dashboard's own
/// client is kept: the server registers it again at every start, and
/// removing it would sign every dashboard user out.
pub async fn remove_client(store: &Store, client_id: &str) -> Result<(), StoreError> {
    if client_id == DASHBOARD_CLIENT_ID {
        return Err(StoreError::Invalid(format!(
            "`{client_id}` is the dashboard's own client, registered by the server; it cannot be removed"
        )));
    }
    store.remove_client(client_id).await
}
