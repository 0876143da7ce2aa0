//! How `config/settings.yaml` is loaded; not what it holds.
//!
//! Each crate owns the section it reads (`tradelab_data::settings`,
//! `tradelab_sim::settings`, `tradelab_env::settings`, ...) with its own
//! `validate`; the application (`tradelab_app::Settings`) composes them. This
//! module is the machinery they share:
//!
//! - loading in layers, so that a user's file only needs the keys it
//!   changes: the defaults (the repository's `config/settings.yaml`, compiled
//!   in) are merged with the user's file, then `--set key.path=value`
//!   overrides are applied ([`layered`]);
//! - strict deserialisation: unknown keys and wrong types are refused with
//!   their key path, the value and what is allowed;
//! - [`Validator`], which range checks report through in the same words;
//! - [`default_section`], a section's compiled-in defaults, for the
//!   sections' `Default` implementations and tests.
//!
//! ```
//! use tradelab_core::settings::{default_section, Validator};
//! let window: usize = default_section("env.window");
//! let mut v = Validator::default();
//! v.int_range("env.window", window, 1, 10_000);
//! assert!(v.finish().is_ok());
//! ```

use std::path::Path;

use serde::de::{DeserializeOwned, Deserializer, Error as _};
use serde::Deserialize;
use serde_json::Value;

use crate::{Error, Result};

/// The defaults: the repository's settings file, compiled into the binary.
pub const DEFAULT_SETTINGS_YAML: &str = include_str!("../../../config/settings.yaml");

/// Reads a settings file as a YAML tree, naming the file if it cannot be
/// read or parsed.
pub fn read_file(path: &Path) -> Result<Value> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::SettingsIo {
        path: path.to_path_buf(),
        source,
    })?;
    parse_yaml(&text, path)
}

/// Parses settings text as a YAML tree; `label` names it in errors.
pub fn parse_yaml(text: &str, label: &Path) -> Result<Value> {
    serde_saphyr::from_str::<Value>(text).map_err(|e| Error::SettingsSyntax {
        path: label.to_path_buf(),
        message: e.to_string().lines().next().unwrap_or("").to_string(),
    })
}

/// The compiled-in defaults, then `user` (a mapping of sections, or null
/// for "all defaults"), then `overrides` (each `key.path=value`, the value
/// read as YAML), deserialised strictly into `T`. Range checks are the
/// caller's: this only refuses unknown keys and wrong types.
pub fn layered<T: DeserializeOwned>(user: Option<Value>, overrides: &[String]) -> Result<T> {
    let mut merged = parse_yaml(DEFAULT_SETTINGS_YAML, Path::new("<defaults>"))?;
    if let Some(user) = user {
        // An empty file parses as null: it means "all defaults".
        if !user.is_null() {
            if !user.is_object() {
                return Err(Error::SettingsInvalid {
                    key: "(top level)".into(),
                    value: short(&user),
                    problem: "is not a mapping".into(),
                    allowed: "a mapping of sections like `data:` and `backtest:`".into(),
                });
            }
            merge(&mut merged, user);
        }
    }
    for o in overrides {
        apply_override(&mut merged, o, false)?;
    }
    deserialize_strictly(&merged)
}

/// `overrides` (each `key.path=value`) as the tree of sections a settings
/// file would hold: what a sweep writes as its best settings.
pub fn overrides_tree(overrides: &[String]) -> Result<Value> {
    let mut tree = Value::Object(serde_json::Map::new());
    for o in overrides {
        apply_override(&mut tree, o, true)?;
    }
    Ok(tree)
}

/// One part of the compiled-in defaults, by its dotted key (`env`,
/// `backtest.costs`, `env.window`).
///
/// # Panics
/// If the repository's `config/settings.yaml` lacks the key or holds a
/// value of the wrong shape: a build defect that the settings tests catch,
/// never user input.
pub fn default_section<T: DeserializeOwned>(key: &str) -> T {
    let root = parse_yaml(DEFAULT_SETTINGS_YAML, Path::new("<defaults>"))
        .expect("the compiled-in config/settings.yaml parses");
    let node = lookup(&root, key).unwrap_or_else(|| panic!("config/settings.yaml has no `{key}`"));
    serde_json::from_value(node.clone())
        .unwrap_or_else(|e| panic!("config/settings.yaml's `{key}` does not fit its type: {e}"))
}

/// Deserialises a closed choice written as a name (`meta.mode: maml`), so
/// that an unknown name is refused as `problem` with `allowed` listed, in
/// the same words the range checks use.
pub fn deserialize_choice<'de, D, T>(
    deserializer: D,
    parse: impl Fn(&str) -> Option<T>,
    problem: &str,
    allowed: &str,
) -> std::result::Result<T, D::Error>
where
    D: Deserializer<'de>,
{
    let name = String::deserialize(deserializer)?;
    parse(&name).ok_or_else(|| D::Error::custom(format!("{problem}, expected {allowed}")))
}

fn deserialize_strictly<T: DeserializeOwned>(merged: &Value) -> Result<T> {
    serde_path_to_error::deserialize(merged.clone()).map_err(|e| {
        let key = e.path().to_string();
        let value = lookup(merged, &key).map(short).unwrap_or_else(|| "(missing)".into());
        let inner = e.into_inner().to_string();
        let (problem, allowed) = split_serde_message(&inner);
        Error::SettingsInvalid {
            key,
            value,
            problem,
            allowed,
        }
    })
}

/// Collects the first range violation (settings errors are fixed one at a
/// time). Every section's `validate` reports through one of these, so all
/// errors read `setting KEY = VALUE: PROBLEM; allowed: ALLOWED`.
#[derive(Debug, Default)]
pub struct Validator {
    first: Option<Error>,
}

impl Validator {
    /// Records `problem` for `key` unless `ok` (or an earlier error is held).
    pub fn check(&mut self, ok: bool, key: &str, value: impl std::fmt::Display, problem: &str, allowed: &str) {
        if !ok && self.first.is_none() {
            self.first = Some(Error::SettingsInvalid {
                key: key.to_string(),
                value: value.to_string(),
                problem: problem.to_string(),
                allowed: allowed.to_string(),
            });
        }
    }

    /// A finite number in `[lo, hi]`.
    pub fn range(&mut self, key: &str, value: f64, lo: f64, hi: f64) {
        let ok = value.is_finite() && value >= lo && value <= hi;
        self.check(ok, key, value, "is out of range", &format!("a number in [{lo}, {hi}]"));
    }

    /// An integer in `[lo, hi]`.
    pub fn int_range(&mut self, key: &str, value: usize, lo: usize, hi: usize) {
        let ok = value >= lo && value <= hi;
        self.check(
            ok,
            key,
            value,
            "is out of range",
            &format!("an integer in [{lo}, {hi}]"),
        );
    }

    /// The first error recorded, if any.
    pub fn finish(self) -> Result<()> {
        self.first.map_or(Ok(()), Err)
    }
}

/// The first error `check` records on a fresh [`Validator`], as the user
/// reads it; `None` when everything passes.
pub fn first_error(check: impl FnOnce(&mut Validator)) -> Option<String> {
    let mut v = Validator::default();
    check(&mut v);
    v.finish().err().map(|e| e.to_string())
}

/// The key of the first setting `validate` refuses in a default `T` that
/// `edit` changed; `None` when the section passes. What each crate's tests
/// check every bound of its settings section with:
///
/// ```
/// use tradelab_core::settings::{refused_key, Validator};
///
/// #[derive(Default)]
/// struct Window { bars: usize }
/// fn validate(w: &Window, v: &mut Validator) { v.int_range("env.window", w.bars, 1, 512) }
///
/// assert_eq!(refused_key(|w: &mut Window| w.bars = 0, validate).as_deref(), Some("env.window"));
/// assert_eq!(refused_key(|w: &mut Window| w.bars = 64, validate), None);
/// ```
pub fn refused_key<T: Default>(edit: impl FnOnce(&mut T), validate: impl FnOnce(&T, &mut Validator)) -> Option<String> {
    let mut section = T::default();
    edit(&mut section);
    let mut v = Validator::default();
    validate(&section, &mut v);
    match v.finish() {
        Ok(()) => None,
        Err(Error::SettingsInvalid { key, .. }) => Some(key),
        Err(other) => Some(other.to_string()),
    }
}

/// Deep-merges `over` into `base`: mappings merge key by key, anything else
/// replaces. Unknown keys survive the merge so that deserialisation refuses
/// them with their path.
fn merge(base: &mut Value, over: Value) {
    match (base, over) {
        (Value::Object(b), Value::Object(o)) => {
            for (k, v) in o {
                match b.get_mut(&k) {
                    Some(slot) => merge(slot, v),
                    None => {
                        b.insert(k, v);
                    }
                }
            }
        }
        (slot, v) => *slot = v,
    }
}

/// Sets `key.path` to `value` in `root`; `grow` creates missing sections
/// on the way (otherwise every section on the path must exist).
fn apply_override(root: &mut Value, spec: &str, grow: bool) -> Result<()> {
    let (key, raw) = spec
        .split_once('=')
        .ok_or_else(|| Error::BadOverride(spec.to_string()))?;
    let key = key.trim();
    if key.is_empty() || key.split('.').any(str::is_empty) {
        return Err(Error::BadOverride(spec.to_string()));
    }
    let value = serde_saphyr::from_str::<Value>(raw).unwrap_or_else(|_| Value::String(raw.to_string()));
    let mut node = root;
    for part in key.split('.') {
        if grow && node.is_null() {
            *node = Value::Object(serde_json::Map::new());
        }
        let obj = node
            .as_object_mut()
            .ok_or_else(|| Error::BadOverride(spec.to_string()))?;
        node = obj.entry(part.to_string()).or_insert(Value::Null);
    }
    *node = value;
    Ok(())
}

fn lookup<'a>(root: &'a Value, dotted: &str) -> Option<&'a Value> {
    let mut node = root;
    for part in dotted.split('.').filter(|p| !p.is_empty() && *p != "?") {
        node = match node {
            Value::Object(o) => o.get(part)?,
            Value::Array(a) => a.get(
                part.trim_start_matches('[')
                    .trim_end_matches(']')
                    .parse::<usize>()
                    .ok()?,
            )?,
            _ => return None,
        };
    }
    Some(node)
}

fn short(v: &Value) -> String {
    let s = match v {
        // A name refused by a closed choice reads as the user wrote it.
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    if s.len() > 60 {
        let cut = (0..=57).rev().find(|&i| s.is_char_boundary(i)).unwrap_or(0);
        format!("{}...", &s[..cut])
    } else {
        s
    }
}

/// Rust's names for the types a setting expects, in words a user of the
/// settings file reads (issue 20: "allowed: usize" said nothing).
fn in_words(expected: &str) -> String {
    match expected.trim() {
        "usize" | "u64" | "u32" | "u16" | "u8" => "a whole number, 0 or more".into(),
        "i64" | "i32" | "isize" => "a whole number".into(),
        "f64" | "f32" => "a number, like 0.25".into(),
        "a boolean" | "bool" => "true or false".into(),
        "a string" => "a text value".into(),
        "a sequence" => "a list, like [a, b]".into(),
        "a map" => "a mapping of keys to values".into(),
        other => other.to_string(),
    }
}

/// Turns serde's "unknown field `x`, expected one of `a`, `b`" or
/// "invalid type: string \"x\", expected f64" into (problem, allowed).
fn split_serde_message(msg: &str) -> (String, String) {
    if let Some((problem, allowed)) = msg.split_once(", expected ") {
        (problem.to_string(), in_words(allowed))
    } else {
        (
            msg.to_string(),
            "see config/settings.yaml for the key and its comment".to_string(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    /// Part of a section: the other keys of `risk:` are ignored here.
    #[derive(Debug, Deserialize)]
    struct Risk {
        max_drawdown: f64,
    }

    #[derive(Debug, Deserialize)]
    struct Partial {
        seed: u64,
        risk: Risk,
    }

    #[test]
    fn layers_apply_in_order_and_overrides_win() {
        let user = parse_yaml("risk:\n  max_drawdown: 0.3\n", Path::new("<t>")).unwrap();
        let p: Partial = layered(Some(user.clone()), &[]).unwrap();
        assert_eq!(p.risk.max_drawdown, 0.3);
        let p: Partial = layered(Some(user), &["risk.max_drawdown=0.4".into(), "seed=9".into()]).unwrap();
        assert_eq!((p.risk.max_drawdown, p.seed), (0.4, 9));
        assert_eq!(default_section::<f64>("risk.max_drawdown"), {
            let p: Partial = layered(None, &[]).unwrap();
            p.risk.max_drawdown
        });
    }

    #[test]
    fn errors_name_the_key_the_value_and_what_is_allowed() {
        let e = layered::<Partial>(None, &["risk.max_drawdown=lots".into()])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("risk.max_drawdown") && e.contains("lots") && e.contains("allowed: a number, like 0.25"),
            "{e}"
        );
        // Issue 20: types in words, not Rust's names.
        assert_eq!(in_words("usize"), "a whole number, 0 or more");
        assert_eq!(in_words("a boolean"), "true or false");
        assert_eq!(in_words("one of `a`, `b`"), "one of `a`, `b`");
        let e = layered::<Partial>(Some(Value::from(3)), &[]).unwrap_err().to_string();
        assert!(e.contains("(top level)") && e.contains("not a mapping"), "{e}");
        let e = layered::<Partial>(None, &["=3".into()]).unwrap_err().to_string();
        assert!(e.contains("KEY.PATH=VALUE"), "{e}");
        let long = "x".repeat(100);
        assert!(short(&Value::String(long)).ends_with("..."));
    }

    #[test]
    fn a_closed_choice_refuses_an_unknown_name_in_the_settings_words() {
        #[derive(Debug, Deserialize)]
        struct Pick {
            #[serde(deserialize_with = "pick")]
            #[allow(dead_code)]
            mode: u8,
        }
        fn pick<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<u8, D::Error> {
            deserialize_choice(d, |s| (s == "one").then_some(1), "is not a mode", "one")
        }
        let e = deserialize_strictly::<Pick>(&serde_json::json!({"mode": "two"}))
            .unwrap_err()
            .to_string();
        assert_eq!(e, "setting `mode` = two: is not a mode; allowed: one");
    }

    #[test]
    fn a_file_is_read_as_a_layer_and_its_problems_name_it() {
        let dir = std::env::temp_dir().join(format!("tradelab-core-settings-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let good = dir.join("good.yaml");
        std::fs::write(&good, "seed: 7\n").unwrap();
        let p: Partial = layered(Some(read_file(&good).unwrap()), &[]).unwrap();
        assert_eq!(p.seed, 7);
        // An empty file is "all defaults", not an error.
        let empty = dir.join("empty.yaml");
        std::fs::write(&empty, "").unwrap();
        let p: Partial = layered(Some(read_file(&empty).unwrap()), &[]).unwrap();
        assert_eq!(p.seed, default_section::<u64>("seed"));
        let bad = dir.join("bad.yaml");
        std::fs::write(&bad, "risk: [unclosed\n").unwrap();
        let e = read_file(&bad).unwrap_err().to_string();
        assert!(e.contains("bad.yaml") && e.contains("not valid YAML"), "{e}");
        let e = read_file(&dir.join("missing.yaml")).unwrap_err().to_string();
        assert!(e.contains("missing.yaml") && e.contains("--config"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn overrides_reach_into_lists_and_refuse_paths_through_plain_values() {
        // `seed` is a number: a path through it is not a mapping.
        let e = layered::<Partial>(None, &["seed.x=1".into()]).unwrap_err().to_string();
        assert!(e.contains("bad override `seed.x=1`"), "{e}");
        let e = layered::<Partial>(None, &["risk..max_drawdown=1".into()])
            .unwrap_err()
            .to_string();
        assert!(e.contains("KEY.PATH=VALUE"), "{e}");
        // A value that is not YAML on its own is taken as text and then
        // refused by its type, with the key it was meant for.
        let e = layered::<Partial>(None, &["seed=[1".into()]).unwrap_err().to_string();
        assert!(e.contains("`seed` = [1"), "{e}");
        let root = serde_json::json!({"a": {"list": [10, 20]}});
        assert_eq!(lookup(&root, "a.list.[1]"), Some(&Value::from(20)));
        assert_eq!(lookup(&root, "a.list.[9]"), None);
        assert_eq!(lookup(&root, "a.list.[1].deeper"), None);
    }

    #[test]
    fn a_missing_key_and_a_serde_message_without_expectation_still_read_well() {
        #[derive(Debug, Deserialize)]
        #[allow(dead_code)]
        struct Needs {
            absent_key: u8,
        }
        let e = layered::<Needs>(None, &[]).unwrap_err().to_string();
        assert!(e.contains("missing field `absent_key`"), "{e}");
        assert!(e.contains("see config/settings.yaml"), "{e}");
        assert_eq!(short(&Value::from(3)), "3");
        // Cut on a character boundary, never inside a multi-byte character.
        let cut = short(&Value::String("é".repeat(40)));
        assert!(cut.ends_with("...") && cut.len() <= 60, "{cut}");
    }

    #[test]
    fn the_validator_keeps_the_first_error() {
        let mut v = Validator::default();
        v.int_range("a", 0, 1, 2);
        v.range("b", f64::NAN, 0.0, 1.0);
        let e = v.finish().unwrap_err().to_string();
        assert!(e.starts_with("setting `a` = 0: is out of range"), "{e}");
    }
}
