//! The catalogue import format (DESIGN.md "Catalogue file format"): one JSON object, or CSV
//! files (`products.csv`, `stock.csv`, optional `suppliers.csv`). Everything is parsed and
//! validated first — errors name the file and line — and then applied in one transaction,
//! so a bad file imports nothing. Import is idempotent: products are upserted by id, stock
//! lines are de-duplicated by content per product.

use crate::domain::{Currency, Product, ProductId, Supplier};
use crate::error::{Error, Result};
use crate::store::Tx;
use serde::Deserialize;
use std::collections::{BTreeMap, HashSet};
use std::path::Path;

/// A parsed, validated catalogue.
#[derive(Clone, Debug, Default)]
pub struct Catalog {
    pub products: Vec<Product>,
    pub stock: BTreeMap<ProductId, Vec<String>>,
    pub suppliers: Vec<Supplier>,
}

/// What an import did.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ImportSummary {
    pub products_created: u64,
    pub products_updated: u64,
    pub stock_added: u64,
    pub stock_duplicates: u64,
    pub suppliers: u64,
    /// Suppliers named by products but not defined anywhere; created without a chat.
    pub suppliers_created: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCatalog {
    #[serde(default)]
    currency: Option<String>,
    #[serde(default)]
    price_units: Option<String>,
    #[serde(default)]
    products: Vec<RawProduct>,
    #[serde(default)]
    stock: Vec<RawStock>,
    #[serde(default)]
    suppliers: Vec<Supplier>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProduct {
    id: String,
    title: String,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    category: Option<String>,
    #[serde(default)]
    tags: Vec<String>,
    price: serde_json::Value,
    #[serde(default)]
    discount_percent: Option<u8>,
    #[serde(default)]
    discount_until: Option<String>,
    #[serde(default)]
    fulfillment_hours: Option<u32>,
    #[serde(default)]
    fulfillment_minutes: Option<u32>,
    #[serde(default)]
    title_en: Option<String>,
    #[serde(default)]
    description_en: Option<String>,
    #[serde(default)]
    category_en: Option<String>,
    #[serde(default)]
    supplier: Option<String>,
    #[serde(default)]
    active: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStock {
    product_id: String,
    items: Vec<String>,
}

/// Fields of a product as text, from either format.
struct Fields<'a> {
    id: &'a str,
    title: &'a str,
    description: &'a str,
    category: &'a str,
    tags: Vec<String>,
    price: String,
    discount_percent: Option<u8>,
    discount_until: Option<&'a str>,
    fulfillment_hours: Option<u32>,
    fulfillment_minutes: Option<u32>,
    title_en: Option<&'a str>,
    description_en: Option<&'a str>,
    category_en: Option<&'a str>,
    supplier: Option<&'a str>,
    active: bool,
}

fn build_product(f: Fields<'_>, currency: Currency, minor_units: bool) -> Result<Product> {
    let id = ProductId::parse_new(f.id.trim())?;
    let price = if minor_units {
        f.price
            .trim()
            .parse::<i64>()
            .map_err(|_| Error::bad(format!("price {:?} is not a whole number of minor units", f.price)))?
    } else {
        currency.parse_major(&f.price)?
    };
    let discount_until = match f.discount_until.map(str::trim).filter(|s| !s.is_empty()) {
        Some(s) => Some(
            chrono::DateTime::parse_from_rfc3339(s)
                .map_err(|_| Error::bad(format!("discount_until {s:?} is not an RFC 3339 time")))?
                .timestamp_millis(),
        ),
        None => None,
    };
    if f.fulfillment_hours.is_some() && f.fulfillment_minutes.is_some() {
        return Err(Error::bad("give fulfillment_hours or fulfillment_minutes, not both"));
    }
    let p = Product {
        id,
        title: f.title.trim().to_string(),
        description: f.description.trim().to_string(),
        category: f.category.trim().to_string(),
        tags: f.tags.into_iter().map(|t| t.trim().to_string()).filter(|t| !t.is_empty()).collect(),
        price,
        currency,
        discount_percent: f.discount_percent.unwrap_or(0),
        discount_until,
        fulfillment_hours: f.fulfillment_hours,
        fulfillment_minutes: f.fulfillment_minutes,
        en: {
            let some = |s: Option<&str>| s.map(str::trim).filter(|s| !s.is_empty()).map(String::from);
            let t = crate::domain::Translation {
                title: some(f.title_en),
                description: some(f.description_en),
                category: some(f.category_en),
            };
            (t != crate::domain::Translation::default()).then_some(t)
        },
        supplier: f.supplier.map(str::trim).filter(|s| !s.is_empty()).map(String::from),
        active: f.active,
        updated_at: 0,
    };
    p.validate()?;
    Ok(p)
}

fn line_of(text: &str, needle: &str) -> usize {
    text.find(needle).map(|i| text[..i].lines().count().max(1)).unwrap_or(0)
}

/// Parses a JSON catalogue. `default_currency` applies when the file names none.
pub fn parse_json(text: &str, default_currency: Currency) -> Result<Catalog> {
    // serde would read the catalogue's fields from an array, one by one.
    if !text.trim_start().starts_with('{') {
        return Err(Error::bad("a catalogue in JSON is an object: {\"products\": [...], ...}"));
    }
    let raw: RawCatalog = serde_json::from_str(text)
        .map_err(|e| Error::bad(format!("catalogue JSON, line {} column {}: {e}", e.line(), e.column())))?;
    let currency = match &raw.currency {
        Some(c) => Currency::parse(c)?,
        None => default_currency,
    };
    let minor = match raw.price_units.as_deref() {
        None | Some("major") => false,
        Some("minor") => true,
        Some(other) => {
            return Err(Error::bad(format!("price_units must be \"major\" or \"minor\", got {other:?}")));
        }
    };
    let mut cat = Catalog { suppliers: raw.suppliers, ..Default::default() };
    for (i, rp) in raw.products.iter().enumerate() {
        let line = line_of(text, &format!("\"{}\"", rp.id));
        let at = |e: Error| {
            Error::bad(format!("catalogue JSON, product {} ({:?}, line {line}): {e}", i + 1, rp.id))
        };
        let price = match &rp.price {
            serde_json::Value::Number(n) => n.to_string(),
            serde_json::Value::String(s) => s.clone(),
            other => {
                return Err(at(Error::bad(format!("price must be a number, got {other}"))));
            }
        };
        let f = Fields {
            id: &rp.id,
            title: &rp.title,
            description: rp.description.as_deref().unwrap_or(""),
            category: rp.category.as_deref().unwrap_or(""),
            tags: rp.tags.clone(),
            price,
            discount_percent: rp.discount_percent,
            discount_until: rp.discount_until.as_deref(),
            fulfillment_hours: rp.fulfillment_hours,
            fulfillment_minutes: rp.fulfillment_minutes,
            title_en: rp.title_en.as_deref(),
            description_en: rp.description_en.as_deref(),
            category_en: rp.category_en.as_deref(),
            supplier: rp.supplier.as_deref(),
            active: rp.active.unwrap_or(true),
        };
        cat.products.push(build_product(f, currency, minor).map_err(at)?);
    }
    for s in raw.stock {
        let line = line_of(text, &format!("\"product_id\": \"{}\"", s.product_id));
        let id = ProductId::parse(&s.product_id)
            .map_err(|e| Error::bad(format!("catalogue JSON, stock (line {line}): {e}")))?;
        cat.stock.entry(id).or_default().extend(s.items);
    }
    finish(cat)
}

fn cell<'a>(rec: &'a csv::StringRecord, headers: &csv::StringRecord, name: &str) -> &'a str {
    headers.iter().position(|h| h.trim() == name).and_then(|i| rec.get(i)).unwrap_or("")
}

fn opt_num<T: std::str::FromStr>(s: &str, what: &str) -> Result<Option<T>> {
    let s = s.trim();
    if s.is_empty() {
        return Ok(None);
    }
    s.parse().map(Some).map_err(|_| Error::bad(format!("{what} {s:?} is not a valid number")))
}

fn csv_reader(text: &str) -> csv::Reader<&[u8]> {
    csv::ReaderBuilder::new().flexible(false).trim(csv::Trim::Headers).from_reader(text.as_bytes())
}

/// Parses `products.csv`.
pub fn parse_products_csv(text: &str, name: &str, currency: Currency) -> Result<Vec<Product>> {
    let mut rdr = csv_reader(text);
    let headers = rdr.headers().map_err(|e| Error::bad(format!("{name}: {e}")))?.clone();
    for required in ["id", "title", "price"] {
        if !headers.iter().any(|h| h == required) {
            return Err(Error::bad(format!("{name}, line 1: missing column {required:?}")));
        }
    }
    let known = [
        "id",
        "title",
        "description",
        "category",
        "tags",
        "price",
        "discount_percent",
        "discount_until",
        "fulfillment_hours",
        "fulfillment_minutes",
        "title_en",
        "description_en",
        "category_en",
        "supplier",
        "active",
    ];
    if let Some(h) = headers.iter().find(|h| !known.contains(h)) {
        return Err(Error::bad(format!("{name}, line 1: unknown column {h:?}")));
    }
    let mut out = Vec::new();
    for rec in rdr.records() {
        let rec = rec.map_err(|e| Error::bad(format!("{name}: {e}")))?;
        let line = rec.position().map(|p| p.line()).unwrap_or(0);
        let at = |e: Error| Error::bad(format!("{name}, line {line}: {e}"));
        let c = |n: &str| cell(&rec, &headers, n);
        let active = match c("active").trim().to_ascii_lowercase().as_str() {
            "" | "true" | "1" | "yes" => true,
            "false" | "0" | "no" => false,
            other => {
                return Err(at(Error::bad(format!("active must be true or false, got {other:?}"))));
            }
        };
        let f = Fields {
            id: c("id"),
            title: c("title"),
            description: c("description"),
            category: c("category"),
            tags: c("tags").split('|').map(String::from).collect(),
            price: c("price").to_string(),
            discount_percent: opt_num(c("discount_percent"), "discount_percent").map_err(at)?,
            discount_until: Some(c("discount_until")),
            fulfillment_hours: opt_num(c("fulfillment_hours"), "fulfillment_hours").map_err(at)?,
            fulfillment_minutes: opt_num(c("fulfillment_minutes"), "fulfillment_minutes").map_err(at)?,
            title_en: Some(c("title_en")),
            description_en: Some(c("description_en")),
            category_en: Some(c("category_en")),
            supplier: Some(c("supplier")),
            active,
        };
        out.push(build_product(f, currency, false).map_err(at)?);
    }
    Ok(out)
}

/// Parses `stock.csv` (`product_id,content`).
pub fn parse_stock_csv(text: &str, name: &str) -> Result<BTreeMap<ProductId, Vec<String>>> {
    let mut rdr = csv_reader(text);
    let headers = rdr.headers().map_err(|e| Error::bad(format!("{name}: {e}")))?.clone();
    if !(headers.iter().any(|h| h == "product_id") && headers.iter().any(|h| h == "content")) {
        return Err(Error::bad(format!("{name}, line 1: the columns must be product_id,content")));
    }
    let mut out: BTreeMap<ProductId, Vec<String>> = BTreeMap::new();
    for rec in rdr.records() {
        let rec = rec.map_err(|e| Error::bad(format!("{name}: {e}")))?;
        let line = rec.position().map(|p| p.line()).unwrap_or(0);
        let id = ProductId::parse(cell(&rec, &headers, "product_id").trim())
            .map_err(|e| Error::bad(format!("{name}, line {line}: {e}")))?;
        let content = cell(&rec, &headers, "content");
        if content.trim().is_empty() {
            return Err(Error::bad(format!("{name}, line {line}: content is empty")));
        }
        out.entry(id).or_default().push(content.to_string());
    }
    Ok(out)
}

/// Parses `suppliers.csv` (`id,name,telegram_chat_id[,lang]`).
pub fn parse_suppliers_csv(text: &str, name: &str) -> Result<Vec<Supplier>> {
    let mut rdr = csv_reader(text);
    let headers = rdr.headers().map_err(|e| Error::bad(format!("{name}: {e}")))?.clone();
    let mut out = Vec::new();
    for rec in rdr.records() {
        let rec = rec.map_err(|e| Error::bad(format!("{name}: {e}")))?;
        let line = rec.position().map(|p| p.line()).unwrap_or(0);
        let at = |e: Error| Error::bad(format!("{name}, line {line}: {e}"));
        let id = cell(&rec, &headers, "id").trim();
        if id.is_empty() {
            return Err(at(Error::bad("supplier id is empty")));
        }
        out.push(Supplier {
            id: id.to_string(),
            name: cell(&rec, &headers, "name").trim().to_string(),
            telegram_chat_id: opt_num(cell(&rec, &headers, "telegram_chat_id"), "telegram_chat_id")
                .map_err(at)?,
            lang: Some(cell(&rec, &headers, "lang").trim().to_ascii_lowercase()).filter(|l| !l.is_empty()),
        });
    }
    Ok(out)
}

fn finish(cat: Catalog) -> Result<Catalog> {
    let mut seen = HashSet::new();
    for p in &cat.products {
        if !seen.insert(p.id.clone()) {
            return Err(Error::bad(format!("product {} appears twice", p.id)));
        }
    }
    Ok(cat)
}

/// Loads a catalogue from a `.json` file, a `.csv` file (products, stock or suppliers — told
/// apart by file name or header) or a directory holding `products.csv` / `stock.csv` /
/// `suppliers.csv`.
pub fn load_path(path: &Path, default_currency: Currency) -> Result<Catalog> {
    let read = |p: &Path| {
        std::fs::read_to_string(p).map_err(|e| Error::bad(format!("cannot read {}: {e}", p.display())))
    };
    if path.is_dir() {
        let mut cat = Catalog::default();
        let mut any = false;
        for (file, kind) in [("suppliers.csv", 0), ("products.csv", 1), ("stock.csv", 2)] {
            let p = path.join(file);
            if p.exists() {
                any = true;
                add_csv(&mut cat, &read(&p)?, &p.display().to_string(), kind, default_currency)?;
            }
        }
        if !any {
            return Err(Error::bad(format!(
                "{} has no products.csv, stock.csv or suppliers.csv",
                path.display()
            )));
        }
        return finish(cat);
    }
    let text = read(path)?;
    let name = path.display().to_string();
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("").to_ascii_lowercase();
    match ext.as_str() {
        "json" => parse_json(&text, default_currency),
        "csv" => {
            let header = text.lines().next().unwrap_or("").to_ascii_lowercase();
            let file = path.file_name().and_then(|n| n.to_str()).unwrap_or("").to_ascii_lowercase();
            let kind = if file.contains("stock") || header.contains("content") {
                2
            } else if file.contains("supplier") || header.contains("telegram_chat_id") {
                0
            } else {
                1
            };
            let mut cat = Catalog::default();
            add_csv(&mut cat, &text, &name, kind, default_currency)?;
            finish(cat)
        }
        _ => Err(Error::bad(format!("{name}: expected a .json or .csv file, or a directory of CSV files"))),
    }
}

fn add_csv(cat: &mut Catalog, text: &str, name: &str, kind: u8, currency: Currency) -> Result<()> {
    match kind {
        0 => cat.suppliers.extend(parse_suppliers_csv(text, name)?),
        1 => cat.products.extend(parse_products_csv(text, name, currency)?),
        _ => {
            for (k, v) in parse_stock_csv(text, name)? {
                cat.stock.entry(k).or_default().extend(v);
            }
        }
    }
    Ok(())
}

/// Applies a catalogue in the caller's transaction; checks every reference before writing.
pub fn apply(tx: &Tx, cat: &Catalog) -> Result<ImportSummary> {
    use crate::store::products as sp;
    let mut sum = ImportSummary::default();
    let known_products: HashSet<&ProductId> = cat.products.iter().map(|p| &p.id).collect();
    for id in cat.stock.keys() {
        if !known_products.contains(id) && !sp::product_exists(tx, id)? {
            return Err(Error::bad(format!(
                "stock names product {id:?}, which is neither in the file nor in the shop"
            )));
        }
    }
    for (id, items) in &cat.stock {
        for (i, c) in items.iter().enumerate() {
            if c.trim().is_empty() || c.len() > 8192 {
                return Err(Error::bad(format!(
                    "stock item {} of {id} is empty or longer than 8192 bytes",
                    i + 1
                )));
            }
        }
    }
    for s in &cat.suppliers {
        s.validate()?;
    }
    let defined: HashSet<&str> = cat.suppliers.iter().map(|s| s.id.as_str()).collect();
    let mut missing = Vec::new();
    for p in &cat.products {
        if let Some(s) = &p.supplier
            && !defined.contains(s.as_str())
            && !sp::supplier_exists(tx, s)?
            && !missing.contains(s)
        {
            missing.push(s.clone());
        }
    }
    for s in &cat.suppliers {
        sp::upsert_supplier(tx, s)?;
        sum.suppliers += 1;
    }
    for s in &missing {
        sp::upsert_supplier(
            tx,
            &Supplier { id: s.clone(), name: s.clone(), telegram_chat_id: None, lang: None },
        )?;
    }
    sum.suppliers_created = missing;
    for p in &cat.products {
        if sp::upsert_product(tx, p.clone())? {
            sum.products_created += 1;
        } else {
            sum.products_updated += 1;
        }
    }
    for (id, items) in &cat.stock {
        let added = sp::add_stock(tx, id, items)?;
        sum.stock_added += added.added;
        sum.stock_duplicates += added.duplicates;
    }
    Ok(sum)
}

/// The demo catalogue shipped in the binary.
pub const DEMO_CATALOG: &str = include_str!("../assets/demo/catalog.json");

/// Writes a catalogue back in the JSON import format (prices in minor units), e.g. to send
/// a CSV import to a running server.
pub fn to_json(cat: &Catalog) -> serde_json::Value {
    let products: Vec<serde_json::Value> = cat
        .products
        .iter()
        .map(|p| {
            let mut v = serde_json::json!({
                "id": p.id, "title": p.title, "description": p.description, "category": p.category,
                "tags": p.tags, "price": p.price, "discount_percent": p.discount_percent,
                "active": p.active,
            });
            if let Some(u) = p.discount_until {
                v["discount_until"] = serde_json::json!(crate::domain::fmt_time(u));
            }
            if let Some(h) = p.fulfillment_hours {
                v["fulfillment_hours"] = serde_json::json!(h);
            }
            if let Some(m) = p.fulfillment_minutes {
                v["fulfillment_minutes"] = serde_json::json!(m);
            }
            if let Some(en) = &p.en {
                for (k, val) in [
                    ("title_en", &en.title),
                    ("description_en", &en.description),
                    ("category_en", &en.category),
                ] {
                    if let Some(x) = val {
                        v[k] = serde_json::json!(x);
                    }
                }
            }
            if let Some(s) = &p.supplier {
                v["supplier"] = serde_json::json!(s);
            }
            v
        })
        .collect();
    let stock: Vec<serde_json::Value> =
        cat.stock.iter().map(|(id, items)| serde_json::json!({ "product_id": id, "items": items })).collect();
    let mut out = serde_json::json!({
        "price_units": "minor", "products": products, "stock": stock, "suppliers": cat.suppliers,
    });
    if let Some(p) = cat.products.first() {
        out["currency"] = serde_json::json!(p.currency);
    }
    out
}
