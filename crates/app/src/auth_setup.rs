//! What the authorization server needs before its first request, made
//! when missing: a signing key (rotated when old), the first
//! administrator, and the public client `tradelab login` uses. Shared by
//! `tradelab serve` at start and `tradelab auth` (the server need not run).

use anyhow::{Context, Result};
use tradelab_auth::grant::{AUTHORIZATION_CODE, CLI_CLIENT_ID, DASHBOARD_CLIENT_ID, DEVICE_CODE, REFRESH_TOKEN};
use tradelab_auth::jwt::{KeyRing, SigningKey, ALGORITHM};
use tradelab_auth::sealed::{is_sealed, KeyEncryptionKey};
use tradelab_auth::AuthSettings;
use tradelab_auth::{password, scope};
use tradelab_core::time::now_ms;
use tradelab_store::oauth::{ClientRecord, SigningKeyRecord};
use tradelab_store::Store;

/// The environment variable that sets the first administrator's password
/// (otherwise a random one is printed once).
pub const ADMIN_PASSWORD_ENV: &str = "TRADELAB_ADMIN_PASSWORD";

/// The environment variable holding the key-encryption key (64 hex
/// digits); it overrides `auth.key_file`.
pub const KEY_ENCRYPTION_KEY_ENV: &str = "TRADELAB_KEY_ENCRYPTION_KEY";

/// The key that seals signing keys in the database (issue 19 finding 1):
/// from `TRADELAB_KEY_ENCRYPTION_KEY`, else from `auth.key_file`, else
/// from a file beside an SQLite database. A missing file is made (mode
/// 0600); a file other users can read is refused. PostgreSQL has no
/// default: several servers share its keys, so they must share the KEK.
pub fn key_encryption_key(store_url: &str, settings: &AuthSettings) -> Result<KeyEncryptionKey> {
    key_encryption_key_from(
        std::env::var(KEY_ENCRYPTION_KEY_ENV).ok().as_deref(),
        store_url,
        settings,
    )
}

fn key_encryption_key_from(env: Option<&str>, store_url: &str, settings: &AuthSettings) -> Result<KeyEncryptionKey> {
    if let Some(text) = env.filter(|t| !t.trim().is_empty()) {
        return KeyEncryptionKey::from_hex(text)
            .map_err(|e| anyhow::anyhow!("{KEY_ENCRYPTION_KEY_ENV} {e}; make one with `openssl rand -hex 32`"));
    }
    let file = if !settings.key_file.is_empty() {
        std::path::PathBuf::from(&settings.key_file)
    } else if let Some(db) = tradelab_store::sqlite_file(store_url) {
        std::path::PathBuf::from(format!("{}.key", db.display()))
    } else if store_url.starts_with("sqlite:") {
        // An in-memory database lives as long as the process: so may its key.
        return Ok(KeyEncryptionKey::generate());
    } else {
        anyhow::bail!(
            "signing keys in PostgreSQL are sealed with a key-encryption key that every server must share: set {KEY_ENCRYPTION_KEY_ENV} (make one with `openssl rand -hex 32`) or auth.key_file (a file with mode 0600)"
        );
    };
    read_or_make_key_file(&file)
}

fn read_or_make_key_file(file: &std::path::Path) -> Result<KeyEncryptionKey> {
    #[cfg(unix)]
    {
        use std::io::Write;
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(file)
        {
            Ok(mut f) => {
                let kek = KeyEncryptionKey::generate();
                f.write_all(format!("{}\n", kek.to_hex()).as_bytes())
                    .and_then(|_| f.sync_all())
                    .with_context(|| format!("writing the key-encryption key {}", file.display()))?;
                return Ok(kek);
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => {
                return Err(anyhow::Error::new(e).context(format!(
                    "making the key-encryption key {}; check its folder, or set auth.key_file",
                    file.display()
                )))
            }
        }
        let mode = std::fs::metadata(file)?.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            anyhow::bail!(
                "the key-encryption key {} can be read by other users (mode {mode:o}); run `chmod 600 {}` and start again",
                file.display(),
                file.display()
            );
        }
    }
    let text = std::fs::read_to_string(file).with_context(|| {
        format!(
            "reading the key-encryption key {}; set auth.key_file or {KEY_ENCRYPTION_KEY_ENV}",
            file.display()
        )
    })?;
    KeyEncryptionKey::from_hex(&text).map_err(|e| anyhow::anyhow!("the key-encryption key {} {e}", file.display()))
}

/// Makes a new signing key the current one, sealed; the old stays published.
pub async fn rotate_key(store: &Store, kek: &KeyEncryptionKey) -> Result<String> {
    let (key, pkcs8) = SigningKey::generate();
    store
        .rotate_signing_key(&key.kid, ALGORITHM, &kek.seal(&key.kid, &pkcs8))
        .await
        .context("saving a new signing key")?;
    Ok(key.kid)
}

/// A stored key's PKCS#8 document: opened with the KEK, or (stored bare
/// by a version before sealing) sealed in place now.
async fn unseal(store: &Store, kek: &KeyEncryptionKey, r: &SigningKeyRecord) -> Result<Vec<u8>> {
    if is_sealed(&r.private_key) {
        return kek.open(&r.kid, &r.private_key).map_err(|e| anyhow::anyhow!("{e}"));
    }
    store
        .reseal_signing_key(&r.kid, &kek.seal(&r.kid, &r.private_key))
        .await
        .context("sealing a signing key stored bare")?;
    Ok(r.private_key.clone())
}

/// The key ring: the current key (made, or rotated when older than
/// `key_rotation_days`) and every retired key whose tokens may still be
/// live. Returns it and whether a key was made.
pub async fn load_keys(
    store: &Store,
    settings: &AuthSettings,
    kek: &KeyEncryptionKey,
) -> Result<(KeyRing, Option<String>)> {
    let max_age_ms = settings.key_rotation_days as i64 * 86_400_000;
    let current = |records: &[SigningKeyRecord]| {
        records
            .iter()
            .filter(|k| k.retired_ms.is_none() && k.algorithm == ALGORITHM)
            .max_by_key(|k| k.created_ms)
            .cloned()
    };
    let mut made = None;
    let records = store.signing_keys().await.context("reading the signing keys")?;
    if current(&records).is_none_or(|k| now_ms() - k.created_ms > max_age_ms) {
        made = Some(rotate_key(store, kek).await?);
    }
    // Tokens signed by a key retired longer ago than a token lives have expired.
    let lifetime_ms = (settings.access_token_secs + settings.clock_skew_secs) as i64 * 1000;
    store
        .drop_retired_keys(now_ms() - lifetime_ms)
        .await
        .context("dropping expired signing keys")?;
    let records = store.signing_keys().await.context("reading the signing keys")?;
    let active = current(&records).context("no current signing key after rotation")?;
    let signing = unseal(store, kek, &active)
        .await
        .and_then(|pkcs8| SigningKey::from_pkcs8(&pkcs8).map_err(anyhow::Error::msg))
        .map_err(|e| {
            anyhow::anyhow!(
                "the signing key `{}` in the database is damaged or sealed with another key-encryption key ({e}); restore the key file or {KEY_ENCRYPTION_KEY_ENV} it was sealed with, or run `tradelab auth rotate-key` to start a new key (tokens signed by the old one stop verifying)",
                active.kid
            )
        })?;
    let mut published = Vec::new();
    for r in records.iter().filter(|r| r.algorithm == ALGORITHM) {
        let key = unseal(store, kek, r)
            .await
            .and_then(|pkcs8| SigningKey::from_pkcs8(&pkcs8).map_err(anyhow::Error::msg));
        match key {
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
        resource_server: false,
        created_ms: now_ms(),
    };
    match store.create_client(&client).await {
        Ok(()) => Ok(()),
        Err(_) if store.client(CLI_CLIENT_ID).await?.is_some() => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// The redirect URIs of the dashboard's client: its `/callback` on this
/// server's issuer and, for a browser on this machine, on loopback (any
/// port, RFC 8252).
pub fn dashboard_redirect_uris(issuer: &str) -> Vec<String> {
    let mut uris = vec![
        "http://127.0.0.1/callback".to_string(),
        "http://[::1]/callback".to_string(),
    ];
    let own = format!("{}/callback", issuer.trim_end_matches('/'));
    if !uris
        .iter()
        .any(|u| tradelab_auth::redirect::matches(std::slice::from_ref(u), &own))
    {
        uris.push(own);
    }
    uris
}

/// The public client the web dashboard signs in with, made at first start;
/// its redirect URIs follow the issuer at every start.
pub async fn ensure_dashboard_client(store: &Store, issuer: &str) -> Result<()> {
    let uris = dashboard_redirect_uris(issuer);
    if let Some(existing) = store.client(DASHBOARD_CLIENT_ID).await? {
        if existing.redirect_uris != uris {
            store.set_client_redirect_uris(DASHBOARD_CLIENT_ID, &uris).await?;
        }
        return Ok(());
    }
    let client = ClientRecord {
        client_id: DASHBOARD_CLIENT_ID.into(),
        name: "tradelab dashboard".into(),
        secret_hash: None,
        redirect_uris: uris,
        grant_types: vec![AUTHORIZATION_CODE.into(), REFRESH_TOKEN.into()],
        scopes: scope::ALL.join(" "),
        resource_server: false,
        created_ms: now_ms(),
    };
    match store.create_client(&client).await {
        Ok(()) => Ok(()),
        Err(_) if store.client(DASHBOARD_CLIENT_ID).await?.is_some() => Ok(()),
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
        let kek = KeyEncryptionKey::generate();
        let (ring, made) = load_keys(&store, &settings, &kek).await.unwrap();
        let first = made.expect("the first start makes a key");
        assert_eq!(ring.signing.kid, first);
        assert_eq!(kids(&ring), vec![first.clone()]);
        let (ring, made) = load_keys(&store, &settings, &kek).await.unwrap();
        assert_eq!(
            (made, ring.signing.kid.clone()),
            (None, first.clone()),
            "later starts reuse it"
        );

        let second = rotate_key(&store, &kek).await.unwrap();
        let (ring, made) = load_keys(&store, &settings, &kek).await.unwrap();
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
        let (ring, made) = load_keys(&store, &aged, &kek).await.unwrap();
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
        let (ring, made) = load_keys(&store, &short_lived, &kek).await.unwrap();
        assert_eq!((made, kids(&ring)), (None, vec![third]));
    }

    #[tokio::test]
    async fn a_damaged_current_key_is_named_and_a_damaged_retired_one_is_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(dir.path()).await;
        let kek = KeyEncryptionKey::generate();
        store
            .rotate_signing_key("broken", ALGORITHM, b"not a PKCS#8 document")
            .await
            .unwrap();
        let e = load_keys(&store, &AuthSettings::default(), &kek).await.err().unwrap();
        assert!(
            e.to_string()
                .contains("the signing key `broken` in the database is damaged"),
            "{e}"
        );
        let good = rotate_key(&store, &kek).await.unwrap();
        let (ring, made) = load_keys(&store, &AuthSettings::default(), &kek).await.unwrap();
        assert_eq!(
            (made, ring.signing.kid.clone(), kids(&ring)),
            (None, good.clone(), vec![good])
        );
    }

    /// Issue 19 finding 1: what the database holds cannot sign a token
    /// without the key-encryption key kept outside it.
    #[tokio::test]
    async fn signing_keys_are_sealed_at_rest_and_need_their_key_encryption_key() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(dir.path()).await;
        let kek = KeyEncryptionKey::generate();
        let (ring, _) = load_keys(&store, &AuthSettings::default(), &kek).await.unwrap();
        let stored = store.signing_keys().await.unwrap();
        assert_eq!(stored.len(), 1);
        assert!(is_sealed(&stored[0].private_key));
        assert!(
            SigningKey::from_pkcs8(&stored[0].private_key).is_err(),
            "the stored bytes are no key"
        );

        // Another KEK opens nothing, and says how to recover.
        let other = KeyEncryptionKey::generate();
        let e = load_keys(&store, &AuthSettings::default(), &other)
            .await
            .err()
            .unwrap()
            .to_string();
        assert!(
            e.contains(&format!("`{}`", ring.signing.kid)) && e.contains("rotate-key"),
            "{e}"
        );
        // A new key starts over; the unreadable old one is left unpublished.
        let fresh = rotate_key(&store, &other).await.unwrap();
        let (ring, _) = load_keys(&store, &AuthSettings::default(), &other).await.unwrap();
        assert_eq!((ring.signing.kid.clone(), kids(&ring)), (fresh.clone(), vec![fresh]));
    }

    #[tokio::test]
    async fn a_key_stored_bare_by_an_older_version_is_sealed_in_place() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(dir.path()).await;
        let (key, pkcs8) = SigningKey::generate();
        store.rotate_signing_key(&key.kid, ALGORITHM, &pkcs8).await.unwrap();
        let kek = KeyEncryptionKey::generate();
        let (ring, made) = load_keys(&store, &AuthSettings::default(), &kek).await.unwrap();
        assert_eq!((made, ring.signing.kid.clone()), (None, key.kid.clone()));
        let stored = store.signing_keys().await.unwrap();
        assert!(is_sealed(&stored[0].private_key));
        assert_eq!(kek.open(&key.kid, &stored[0].private_key).unwrap(), pkcs8);
    }

    #[cfg(unix)]
    #[test]
    fn the_key_encryption_key_comes_from_the_environment_a_private_file_or_beside_sqlite() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let db_url = format!("sqlite://{}", dir.path().join("t.db").display());
        let defaults = AuthSettings::default();
        let seal = |k: &KeyEncryptionKey| k.seal("x", b"s");

        // Beside the database: made once, 0600, then reused.
        let first = key_encryption_key_from(None, &db_url, &defaults).unwrap();
        let file = dir.path().join("t.db.key");
        assert_eq!(std::fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o600);
        let again = key_encryption_key_from(None, &db_url, &defaults).unwrap();
        assert_eq!(again.open("x", &seal(&first)).unwrap(), b"s");

        // Readable by others: refused with the fix.
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = key_encryption_key_from(None, &db_url, &defaults)
            .unwrap_err()
            .to_string();
        assert!(e.contains(&format!("chmod 600 {}", file.display())), "{e}");

        // The environment overrides; a bad value is named.
        let env = KeyEncryptionKey::generate();
        let got = key_encryption_key_from(Some(&env.to_hex()), &db_url, &defaults).unwrap();
        assert_eq!(got.open("x", &seal(&env)).unwrap(), b"s");
        let e = key_encryption_key_from(Some("nope"), &db_url, &defaults)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains(KEY_ENCRYPTION_KEY_ENV) && e.contains("openssl rand -hex 32"),
            "{e}"
        );

        // auth.key_file, and PostgreSQL with neither.
        let named = AuthSettings {
            key_file: dir.path().join("kek").display().to_string(),
            ..AuthSettings::default()
        };
        let pg = "postgres://u@127.0.0.1/db";
        key_encryption_key_from(None, pg, &named).unwrap();
        assert!(dir.path().join("kek").exists());
        let e = key_encryption_key_from(None, pg, &defaults).unwrap_err().to_string();
        assert!(e.contains(KEY_ENCRYPTION_KEY_ENV) && e.contains("auth.key_file"), "{e}");
        std::fs::write(dir.path().join("short"), "abcd").unwrap();
        std::fs::set_permissions(dir.path().join("short"), std::fs::Permissions::from_mode(0o600)).unwrap();
        let short = AuthSettings {
            key_file: dir.path().join("short").display().to_string(),
            ..AuthSettings::default()
        };
        let e = key_encryption_key_from(None, pg, &short).unwrap_err().to_string();
        assert!(e.contains("holds 2 bytes"), "{e}");
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

    #[tokio::test]
    async fn the_dashboards_client_is_public_and_follows_the_issuer() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(dir.path()).await;
        ensure_dashboard_client(&store, "http://127.0.0.1:8080").await.unwrap();
        ensure_dashboard_client(&store, "http://127.0.0.1:8080").await.unwrap();
        let c = store.client(DASHBOARD_CLIENT_ID).await.unwrap().unwrap();
        assert_eq!(c.secret_hash, None, "a public client");
        assert_eq!(c.grant_types, [AUTHORIZATION_CODE, REFRESH_TOKEN]);
        // A loopback issuer is covered by the any-port loopback URIs.
        assert_eq!(c.redirect_uris, ["http://127.0.0.1/callback", "http://[::1]/callback"]);
        assert!(tradelab_auth::redirect::matches(
            &c.redirect_uris,
            "http://127.0.0.1:8080/callback"
        ));
        assert!(!tradelab_auth::redirect::matches(
            &c.redirect_uris,
            "http://127.0.0.1:8080/evil"
        ));
        // Behind a public name, the name's callback joins them, and only it.
        ensure_dashboard_client(&store, "https://lab.example.com/")
            .await
            .unwrap();
        let c = store.client(DASHBOARD_CLIENT_ID).await.unwrap().unwrap();
        assert!(tradelab_auth::redirect::matches(
            &c.redirect_uris,
            "https://lab.example.com/callback"
        ));
        assert!(!tradelab_auth::redirect::matches(
            &c.redirect_uris,
            "https://evil.example.com/callback"
        ));
        assert_eq!(store.clients().await.unwrap().len(), 1);
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
