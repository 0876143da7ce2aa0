//! Opening the database: URL checks, pool, SQLite pragmas, migrations.

use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, ConnectOptions, Executor};

use crate::error::StoreError;

/// Which database a store talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// An SQLite file (`sqlite://PATH`), in WAL mode.
    Sqlite,
    /// A PostgreSQL server (`postgres://` or `postgresql://`).
    Postgres,
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
        sqlx::any::install_default_drivers();
        let backend = Backend::of_url(url)?;
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

    /// Closes the pool, waiting for connections in use.
    pub async fn close(&self) {
        self.metrics_pool.close().await;
        self.pool.close().await;
    }
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
