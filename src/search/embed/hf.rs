//! A standard Hugging Face BERT-family encoder directory — `config.json`,
//! `model.safetensors`, `tokenizer.json` — so an owner can point `model_dir` at another
//! encoder (for example the full-precision `intfloat/multilingual-e5-small`). The weights
//! are mapped onto the same encoder as the 4-bit file ([`super::bert`]); the tokenizer is
//! the `tokenizers` crate's.

use super::bert::Bert;
use super::e5s1::{Config, DType, RawTensor};
use super::error::{Error, Result, format_err};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::path::Path;

#[derive(Deserialize)]
struct HfConfig {
    hidden_size: usize,
    num_hidden_layers: usize,
    num_attention_heads: usize,
    intermediate_size: usize,
    vocab_size: usize,
    max_position_embeddings: usize,
    #[serde(default = "two")]
    type_vocab_size: usize,
    #[serde(default = "eps")]
    layer_norm_eps: f64,
    #[serde(default)]
    hidden_act: Option<String>,
}

fn two() -> usize {
    2
}
fn eps() -> f64 {
    1e-12
}

/// Whether `dir` holds a Hugging Face encoder directory.
pub fn is_hf_dir(dir: &Path) -> bool {
    ["config.json", "model.safetensors", "tokenizer.json"].iter().all(|f| dir.join(f).is_file())
}

/// An encoder loaded from a Hugging Face directory.
pub struct HfModel {
    tokenizer: tokenizers::Tokenizer,
    bert: Bert,
    model_id: String,
    max_tokens: usize,
}

/// HF tensor name (after an optional `bert.` prefix) for each of ours.
fn hf_name(ours: &str) -> Option<String> {
    let map = |s: &str| -> Option<&str> {
        Some(match s {
            "q.w" => "attention.self.query.weight",
            "q.b" => "attention.self.query.bias",
            "k.w" => "attention.self.key.weight",
            "k.b" => "attention.self.key.bias",
            "v.w" => "attention.self.value.weight",
            "v.b" => "attention.self.value.bias",
            "ao.w" => "attention.output.dense.weight",
            "ao.b" => "attention.output.dense.bias",
            "aln.w" => "attention.output.LayerNorm.weight",
            "aln.b" => "attention.output.LayerNorm.bias",
            "fi.w" => "intermediate.dense.weight",
            "fi.b" => "intermediate.dense.bias",
            "fo.w" => "output.dense.weight",
            "fo.b" => "output.dense.bias",
            "oln.w" => "output.LayerNorm.weight",
            "oln.b" => "output.LayerNorm.bias",
            _ => return None,
        })
    };
    match ours {
        "emb.word" => Some("embeddings.word_embeddings.weight".into()),
        "emb.pos" => Some("embeddings.position_embeddings.weight".into()),
        "emb.type" => Some("embeddings.token_type_embeddings.weight".into()),
        "emb.ln.w" => Some("embeddings.LayerNorm.weight".into()),
        "emb.ln.b" => Some("embeddings.LayerNorm.bias".into()),
        _ => {
            let rest = ours.strip_prefix('l')?;
            let (i, part) = rest.split_once('.')?;
            let i: usize = i.parse().ok()?;
            Some(format!("encoder.layer.{i}.{}", map(part)?))
        }
    }
}

/// Our tensor names for a config.
fn our_names(layers: usize) -> Vec<String> {
    let mut v: Vec<String> =
        ["emb.word", "emb.pos", "emb.type", "emb.ln.w", "emb.ln.b"].map(String::from).to_vec();
    for i in 0..layers {
        for p in ["q", "k", "v", "ao", "aln", "fi", "fo", "oln"] {
            v.push(format!("l{i}.{p}.w"));
            v.push(format!("l{i}.{p}.b"));
        }
    }
    v
}

impl HfModel {
    pub fn load(dir: &Path) -> Result<HfModel> {
        let io = |p: &Path| {
            let p = p.to_path_buf();
            move |source| Error::Io { path: p, source }
        };
        let cfg_path = dir.join("config.json");
        let text = std::fs::read_to_string(&cfg_path).map_err(io(&cfg_path))?;
        let hc: HfConfig =
            serde_json::from_str(&text).map_err(|e| format_err(format!("{}: {e}", cfg_path.display())))?;
        if let Some(act) = &hc.hidden_act
            && act != "gelu"
        {
            return Err(Error::Unsupported(format!("hidden_act {act:?} (only \"gelu\" is supported)")));
        }
        let cfg = Config {
            hidden: hc.hidden_size,
            layers: hc.num_hidden_layers,
            heads: hc.num_attention_heads,
            ffn: hc.intermediate_size,
            vocab: hc.vocab_size,
            max_pos: hc.max_position_embeddings,
            type_vocab: hc.type_vocab_size,
            eps: hc.layer_norm_eps as f32,
        };
        let st_path = dir.join("model.safetensors");
        let bytes = std::fs::read(&st_path).map_err(io(&st_path))?;
        let model_id = format!("hf:{}", &hex(&Sha256::digest(&bytes))[..16]);
        let st = safetensors::SafeTensors::deserialize(&bytes)
            .map_err(|e| format_err(format!("{}: {e}", st_path.display())))?;
        let mut tensors = HashMap::new();
        for ours in our_names(cfg.layers) {
            let theirs = hf_name(&ours).ok_or_else(|| format_err(format!("no mapping for {ours}")))?;
            let view = st
                .tensor(&theirs)
                .or_else(|_| st.tensor(&format!("bert.{theirs}")))
                .map_err(|_| format_err(format!("model.safetensors has no tensor {theirs}")))?;
            let data: Vec<u8> = match view.dtype() {
                safetensors::Dtype::F32 => view.data().to_vec(),
                safetensors::Dtype::F16 => view
                    .data()
                    .chunks_exact(2)
                    .flat_map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32().to_le_bytes())
                    .collect(),
                safetensors::Dtype::BF16 => view
                    .data()
                    .chunks_exact(2)
                    .flat_map(|c| half::bf16::from_le_bytes([c[0], c[1]]).to_f32().to_le_bytes())
                    .collect(),
                other => return Err(Error::Unsupported(format!("{theirs}: dtype {other:?}"))),
            };
            tensors.insert(ours, RawTensor { dtype: DType::F32, elements: data.len() / 4, data });
        }
        drop(st);
        drop(bytes);
        let bert = Bert::from_tensors(cfg.clone(), &mut tensors)?;
        let tok_path = dir.join("tokenizer.json");
        let mut tokenizer = tokenizers::Tokenizer::from_file(&tok_path)
            .map_err(|e| format_err(format!("{}: {e}", tok_path.display())))?;
        tokenizer
            .with_truncation(Some(tokenizers::TruncationParams {
                max_length: cfg.max_pos,
                ..Default::default()
            }))
            .map_err(|e| format_err(format!("tokenizer truncation: {e}")))?;
        tokenizer.with_padding(None);
        Ok(HfModel { tokenizer, bert, model_id, max_tokens: cfg.max_pos })
    }

    pub fn model_id(&self) -> &str {
        &self.model_id
    }

    pub fn dim(&self) -> usize {
        self.bert.config().hidden
    }

    /// Token ids of one text, with the tokenizer's special tokens.
    pub fn tokenize(&self, text: &str) -> Result<Vec<u32>> {
        let enc = self.tokenizer.encode(text, true).map_err(|e| format_err(format!("tokenizer: {e}")))?;
        let mut ids = enc.get_ids().to_vec();
        ids.truncate(self.max_tokens);
        Ok(ids)
    }

    pub fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>> {
        let ids = texts.iter().map(|t| self.tokenize(t)).collect::<Result<Vec<_>>>()?;
        super::engine::embed_packed(&self.bert, &ids)
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
