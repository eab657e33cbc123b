//! The HTTP contract: one error shape for every error (extractor rejections, body limits,
//! unknown routes and methods included), and an OpenAPI document that lists every route of
//! the router with the statuses it answers.

use crate::helpers::{SMALL, TestApp, seed, spawn_app_with};
use lavka::http::openapi::doc_path;
use serde_json::Value;

/// A request body: its content type and text.
type Body<'a> = Option<(&'a str, String)>;

async fn doc(app: &TestApp) -> Value {
    let r = app.client.get(format!("{}/api/openapi.json", app.base)).send().await.unwrap();
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

/// Sends `method path` with an optional body of `content_type`, admin token when `admin`.
async fn raw(
    app: &TestApp,
    method: &str,
    path: &str,
    body: Option<(&str, String)>,
    admin: bool,
) -> (u16, reqwest::header::HeaderMap, Value) {
    let mut r = app.client.request(method.parse().unwrap(), format!("{}{path}", app.base));
    if admin {
        r = r.bearer_auth(&app.token);
    }
    if let Some((ct, b)) = body {
        r = r.header("content-type", ct).body(b);
    }
    let resp = r.send().await.unwrap();
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let text = resp.text().await.unwrap();
    (status, headers, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

#[tokio::test]
async fn every_error_response_has_the_error_shape_and_a_documented_code() {
    let app = spawn_app_with(|c| c.body_limit_bytes = 1024).await;
    seed(app.store(), SMALL).await;
    let d = doc(&app).await;
    let codes: Vec<&str> =
        d["components"]["schemas"]["ErrorBody"]["properties"]["error"]["properties"]["code"]["enum"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c.as_str().unwrap())
            .collect();
    let json = |b: &str| Some(("application/json", b.to_string()));
    let cases: Vec<(&str, &str, Body, bool, u16, &str)> = vec![
        ("GET", "/api/orders/abc", None, false, 400, "bad_input"),
        ("GET", "/api/search", None, false, 400, "bad_input"),
        ("GET", "/api/search?q=key&limit=-1", None, false, 400, "bad_input"),
        ("GET", "/admin/api/orders?before=x", None, true, 400, "bad_input"),
        ("POST", "/api/orders", json("{not json"), false, 400, "bad_input"),
        (
            "POST",
            "/api/orders",
            Some(("text/plain", r#"{"product_id":"key"}"#.into())),
            false,
            415,
            "unsupported_media_type",
        ),
        (
            "POST",
            "/admin/api/chat",
            Some(("text/plain", r#"{"user_id":1,"text":"hi"}"#.into())),
            true,
            415,
            "unsupported_media_type",
        ),
        ("POST", "/api/orders", json(r#"{"product_id": 5}"#), false, 422, "bad_input"),
        (
            "POST",
            "/admin/api/orders",
            json(r#"{"user_id": 1, "product_id": "key", "extra": 1}"#),
            true,
            422,
            "bad_input",
        ),
        (
            "POST",
            "/admin/api/products/key/stock",
            Some(("text/plain", "X".repeat(5000))),
            true,
            413,
            "too_large",
        ),
        (
            "POST",
            "/api/orders",
            json(&format!(r#"{{"product_id": "{}"}}"#, "k".repeat(2000))),
            false,
            413,
            "too_large",
        ),
        ("GET", "/nowhere", None, false, 404, "not_found"),
        ("GET", "/admin/api/nowhere", None, true, 404, "not_found"),
        ("DELETE", "/healthz", None, false, 405, "method_not_allowed"),
        ("PATCH", "/admin/api/orders", None, true, 405, "method_not_allowed"),
        ("GET", "/admin/api/stats", None, false, 401, "unauthorized"),
        ("GET", "/admin/api/orders/999", None, true, 404, "not_found"),
    ];
    for (method, path, body, admin, want, code) in cases {
        let (status, headers, v) = raw(&app, method, path, body, admin).await;
        let what = format!("{method} {path}: {status} {v}");
        assert_eq!(status, want, "{what}");
        let ct = headers.get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("");
        assert!(ct.starts_with("application/json"), "{what}: content-type {ct}");
        assert_eq!(v["error"]["code"], code, "{what}");
        assert!(codes.contains(&code), "{code} is not in the document's ErrorBody codes");
        assert!(v["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "{what}");
        if status == 405 {
            assert!(headers.contains_key("allow"), "{what}: no Allow header");
        }
    }
    // Nothing above changed the stock.
    assert_eq!(app.store().availability(crate::helpers::pid("key")).await.unwrap().available, 3);
    app.stop().await;
}

#[tokio::test]
async fn the_openapi_document_has_every_route_of_the_router_and_nothing_else() {
    let app = spawn_app_with(|_| {}).await;
    let d = doc(&app).await;
    let paths = d["paths"].as_object().unwrap();
    let routes = lavka::http::routes(&app.state);
    assert!(routes.len() > 50, "the route table is read: {}", routes.len());
    let mut served = Vec::new();
    for r in &routes {
        let p = doc_path(r.path);
        for m in &r.methods {
            assert!(
                paths.get(&p).and_then(|i| i.get(*m)).is_some(),
                "{} {p} is served but not documented",
                m.to_uppercase()
            );
            served.push((p.clone(), m.to_string()));
        }
    }
    for (p, item) in paths {
        for m in item.as_object().unwrap().keys().filter(|k| *k != "parameters") {
            // `/app` and `/app/{path}` are served by the `/app/{*path}` route and `/app`.
            assert!(
                served.contains(&(p.clone(), m.clone())),
                "{} {p} is documented but not served",
                m.to_uppercase()
            );
        }
    }
    app.stop().await;
}

#[tokio::test]
async fn the_openapi_document_says_what_the_server_answers() {
    let app = spawn_app_with(|_| {}).await;
    seed(app.store(), SMALL).await;
    let d = doc(&app).await;
    let op = |p: &str, m: &str| d["paths"][p][m].clone();
    // Required parameters are required.
    let q = op("/api/search", "get")["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "q")
        .cloned()
        .unwrap();
    assert_eq!((q["in"].as_str(), q["required"].as_bool()), (Some("query"), Some(true)), "{q}");
    // Who may call: the admin API takes the bearer token; the shop API initData or (demo) a session.
    assert_eq!(d["components"]["securitySchemes"]["adminToken"]["scheme"], "bearer");
    for r in lavka::http::routes(&app.state) {
        for m in &r.methods {
            let o = op(&doc_path(r.path), m);
            let statuses: Vec<&String> = o["responses"].as_object().unwrap().keys().collect();
            let what = format!("{m} {}: {statuses:?}", r.path);
            assert!(statuses.iter().any(|s| *s == "503"), "{what}");
            let security = o["security"].to_string();
            match r.guard {
                lavka::http::Guard::Admin => {
                    assert!(security.contains("adminToken") && statuses.iter().any(|s| *s == "401"), "{what}")
                }
                lavka::http::Guard::Customer => {
                    assert!(security.contains("initData") && statuses.iter().any(|s| *s == "401"), "{what}")
                }
                lavka::http::Guard::Public => {}
            }
            if r.path.contains('{') || o["requestBody"].is_object() {
                assert!(statuses.iter().any(|s| *s == "400"), "{what}");
            }
            if o["requestBody"].is_object() {
                assert!(statuses.iter().any(|s| *s == "413"), "{what}");
            }
            for (s, resp) in o["responses"].as_object().unwrap() {
                if s.starts_with('4') || s.starts_with('5') {
                    assert_eq!(
                        resp["content"]["application/json"]["schema"]["$ref"],
                        "#/components/schemas/ErrorBody",
                        "{what} {s}"
                    );
                }
            }
        }
    }
    // And the server answers what the document lists, for a sample of requests.
    let json = |b: &str| Some(("application/json", b.to_string()));
    let sample: Vec<(&str, &str, &str, Body, bool)> = vec![
        ("get", "/api/search", "/api/search", None, false),
        ("get", "/api/products/{id}", "/api/products/nope", None, false),
        ("post", "/api/orders", "/api/orders", json(r#"{"product_id": "nope"}"#), false),
        ("post", "/api/orders", "/api/orders", json(r#"{"product_id": "key", "quantity": "x"}"#), false),
        ("post", "/api/orders", "/api/orders", Some(("text/plain", String::new())), false),
        ("get", "/admin/api/stats", "/admin/api/stats", None, false),
        ("get", "/admin/api/orders/{id}", "/admin/api/orders/x", None, true),
        ("post", "/admin/api/import", "/admin/api/import", json("[]"), true),
        ("get", "/pay/{order}", "/pay/1?t=x", None, false),
    ];
    for (m, p, url, body, admin) in sample {
        let (status, _, v) = raw(&app, &m.to_uppercase(), url, body, admin).await;
        assert!(
            op(p, m)["responses"].get(status.to_string()).is_some(),
            "{m} {url} answered {status} ({v}), undocumented for {p}"
        );
    }
    app.stop().await;
}
