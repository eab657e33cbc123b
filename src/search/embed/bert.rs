//! BERT encoder forward pass (multilingual-e5-small) on candle, CPU only.
//!
//! Weights come from an [`E5s1`] file. The word-embedding table stays in its
//! 4-bit blocks (≈54 MB) and only the rows of the tokens being embedded are
//! dequantised; every encoder matrix is dequantised once at load, rounded to
//! bfloat16 (≈42 MB instead of 84 MB of f32; short queries stream half the
//! bytes, and the 4-bit source values lose next to nothing)
//! and stored transposed (`[in, out]`), with q/k/v fused into one `[h, 3h]`
//! matrix. Long batches (indexing) widen each matrix to f32 for candle's GEMM
//! per call: a copy that is small next to the GEMM, and keeps no f32 copy resident.
//!
//! A batch is processed packed: the tokens of all texts form one
//! `[tokens, hidden]` matrix, so each projection is a single candle matmul
//! with no padding waste. Attention runs per text and head over that text's
//! own tokens only, which is exactly what a padded batch with an attention
//! mask computes, minus the pad positions (see [`super::ops::Attention`]).
//! Bias adds, residuals, LayerNorm and GELU are fused custom ops
//! ([`super::ops`]). The output is the mean over each text's tokens
//! (the attention-mask mean pooling of E5), L2-normalised.

use candle_core::{DType, Device, Tensor};

use super::e5s1::{Config, E5s1, Q4_BLOCK, Q4_BLOCK_BYTES, RawTensor, dequant_q4_into};
use super::error::{Error, Result, format_err};
use super::kernels::{bf16, to_bf16};
use super::ops::{AddNorm, Attention, BiasGelu, SmallMatmul, layer_norm_row};

/// Up to this many tokens in a forward pass, projections use [`SmallMatmul`]
/// instead of candle's GEMM (measured crossover: ~90 tokens on 2 cores).
const SMALL_ROWS: usize = 80;

/// A `[k, n]` row-major weight matrix in bfloat16.
struct Matrix {
    w: Vec<u16>,
    k: usize,
    n: usize,
}

impl Matrix {
    /// The `[out, in]` f32 values, stored transposed as `[in, out]`.
    fn transposed(v: &[f32], out: usize, inp: usize) -> Matrix {
        let mut w = vec![0u16; v.len()];
        for (o, row) in v.chunks_exact(inp).enumerate() {
            for (i, x) in row.iter().enumerate() {
                w[i * out + o] = to_bf16(*x);
            }
        }
        Matrix { w, k: inp, n: out }
    }

    /// Matrices of the same `k` side by side: `[k, n1 + n2 + …]`.
    fn concat(parts: &[Matrix]) -> Matrix {
        let k = parts.first().map_or(0, |m| m.k);
        let n: usize = parts.iter().map(|m| m.n).sum();
        let mut w = Vec::with_capacity(k * n);
        for r in 0..k {
            for m in parts {
                w.extend_from_slice(&m.w[r * m.n..(r + 1) * m.n]);
            }
        }
        Matrix { w, k, n }
    }

    /// The matrix as an f32 tensor, for candle's GEMM.
    fn tensor(&self, device: &Device) -> Result<Tensor> {
        let v: Vec<f32> = self.w.iter().map(|&b| bf16(b)).collect();
        Ok(Tensor::from_vec(v, (self.k, self.n), device)?)
    }
}

struct Layer {
    wqkv: Matrix,
    bqkv: Vec<f32>,
    wo: Matrix,
    bo: Vec<f32>,
    ln1: (Vec<f32>, Vec<f32>),
    wi: Matrix,
    bi: Vec<f32>,
    wf: Matrix,
    bf: Vec<f32>,
    ln2: (Vec<f32>, Vec<f32>),
}

/// The word-embedding table: kept 4-bit (rows dequantised on demand) or as f32.
enum Word {
    Q4(Vec<u8>),
    F32(Vec<f32>),
}

/// The encoder with its weights.
pub struct Bert {
    cfg: Config,
    word: Word,
    pos: Vec<f32>,
    type0: Vec<f32>,
    emb_ln: (Vec<f32>, Vec<f32>),
    layers: Vec<Layer>,
    device: Device,
}

/// Pulls named tensors out of a parsed file, checking element counts.
struct Weights<'a> {
    tensors: &'a mut std::collections::HashMap<String, RawTensor>,
}

impl Weights<'_> {
    fn raw(&mut self, name: &str, elements: usize) -> Result<RawTensor> {
        let t = self.tensors.remove(name).ok_or_else(|| format_err(format!("missing tensor {name}")))?;
        if t.elements != elements {
            return Err(format_err(format!("{name}: {} elements, expected {elements}", t.elements)));
        }
        Ok(t)
    }

    fn vector(&mut self, name: &str, len: usize) -> Result<Vec<f32>> {
        Ok(self.raw(name, len)?.to_f32())
    }

    /// `[out, in]` matrix from the file, returned transposed as `[in, out]`.
    fn matrix_t(&mut self, name: &str, out: usize, inp: usize) -> Result<Matrix> {
        let v = self.raw(name, out * inp)?.to_f32();
        Ok(Matrix::transposed(&v, out, inp))
    }

    fn ln(&mut self, prefix: &str, len: usize) -> Result<(Vec<f32>, Vec<f32>)> {
        Ok((self.vector(&format!("{prefix}.w"), len)?, self.vector(&format!("{prefix}.b"), len)?))
    }
}

impl Bert {
    /// Build the encoder from a parsed file (its tensors are moved out).
    pub fn new(file: &mut E5s1) -> Result<Bert> {
        Self::from_tensors(file.config.clone(), &mut file.tensors)
    }

    /// Build the encoder from tensors named as in an E5S1 file (`emb.word`, `l0.q.w`, …);
    /// the word table may be 4-bit or f32.
    pub fn from_tensors(
        cfg: Config,
        tensors: &mut std::collections::HashMap<String, RawTensor>,
    ) -> Result<Bert> {
        let (h, f) = (cfg.hidden, cfg.ffn);
        if !h.is_multiple_of(Q4_BLOCK) {
            return Err(Error::Unsupported(format!("hidden size {h} is not a multiple of {Q4_BLOCK}")));
        }
        let device = Device::Cpu;
        let mut w = Weights { tensors };
        let word = w.raw("emb.word", cfg.vocab * h)?;
        let word = match word.dtype {
            super::e5s1::DType::Q4 => Word::Q4(word.data),
            super::e5s1::DType::F32 => Word::F32(word.to_f32()),
        };
        let pos = w.raw("emb.pos", cfg.max_pos * h)?.to_f32();
        let types = w.raw("emb.type", cfg.type_vocab * h)?.to_f32();
        let type0 = types[..h].to_vec();
        let emb_ln = w.ln("emb.ln", h)?;
        let mut layers = Vec::with_capacity(cfg.layers);
        for i in 0..cfg.layers {
            let p = |s: &str| format!("l{i}.{s}");
            let q = w.matrix_t(&p("q.w"), h, h)?;
            let k = w.matrix_t(&p("k.w"), h, h)?;
            let v = w.matrix_t(&p("v.w"), h, h)?;
            let wqkv = Matrix::concat(&[q, k, v]);
            let bqkv = [w.vector(&p("q.b"), h)?, w.vector(&p("k.b"), h)?, w.vector(&p("v.b"), h)?].concat();
            layers.push(Layer {
                wqkv,
                bqkv,
                wo: w.matrix_t(&p("ao.w"), h, h)?,
                bo: w.vector(&p("ao.b"), h)?,
                ln1: w.ln(&p("aln"), h)?,
                wi: w.matrix_t(&p("fi.w"), f, h)?,
                bi: w.vector(&p("fi.b"), f)?,
                wf: w.matrix_t(&p("fo.w"), h, f)?,
                bf: w.vector(&p("fo.b"), h)?,
                ln2: w.ln(&p("oln"), h)?,
            });
        }
        Ok(Bert { cfg, word, pos, type0, emb_ln, layers, device })
    }

    /// Model hyper-parameters.
    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// L2-normalised mean-pooled embeddings of token-id sequences.
    pub fn embed_ids(&self, seqs: &[Vec<u32>]) -> Result<Vec<Vec<f32>>> {
        if seqs.is_empty() {
            return Ok(Vec::new());
        }
        for s in seqs {
            if s.is_empty() || s.len() > self.cfg.max_pos {
                return Err(format_err(format!(
                    "sequence length {} outside 1..={}",
                    s.len(),
                    self.cfg.max_pos
                )));
            }
            if let Some(id) = s.iter().find(|&&id| id as usize >= self.cfg.vocab) {
                return Err(format_err(format!("token id {id} outside the vocabulary")));
            }
        }
        let hidden = self.forward(seqs)?;
        mean_pool_normalise(&hidden, seqs, self.cfg.hidden)
    }

    /// Word + position + type embeddings of all tokens, packed `[tokens, h]`.
    fn embeddings(&self, seqs: &[Vec<u32>]) -> Result<Tensor> {
        let h = self.cfg.hidden;
        let row_bytes = h / Q4_BLOCK * Q4_BLOCK_BYTES;
        let total: usize = seqs.iter().map(Vec::len).sum();
        let mut x = vec![0f32; total * h];
        let mut rows = x.chunks_exact_mut(h);
        for seq in seqs {
            for (j, &id) in seq.iter().enumerate() {
                let Some(row) = rows.next() else { return Err(format_err("embedding lookup out of range")) };
                let id = id as usize;
                match &self.word {
                    Word::Q4(q) => {
                        let Some(src) = q.get(id * row_bytes..(id + 1) * row_bytes) else {
                            return Err(format_err("embedding lookup out of range"));
                        };
                        dequant_q4_into(src, row);
                    }
                    Word::F32(t) => {
                        let Some(src) = t.get(id * h..(id + 1) * h) else {
                            return Err(format_err("embedding lookup out of range"));
                        };
                        row.copy_from_slice(src);
                    }
                }
                let pos = &self.pos[j * h..(j + 1) * h];
                for ((r, p), t) in row.iter_mut().zip(pos).zip(&self.type0) {
                    *r += p + t;
                }
            }
        }
        for row in x.chunks_exact_mut(h) {
            layer_norm_row(row, &self.emb_ln.0, &self.emb_ln.1, self.cfg.eps);
        }
        Ok(Tensor::from_vec(x, (total, h), &self.device)?)
    }

    /// Last hidden state of every real token, packed `[tokens, h]`.
    fn forward(&self, seqs: &[Vec<u32>]) -> Result<Tensor> {
        let eps = self.cfg.eps;
        let lens: Vec<usize> = seqs.iter().map(Vec::len).collect();
        let mut x = self.embeddings(seqs)?;
        for l in &self.layers {
            let qkv = self.linear(&x, &l.wqkv)?;
            let ctx =
                qkv.apply_op1_no_bwd(&Attention { bias: &l.bqkv, lens: &lens, heads: self.cfg.heads })?;
            let a = self.linear(&ctx, &l.wo)?;
            a.inplace_op2(&x, &AddNorm { bias: &l.bo, w: &l.ln1.0, b: &l.ln1.1, eps })?;
            let inter = self.linear(&a, &l.wi)?;
            inter.inplace_op1(&BiasGelu { bias: &l.bi })?;
            let out = self.linear(&inter, &l.wf)?;
            out.inplace_op2(&a, &AddNorm { bias: &l.bf, w: &l.ln2.0, b: &l.ln2.1, eps })?;
            x = out;
        }
        Ok(x)
    }

    /// `x · w` (no bias): a streaming kernel for few rows, candle's GEMM otherwise.
    fn linear(&self, x: &Tensor, w: &Matrix) -> Result<Tensor> {
        if x.dim(0)? <= SMALL_ROWS {
            Ok(x.apply_op1_no_bwd(&SmallMatmul { w: &w.w, n: w.n })?)
        } else {
            Ok(x.matmul(&w.tensor(&self.device)?)?)
        }
    }
}

/// Mean over each sequence's rows of the packed hidden state, then L2 norm.
fn mean_pool_normalise(hidden: &Tensor, seqs: &[Vec<u32>], h: usize) -> Result<Vec<Vec<f32>>> {
    let flat = hidden.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?;
    let mut out = Vec::with_capacity(seqs.len());
    let mut rows = flat.chunks_exact(h);
    for s in seqs {
        let mut acc = vec![0f64; h];
        for _ in 0..s.len() {
            let row = rows.next().ok_or_else(|| format_err("hidden state shorter than the batch"))?;
            for (a, v) in acc.iter_mut().zip(row) {
                *a += *v as f64;
            }
        }
        let norm = acc.iter().map(|a| a * a).sum::<f64>().sqrt().max(1e-12);
        out.push(acc.iter().map(|a| (a / norm) as f32).collect());
    }
    Ok(out)
}
