//! The shape of Gemini API requests, as the API documents and enforces it: unknown fields,
//! roles, parts, function declarations. The local stand-ins (the bench's, the tests') refuse
//! what the real API refuses.

use serde_json::Value;

const REQUEST: &[&str] = &[
    "contents",
    "systemInstruction",
    "tools",
    "toolConfig",
    "generationConfig",
    "safetySettings",
    "cachedContent",
];
const GENERATION: &[&str] = &[
    "temperature",
    "topP",
    "topK",
    "maxOutputTokens",
    "candidateCount",
    "stopSequences",
    "seed",
    "responseMimeType",
    "responseSchema",
    "responseJsonSchema",
    "thinkingConfig",
    "presencePenalty",
    "frequencyPenalty",
];
const PART_DATA: &[&str] = &["text", "inlineData", "fileData", "functionCall", "functionResponse"];
const PART_META: &[&str] = &["thought", "thoughtSignature"];
const SCHEMA: &[&str] = &[
    "type",
    "description",
    "properties",
    "required",
    "items",
    "enum",
    "nullable",
    "format",
    "minimum",
    "maximum",
    "minItems",
    "maxItems",
    "propertyOrdering",
];
const TYPES: &[&str] = &["OBJECT", "STRING", "INTEGER", "NUMBER", "BOOLEAN", "ARRAY"];

fn keys_in(v: &Value, allowed: &[&str], what: &str) -> Result<(), String> {
    let o = v.as_object().ok_or_else(|| format!("{what} must be an object"))?;
    match o.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(k) => Err(format!("Invalid JSON payload received. Unknown name \"{k}\" at '{what}'")),
        None => Ok(()),
    }
}

fn content(c: &Value, what: &str, system: bool) -> Result<(), String> {
    keys_in(c, &["role", "parts"], what)?;
    let role = c.get("role").and_then(Value::as_str);
    if !system && !matches!(role, Some("user" | "model")) {
        return Err(format!("{what}.role must be \"user\" or \"model\", got {role:?}"));
    }
    let parts =
        c["parts"].as_array().filter(|p| !p.is_empty()).ok_or_else(|| format!("{what}.parts is empty"))?;
    for (i, p) in parts.iter().enumerate() {
        let mut all = PART_DATA.to_vec();
        all.extend(PART_META);
        keys_in(p, &all, &format!("{what}.parts[{i}]"))?;
        let data = PART_DATA.iter().filter(|k| p.get(**k).is_some()).count();
        if data != 1 {
            return Err(format!(
                "{what}.parts[{i}] must hold exactly one of text, inlineData, fileData, functionCall, functionResponse"
            ));
        }
        if p.get("functionCall").is_some() && role != Some("model") {
            return Err(format!("{what}.parts[{i}]: a functionCall belongs to a model turn"));
        }
        if p.get("functionResponse").is_some() && role != Some("user") {
            return Err(format!("{what}.parts[{i}]: a functionResponse belongs to a user turn"));
        }
        if let Some(fr) = p.get("functionResponse") {
            keys_in(fr, &["id", "name", "response"], &format!("{what}.parts[{i}].functionResponse"))?;
            if !fr["response"].is_object() {
                return Err(format!("{what}.parts[{i}].functionResponse.response must be an object"));
            }
        }
    }
    Ok(())
}

fn schema(v: &Value, what: &str) -> Result<(), String> {
    keys_in(v, SCHEMA, what)?;
    let t = v.get("type").and_then(Value::as_str).ok_or_else(|| format!("{what}.type is missing"))?;
    if !TYPES.contains(&t) {
        return Err(format!("{what}.type {t:?} is not a schema type"));
    }
    if let Some(props) = v.get("properties") {
        let props = props.as_object().ok_or_else(|| format!("{what}.properties must be an object"))?;
        for (k, p) in props {
            schema(p, &format!("{what}.properties.{k}"))?;
        }
        for r in v.get("required").and_then(Value::as_array).into_iter().flatten() {
            let r = r.as_str().unwrap_or_default();
            if !props.contains_key(r) {
                return Err(format!("{what}.required names {r:?}, which is not a property"));
            }
        }
    }
    if t == "ARRAY" {
        schema(
            v.get("items").ok_or_else(|| format!("{what}: an ARRAY needs items"))?,
            &format!("{what}.items"),
        )?;
    }
    Ok(())
}

fn tools(tools: &Value) -> Result<Vec<String>, String> {
    let mut names = Vec::new();
    for (i, t) in tools.as_array().ok_or("tools must be an array")?.iter().enumerate() {
        keys_in(
            t,
            &["functionDeclarations", "googleSearch", "codeExecution", "urlContext"],
            &format!("tools[{i}]"),
        )?;
        for (j, d) in t["functionDeclarations"].as_array().into_iter().flatten().enumerate() {
            let what = format!("tools[{i}].functionDeclarations[{j}]");
            keys_in(
                d,
                &[
                    "name",
                    "description",
                    "parameters",
                    "parametersJsonSchema",
                    "response",
                    "responseJsonSchema",
                    "behavior",
                ],
                &what,
            )?;
            let name = d["name"].as_str().unwrap_or_default();
            if name.is_empty()
                || name.len() > 63
                || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
            {
                return Err(format!("{what}.name {name:?} is not a valid function name"));
            }
            if d.get("parameters").is_some() && d.get("parametersJsonSchema").is_some() {
                return Err(format!("{what}: parameters and parametersJsonSchema are mutually exclusive"));
            }
            if let Some(p) = d.get("parameters") {
                schema(p, &format!("{what}.parameters"))?;
            }
            names.push(name.to_string());
        }
    }
    Ok(names)
}

fn tool_config(tc: &Value, names: &[String]) -> Result<(), String> {
    keys_in(tc, &["functionCallingConfig"], "toolConfig")?;
    let f = &tc["functionCallingConfig"];
    keys_in(f, &["mode", "allowedFunctionNames"], "toolConfig.functionCallingConfig")?;
    let mode = f.get("mode").and_then(Value::as_str).unwrap_or("AUTO");
    if !["AUTO", "ANY", "NONE", "VALIDATED"].contains(&mode) {
        return Err(format!("functionCallingConfig.mode {mode:?} is not AUTO, ANY, NONE or VALIDATED"));
    }
    if let Some(allowed) = f.get("allowedFunctionNames").and_then(Value::as_array) {
        if !matches!(mode, "ANY" | "VALIDATED") {
            return Err("allowedFunctionNames goes with mode ANY or VALIDATED".into());
        }
        if let Some(a) = allowed.iter().filter_map(Value::as_str).find(|a| !names.iter().any(|n| n == a)) {
            return Err(format!("allowedFunctionNames names {a:?}, which is not declared"));
        }
    }
    Ok(())
}

fn generation(g: &Value) -> Result<(), String> {
    keys_in(g, GENERATION, "generationConfig")?;
    if let Some(t) = g.get("thinkingConfig") {
        keys_in(
            t,
            &["thinkingBudget", "thinkingLevel", "includeThoughts"],
            "generationConfig.thinkingConfig",
        )?;
        if t.get("thinkingBudget").is_some() && t.get("thinkingLevel").is_some() {
            return Err("thinkingBudget and thinkingLevel cannot both be set".into());
        }
        if let Some(l) = t.get("thinkingLevel").and_then(Value::as_str)
            && !["MINIMAL", "LOW", "MEDIUM", "HIGH"].contains(&l)
        {
            return Err(format!("thinkingLevel {l:?} is not MINIMAL, LOW, MEDIUM or HIGH"));
        }
    }
    if g.get("maxOutputTokens").is_some_and(|m| m.as_u64().is_none_or(|m| m == 0)) {
        return Err("maxOutputTokens must be a positive integer".into());
    }
    Ok(())
}

/// The parts a generate request and a cache share: the system instruction, the tools and
/// their config.
fn instruction_and_tools(body: &Value) -> Result<(), String> {
    if let Some(s) = body.get("systemInstruction") {
        content(s, "systemInstruction", true)?;
    }
    let names = match body.get("tools") {
        Some(t) => tools(t)?,
        None => Vec::new(),
    };
    if let Some(tc) = body.get("toolConfig") {
        tool_config(tc, &names)?;
    }
    Ok(())
}

/// `models/{model}:generateContent`.
pub fn generate_request(body: &Value) -> Result<(), String> {
    keys_in(body, REQUEST, "request")?;
    let contents = body["contents"].as_array().filter(|c| !c.is_empty()).ok_or("contents is required")?;
    for (i, c) in contents.iter().enumerate() {
        content(c, &format!("contents[{i}]"), false)?;
    }
    instruction_and_tools(body)?;
    if let Some(g) = body.get("generationConfig") {
        generation(g)?;
    }
    if let Some(c) = body.get("cachedContent")
        && !c.as_str().is_some_and(|c| c.starts_with("cachedContents/"))
    {
        return Err("cachedContent must be a cachedContents/{id} name".into());
    }
    Ok(())
}

/// `POST cachedContents`.
pub fn cache_request(body: &Value) -> Result<(), String> {
    keys_in(
        body,
        &[
            "model",
            "displayName",
            "systemInstruction",
            "contents",
            "tools",
            "toolConfig",
            "ttl",
            "expireTime",
        ],
        "cachedContent",
    )?;
    if !body["model"].as_str().is_some_and(|m| m.starts_with("models/")) {
        return Err("model must be models/{model}".into());
    }
    instruction_and_tools(body)?;
    if let Some(ttl) = body.get("ttl")
        && !ttl.as_str().is_some_and(|t| t.ends_with('s') && t[..t.len() - 1].parse::<f64>().is_ok())
    {
        return Err(format!("ttl {ttl} must be a duration such as \"3600s\""));
    }
    Ok(())
}
