//! What the authorization server needs before its first request, made
//! when missing: a signing key (rotated when old), the first
//! administrator, and the public client `tradelab login` uses. Shared by
//! `tradelab serve` at start and `tradelab auth` (the server need not run).

use anyhow::{Context, Result};
use tradelab_auth::grant::{AUTHORIZATION_CODE, CLI_CLIENT_ID, DEVICE_CODE, REFRESH_TOKEN};
use tradelab_auth::jwt::{KeyRing, SigningKey, ALGORITHM};
use tradelab_auth::AuthSettings;
use tradelab_auth::{password, scope};
use tradelab_core::time::now_ms;
use tradelab_store::oauth::ClientRecord;
use tradelab_store::Store;

/// The environment variable that sets the first administrator's password
/// (otherwise a random one is printed once).
pub const ADMIN_PASSWORD_ENV: &str = "TRADELAB_ADMIN_PASSWORD";

/// Makes a new signing key the current one; the old stays published.
pub async fn rotate_key(store: &Store) -> Result<String> {
    let (key, pkcs8) = SigningKey::generate();
    store
        .rotate_signing_key(&key.kid, ALGORITHM, &pkcs8)
        .await
        .context("saving a new signing key")?;
    Ok(key.kid)
}

/// The key ring: the current key (made, or rotated when older than
/// `key_rotation_days`) and every retired key whose tokens may still be
/// live. Returns it and whether a key was made.
pub async fn load_keys(store: &Store, settings: &AuthSettings) -> Result<(KeyRing, Option<String>)> {
    let max_age_ms = settings.key_rotation_days as i64 * 86_400_000;
    let current = |records: &[tradelab_store::oauth::SigningKeyRecord]| {
        records
            .iter()
            .filter(|k| k.retired_ms.is_none() && k.algorithm == ALGORITHM)
            .max_by_key(|k| k.created_ms)
            .cloned()
    };
    let mut made = None;
    let records = store.signing_keys().await.context("reading the signing keys")?;
    if current(&records).is_none_or(|k| now_ms() - k.created_ms > max_age_ms) {
        made = Some(rotate_key(store).await?);
    }
    // Tokens signed by a key retired longer ago than a token lives have expired.
    let lifetime_ms = (settings.access_token_secs + settings.clock_skew_secs) as i64 * 1000;
    store
        .drop_retired_keys(now_ms() - lifetime_ms)
        .await
        .context("dropping expired signing keys")?;
    let records = store.signing_keys().await.context("reading the signing keys")?;
    let active = current(&records).context("no current signing key after rotation")?;
    let signing = SigningKey::from_pkcs8(&active.pkcs8)
        .map_err(|e| anyhow::anyhow!("the signing key `{}` in the database is damaged: {e}", active.kid))?;
    let mut published = Vec::new();
    for r in records.iter().filter(|r| r.algorithm == ALGORITHM) {
        match SigningKey::from_pkcs8(&r.pkcs8) {
            Ok(k) => published.push(k.public()),
            Err(e) => eprintln!("warning: skipping the damaged signing key `{}`: {e}", r.kid),
        }
    }
    Ok((KeyRing { signing, published }, made))
}

/// Creates the first administrator when there is no enabled one; returns
/// the line to print once (the one-time password, if random).
pub async fn ensure_admin(store: &Store) -> Result<Option<String>> {
    if store.active_admins().await? > 0 {
        return Ok(None);
    }
    let (secret, from_env) = match std::env::var(ADMIN_PASSWORD_ENV) {
        Ok(p) if !p.is_empty() => {
            password::check_new_password(&p).map_err(|e| anyhow::anyhow!("{ADMIN_PASSWORD_ENV}: {e}"))?;
            (p, true)
        }
        _ => (password::random_password(), false),
    };
    let hash = tokio::task::spawn_blocking({
        let secret = secret.clone();
        move || password::hash_password(&secret)
    })
    .await?;
    for n in 1..100 {
        let name = if n == 1 {
            "admin".to_string()
        } else {
            format!("admin-{n}")
        };
        if store.user_by_name(&name).await?.is_some() {
            continue;
        }
        match store.create_user(&name, &hash, "admin", true).await {
            Ok(_) => {
                return Ok(Some(if from_env {
                    format!("created the administrator `{name}` with the password from {ADMIN_PASSWORD_ENV}; it must be changed at first sign-in")
                } else {
                    format!("created the administrator `{name}` with the one-time password {secret} (shown once; it must be changed at first sign-in)")
                }))
            }
            // Another server starting at the same moment made one.
            Err(_) if store.active_admins().await? > 0 => return Ok(None),
            Err(e) => return Err(e.into()),
        }
    }
    anyhow::bail!("could not find a free administrator name; add one with `tradelab auth user add`")
}

/// The public client `tradelab login` uses: loopback redirects (any port,
/// RFC 8252) and the device flow.
pub async fn ensure_cli_client(store: &Store) -> Result<()> {
    if store.client(CLI_CLIENT_ID).await?.is_some() {
        return Ok(());
    }
    let client = ClientRecord {
        client_id: CLI_CLIENT_ID.into(),
        name: "tradelab command line".into(),
        secret_hash: None,
        redirect_uris: vec!["http://127.0.0.1/callback".into(), "http://[::1]/callback".into()],
        grant_types: vec![AUTHORIZATION_CODE.into(), REFRESH_TOKEN.into(), DEVICE_CODE.into()],
        scopes: scope::ALL.join(" "),
        created_ms: now_ms(),
    };
    match store.create_client(&client).await {
        Ok(()) => Ok(()),
        Err(_) if store.client(CLI_CLIENT_ID).await?.is_some() => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// The issuer: `auth.issuer`, else `http://` and the listen address (the
/// loopback address when listening on all of them).
pub fn issuer_for(settings: &AuthSettings, local: std::net::SocketAddr) -> String {
    if !settings.issuer.is_empty() {
        return settings.issuer.clone();
    }
    let ip = match local.ip() {
        std::net::IpAddr::V4(v4) if v4.is_unspecified() => std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST),
        std::net::IpAddr::V6(v6) if v6.is_unspecified() => std::net::IpAddr::V6(std::net::Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    format!("http://{}", std::net::SocketAddr::new(ip, local.port()))
}

#[cfg(test)]
mod tests {
    use tradelab_auth::password::verify_password;

    use super::*;

    async fn store(dir: &std::path::Path) -> Store {
        Store::open(&crate::testing::sqlite_settings(dir).store.url)
            .await
            .unwrap()
    }

    fn kids(ring: &KeyRing) -> Vec<String> {
        let mut kids: Vec<String> = ring.published.iter().map(|k| k.kid.clone()).collect();
        kids.sort();
        kids
    }

    /// Lets the clock pass a millisecond, so ages and retirements compare strictly.
    async fn tick() {
        tokio::time::sleep(std::time::Duration::from_millis(3)).await;
    }

    #[tokio::test]
    async fn a_key_is_made_once_rotated_when_old_and_retired_keys_stay_published_while_their_tokens_live() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(dir.path()).await;
        let settings = AuthSettings::default();
        let (ring, made) = load_keys(&store, &settings).await.unwrap();
        let first = made.expect("the first start makes a key");
        assert_eq!(ring.signing.kid, first);
        assert_eq!(kids(&ring), vec![first.clone()]);
        let (ring, made) = load_keys(&store, &settings).await.unwrap();
        assert_eq!(
            (made, ring.signing.kid.clone()),
            (None, first.clone()),
            "later starts reuse it"
        );

        let second = rotate_key(&store).await.unwrap();
        let (ring, made) = load_keys(&store, &settings).await.unwrap();
        assert_eq!((made, ring.signing.kid.clone()), (None, second.clone()));
        let mut both = vec![first.clone(), second.clone()];
        both.sort();
        assert_eq!(kids(&ring), both, "tokens the old key signed still verify");

        // A current key older than `key_rotation_days` is replaced at start.
        tick().await;
        let aged = AuthSettings {
            key_rotation_days: 0,
            ..AuthSettings::default()
        };
        let (ring, made) = load_keys(&store, &aged).await.unwrap();
        let third = made.expect("an old key is rotated");
        assert_eq!(ring.signing.kid, third);
        assert_eq!(kids(&ring).len(), 3);

        // Once no token a retired key signed can still be live, it is dropped.
        tick().await;
        let short_lived = AuthSettings {
            access_token_secs: 0,
            clock_skew_secs: 0,
            ..AuthSettings::default()
        };
        let (ring, made) = load_keys(&store, &short_lived).await.unwrap();
        assert_eq!((made, kids(&ring)), (None, vec![third]));
    }

    #[tokio::test]
    async fn a_damaged_current_key_is_named_and_a_damaged_retired_one_is_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(dir.path()).await;
        store
            .rotate_signing_key("broken", ALGORITHM, b"not a PKCS#8 document")
            .await
            .unwrap();
        let e = load_keys(&store, &AuthSettings::default()).await.err().unwrap();
        assert!(
            e.to_string()
                .contains("the signing key `broken` in the database is damaged"),
            "{e}"
        );
        let good = rotate_key(&store).await.unwrap();
        let (ring, made) = load_keys(&store, &AuthSettings::default()).await.unwrap();
        assert_eq!(
            (made, ring.signing.kid.clone(), kids(&ring)),
            (None, good.clone(), vec![good])
        );
    }

    #[tokio::test]
    async fn the_first_administrator_gets_a_one_time_password_and_is_made_only_while_none_is_enabled() {
        if std::env::var(ADMIN_PASSWORD_ENV).is_ok() {
            eprintln!("skipped: {ADMIN_PASSWORD_ENV} is set in this environment");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let store = store(dir.path()).await;
        let line = ensure_admin(&store).await.unwrap().expect("an administrator is made");
        assert!(line.starts_with("created the administrator `admin`"), "{line}");
        let secret = line
            .split("one-time password ")
            .nth(1)
            .and_then(|rest| rest.split(' ').next())
            .unwrap();
        let admin = store.user_by_name("admin").await.unwrap().unwrap();
        assert_eq!(admin.role, "admin");
        assert!(admin.must_change_password, "a one-time password must be changed");
        assert!(verify_password(secret, &admin.password_hash));
        assert_eq!(ensure_admin(&store).await.unwrap(), None, "one is enough");

        // With the only administrator disabled, the next start makes another
        // beside it rather than touching the disabled account.
        store.set_user_disabled("admin", true).await.unwrap();
        let line = ensure_admin(&store).await.unwrap().unwrap();
        assert!(line.starts_with("created the administrator `admin-2`"), "{line}");
        assert_eq!(store.active_admins().await.unwrap(), 1);
    }

    #[tokio::test]
    async fn the_command_lines_client_is_public_loopback_and_device_flow_and_made_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(dir.path()).await;
        ensure_cli_client(&store).await.unwrap();
        ensure_cli_client(&store).await.unwrap();
        let clients = store.clients().await.unwrap();
        assert_eq!(clients.len(), 1);
        let c = &clients[0];
        assert_eq!(c.client_id, CLI_CLIENT_ID);
        assert_eq!(c.secret_hash, None, "a public client");
        assert_eq!(c.redirect_uris, ["http://127.0.0.1/callback", "http://[::1]/callback"]);
        assert_eq!(c.grant_types, [AUTHORIZATION_CODE, REFRESH_TOKEN, DEVICE_CODE]);
        assert_eq!(c.scopes, scope::ALL.join(" "));
    }

    #[test]
    fn the_issuer_is_the_setting_else_the_listen_address_with_loopback_for_all_interfaces() {
        let default = AuthSettings::default();
        let issuer = |addr: &str| issuer_for(&default, addr.parse().unwrap());
        assert_eq!(issuer("0.0.0.0:8080"), "http://127.0.0.1:8080");
        assert_eq!(issuer("[::]:8080"), "http://[::1]:8080");
        assert_eq!(issuer("192.168.1.5:80"), "http://192.168.1.5:80");
        let set = AuthSettings {
            issuer: "https://tradelab.example".into(),
            ..AuthSettings::default()
        };
        assert_eq!(
            issuer_for(&set, "0.0.0.0:8080".parse().unwrap()),
            "https://tradelab.example"
        );
    }
}
