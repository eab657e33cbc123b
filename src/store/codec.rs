//! Record encoding. Every stored type names its form ([`Record::FORMAT`]); reading goes by a
//! record's first byte, so whatever was ever written keeps reading:
//!
//! - [`BINARY_V1`] then postcard: compact and positional, for the records of the money path
//!   (orders, stock items, payments, ledger entries, users, outbox messages) that the single
//!   writer rewrites on every purchase;
//! - anything else is JSON (always an object, `{`): records written before the binary form
//!   existed, and the types that stay JSON on purpose — products and suppliers (optional
//!   fields left out when empty), jobs (tagged kinds added by newer versions, which an older
//!   binary must still be able to set aside with their payload intact), conversations,
//!   broadcasts, top-ups, unmatched payments and `meta` values.
//!
//! A JSON-era record of a binary type is rewritten in the binary form when it is next
//! written. Positional means a binary type's fields and enum variants are frozen: changing
//! them needs a new prefix byte and a decoder for the old layout (`codec::tests` pins each
//! layout byte for byte, so an accidental change fails there). See `docs/store-encoding.md`.

use crate::error::{Error, Result};
use serde::{Serialize, de::DeserializeOwned};

/// First byte of a binary record (postcard, layout 1). Never the first byte of JSON.
pub const BINARY_V1: u8 = 0xB1;

/// How a type is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Json,
    Binary,
}

/// A type stored in a table.
pub trait Record: Serialize + DeserializeOwned {
    const FORMAT: Format;
}

macro_rules! records {
    ($format:ident: $($t:ty),* $(,)?) => {
        $(impl Record for $t { const FORMAT: Format = Format::$format; })*
    };
}

records!(Binary:
    crate::domain::Order,
    crate::domain::StockItem,
    crate::domain::PaymentRecord,
    crate::domain::LedgerEntry,
    crate::domain::User,
    crate::domain::OutboxMessage,
);
records!(Json:
    crate::domain::Product,
    crate::domain::Supplier,
    crate::domain::JobRecord,
    // Keeps the provider's record as received (free-form JSON).
    crate::domain::UnmatchedPayment,
);
// The store's own record types (Conversation, TelegramUser, Broadcast, Topup) name their
// form where they are defined, so this module depends on none of its users.

/// Encodes a record in its type's form.
pub fn encode<T: Record>(v: &T) -> Result<Vec<u8>> {
    match T::FORMAT {
        Format::Json => encode_json(v),
        Format::Binary => {
            let mut out = Vec::with_capacity(128);
            out.push(BINARY_V1);
            postcard::to_extend(v, out).map_err(|e| Error::internal(format!("encoding a record: {e}")))
        }
    }
}

/// Decodes a record in whichever form it was written.
pub fn decode<T: Record>(b: &[u8]) -> Result<T> {
    match b.first() {
        Some(&BINARY_V1) => {
            postcard::from_bytes(&b[1..]).map_err(|e| Error::storage(format!("corrupt binary record: {e}")))
        }
        _ => decode_json(b),
    }
}

/// Whether a stored record is in the binary form.
pub fn is_binary(b: &[u8]) -> bool {
    b.first() == Some(&BINARY_V1)
}

/// A stored record as JSON, whatever its form (for dumps and diagnostics).
pub fn to_json<T: Record>(b: &[u8]) -> Result<serde_json::Value> {
    Ok(serde_json::to_value(decode::<T>(b)?)?)
}

/// JSON bytes of any value (`meta`).
pub fn encode_json<T: Serialize + ?Sized>(v: &T) -> Result<Vec<u8>> {
    serde_json::to_vec(v).map_err(Error::from)
}

/// A JSON value written by [`encode_json`].
pub fn decode_json<T: DeserializeOwned>(b: &[u8]) -> Result<T> {
    serde_json::from_slice(b).map_err(|e| Error::storage(format!("corrupt record: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::*;

    fn order() -> Order {
        Order {
            id: 7,
            user_id: 1001,
            product_id: ProductId::parse("win11").unwrap(),
            title: "Win".into(),
            kind: OrderKind::Instant,
            status: OrderStatus::Paid,
            quantity: 1,
            unit_price: 19_900,
            discount_percent: 10,
            amount: 17_910,
            currency: Currency::RUB,
            stock_item_ids: vec![3],
            supplier_content: None,
            created_at: 1_700_000_000_000,
            expires_at: Some(1_700_000_900_000),
            paid_at: Some(1_700_000_100_000),
            deadline: None,
            delivered_at: None,
            delivery_message_id: None,
            payment: Some(PaymentRef { provider: "dev".into(), external_id: "x1".into() }),
            refunded_at: None,
            note: None,
            delivered_to_outbox: false,
        }
    }

    #[test]
    fn a_binary_record_round_trips_and_is_smaller_than_json() {
        let o = order();
        let b = encode(&o).unwrap();
        assert!(is_binary(&b));
        assert_eq!(decode::<Order>(&b).unwrap(), o);
        let json = encode_json(&o).unwrap();
        assert!(b.len() * 3 < json.len(), "{} vs {} bytes", b.len(), json.len());
        // A JSON-era record of the same type still reads, and dumps show JSON either way.
        assert_eq!(decode::<Order>(&json).unwrap(), o);
        assert_eq!(to_json::<Order>(&b).unwrap(), serde_json::to_value(&o).unwrap());
    }

    #[test]
    fn json_types_stay_json() {
        let rec = JobRecord {
            id: 1,
            kind: JobKind::DeliverOrder { order_id: 7 },
            state: JobState::Ready,
            dedupe: Some(Dedupe::Once("deliver:7".into())),
            attempts: 0,
            max_attempts: 25,
            throttled: 0,
            run_at: 5,
            created_at: 5,
            finished_at: None,
            last_error: None,
        };
        let b = encode(&rec).unwrap();
        assert_eq!(b[0], b'{');
        assert_eq!(decode::<JobRecord>(&b).unwrap(), rec);
    }

    #[test]
    fn a_truncated_or_garbled_binary_record_is_an_error_not_a_panic() {
        let b = encode(&order()).unwrap();
        for cut in 1..b.len() {
            assert!(decode::<Order>(&b[..cut]).is_err(), "cut at {cut}");
        }
        assert!(decode::<Order>(&[BINARY_V1, 0xff, 0xff, 0xff]).is_err());
        assert!(decode::<Order>(b"").is_err());
    }

    /// The layouts are positional: a field added, removed or moved, or an enum variant
    /// reordered, changes these bytes — and would misread every record already stored.
    /// Such a change needs a new prefix byte and a decoder for layout 1, not a new pin.
    #[test]
    fn binary_layouts_are_pinned() {
        let item = StockItem {
            id: 3,
            product_id: ProductId::parse("win11").unwrap(),
            content: "KEY".into(),
            state: StockState::Sold,
            order_id: Some(7),
            added_at: 1,
        };
        let pay = PaymentRecord {
            provider: "dev".into(),
            external_id: "x1".into(),
            order_id: 7,
            user_id: 1001,
            amount: 17_910,
            currency: Currency::RUB,
            outcome: PaymentOutcome::CreditedToBalance,
            at: 1,
        };
        let entry = LedgerEntry {
            seq: 2,
            user_id: 1001,
            amount: -500,
            currency: Currency::RUB,
            reason: "r".into(),
            order_id: Some(7),
            at: 1,
        };
        let user = User {
            id: 1001,
            name: "A".into(),
            username: Some("a".into()),
            lang: None,
            unreachable: true,
            created_at: 1,
        };
        let m = OutboxMessage { id: 1, chat_id: 1001, text: "hi".into(), at: 1, order_id: Some(7) };
        let got = [
            hex::encode(encode(&order()).unwrap()),
            hex::encode(encode(&item).unwrap()),
            hex::encode(encode(&pay).unwrap()),
            hex::encode(encode(&entry).unwrap()),
            hex::encode(encode(&user).unwrap()),
            hex::encode(encode(&m).unwrap()),
        ];
        let want = [
            "b107d20f0577696e31310357696e000201f8b6020aec97020352554201030080a0abfef96201c08e99fff962\
             01c0bab7fef9620000000103646576027831000000",
            "b1030577696e3131034b455902010702",
            "b10364657602783107d20fec9702035255420102",
            "b102d20fe707035255420172010702",
            "b1d20f0141010161000102",
            "b101d20f026869020107",
        ];
        assert_eq!(got, want);
    }
}
