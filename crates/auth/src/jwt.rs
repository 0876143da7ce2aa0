//! Access tokens: JWTs in the RFC 9068 profile, signed with EdDSA over
//! Ed25519 (RFC 8037).
//!
//! Verification is strict on purpose (RFC 8725): the header must say
//! `alg: EdDSA` and `typ: at+jwt` and name a known `kid`; anything else,
//! `alg: none` included, is refused before the signature is looked at.
//! Keys are addressed by their RFC 7638 thumbprint, so a rotation only
//! adds a key to the JWKS document and old tokens keep verifying until
//! they expire.

use ring::signature::{Ed25519KeyPair, KeyPair, UnparsedPublicKey, ED25519};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::{b64url, b64url_decode};

/// The JWS algorithm every token uses.
pub const ALGORITHM: &str = "EdDSA";
/// The media type of RFC 9068 access tokens.
pub const TOKEN_TYPE: &str = "at+jwt";

/// A private signing key with its key id.
pub struct SigningKey {
    /// The RFC 7638 thumbprint of the public half, put in each token's header.
    pub kid: String,
    pair: Ed25519KeyPair,
}

/// The signing key in use and every key still published (retired keys
/// stay published while tokens they signed may be live).
pub struct KeyRing {
    /// The key new tokens are signed with.
    pub signing: SigningKey,
    /// The keys tokens are verified against and the JWKS document lists,
    /// normally the signing key's public half among them.
    pub published: Vec<PublicKey>,
}

/// A public key from the key set, by id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKey {
    /// The key's RFC 7638 thumbprint, matched against a token's `kid`.
    pub kid: String,
    /// The raw Ed25519 public key (the JWK's `x` member, before base64url).
    pub x: [u8; 32],
}

impl SigningKey {
    /// A fresh key; returns it and its PKCS#8 document (what is stored).
    pub fn generate() -> (SigningKey, Vec<u8>) {
        let rng = ring::rand::SystemRandom::new();
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng).expect("the operating system's random source failed");
        let key = SigningKey::from_pkcs8(pkcs8.as_ref()).expect("a key ring just made parses");
        (key, pkcs8.as_ref().to_vec())
    }

    /// Loads a stored PKCS#8 document; its key id is derived from the public
    /// key. `Err` says why the bytes are not an Ed25519 key.
    pub fn from_pkcs8(pkcs8: &[u8]) -> Result<SigningKey, String> {
        let pair = Ed25519KeyPair::from_pkcs8(pkcs8).map_err(|e| format!("not an Ed25519 PKCS#8 key: {e}"))?;
        let x: [u8; 32] = pair
            .public_key()
            .as_ref()
            .try_into()
            .map_err(|_| "an Ed25519 public key is 32 bytes")?;
        Ok(SigningKey {
            kid: thumbprint(&x),
            pair,
        })
    }

    /// The public half, to publish and verify with.
    pub fn public(&self) -> PublicKey {
        let x: [u8; 32] = self
            .pair
            .public_key()
            .as_ref()
            .try_into()
            .expect("Ed25519 public keys are 32 bytes");
        PublicKey {
            kid: self.kid.clone(),
            x,
        }
    }

    /// Signs `claims` as an access token.
    pub fn sign(&self, claims: &AccessClaims) -> String {
        let header = serde_json::json!({"alg": ALGORITHM, "typ": TOKEN_TYPE, "kid": self.kid});
        let mut token = format!(
            "{}.{}",
            b64url(header.to_string().as_bytes()),
            b64url(&serde_json::to_vec(claims).expect("claims serialise"))
        );
        let signature = self.pair.sign(token.as_bytes());
        token.push('.');
        token.push_str(&b64url(signature.as_ref()));
        token
    }
}

/// The RFC 7638 JWK thumbprint of an Ed25519 public key (its `kid`).
pub fn thumbprint(x: &[u8; 32]) -> String {
    // Members in lexicographic order, no white space, as §3.2 requires.
    let canonical = format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{}"}}"#, b64url(x));
    b64url(&Sha256::digest(canonical.as_bytes()))
}

/// The JWKS document (RFC 7517) for `keys`.
pub fn jwks(keys: &[PublicKey]) -> serde_json::Value {
    let keys: Vec<_> = keys
        .iter()
        .map(|k| {
            serde_json::json!({
                "kty": "OKP", "crv": "Ed25519", "x": b64url(&k.x),
                "kid": k.kid, "use": "sig", "alg": ALGORITHM,
            })
        })
        .collect();
    serde_json::json!({ "keys": keys })
}

/// The claims of an access token (RFC 9068 §2.2), plus `sid`: the grant
/// (token family) it was issued under, which revocation works on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessClaims {
    /// The authorization server that issued the token (its issuer URL).
    pub iss: String,
    /// The user's id, or the client's for client credentials.
    pub sub: String,
    /// The resource server the token is for. After [`verify`] it is the
    /// audience that was accepted, even if the token listed several.
    pub aud: String,
    /// Expiry, seconds since the Unix epoch.
    pub exp: i64,
    /// Issue time, seconds since the Unix epoch.
    pub iat: i64,
    /// A unique random id for this token.
    pub jti: String,
    /// The OAuth client the token was issued to.
    pub client_id: String,
    /// The granted scopes, space-separated (see [`crate::scope::ScopeSet`]).
    pub scope: String,
    /// The grant (token family) the token was issued under; revoking it
    /// revokes the token.
    pub sid: String,
    /// The user's name, for people reading logs and the audit trail.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
}

/// What a token must carry to be accepted here.
pub struct Expectations<'a> {
    /// The `iss` a token must carry exactly.
    pub issuer: &'a str,
    /// The audience that must be the token's `aud` or one of its list.
    pub audience: &'a str,
    /// Seconds since the Unix epoch.
    pub now: i64,
    /// Clock skew tolerated on `exp` and `iat`, seconds.
    pub leeway: i64,
}

/// Why a token was refused. The text goes into `error_description`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Not three base64url parts, a header or claims that do not parse, or
    /// a `crit` header.
    #[error("the token is not a signed JWT")]
    Malformed,
    #[error("the token's algorithm `{0}` is not accepted (only EdDSA)")]
    /// The header's `alg` is not EdDSA; holds its first 16 characters.
    Algorithm(String),
    #[error("the token is not an access token (typ must be at+jwt)")]
    /// The header's `typ` is missing or not `at+jwt`.
    Type,
    #[error("the token was signed with an unknown key")]
    /// No `kid`, or one that names no published key.
    UnknownKey,
    #[error("the token's signature does not verify")]
    /// The Ed25519 signature does not match the header and claims.
    Signature,
    #[error("the token was issued by another server")]
    /// `iss` is not the expected issuer.
    Issuer,
    #[error("the token is meant for another audience")]
    /// `aud` neither is nor lists the expected audience.
    Audience,
    #[error("the token has expired")]
    /// `exp` plus the leeway is not after now.
    Expired,
    #[error("the token is not valid yet")]
    /// `iat` minus the leeway is after now.
    NotYetValid,
}

#[derive(Deserialize)]
struct Header {
    alg: String,
    #[serde(default)]
    typ: Option<String>,
    #[serde(default)]
    kid: Option<String>,
    #[serde(default)]
    crit: Option<serde_json::Value>,
}

/// `aud` may be a string or a list (RFC 7519 §4.1.3).
#[derive(Deserialize)]
#[serde(untagged)]
enum Audience {
    One(String),
    Many(Vec<String>),
}

/// Checks `token` against `keys` and `expect`; the claims if it passes.
pub fn verify(token: &str, keys: &[PublicKey], expect: &Expectations<'_>) -> Result<AccessClaims, TokenError> {
    let mut parts = token.split('.');
    let (Some(h), Some(p), Some(s), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return Err(TokenError::Malformed);
    };
    let header: Header =
        serde_json::from_slice(&b64url_decode(h).ok_or(TokenError::Malformed)?).map_err(|_| TokenError::Malformed)?;
    if header.alg != ALGORITHM {
        return Err(TokenError::Algorithm(header.alg.chars().take(16).collect()));
    }
    if header.crit.is_some() {
        // No extension is understood, so none may be critical (RFC 7515 §4.1.11).
        return Err(TokenError::Malformed);
    }
    if !header
        .typ
        .as_deref()
        .is_some_and(|t| t.eq_ignore_ascii_case(TOKEN_TYPE))
    {
        return Err(TokenError::Type);
    }
    let kid = header.kid.ok_or(TokenError::UnknownKey)?;
    let key = keys.iter().find(|k| k.kid == kid).ok_or(TokenError::UnknownKey)?;
    let signature = b64url_decode(s).ok_or(TokenError::Malformed)?;
    let signed = &token[..h.len() + 1 + p.len()];
    UnparsedPublicKey::new(&ED25519, &key.x)
        .verify(signed.as_bytes(), &signature)
        .map_err(|_| TokenError::Signature)?;
    // Only now, with the signature checked, are the claims trusted.
    let raw: serde_json::Value =
        serde_json::from_slice(&b64url_decode(p).ok_or(TokenError::Malformed)?).map_err(|_| TokenError::Malformed)?;
    let audience_ok = match raw.get("aud").cloned().map(serde_json::from_value::<Audience>) {
        Some(Ok(Audience::One(a))) => a == expect.audience,
        Some(Ok(Audience::Many(list))) => list.iter().any(|a| a == expect.audience),
        _ => false,
    };
    let mut raw = raw;
    if let Some(obj) = raw.as_object_mut() {
        // Normalise a list audience to the one this server accepted.
        obj.insert("aud".into(), serde_json::Value::String(expect.audience.to_string()));
    }
    let claims: AccessClaims = serde_json::from_value(raw).map_err(|_| TokenError::Malformed)?;
    if claims.iss != expect.issuer {
        return Err(TokenError::Issuer);
    }
    if !audience_ok {
        return Err(TokenError::Audience);
    }
    if claims.exp + expect.leeway <= expect.now {
        return Err(TokenError::Expired);
    }
    if claims.iat - expect.leeway > expect.now {
        return Err(TokenError::NotYetValid);
    }
    Ok(claims)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(now: i64) -> AccessClaims {
        AccessClaims {
            iss: "http://127.0.0.1:8080".into(),
            sub: "user-1".into(),
            aud: "tradelab-api".into(),
            exp: now + 300,
            iat: now,
            jti: "j1".into(),
            client_id: "cli".into(),
            scope: "data:read".into(),
            sid: "g1".into(),
            username: Some("ada".into()),
        }
    }

    fn expect(now: i64) -> Expectations<'static> {
        Expectations {
            issuer: "http://127.0.0.1:8080",
            audience: "tradelab-api",
            now,
            leeway: 30,
        }
    }

    fn forge(header: serde_json::Value, claims: &AccessClaims, key: &SigningKey) -> String {
        let body = format!(
            "{}.{}",
            b64url(header.to_string().as_bytes()),
            b64url(&serde_json::to_vec(claims).unwrap())
        );
        let sig = key.pair.sign(body.as_bytes());
        format!("{body}.{}", b64url(sig.as_ref()))
    }

    #[test]
    fn round_trip_and_key_set() {
        let (key, pkcs8) = SigningKey::generate();
        let again = SigningKey::from_pkcs8(&pkcs8).unwrap();
        assert_eq!(key.kid, again.kid);
        let token = key.sign(&claims(1000));
        assert_eq!(verify(&token, &[key.public()], &expect(1000)).unwrap(), claims(1000));
        // Another key with the same kid cannot stand in.
        let (other, _) = SigningKey::generate();
        let impostor = PublicKey {
            kid: key.kid.clone(),
            x: other.public().x,
        };
        assert_eq!(verify(&token, &[impostor], &expect(1000)), Err(TokenError::Signature));
        assert_eq!(
            verify(&token, &[other.public()], &expect(1000)),
            Err(TokenError::UnknownKey)
        );
        // Rotation: both keys in the set, each token verifies with its own.
        let token2 = other.sign(&claims(1000));
        let set = [key.public(), other.public()];
        assert!(verify(&token, &set, &expect(1000)).is_ok());
        assert!(verify(&token2, &set, &expect(1000)).is_ok());
        let doc = jwks(&set);
        assert_eq!(doc["keys"][1]["kid"], other.kid.as_str());
        assert_eq!(doc["keys"][0]["crv"], "Ed25519");
    }

    #[test]
    fn rfc8037_thumbprint_example() {
        // RFC 8037 appendix A.3.
        let x = b64url_decode("11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo").unwrap();
        assert_eq!(
            thumbprint(&x.try_into().unwrap()),
            "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"
        );
    }

    #[test]
    fn refuses_tampering_and_other_algorithms() {
        let (key, _) = SigningKey::generate();
        let keys = [key.public()];
        let token = key.sign(&claims(1000));
        // A claim changed after signing.
        let parts: Vec<&str> = token.split('.').collect();
        let mut c = claims(1000);
        c.scope = "admin".into();
        let tampered = format!("{}.{}.{}", parts[0], b64url(&serde_json::to_vec(&c).unwrap()), parts[2]);
        assert_eq!(verify(&tampered, &keys, &expect(1000)), Err(TokenError::Signature));
        // alg none, with and without a signature.
        let none_header = b64url(br#"{"alg":"none","typ":"at+jwt","kid":"x"}"#);
        for sig in ["", parts[2]] {
            let t = format!("{none_header}.{}.{sig}", parts[1]);
            assert!(matches!(
                verify(&t, &keys, &expect(1000)),
                Err(TokenError::Algorithm(_))
            ));
        }
        // HS256 keyed with the public key (the classic confusion attack).
        let hs = forge(
            serde_json::json!({"alg":"HS256","typ":"at+jwt","kid":key.kid}),
            &claims(1000),
            &key,
        );
        assert!(matches!(
            verify(&hs, &keys, &expect(1000)),
            Err(TokenError::Algorithm(_))
        ));
        // An ID-token-typed JWT is not an access token.
        let jwt = forge(
            serde_json::json!({"alg":"EdDSA","typ":"JWT","kid":key.kid}),
            &claims(1000),
            &key,
        );
        assert_eq!(verify(&jwt, &keys, &expect(1000)), Err(TokenError::Type));
        let crit = forge(
            serde_json::json!({"alg":"EdDSA","typ":"at+jwt","kid":key.kid,"crit":["exp"]}),
            &claims(1000),
            &key,
        );
        assert_eq!(verify(&crit, &keys, &expect(1000)), Err(TokenError::Malformed));
        for junk in ["", "a.b", "a.b.c.d", "!!.!!.!!"] {
            assert_eq!(verify(junk, &keys, &expect(1000)), Err(TokenError::Malformed));
        }
    }

    #[test]
    fn checks_issuer_audience_and_lifetime() {
        let (key, _) = SigningKey::generate();
        let keys = [key.public()];
        let token = key.sign(&claims(1000));
        assert!(
            verify(&token, &keys, &expect(1000 + 300 + 29)).is_ok(),
            "inside the clock skew"
        );
        assert_eq!(
            verify(&token, &keys, &expect(1000 + 300 + 30)),
            Err(TokenError::Expired)
        );
        assert_eq!(verify(&token, &keys, &expect(1000 - 31)), Err(TokenError::NotYetValid));
        let mut e = expect(1000);
        e.audience = "other-api";
        assert_eq!(verify(&token, &keys, &e), Err(TokenError::Audience));
        let mut e = expect(1000);
        e.issuer = "https://elsewhere";
        assert_eq!(verify(&token, &keys, &e), Err(TokenError::Issuer));
        // A list audience that includes this API is accepted.
        let mut raw = serde_json::to_value(claims(1000)).unwrap();
        raw["aud"] = serde_json::json!(["x", "tradelab-api"]);
        let body = format!(
            "{}.{}",
            b64url(
                serde_json::json!({"alg":"EdDSA","typ":"at+jwt","kid":key.kid})
                    .to_string()
                    .as_bytes()
            ),
            b64url(raw.to_string().as_bytes())
        );
        let t = format!("{body}.{}", b64url(key.pair.sign(body.as_bytes()).as_ref()));
        assert_eq!(verify(&t, &keys, &expect(1000)).unwrap().aud, "tradelab-api");
    }
}
