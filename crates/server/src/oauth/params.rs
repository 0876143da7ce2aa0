//! Form and query parameters as OAuth reads them: each at most once
//! (RFC 6749 §3.1), empty values counted as absent.

use std::collections::HashMap;

/// Parsed form or query parameters, each name at most once.
#[derive(Debug)]
pub struct Params(HashMap<String, String>);

impl Params {
    /// Parses `application/x-www-form-urlencoded` text; a repeated name is
    /// an error naming it.
    pub fn parse(text: &[u8]) -> Result<Params, String> {
        let mut map = HashMap::new();
        for (k, v) in form_urlencoded::parse(text) {
            if map.insert(k.to_string(), v.to_string()).is_some() {
                return Err(format!("the parameter `{k}` appears more than once"));
            }
        }
        Ok(Params(map))
    }

    /// The value of `name`; `None` when absent or empty.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str).filter(|v| !v.is_empty())
    }

    /// The value of `name`, or an error message naming it when absent or
    /// empty.
    pub fn require(&self, name: &str) -> Result<&str, String> {
        self.get(name)
            .ok_or_else(|| format!("the parameter `{name}` is missing"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_and_empty_parameters() {
        let p = Params::parse(b"a=1&b=&c=x%20y").unwrap();
        assert_eq!(p.get("a"), Some("1"));
        assert_eq!(p.get("b"), None);
        assert_eq!(p.get("c"), Some("x y"));
        assert!(p.require("b").unwrap_err().contains("`b`"));
        assert!(Params::parse(b"a=1&a=2").unwrap_err().contains("`a`"));
    }
}
