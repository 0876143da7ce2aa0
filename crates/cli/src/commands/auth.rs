//! `tradelab auth`: the authorization server's users, clients and signing
//! keys, administered on the configured database (the server need not run).

use std::io::Read;

use anyhow::{bail, Context, Result};
use tradelab_app::auth_setup;
use tradelab_app::record::open_store;
use tradelab_app::runtime::runtime;
use tradelab_app::users;
use tradelab_auth::scope::ScopeSet;
use tradelab_auth::{grant, redirect, secret};
use tradelab_core::time::format_datetime;
use tradelab_store::oauth::ClientRecord;

use crate::cli::{AuthCommand, ClientCommand, GlobalArgs, UserCommand};
use crate::context::load_settings;

pub fn run(g: &GlobalArgs, c: AuthCommand) -> Result<()> {
    let settings = load_settings(g, &[])?;
    let rt = runtime()?;
    let store = open_store(&rt, &settings)?;
    rt.block_on(async {
        match c {
            AuthCommand::User(u) => user(&store, u).await,
            AuthCommand::Client(c) => client(&store, c).await,
            AuthCommand::RotateKey => {
                let kek = auth_setup::key_encryption_key(&settings.store.database_url(), &settings.auth)?;
                let kid = auth_setup::rotate_key(&store, &kek).await?;
                println!("new signing key {kid}; servers sign with it from their next start");
                Ok(())
            }
        }
    })
}

async fn user(store: &tradelab_store::Store, c: UserCommand) -> Result<()> {
    match c {
        UserCommand::Add {
            username,
            role,
            password_stdin,
        } => {
            let password = if password_stdin {
                let mut text = String::new();
                std::io::stdin()
                    .read_to_string(&mut text)
                    .context("reading the password from standard input")?;
                Some(text.trim_end_matches(['\n', '\r']).to_string())
            } else {
                None
            };
            let added = users::add_user(store, &username, &role, password).await?;
            let role = added.user.role;
            match added.one_time_password {
                Some(secret) => println!(
                    "added {username} ({role}); one-time password: {secret} (shown once; it must be changed at first sign-in)"
                ),
                None => println!("added {username} ({role})"),
            }
        }
        UserCommand::List => {
            let users = store.users().await?;
            if users.is_empty() {
                println!("no users; `tradelab serve` creates the first administrator");
            }
            for u in users {
                let state = match (u.disabled_ms, u.must_change_password) {
                    (Some(_), _) => "disabled",
                    (None, true) => "must change password",
                    (None, false) => "active",
                };
                println!(
                    "{:<24} {:<11} {:<21} since {}",
                    u.username,
                    u.role,
                    state,
                    format_datetime(u.created_ms)
                );
            }
        }
        UserCommand::Disable { username } => {
            users::set_user_enabled(store, &username, false).await?;
            println!("disabled {username}; their tokens are revoked");
        }
        UserCommand::Enable { username } => {
            users::set_user_enabled(store, &username, true).await?;
            println!("enabled {username}");
        }
    }
    Ok(())
}

async fn client(store: &tradelab_store::Store, c: ClientCommand) -> Result<()> {
    match c {
        ClientCommand::Add {
            client_id,
            name,
            public,
            redirect_uris,
            grants,
            scope,
            resource_server,
        } => {
            users::check_name(&client_id, "client id")?;
            if public && resource_server {
                bail!("a resource server introspects tokens with its secret, so it cannot be --public");
            }
            for uri in &redirect_uris {
                redirect::check_registrable(uri).map_err(anyhow::Error::msg)?;
            }
            let mut grant_types = Vec::new();
            for g in &grants {
                grant_types.push(
                    match g.as_str() {
                        "authorization_code" => grant::AUTHORIZATION_CODE,
                        "refresh_token" => grant::REFRESH_TOKEN,
                        "client_credentials" => grant::CLIENT_CREDENTIALS,
                        "device_code" => grant::DEVICE_CODE,
                        other => bail!(
                            "`{other}` is not a grant type; use authorization_code, refresh_token, client_credentials or device_code"
                        ),
                    }
                    .to_string(),
                );
            }
            if grant_types.is_empty() {
                grant_types = if public || !redirect_uris.is_empty() {
                    vec![grant::AUTHORIZATION_CODE.into(), grant::REFRESH_TOKEN.into()]
                } else {
                    vec![grant::CLIENT_CREDENTIALS.into()]
                };
            }
            if public && grant_types.iter().any(|g| g == grant::CLIENT_CREDENTIALS) {
                bail!("a public client cannot use client_credentials (it has no secret); drop --public or the grant");
            }
            if grant_types.iter().any(|g| g == grant::AUTHORIZATION_CODE) && redirect_uris.is_empty() {
                bail!("the authorization_code grant needs at least one --redirect-uri");
            }
            let scopes = match scope {
                Some(s) => ScopeSet::parse(&s).map_err(anyhow::Error::msg)?,
                None => ScopeSet::all(),
            };
            let client_secret = (!public).then(|| secret::new_secret("tls_"));
            store
                .create_client(&ClientRecord {
                    client_id: client_id.clone(),
                    name,
                    secret_hash: client_secret.as_deref().map(secret::hash_secret),
                    redirect_uris,
                    grant_types,
                    scopes: scopes.to_string(),
                    resource_server,
                    created_ms: tradelab_core::time::now_ms(),
                })
                .await?;
            match client_secret {
                Some(s) => println!("added {client_id}; client secret: {s} (shown once; store it in a secret manager)"),
                None => println!("added public client {client_id}"),
            }
        }
        ClientCommand::List => {
            for c in store.clients().await? {
                println!(
                    "{:<20} {:<15} {:<40} grants: {}  scopes: {}  redirects: {}",
                    c.client_id,
                    match (&c.secret_hash, c.resource_server) {
                        (Some(_), true) => "resource server",
                        (Some(_), false) => "confidential",
                        (None, _) => "public",
                    },
                    c.name,
                    c.grant_types.join(","),
                    c.scopes,
                    c.redirect_uris.join(" ")
                );
            }
        }
        ClientCommand::Remove { client_id } => {
            users::remove_client(store, &client_id).await?;
            println!("removed {client_id}; its tokens are revoked");
        }
    }
    Ok(())
}
