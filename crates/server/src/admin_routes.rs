//! Who is signed in (`/v1/me`, so the dashboard can hide what the caller
//! may not do), and the administrator's users and clients: listed, a user
//! added (with a one-time password), enabled or disabled, a client removed
//! (`tradelab_app::users` holds the checks the command line shares).
//! The server still enforces every route's scope; these only inform.

use std::sync::Arc;

use axum::extract::State;
use axum::Extension;
use serde::Serialize;
use utoipa::ToSchema;

use super::guard::Caller;
use super::problem::{ApiResult, Json, Path, Problem};
use super::state::AppState;
use axum::http::StatusCode;
use serde::Deserialize;
use tradelab_app::users;

/// The caller, as its token says.
#[derive(Serialize, ToSchema)]
pub struct Me {
    /// The user signed in; for a client acting for itself, its client id.
    pub username: String,
    /// `admin`, `researcher` or `viewer`; `client` for a client acting
    /// for itself.
    pub role: String,
    /// The scopes the token carries: what the caller may do.
    pub scopes: Vec<String>,
}

/// The signed-in caller: name, role and the token's scopes.
#[utoipa::path(get, path = "/v1/me", responses((status = 200, body = Me)))]
pub async fn me(State(s): State<Arc<AppState>>, caller: Option<Extension<Caller>>) -> ApiResult<Json<Me>> {
    let Some(Extension(caller)) = caller else {
        // `--insecure-no-auth`: every request may do everything.
        return Ok(Json(Me {
            username: "anonymous".into(),
            role: "admin".into(),
            scopes: tradelab_auth::scope::ALL.iter().map(|s| s.to_string()).collect(),
        }));
    };
    let (username, role) = match &caller.username {
        Some(name) => {
            let role = match s.store.user_by_name(name).await? {
                Some(user) => super::oauth::role_of(&user).as_str().to_string(),
                // Deleted since the token was issued; the token's scopes
                // still decide until it expires.
                None => "viewer".into(),
            };
            (name.clone(), role)
        }
        None => (caller.client_id.clone(), "client".into()),
    };
    Ok(Json(Me {
        username,
        role,
        scopes: caller.scopes,
    }))
}

/// A user of the authorization server (never the password hash).
#[derive(Serialize, ToSchema)]
pub struct User {
    /// The user's random hex id (a token's `sub`).
    pub id: String,
    /// The name the user signs in with.
    pub username: String,
    /// `admin`, `researcher` or `viewer`.
    pub role: String,
    /// False once disabled (`tradelab auth user disable`).
    pub enabled: bool,
    /// The user must choose a new password at the next sign-in.
    pub must_change_password: bool,
    /// When the user was created, milliseconds since the Unix epoch.
    pub created_ms: i64,
}

impl From<tradelab_store::oauth::UserRecord> for User {
    fn from(u: tradelab_store::oauth::UserRecord) -> User {
        User {
            id: u.id,
            username: u.username,
            role: u.role,
            enabled: u.disabled_ms.is_none(),
            must_change_password: u.must_change_password,
            created_ms: u.created_ms,
        }
    }
}

/// Every user, by name.
#[utoipa::path(get, path = "/v1/admin/users", responses((status = 200, body = [User])))]
pub async fn users(State(s): State<Arc<AppState>>) -> ApiResult<Json<Vec<User>>> {
    let mut users: Vec<User> = s.store.users().await?.into_iter().map(User::from).collect();
    users.sort_by(|a, b| a.username.cmp(&b.username));
    Ok(Json(users))
}

/// A registered OAuth client (never its secret's hash).
#[derive(Serialize, ToSchema)]
pub struct Client {
    /// The client's id.
    pub client_id: String,
    /// Its name for people.
    pub name: String,
    /// True for a public client (no secret: the CLI, the dashboard).
    pub public: bool,
    /// The redirect URIs it may use.
    pub redirect_uris: Vec<String>,
    /// The grant types it may use.
    pub grant_types: Vec<String>,
    /// The scopes it may be granted, space-separated.
    pub scopes: String,
    /// When it was registered, milliseconds since the Unix epoch.
    pub created_ms: i64,
}

/// Every registered client, by id.
#[utoipa::path(get, path = "/v1/admin/clients", responses((status = 200, body = [Client])))]
pub async fn clients(State(s): State<Arc<AppState>>) -> ApiResult<Json<Vec<Client>>> {
    let mut clients: Vec<Client> = s
        .store
        .clients()
        .await?
        .into_iter()
        .map(|c| Client {
            public: c.secret_hash.is_none(),
            client_id: c.client_id,
            name: c.name,
            redirect_uris: c.redirect_uris,
            grant_types: c.grant_types,
            scopes: c.scopes,
            created_ms: c.created_ms,
        })
        .collect();
    clients.sort_by(|a, b| a.client_id.cmp(&b.client_id));
    Ok(Json(clients))
}

/// A user to add.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    /// The name they sign in with: 1 to 64 letters, digits, `-`, `_`, `.`
    /// or `@`.
    pub username: String,
    /// `admin`, `researcher` or `viewer`.
    pub role: String,
}

/// A user just added, with the one-time password made for them.
#[derive(Serialize, ToSchema)]
pub struct AddedUser {
    /// The user.
    pub user: User,
    /// Shown once: they sign in with it and must choose their own.
    pub one_time_password: String,
}

/// Adds a user with a one-time password, which they must change at their
/// first sign-in (the answer is the only place it appears).
#[utoipa::path(post, path = "/v1/admin/users", request_body = NewUser, responses((status = 201, body = AddedUser), (status = 422, body = Problem)))]
pub async fn add_user(
    State(s): State<Arc<AppState>>,
    Json(new): Json<NewUser>,
) -> ApiResult<(StatusCode, Json<AddedUser>)> {
    let added = users::add_user(&s.store, &new.username, &new.role, None).await?;
    Ok((
        StatusCode::CREATED,
        Json(AddedUser {
            user: added.user.into(),
            one_time_password: added.one_time_password.unwrap_or_default(),
        }),
    ))
}

/// Whether a user may sign in.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserEnabled {
    /// False disables the user and revokes every token they hold.
    pub enabled: bool,
}

/// Enables or disables a user; disabling revokes their tokens at once. The
/// last enabled administrator cannot be disabled.
#[utoipa::path(
    put,
    path = "/v1/admin/users/{username}/enabled",
    params(("username" = String, Path, description = "The user's name")),
    request_body = UserEnabled,
    responses((status = 200, body = User), (status = 404, body = Problem), (status = 422, body = Problem))
)]
pub async fn set_user_enabled(
    State(s): State<Arc<AppState>>,
    Path(username): Path<String>,
    Json(body): Json<UserEnabled>,
) -> ApiResult<Json<User>> {
    Ok(Json(
        users::set_user_enabled(&s.store, &username, body.enabled).await?.into(),
    ))
}

/// Removes a client and revokes every token it holds. The dashboard's own
/// client cannot be removed.
#[utoipa::path(
    delete,
    path = "/v1/admin/clients/{client_id}",
    params(("client_id" = String, Path, description = "The client's id")),
    responses((status = 204), (status = 404, body = Problem), (status = 422, body = Problem))
)]
pub async fn remove_client(State(s): State<Arc<AppState>>, Path(client_id): Path<String>) -> ApiResult<StatusCode> {
    users::remove_client(&s.store, &client_id).await?;
    Ok(StatusCode::NO_CONTENT)
}
