//! Crypto Pay (@CryptoBot): invoices priced in the shop's fiat currency, webhooks signed with
//! HMAC-SHA256 (key = SHA-256 of the app token, message = the raw body), and `getInvoices`
//! for reconciliation.

use crate::config::Secret;
use crate::error::{Error, Result};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::time::Duration;

/// An invoice as the API reports it (the fields the shop reads).
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
pub struct Invoice {
    pub invoice_id: i64,
    pub status: String,
    #[serde(default)]
    pub currency_type: Option<String>,
    #[serde(default)]
    pub fiat: Option<String>,
    #[serde(default)]
    pub asset: Option<String>,
    pub amount: String,
    #[serde(default)]
    pub payload: Option<String>,
    #[serde(default)]
    pub bot_invoice_url: Option<String>,
    #[serde(default)]
    pub web_app_invoice_url: Option<String>,
    #[serde(default)]
    pub pay_url: Option<String>,
}

impl Invoice {
    /// The URL to send the customer to.
    pub fn url(&self) -> Option<&str> {
        self.bot_invoice_url.as_deref().or(self.web_app_invoice_url.as_deref()).or(self.pay_url.as_deref())
    }

    /// The order this invoice pays (`payload` = `order:<id>`).
    pub fn order_id(&self) -> Option<u64> {
        self.payload.as_deref()?.strip_prefix("order:")?.parse().ok()
    }

    /// The customer whose balance this invoice tops up (`payload` = `topup:<user>:<nonce>`).
    pub fn topup_user(&self) -> Option<i64> {
        let rest = self.payload.as_deref()?.strip_prefix("topup:")?;
        rest.split(':').next()?.parse().ok()
    }
}

/// The client.
#[derive(Clone)]
pub struct CryptoPay {
    http: reqwest::Client,
    base: String,
    token: Secret,
    assets: String,
}

impl CryptoPay {
    pub fn new(base: &str, token: Secret, assets: &str) -> Result<CryptoPay> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(15))
            .build()
            .map_err(|e| Error::Internal(format!("http client: {e}")))?;
        Ok(CryptoPay {
            http,
            base: base.trim_end_matches('/').to_string(),
            token,
            assets: assets.to_string(),
        })
    }

    async fn call(&self, method: &str, body: Value) -> Result<Value> {
        let resp = self
            .http
            .post(format!("{}/api/{method}", self.base))
            .header("Crypto-Pay-API-Token", self.token.expose())
            .json(&body)
            .send()
            .await
            .map_err(|e| Error::Unavailable(format!("Crypto Pay {method}: {}", e.without_url())))?;
        let status = resp.status();
        let v: Value =
            resp.json().await.map_err(|e| Error::Unavailable(format!("Crypto Pay {method}: {e}")))?;
        if v["ok"].as_bool() == Some(true) {
            return Ok(v["result"].clone());
        }
        let name = v["error"]["name"].as_str().unwrap_or("unknown error").to_string();
        if status.is_server_error() || status.as_u16() == 429 {
            Err(Error::Unavailable(format!("Crypto Pay {method}: {status} {name}")))
        } else {
            Err(Error::Internal(format!("Crypto Pay refused {method}: {status} {name}")))
        }
    }

    /// A fiat invoice: `amount` in major units as a decimal string; `payload` names what it
    /// pays (`order:<id>` or `topup:<user>:<nonce>`).
    pub async fn create_invoice(
        &self,
        payload: &str,
        fiat: &str,
        amount: &str,
        description: &str,
        expires_in: u64,
    ) -> Result<Invoice> {
        let body = json!({
            "currency_type": "fiat",
            "fiat": fiat,
            "accepted_assets": self.assets,
            "amount": amount,
            "description": description.chars().take(1000).collect::<String>(),
            "payload": payload,
            "allow_comments": false,
            "expires_in": expires_in.clamp(60, 2_678_400),
        });
        let v = self.call("createInvoice", body).await?;
        serde_json::from_value(v).map_err(|e| Error::Internal(format!("Crypto Pay invoice: {e}")))
    }

    /// Paid invoices among `ids`.
    pub async fn paid_invoices(&self, ids: &[i64]) -> Result<Vec<Invoice>> {
        let mut out = Vec::new();
        for chunk in ids.chunks(100) {
            let list = chunk.iter().map(|i| i.to_string()).collect::<Vec<_>>().join(",");
            let v = self
                .call("getInvoices", json!({"invoice_ids": list, "status": "paid", "count": 1000}))
                .await?;
            let items: Vec<Invoice> = serde_json::from_value(v["items"].clone())
                .map_err(|e| Error::Internal(format!("Crypto Pay invoices: {e}")))?;
            out.extend(items);
        }
        Ok(out)
    }

    /// Whether `signature` (hex) is the HMAC of `body` under this app's token.
    pub fn verify(&self, body: &[u8], signature: &str) -> bool {
        verify_signature(self.token.expose(), body, signature)
    }
}

/// `hex(HMAC-SHA256(key = SHA-256(token), body))`: the signature Crypto Pay sends (used by
/// `lavka bench payments` to play Crypto Pay).
pub fn sign(token: &str, body: &[u8]) -> String {
    let key = Sha256::digest(token.as_bytes());
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).expect("HMAC takes any key");
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

/// `hex(HMAC-SHA256(key = SHA-256(token), body))`, compared in constant time.
pub fn verify_signature(token: &str, body: &[u8], signature: &str) -> bool {
    let Ok(given) = hex::decode(signature.trim()) else {
        return false;
    };
    let key = Sha256::digest(token.as_bytes());
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(&key) else {
        return false;
    };
    mac.update(body);
    mac.verify_slice(&given).is_ok()
}

/// The webhook body.
#[derive(Debug, Deserialize)]
pub struct Update {
    pub update_type: String,
    pub payload: Invoice,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_signature_vector_verifies_and_tampering_fails() {
        let body = br#"{"update_id":1,"update_type":"invoice_paid","request_date":"2026-11-26T10:00:00.000Z","payload":{"invoice_id":42,"status":"paid","payload":"order:1"}}"#;
        let sig = "5d164660a3fc82f0a9d48595f0546600b1845ea1213fd663cb3608a90761a932";
        assert!(verify_signature("1234:AAtesttoken", body, sig));
        assert!(!verify_signature("1234:AAtesttokem", body, sig));
        let mut tampered = body.to_vec();
        tampered[10] ^= 1;
        assert!(!verify_signature("1234:AAtesttoken", &tampered, sig));
        assert!(!verify_signature("1234:AAtesttoken", body, "zz"));
        assert!(!verify_signature("1234:AAtesttoken", body, ""));
    }
}
