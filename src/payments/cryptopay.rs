//! Crypto Pay (@CryptoBot): invoices priced in the shop's currency — a fiat invoice
//! (`currency_type: "fiat"`, payable in `accepted_assets`) for a fiat shop, a crypto invoice
//! (`currency_type: "crypto"`, `asset`) for a shop priced in a crypto asset — webhooks signed
//! with HMAC-SHA256 (key = SHA-256 of the app token, message = the raw body), and
//! `getInvoices` for reconciliation. Numbers are read as the API may send them: decimal
//! strings (`"349.90"`) or JSON numbers (`349.9`).

use crate::config::Secret;
use crate::domain::Currency;
use crate::error::{Error, Result};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::time::Duration;

/// A number as the API sends it: a decimal string or a JSON number, kept as its decimal
/// text (never through a float).
fn decimal<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<String, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Num {
        Text(String),
        Number(serde_json::Number),
    }
    Ok(match Num::deserialize(d)? {
        Num::Text(s) => s.trim().to_string(),
        Num::Number(n) => n.to_string(),
    })
}

fn decimal_opt<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<Option<String>, D::Error> {
    #[derive(Deserialize)]
    struct Wrap(#[serde(deserialize_with = "decimal")] String);
    Ok(Option::<Wrap>::deserialize(d)?.map(|w| w.0))
}

fn integer<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<i64, D::Error> {
    let s = decimal(d)?;
    s.parse().map_err(|_| serde::de::Error::custom(format!("expected an integer id, got {s:?}")))
}

/// An invoice as the API reports it (the fields the shop reads).
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
pub struct Invoice {
    #[serde(deserialize_with = "integer")]
    pub invoice_id: i64,
    pub status: String,
    #[serde(default)]
    pub currency_type: Option<String>,
    #[serde(default)]
    pub fiat: Option<String>,
    #[serde(default)]
    pub asset: Option<String>,
    #[serde(deserialize_with = "decimal")]
    pub amount: String,
    #[serde(default)]
    pub paid_asset: Option<String>,
    #[serde(default, deserialize_with = "decimal_opt")]
    pub paid_amount: Option<String>,
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

    /// The code the invoice is priced in, as sent: `fiat` for a fiat invoice, `asset` for a
    /// crypto one (the API's default type); without a type, whichever is present.
    pub fn currency_code(&self) -> Option<&str> {
        match self.currency_type.as_deref() {
            Some("fiat") => self.fiat.as_deref(),
            Some(_) => self.asset.as_deref(),
            None => self.fiat.as_deref().or(self.asset.as_deref()),
        }
    }

    /// The currency the invoice is priced in, checked against its type: a fiat invoice names
    /// a fiat currency, a crypto invoice a crypto asset.
    pub fn currency(&self) -> Result<Currency> {
        let code = self.currency_code().ok_or_else(|| Error::bad("the invoice names no currency"))?;
        let c = Currency::parse(code)?;
        let crypto = match self.currency_type.as_deref() {
            Some("fiat") => false,
            Some("crypto") => true,
            Some(other) => return Err(Error::bad(format!("unknown currency_type {other:?}"))),
            None => self.fiat.is_none(),
        };
        if c.is_crypto() != crypto {
            return Err(Error::bad(format!(
                "{code} is not a {} currency",
                if crypto { "crypto" } else { "fiat" }
            )));
        }
        Ok(c)
    }

    /// The amount in minor units of [`Invoice::currency`] (exact; finer amounts are refused).
    pub fn amount_minor(&self) -> Result<(i64, Currency)> {
        let c = self.currency()?;
        Ok((c.parse_major(&self.amount)?, c))
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

    /// An invoice for `amount` (major units) of `currency`: a crypto invoice in that asset
    /// when the currency is a crypto asset, else a fiat invoice payable in the configured
    /// assets. `payload` names what it pays (`order:<id>` or `topup:<user>:<nonce>`).
    pub async fn create_invoice(
        &self,
        payload: &str,
        currency: Currency,
        amount: &str,
        description: &str,
        expires_in: u64,
    ) -> Result<Invoice> {
        let mut body = json!({
            "amount": amount,
            "description": description.chars().take(1000).collect::<String>(),
            "payload": payload,
            "allow_comments": false,
            "expires_in": expires_in.clamp(60, 2_678_400),
        });
        if currency.is_crypto() {
            body["currency_type"] = json!("crypto");
            body["asset"] = json!(currency.as_str());
        } else {
            body["currency_type"] = json!("fiat");
            body["fiat"] = json!(currency.as_str());
            body["accepted_assets"] = json!(self.assets);
        }
        let v = self.call("createInvoice", body).await?;
        serde_json::from_value(v).map_err(|e| Error::Internal(format!("Crypto Pay invoice: {e}")))
    }

    /// Paid invoices among `ids`, each with its raw JSON. An item the shop cannot read is
    /// skipped (and logged): reconciliation is the fallback, the webhook keeps it.
    pub async fn paid_invoices(&self, ids: &[i64]) -> Result<Vec<(Invoice, Value)>> {
        let mut out = Vec::new();
        for chunk in ids.chunks(100) {
            let list = chunk.iter().map(|i| i.to_string()).collect::<Vec<_>>().join(",");
            let v = self
                .call("getInvoices", json!({"invoice_ids": list, "status": "paid", "count": 1000}))
                .await?;
            let items = v["items"]
                .as_array()
                .ok_or_else(|| Error::Internal("Crypto Pay getInvoices: no items".into()))?;
            for raw in items {
                match serde_json::from_value::<Invoice>(raw.clone()) {
                    Ok(inv) => out.push((inv, raw.clone())),
                    Err(e) => {
                        tracing::warn!(error = %e, "Crypto Pay getInvoices: an invoice that cannot be read")
                    }
                }
            }
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

/// The webhook body. The invoice stays raw JSON here so a signed update whose invoice the
/// shop cannot read is still recorded, not refused.
#[derive(Debug, Deserialize)]
pub struct Update {
    pub update_type: String,
    #[serde(default)]
    pub payload: Value,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn invoice(v: Value) -> Invoice {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn numbers_are_read_as_strings_or_json_numbers() {
        let a = invoice(
            json!({"invoice_id": 7, "status": "paid", "currency_type": "fiat", "fiat": "RUB", "amount": 349.9}),
        );
        assert_eq!(a.amount, "349.9");
        assert_eq!(a.amount_minor().unwrap(), (34_990, Currency::RUB));
        let b = invoice(
            json!({"invoice_id": "8", "status": "paid", "currency_type": "fiat", "fiat": "RUB", "amount": "349.90", "paid_amount": 4.43}),
        );
        assert_eq!((b.invoice_id, b.paid_amount.as_deref()), (8, Some("4.43")));
        assert_eq!(b.amount_minor().unwrap(), (34_990, Currency::RUB));
        assert!(
            serde_json::from_value::<Invoice>(json!({"invoice_id": "x", "status": "paid", "amount": "1"}))
                .is_err()
        );
    }

    #[test]
    fn crypto_invoices_are_priced_in_their_asset_and_fiat_ones_in_fiat() {
        let usdt = invoice(
            json!({"invoice_id": 1, "status": "paid", "currency_type": "crypto", "asset": "USDT", "amount": "4.43"}),
        );
        assert_eq!(usdt.amount_minor().unwrap(), (4_430_000, Currency::USDT));
        let btc = invoice(
            json!({"invoice_id": 2, "status": "paid", "currency_type": "crypto", "asset": "BTC", "amount": "0.00012345"}),
        );
        assert_eq!(btc.amount_minor().unwrap().0, 12_345);
        // TON is an asset, not a fiat currency: a "fiat" invoice in TON is refused.
        let ton_fiat = invoice(
            json!({"invoice_id": 3, "status": "paid", "currency_type": "fiat", "fiat": "TON", "amount": "1"}),
        );
        assert!(ton_fiat.currency().is_err());
        let rub_crypto = invoice(
            json!({"invoice_id": 4, "status": "paid", "currency_type": "crypto", "asset": "RUB", "amount": "1"}),
        );
        assert!(rub_crypto.currency().is_err());
        // No type: the API's default is crypto; a fiat code present means fiat.
        let bare = invoice(json!({"invoice_id": 5, "status": "paid", "asset": "TON", "amount": "2.5"}));
        assert_eq!(bare.amount_minor().unwrap().0, 2_500_000_000);
    }

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
