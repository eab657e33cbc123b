//! Products, suppliers, stock and the availability view (the former
//! `available_stock_with_discounts`).

use super::schema::*;
use super::{Store, Tx, decode, encode};
use crate::domain::{Availability, Millis, Product, ProductId, StockItem, StockState, Supplier};
use crate::error::{Error, Result};
use redb::{ReadTransaction, ReadableTable};
use sha2::{Digest, Sha256};

/// Result of adding stock lines to a product.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct StockAdded {
    pub added: u64,
    /// Lines already present for this product (import is idempotent).
    pub duplicates: u64,
}

fn content_key(content: &str) -> [u8; 16] {
    let h = Sha256::digest(content.as_bytes());
    let mut k = [0u8; 16];
    k.copy_from_slice(&h[..16]);
    k
}

/// Inserts or replaces a product (validated). Returns whether it was new.
pub fn upsert_product(tx: &Tx, mut p: Product) -> Result<bool> {
    p.validate()?;
    if let Some(s) = &p.supplier {
        let sup = tx.suppliers()?;
        if sup.get(s.as_str())?.is_none() {
            return Err(Error::bad(format!("product {}: unknown supplier {s:?}", p.id)));
        }
    }
    p.updated_at = tx.now;
    tx.products_changed.set(true);
    let mut t = tx.products()?;
    let existed = t.get(p.id.as_str())?.is_some();
    t.insert(p.id.as_str(), encode(&p)?.as_slice())?;
    let mut counts = tx.stock_counts()?;
    if counts.get(p.id.as_str())?.is_none() {
        counts.insert(p.id.as_str(), 0)?;
    }
    Ok(!existed)
}

/// Turns a product on or off for sale. Its stock stays.
pub fn set_product_active(tx: &Tx, id: &ProductId, active: bool) -> Result<Product> {
    let mut t = tx.products()?;
    let mut p: Product = match t.get(id.as_str())? {
        Some(v) => decode(v.value())?,
        None => return Err(Error::not_found(format!("product {id}"))),
    };
    p.active = active;
    p.updated_at = tx.now;
    tx.products_changed.set(true);
    t.insert(id.as_str(), encode(&p)?.as_slice())?;
    Ok(p)
}

pub fn upsert_supplier(tx: &Tx, s: &Supplier) -> Result<()> {
    s.validate()?;
    let mut t = tx.suppliers()?;
    t.insert(s.id.as_str(), encode(s)?.as_slice())?;
    Ok(())
}

/// Adds stock lines to a product; blank lines are refused, duplicates skipped.
pub fn add_stock(tx: &Tx, product: &ProductId, items: &[String]) -> Result<StockAdded> {
    if tx.products()?.get(product.as_str())?.is_none() {
        return Err(Error::not_found(format!("product {product}")));
    }
    for (i, c) in items.iter().enumerate() {
        if c.trim().is_empty() {
            return Err(Error::bad(format!("stock item {} for {product} is empty", i + 1)));
        }
        if c.len() > 8192 {
            return Err(Error::bad(format!("stock item {} for {product} is longer than 8192 bytes", i + 1)));
        }
    }
    let mut by_content = tx.stock_by_content()?;
    let mut items_t = tx.stock_items()?;
    let mut by_product = tx.stock_by_product()?;
    let mut avail = tx.stock_available()?;
    let mut out = StockAdded::default();
    let mut ids = Vec::new();
    for c in items {
        let content = c.trim().to_string();
        let key = content_key(&content);
        if by_content.get((product.as_str(), key.as_slice()))?.is_some() {
            out.duplicates += 1;
            continue;
        }
        let id = tx.next_id("stock")?;
        let item = StockItem {
            id,
            product_id: product.clone(),
            content,
            state: StockState::Available,
            order_id: None,
            added_at: tx.now,
        };
        items_t.insert(id, encode(&item)?.as_slice())?;
        by_content.insert((product.as_str(), key.as_slice()), id)?;
        by_product.insert((product.as_str(), id), ())?;
        avail.insert((product.as_str(), id), ())?;
        ids.push(id);
        out.added += 1;
    }
    drop((by_content, items_t, by_product, avail));
    adjust_count(tx, product, out.added as i64)?;
    Ok(out)
}

/// Withdraws an available stock item (it was entered by mistake, or leaked).
pub fn remove_stock_item(tx: &Tx, item_id: u64) -> Result<StockItem> {
    let mut items_t = tx.stock_items()?;
    let mut item: StockItem = match items_t.get(item_id)? {
        Some(v) => decode(v.value())?,
        None => return Err(Error::not_found(format!("stock item {item_id}"))),
    };
    if item.state != StockState::Available {
        return Err(Error::conflict(format!(
            "stock item {item_id} is {:?}, only available items can be removed",
            item.state
        )));
    }
    item.state = StockState::Removed;
    items_t.insert(item_id, encode(&item)?.as_slice())?;
    tx.stock_available()?.remove((item.product_id.as_str(), item_id))?;
    drop(items_t);
    adjust_count(tx, &item.product_id, -1)?;
    Ok(item)
}

pub(crate) fn adjust_count(tx: &Tx, product: &ProductId, delta: i64) -> Result<()> {
    if delta == 0 {
        return Ok(());
    }
    let mut counts = tx.stock_counts()?;
    let cur = counts.get(product.as_str())?.map(|v| v.value()).unwrap_or(0) as i64;
    let next = cur + delta;
    if next < 0 {
        return Err(Error::internal(format!("stock count of {product} would go negative")));
    }
    counts.insert(product.as_str(), next as u64)?;
    Ok(())
}

/// Takes `n` available items of a product (lowest ids first) and marks them reserved for
/// `order_id`. Fails without writing if fewer than `n` are available.
pub(crate) fn take_available(tx: &Tx, product: &ProductId, n: u32, order_id: u64) -> Result<Vec<u64>> {
    let mut avail = tx.stock_available()?;
    let mut ids = Vec::with_capacity(n as usize);
    for v in avail.range((product.as_str(), 0)..=(product.as_str(), u64::MAX))? {
        ids.push(v?.0.value().1);
        if ids.len() == n as usize {
            break;
        }
    }
    if ids.len() < n as usize {
        // Callers check the count first; an index that disagrees is corruption, not a
        // shortage to report to a customer.
        return Err(Error::internal(format!("stock index of {product} is shorter than its count")));
    }
    let mut items_t = tx.stock_items()?;
    for &id in &ids {
        avail.remove((product.as_str(), id))?;
        let mut item: StockItem = match items_t.get(id)? {
            Some(v) => decode(v.value())?,
            None => {
                return Err(Error::internal(format!("stock index names missing item {id}")));
            }
        };
        item.state = StockState::Reserved;
        item.order_id = Some(order_id);
        items_t.insert(id, encode(&item)?.as_slice())?;
    }
    drop((avail, items_t));
    adjust_count(tx, product, -(n as i64))?;
    Ok(ids)
}

/// Sets the state of held items (reserved → sold, or back to available).
pub(crate) fn set_items_state(tx: &Tx, ids: &[u64], state: StockState, order: u64) -> Result<Vec<StockItem>> {
    let mut items_t = tx.stock_items()?;
    let mut out = Vec::with_capacity(ids.len());
    let mut back_to_stock = Vec::new();
    for &id in ids {
        let mut item: StockItem = match items_t.get(id)? {
            Some(v) => decode(v.value())?,
            None => {
                return Err(Error::internal(format!("order names missing stock item {id}")));
            }
        };
        if item.state != StockState::Reserved || item.order_id != Some(order) {
            return Err(Error::internal(format!(
                "stock item {id} is {:?} for order {:?}, not reserved for order {order}",
                item.state, item.order_id
            )));
        }
        item.state = state;
        if state == StockState::Available {
            item.order_id = None;
            back_to_stock.push((item.product_id.clone(), id));
        }
        items_t.insert(id, encode(&item)?.as_slice())?;
        out.push(item);
    }
    drop(items_t);
    for (p, id) in &back_to_stock {
        if tx.stock_available()?.insert((p.as_str(), *id), ())?.is_some() {
            return Err(Error::internal(format!("stock item {id} was already in the available index")));
        }
        adjust_count(tx, p, 1)?;
    }
    Ok(out)
}

pub(crate) fn load_product<T: ReadableTable<&'static str, &'static [u8]>>(
    t: &T,
    id: &ProductId,
) -> Result<Product> {
    match t.get(id.as_str())? {
        Some(v) => decode(v.value()),
        None => Err(Error::not_found(format!("product {id}"))),
    }
}

fn availability_row(p: &Product, available: u64, now: Millis) -> Availability {
    let discount = p.discount_at(now);
    Availability {
        product_id: p.id.clone(),
        title: p.title.clone(),
        active: p.active,
        available,
        price: p.price,
        discount_percent: discount,
        final_price: p.final_price_at(now),
        currency: p.currency,
        can_fulfill: p.active && (available > 0 || p.lead_minutes().is_some()),
        fulfillment_hours: if p.active { p.lead_minutes().map(|m| m.div_ceil(60)) } else { None },
        fulfillment_minutes: if p.active { p.lead_minutes() } else { None },
    }
}

/// Read-side queries.
impl Store {
    pub async fn product(&self, id: ProductId) -> Result<Product> {
        self.read(move |rtx, _| load_product(&rtx.open_table(PRODUCTS)?, &id)).await
    }

    /// Every product, in id order.
    pub async fn products(&self) -> Result<Vec<Product>> {
        self.read(|rtx, _| list_products(rtx)).await
    }

    pub async fn suppliers(&self) -> Result<Vec<Supplier>> {
        self.read(|rtx, _| {
            let t = rtx.open_table(SUPPLIERS)?;
            t.iter()?.map(|r| decode(r?.1.value())).collect()
        })
        .await
    }

    pub async fn supplier(&self, id: String) -> Result<Option<Supplier>> {
        self.read(move |rtx, _| {
            let t = rtx.open_table(SUPPLIERS)?;
            t.get(id.as_str())?.map(|v| decode(v.value())).transpose()
        })
        .await
    }

    /// The availability view for every product (active or not), at the store's "now".
    pub async fn available_stock_with_discounts(&self) -> Result<Vec<Availability>> {
        self.read(availability_all).await
    }

    /// The availability row of one product.
    pub async fn availability(&self, id: ProductId) -> Result<Availability> {
        self.read(move |rtx, now| {
            let p = load_product(&rtx.open_table(PRODUCTS)?, &id)?;
            let n = rtx.open_table(STOCK_COUNTS)?.get(id.as_str())?.map(|v| v.value()).unwrap_or(0);
            Ok(availability_row(&p, n, now))
        })
        .await
    }

    /// Items in stock for each of `ids`, in order (0 for an unknown product).
    pub async fn stock_counts(&self, ids: Vec<ProductId>) -> Result<Vec<u64>> {
        self.read(move |rtx, _| {
            let t = rtx.open_table(STOCK_COUNTS)?;
            ids.iter().map(|id| Ok(t.get(id.as_str())?.map(|v| v.value()).unwrap_or(0))).collect()
        })
        .await
    }

    /// Stock items of a product (every state), oldest first.
    pub async fn stock_items(&self, id: ProductId) -> Result<Vec<StockItem>> {
        self.read(move |rtx, _| {
            let idx = rtx.open_table(STOCK_BY_PRODUCT)?;
            let items = rtx.open_table(STOCK_ITEMS)?;
            let mut out = Vec::new();
            for v in idx.range((id.as_str(), 0)..=(id.as_str(), u64::MAX))? {
                let item_id = v?.0.value().1;
                if let Some(raw) = items.get(item_id)? {
                    out.push(decode(raw.value())?);
                }
            }
            Ok(out)
        })
        .await
    }
}

pub(crate) fn list_products(rtx: &ReadTransaction) -> Result<Vec<Product>> {
    let t = rtx.open_table(PRODUCTS)?;
    t.iter()?.map(|r| decode(r?.1.value())).collect()
}

pub(crate) fn availability_all(rtx: &ReadTransaction, now: Millis) -> Result<Vec<Availability>> {
    let counts = rtx.open_table(STOCK_COUNTS)?;
    list_products(rtx)?
        .into_iter()
        .map(|p| {
            let n = counts.get(p.id.as_str())?.map(|v| v.value()).unwrap_or(0);
            Ok(availability_row(&p, n, now))
        })
        .collect()
}

pub(crate) fn product_exists(tx: &Tx, id: &ProductId) -> Result<bool> {
    Ok(tx.products()?.get(id.as_str())?.is_some())
}

pub(crate) fn supplier_exists(tx: &Tx, id: &str) -> Result<bool> {
    Ok(tx.suppliers()?.get(id)?.is_some())
}
