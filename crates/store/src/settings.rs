//! The `store:` section: where runs, models, backtests and decisions are
//! recorded, and how jobs are leased.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use tradelab_core::settings::Validator;

/// Where runs, metrics, models, backtests and decisions are recorded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreSettings {
    /// `sqlite://PATH` or `postgres://USER@HOST:PORT/DB`;
    /// `TRADELAB_DATABASE_URL` takes precedence (see [`StoreSettings::database_url`]).
    /// Written out (into model metadata, run parameters) without its password.
    #[serde(serialize_with = "redacted")]
    pub url: String,
    /// Record training runs and backtests (false: nothing is written).
    pub record: bool,
    /// The experiment runs are filed under.
    pub experiment: String,
    /// Where registered model versions' files are kept.
    pub model_dir: PathBuf,
    /// Retention: `tradelab models gc` keeps the best, the staged and
    /// production ones, and this many most recent versions of each model.
    pub keep_last: usize,
    /// An MLflow tracking server to mirror runs to; empty for none.
    /// Written out without its password, like `url`.
    #[serde(serialize_with = "redacted")]
    pub mlflow_url: String,
    /// Seconds a running job's worker may go silent before another worker
    /// takes the job over (it renews five times per lease).
    #[serde(default = "default_job_lease_secs")]
    pub job_lease_secs: f64,
}

/// Settings are written into model metadata and run parameters that any
/// viewer may read: URLs go there without their credentials.
fn redacted<S: serde::Serializer>(url: &str, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&crate::connect::redact(url))
}

fn default_job_lease_secs() -> f64 {
    15.0
}

/// The environment variable that overrides `store.url`, so a secret URL
/// (Neon's, with its password) never has to sit in a settings file.
pub const DATABASE_URL_ENV: &str = "TRADELAB_DATABASE_URL";

impl Default for StoreSettings {
    /// The same values as `config/settings.yaml` (a test checks they agree).
    fn default() -> Self {
        StoreSettings {
            url: "sqlite://tradelab.db".into(),
            record: true,
            experiment: "default".into(),
            model_dir: PathBuf::from("models"),
            keep_last: 5,
            mlflow_url: String::new(),
            job_lease_secs: default_job_lease_secs(),
        }
    }
}

impl StoreSettings {
    /// The database URL: `TRADELAB_DATABASE_URL` when set and non-empty,
    /// else `store.url`.
    pub fn database_url(&self) -> String {
        match std::env::var(DATABASE_URL_ENV) {
            Ok(url) if !url.trim().is_empty() => url.trim().to_string(),
            _ => self.url.clone(),
        }
    }
}

impl StoreSettings {
    /// Range checks that types alone cannot express.
    pub fn validate(&self, v: &mut Validator) {
        let st = self;
        let scheme_ok = ["sqlite:", "postgres://", "postgresql://"]
            .iter()
            .any(|p| st.url.starts_with(p));
        v.check(
            scheme_ok,
            "store.url",
            &st.url,
            "is not a database URL",
            "sqlite://PATH or postgres://USER@HOST:PORT/DB",
        );
        v.check(
            !st.experiment.trim().is_empty(),
            "store.experiment",
            &st.experiment,
            "is empty",
            "a name, like default",
        );
        v.int_range("store.keep_last", st.keep_last, 1, 1_000_000);
        v.range("store.job_lease_secs", st.job_lease_secs, 1.0, 86_400.0);
        v.check(
            st.mlflow_url.is_empty() || st.mlflow_url.starts_with("http://") || st.mlflow_url.starts_with("https://"),
            "store.mlflow_url",
            &st.mlflow_url,
            "is not an http(s) URL",
            "empty, or a URL like http://127.0.0.1:5000",
        );
    }
}

/// `audit:`: how long the trading sessions' audit trail is kept.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuditSettings {
    /// Events older than this (whole months) are archived by `tradelab
    /// audit retain`: written to compressed files with a manifest and
    /// checksums, then deleted from the store.
    pub retention_years: f64,
    /// Where the archives and their manifest go.
    pub archive_dir: PathBuf,
}

impl Default for AuditSettings {
    /// The same values as `config/settings.yaml` (a test checks they agree).
    fn default() -> Self {
        AuditSettings {
            retention_years: 7.0,
            archive_dir: PathBuf::from("audit-archive"),
        }
    }
}

impl AuditSettings {
    /// Range checks.
    pub fn validate(&self, v: &mut Validator) {
        v.range("audit.retention_years", self.retention_years, 0.001, 1000.0);
        v.check(
            !self.archive_dir.as_os_str().is_empty(),
            "audit.archive_dir",
            self.archive_dir.display(),
            "is empty",
            "a folder",
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tradelab_core::settings::refused_key;

    #[test]
    fn the_audit_section_is_the_files_and_its_bounds_are_refused() {
        let from_file: AuditSettings = tradelab_core::settings::default_section("audit");
        assert_eq!(from_file, AuditSettings::default());
        assert_eq!(
            refused_key(|s: &mut AuditSettings| s.retention_years = 0.0, AuditSettings::validate).as_deref(),
            Some("audit.retention_years")
        );
        assert_eq!(
            refused_key(
                |s: &mut AuditSettings| s.archive_dir = PathBuf::new(),
                AuditSettings::validate
            )
            .as_deref(),
            Some("audit.archive_dir")
        );
    }

    #[test]
    fn the_default_is_the_files_section_and_passes_its_checks() {
        let from_file: StoreSettings = tradelab_core::settings::default_section("store");
        assert_eq!(from_file, StoreSettings::default());
        assert_eq!(refused_key(|_| {}, StoreSettings::validate), None);
        assert_eq!(
            refused_key(|s| s.url = "postgresql://u@h/db".into(), StoreSettings::validate),
            None
        );
    }

    #[test]
    fn every_bound_is_refused_with_its_key() {
        type Edit = fn(&mut StoreSettings);
        let cases: [(Edit, &str); 5] = [
            (|s| s.url = "mysql://x".into(), "store.url"),
            (|s| s.experiment = " ".into(), "store.experiment"),
            (|s| s.keep_last = 0, "store.keep_last"),
            (|s| s.job_lease_secs = 0.5, "store.job_lease_secs"),
            (|s| s.mlflow_url = "ftp://x".into(), "store.mlflow_url"),
        ];
        for (edit, key) in cases {
            assert_eq!(refused_key(edit, StoreSettings::validate).as_deref(), Some(key));
        }
    }

    #[test]
    fn a_model_saved_before_the_lease_setting_still_reads() {
        let mut old = serde_json::to_value(StoreSettings::default()).unwrap();
        old.as_object_mut().unwrap().remove("job_lease_secs");
        let read: StoreSettings = serde_json::from_value(old).unwrap();
        assert_eq!(read.job_lease_secs, default_job_lease_secs());
    }

    #[test]
    fn urls_are_written_out_without_their_passwords() {
        // Issue 19 finding 8: settings go into model metadata and run
        // parameters that any viewer reads.
        let s = StoreSettings {
            url: "postgres://app:hunter2@db.example/prod".into(),
            mlflow_url: "https://ml:t0ken@mlflow.example".into(),
            ..Default::default()
        };
        let text = serde_json::to_string(&s).unwrap();
        assert!(!text.contains("hunter2") && !text.contains("t0ken"), "{text}");
        assert!(text.contains("postgres://app:***@db.example/prod"), "{text}");
        assert_eq!(
            s.url, "postgres://app:hunter2@db.example/prod",
            "the live value is untouched"
        );
    }
}
