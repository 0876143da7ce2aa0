//! Opening the database: URL checks, pool, SQLite pragmas, migrations.

use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, ConnectOptions, Executor, Row};

use crate::error::StoreError;

/// Which database a store talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// An SQLite file (`sqlite://PATH`), in WAL mode.
    Sqlite,
    /// A PostgreSQL server (`postgres://` or `postgresql://`).
    Postgres,
}

/// What a commit survives once it returns.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Durability {
    /// A power loss: each commit waits for the disk (the default).
    #[default]
    PowerLoss,
    /// The process being killed, not a power loss or an operating-system
    /// crash: a commit is handed to the OS without waiting for the disk
    /// (SQLite's WAL with `synchronous = NORMAL`, PostgreSQL's
    /// `synchronous_commit = off`), about ten times faster. For the trading
    /// journal, whose idempotent client order ids make a lost last write
    /// harmless: a resumed session re-sends it under the same id.
    ProcessCrash,
}

/// A connection pool to the tradelab database, migrated.
#[derive(Clone)]
pub struct Store {
    pub(crate) pool: AnyPool,
    /// Metric points only. On PostgreSQL its sessions commit without
    /// waiting for the WAL flush (`synchronous_commit = off`): a database
    /// crash can lose the last fraction of a second of metric points, never
    /// a run, model, backtest, decision or job, and a write no longer waits
    /// for a disk flush (BENCHMARKS.md has both figures). On SQLite it is
    /// the main pool.
    pub(crate) metrics_pool: AnyPool,
    backend: Backend,
}

/// URL parameters a PostgreSQL URL may carry that this driver cannot honour.
fn refuse_unsupported(url: &str) -> Result<(), StoreError> {
    let query = url.split_once('?').map(|(_, q)| q).unwrap_or("");
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        if key == "channel_binding" && value == "require" {
            return Err(StoreError::Config(
                "the URL asks for channel_binding=require, which this build's PostgreSQL driver cannot do; remove the parameter (TLS with sslmode=verify-full still protects the connection)".into(),
            ));
        }
    }
    Ok(())
}

impl Backend {
    /// The database a URL names, after the checks every connection to it
    /// must pass (the store's, and the job queue's beside it).
    pub fn of_url(url: &str) -> Result<Backend, StoreError> {
        if url.starts_with("sqlite:") {
            Ok(Backend::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            refuse_unsupported(url)?;
            Ok(Backend::Postgres)
        } else {
            Err(StoreError::Config(format!(
                "`{}` is not a database URL; use sqlite://PATH or postgres://USER@HOST:PORT/DB",
                redact(url)
            )))
        }
    }
}

impl Store {
    /// Connects to `url` and runs the migrations. `sqlite://PATH` (created
    /// if missing) or `postgres://user@host:port/db`.
    pub async fn open(url: &str) -> Result<Store, StoreError> {
        Self::open_with(url, Durability::PowerLoss).await
    }

    /// [`open`](Self::open) with commits as durable as `durability` asks.
    pub async fn open_with(url: &str, durability: Durability) -> Result<Store, StoreError> {
        sqlx::any::install_default_drivers();
        let backend = Backend::of_url(url)?;
        if backend == Backend::Sqlite {
            secure_sqlite_file(url)?;
        }
        let url = if backend == Backend::Sqlite && !url.contains("mode=") {
            // Create the file on first use.
            format!("{url}{}mode=rwc", if url.contains('?') { '&' } else { '?' })
        } else {
            url.to_string()
        };
        let options: AnyConnectOptions = url
            .parse::<AnyConnectOptions>()
            .map_err(|e| StoreError::Config(format!("{}: {e}", redact(&url))))?
            .disable_statement_logging();
        let pool = AnyPoolOptions::new()
            .max_connections(8)
            .acquire_timeout(Duration::from_secs(10))
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        // WAL lets readers and one writer work at once across
                        // processes; writers wait for each other instead of
                        // failing with "database is locked".
                        conn.execute("PRAGMA journal_mode = WAL").await?;
                        conn.execute("PRAGMA busy_timeout = 10000").await?;
                        conn.execute("PRAGMA foreign_keys = ON").await?;
                    }
                    if durability == Durability::ProcessCrash {
                        let relax = match backend {
                            Backend::Sqlite => "PRAGMA synchronous = NORMAL",
                            Backend::Postgres => "SET synchronous_commit = off",
                        };
                        conn.execute(relax).await?;
                    }
                    Ok(())
                })
            })
            .connect_with(options.clone())
            .await
            .map_err(|source| StoreError::Connect {
                url: redact(&url),
                source,
            })?;
        let metrics_pool = match backend {
            Backend::Sqlite => pool.clone(),
            Backend::Postgres => AnyPoolOptions::new()
                .max_connections(4)
                .acquire_timeout(Duration::from_secs(10))
                .after_connect(|conn, _| {
                    Box::pin(async move {
                        conn.execute("SET synchronous_commit = off").await?;
                        Ok(())
                    })
                })
                // Connects on first use, so opening costs nothing more.
                .connect_lazy_with(options),
        };
        let store = Store {
            pool,
            metrics_pool,
            backend,
        };
        crate::migrate::run(&store).await?;
        Ok(store)
    }

    /// Which database this store is on (for the few statements that
    /// differ, and for status pages).
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Whether anything was ever recorded: a run, model, backtest, decision,
    /// job, user or client. A database that holds none of them is only its
    /// schema, safe to remove (see `tradelab_app::record::discard_unused`).
    pub async fn holds_records(&self) -> Result<bool, StoreError> {
        let tables = [
            "runs",
            "models",
            "backtests",
            "decisions",
            "tradelab_jobs",
            "auth_users",
            "auth_clients",
        ];
        for table in tables {
            let row = sqlx::query(&format!("SELECT COUNT(*) FROM {table}"))
                .fetch_one(&self.pool)
                .await?;
            if row.try_get::<i64, _>(0)? > 0 {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Closes the pool, waiting for connections in use.
    pub async fn close(&self) {
        self.metrics_pool.close().await;
        self.pool.close().await;
    }
}

/// The file an `sqlite:` URL names; `None` for an in-memory database or
/// another scheme.
pub fn sqlite_file(url: &str) -> Option<std::path::PathBuf> {
    let rest = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:"))?;
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    let in_memory = path.is_empty() || path == ":memory:" || query.split('&').any(|p| p == "mode=memory");
    (!in_memory).then(|| std::path::PathBuf::from(path))
}

/// The database holds password hashes and the token-signing keys (sealed,
/// but still), so only its owner may read it (issue 19 finding 1): the
/// file is made 0600 when missing (SQLite gives its `-wal` and `-shm`
/// files the database's mode), and a database, `-wal` or `-shm` file that
/// other users can open is refused with the command that fixes it.
/// Called before anything else opens the file (the store, the job queue).
pub fn secure_sqlite_file(url: &str) -> Result<(), StoreError> {
    let Some(path) = sqlite_file(url) else {
        return Ok(());
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
        {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => {
                return Err(StoreError::Config(format!(
                "cannot create the database {}: {e}; check that its folder exists and is writable, or set store.url",
                path.display()
            )))
            }
        }
        let mut exposed = Vec::new();
        for suffix in ["", "-wal", "-shm"] {
            let file = std::path::PathBuf::from(format!("{}{suffix}", path.display()));
            if let Ok(meta) = std::fs::metadata(&file) {
                let mode = meta.permissions().mode() & 0o777;
                if mode & 0o077 != 0 {
                    exposed.push((file, mode));
                }
            }
        }
        if let Some((first, mode)) = exposed.first() {
            let files: Vec<String> = exposed.iter().map(|(f, _)| f.display().to_string()).collect();
            return Err(StoreError::Config(format!(
                "the database {} can be opened by other users (mode {mode:o}), and it holds password hashes and signing keys; run `chmod 600 {}` and start again",
                first.display(),
                files.join(" ")
            )));
        }
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

/// The URL without its passwords, for messages: the password of the
/// userinfo (which may itself contain `@`: the host follows the last one)
/// and the values of `password` / `sslpassword` query parameters.
pub fn redact(url: &str) -> String {
    let Some(s) = url.find("://") else {
        return url.to_string();
    };
    let after = &url[s + 3..];
    let authority_end = after.find(['/', '?', '#']).unwrap_or(after.len());
    let authority = &after[..authority_end];
    let mut out = url[..s + 3].to_string();
    match authority.rfind('@') {
        Some(at) => {
            let creds = &authority[..at];
            match creds.split_once(':') {
                Some((user, _)) => out.push_str(&format!("{user}:***")),
                None => out.push_str(creds),
            }
            out.push_str(&authority[at..]);
        }
        None => out.push_str(authority),
    }
    let rest = &after[authority_end..];
    match rest.split_once('?') {
        Some((path, query)) => {
            out.push_str(path);
            out.push('?');
            let (query, fragment) = query.split_once('#').map_or((query, None), |(q, f)| (q, Some(f)));
            let params: Vec<String> = query
                .split('&')
                .map(|p| match p.split_once('=') {
                    Some((k, _)) if ["password", "sslpassword"].contains(&k.to_ascii_lowercase().as_str()) => {
                        format!("{k}=***")
                    }
                    _ => p.to_string(),
                })
                .collect();
            out.push_str(&params.join("&"));
            if let Some(f) = fragment {
                out.push('#');
                out.push_str(f);
            }
        }
        None => out.push_str(rest),
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_redacted_and_channel_binding_is_refused() {
        assert_eq!(redact("postgres://u:secret@h/db"), "postgres://u:***@h/db");
        assert_eq!(redact("sqlite://x.db"), "sqlite://x.db");
        // Issue 19 finding 11: a password with `@`, and passwords in the query.
        assert_eq!(redact("postgres://u:p@ss@h:5432/db"), "postgres://u:***@h:5432/db");
        assert_eq!(
            redact("postgres://u@h/db?sslmode=require&password=secret&PassWord=x&sslpassword=k"),
            "postgres://u@h/db?sslmode=require&password=***&PassWord=***&sslpassword=***"
        );
        assert_eq!(redact("postgres://h/db?user=u"), "postgres://h/db?user=u");
        assert_eq!(
            redact("postgres://u:s@h?password=s#frag"),
            "postgres://u:***@h?password=***#frag"
        );
        assert_eq!(redact("not a url"), "not a url");
        let e = refuse_unsupported("postgres://u@h/db?sslmode=verify-full&channel_binding=require").unwrap_err();
        assert!(e.to_string().contains("channel_binding"), "{e}");
        assert!(refuse_unsupported("postgres://u@h/db?sslmode=verify-full").is_ok());
    }

    #[test]
    fn the_file_an_sqlite_url_names() {
        let f = |u: &str| sqlite_file(u).map(|p| p.display().to_string());
        assert_eq!(f("sqlite://tradelab.db").as_deref(), Some("tradelab.db"));
        assert_eq!(f("sqlite:///tmp/a.db?mode=rwc").as_deref(), Some("/tmp/a.db"));
        assert_eq!(f("sqlite:x.db").as_deref(), Some("x.db"));
        assert_eq!(f("sqlite::memory:"), None);
        assert_eq!(f("sqlite://a.db?mode=memory&cache=shared"), None);
        assert_eq!(f("postgres://h/db"), None);
    }

    /// Issue 19 finding 1: a new database and its WAL files are the
    /// owner's alone, and one other users can read is refused by name.
    #[cfg(unix)]
    #[tokio::test]
    async fn a_new_database_is_private_and_a_readable_one_is_refused_with_the_fix() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("t.db");
        let url = format!("sqlite://{}", db.display());
        let store = Store::open(&url).await.unwrap();
        store.experiment("e").await.unwrap();
        let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        // While it is open, SQLite's -wal and -shm files exist, with the
        // database's mode.
        for suffix in ["", "-wal", "-shm"] {
            let f = std::path::PathBuf::from(format!("{}{suffix}", db.display()));
            assert_eq!(mode(&f), 0o600, "{}", f.display());
        }
        // A second process finding a -wal file others can read refuses it.
        let wal = dir.path().join("t.db-wal");
        std::fs::set_permissions(&wal, std::fs::Permissions::from_mode(0o640)).unwrap();
        let e = Store::open(&url).await.err().unwrap().to_string();
        assert!(e.contains(&format!("chmod 600 {}", wal.display())), "{e}");
        std::fs::set_permissions(&wal, std::fs::Permissions::from_mode(0o600)).unwrap();
        store.close().await;

        std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = Store::open(&url).await.err().unwrap().to_string();
        assert!(
            e.contains("can be opened by other users (mode 644)") && e.contains(&format!("chmod 600 {}", db.display())),
            "{e}"
        );
        std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o600)).unwrap();
        Store::open(&url).await.unwrap().close().await;

        let e = Store::open(&format!("sqlite://{}/no/such/folder/t.db", dir.path().display()))
            .await
            .err()
            .unwrap()
            .to_string();
        assert!(
            e.contains("cannot create the database") && e.contains("folder exists"),
            "{e}"
        );
    }

    #[tokio::test]
    async fn a_bad_url_is_named_without_its_password() {
        let e = Store::open("mysql://u:pw@h/db").await.err().unwrap().to_string();
        assert!(e.contains("not a database URL") && !e.contains("pw"), "{e}");
        let e = Store::open("postgres://u@h/db?channel_binding=require")
            .await
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("channel_binding"), "{e}");
    }
}
