//! Helpers shared by the integration tests that need their own database.

use std::process::Command;

/// A fresh PostgreSQL database `name` on the server at `base` (dropped
/// first if a failed run left it); dropped again with the guard.
pub struct TestDatabase {
    base: String,
    pub name: String,
}

impl TestDatabase {
    pub fn create(base: &str, name: String) -> TestDatabase {
        let db = TestDatabase {
            base: base.to_string(),
            name,
        };
        db.psql(&format!("DROP DATABASE IF EXISTS {}", db.name));
        db.psql(&format!("CREATE DATABASE {}", db.name));
        db
    }

    fn psql(&self, sql: &str) {
        let o = Command::new("psql")
            .args([self.base.as_str(), "-v", "ON_ERROR_STOP=1", "-c", sql])
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let _ = Command::new("psql")
            .args([
                self.base.as_str(),
                "-c",
                &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
            ])
            .output();
    }
}
