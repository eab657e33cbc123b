//! `GET /admin/api/sales?days=30`: paid orders and revenue per UTC day (by payment time),
//! for the admin page's chart. Orders refunded later count in `refunded`, not in revenue.

use super::error::ApiResult;
use crate::domain::{Money, OrderStatus};
use crate::state::AppState;
use crate::store::orders::OrderFilter;
use axum::Json;
use axum::extract::{Query, State};
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::BTreeMap;

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Days {
    /// Days back from today, 1-366 (default 30).
    #[param(minimum = 1, maximum = 366)]
    days: Option<u32>,
}

const DAY_MS: i64 = 86_400_000;

#[derive(Default)]
struct Day {
    orders: u64,
    refunded: u64,
    revenue: BTreeMap<String, i64>,
}

#[utoipa::path(get, path = "/admin/api/sales", tag = "admin", params(Days),
    responses((status = 200, description = "Paid orders and revenue per UTC day", body = Object)))]
pub async fn sales(State(s): State<AppState>, Query(q): Query<Days>) -> ApiResult<Json<Value>> {
    let days = match q.days.unwrap_or(30) {
        d @ 1..=366 => d as i64,
        d => return Err(crate::Error::bad(format!("days must be 1-366, got {d}")).into()),
    };
    let now = s.store.now();
    let today = now.div_euclid(DAY_MS);
    let first = today - days + 1;
    let since = first * DAY_MS;
    let mut per: BTreeMap<i64, Day> = (first..=today).map(|d| (d, Day::default())).collect();
    // Orders are numbered in creation order: page backwards until they are older than the
    // window (with two days' margin for orders paid a while after they were created).
    let mut before = None;
    'pages: loop {
        let page =
            s.store.orders(OrderFilter { before, limit: Some(1000), ..OrderFilter::default() }).await?;
        let Some(last) = page.last() else { break };
        before = Some(last.id);
        for o in &page {
            if o.created_at < since - 2 * DAY_MS {
                break 'pages;
            }
            let Some(paid) = o.paid_at.filter(|p| *p >= since) else { continue };
            let Some(d) = per.get_mut(&paid.div_euclid(DAY_MS)) else { continue };
            if o.status == OrderStatus::Refunded {
                d.refunded += 1;
            } else {
                d.orders += 1;
                *d.revenue.entry(o.currency.to_string()).or_default() += o.amount;
            }
        }
        if page.len() < 1000 {
            break;
        }
    }
    let rows: Vec<Value> = per
        .into_iter()
        .map(|(d, v)| {
            let date = chrono::DateTime::from_timestamp_millis(d * DAY_MS)
                .map(|t| t.format("%Y-%m-%d").to_string())
                .unwrap_or_default();
            let text: Vec<String> = v
                .revenue
                .iter()
                .filter_map(|(c, a)| {
                    crate::domain::Currency::parse(c).ok().map(|c| Money::new(*a, c).to_string())
                })
                .collect();
            json!({"date": date, "orders": v.orders, "refunded": v.refunded, "revenue": v.revenue,
                "revenue_text": text.join(" + ")})
        })
        .collect();
    Ok(Json(json!({ "currency": s.config.currency, "days": rows })))
}
