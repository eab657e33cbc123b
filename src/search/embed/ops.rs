//! Fused CPU kernels for the encoder, run as candle custom ops.
//!
//! candle's element-wise ops each allocate a new tensor and make a separate
//! pass (bias add, residual add, LayerNorm, GELU, mask, softmax, transposes);
//! for BERT-small on two cores that overhead rivalled the matmuls. These ops
//! fuse them:
//! * [`BiasGelu`]: `x ← gelu_erf(x + bias)` in place;
//! * [`AddNorm`]: `x ← LayerNorm(x + bias + residual)` in place;
//! * [`Attention`]: packed `[tokens, 3h]` q/k/v (without bias) → `[tokens, h]`
//!   context, attending within each sequence only (no padding, no mask).
//!
//! Work is split over rayon's pool by rows (or by sequence × head); the
//! numeric loops live in [`super::kernels`].

use candle_core::{CpuStorage, CustomOp1, InplaceOp1, InplaceOp2, Layout, Result, Shape, bail};
use rayon::prelude::*;

/// Elements per parallel task, at least (smaller work runs on one thread).
const MIN_TASK: usize = 16 * 1024;

fn slice<'a>(s: &'a CpuStorage, l: &Layout, op: &str) -> Result<&'a [f32]> {
    match (s, l.contiguous_offsets()) {
        (CpuStorage::F32(v), Some((a, b))) => Ok(&v[a..b]),
        _ => bail!("{op}: expects a contiguous f32 tensor"),
    }
}

fn slice_mut<'a>(s: &'a mut CpuStorage, l: &Layout, op: &str) -> Result<&'a mut [f32]> {
    match (s, l.contiguous_offsets()) {
        (CpuStorage::F32(v), Some((a, b))) => Ok(&mut v[a..b]),
        _ => bail!("{op}: expects a contiguous f32 tensor"),
    }
}

/// Rows per parallel chunk for rows of `cols` elements.
fn rows_per_task(rows: usize, cols: usize) -> usize {
    let threads = rayon::current_num_threads().max(1);
    let by_size = MIN_TASK.div_ceil(cols.max(1));
    let by_split = rows.div_ceil(4 * threads);
    by_size.max(by_split).max(1)
}

/// Run `f` on every chunk of `rows` rows of `data`, in parallel when large.
fn for_rows(data: &mut [f32], cols: usize, f: impl Fn(&mut [f32], usize) + Sync) {
    let rows = data.len() / cols.max(1);
    let per = rows_per_task(rows, cols);
    if per >= rows {
        f(data, 0);
    } else {
        data.par_chunks_mut(per * cols).enumerate().for_each(|(i, c)| f(c, i * per));
    }
}

/// `x ← gelu_erf(x + bias)`, bias broadcast over rows.
pub struct BiasGelu<'a> {
    pub bias: &'a [f32],
}

impl InplaceOp1 for BiasGelu<'_> {
    fn name(&self) -> &'static str {
        "bias-gelu"
    }

    fn cpu_fwd(&self, s: &mut CpuStorage, l: &Layout) -> Result<()> {
        let x = slice_mut(s, l, self.name())?;
        let cols = self.bias.len();
        if cols == 0 || x.len() % cols != 0 {
            bail!("bias-gelu: {} elements for bias of {cols}", x.len());
        }
        for_rows(x, cols, |chunk, _| super::kernels::run::bias_gelu(chunk, self.bias));
        Ok(())
    }
}

/// `x ← LayerNorm(x + bias + residual) · w + b` row by row.
pub struct AddNorm<'a> {
    pub bias: &'a [f32],
    pub w: &'a [f32],
    pub b: &'a [f32],
    pub eps: f32,
}

impl InplaceOp2 for AddNorm<'_> {
    fn name(&self) -> &'static str {
        "add-norm"
    }

    fn cpu_fwd(&self, s1: &mut CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout) -> Result<()> {
        let x = slice_mut(s1, l1, self.name())?;
        let res = slice(s2, l2, self.name())?;
        let cols = self.bias.len();
        if cols == 0
            || x.len() != res.len()
            || x.len() % cols != 0
            || self.w.len() != cols
            || self.b.len() != cols
        {
            bail!("add-norm: shape mismatch");
        }
        for_rows(x, cols, |chunk, row0| {
            let res = &res[row0 * cols..][..chunk.len()];
            for (row, r) in chunk.chunks_exact_mut(cols).zip(res.chunks_exact(cols)) {
                super::kernels::run::add_norm(row, r, self.bias, self.w, self.b, self.eps);
            }
        });
        Ok(())
    }
}

/// LayerNorm of one row in place (no bias or residual).
pub fn layer_norm_row(row: &mut [f32], w: &[f32], b: &[f32], eps: f32) {
    let zeros = vec![0f32; row.len()];
    super::kernels::run::add_norm(row, &zeros, &zeros, w, b, eps);
}

/// `x [m, k] · w [k, n]` for few rows `m`, `w` in bfloat16 (row-major
/// `[k, n]`), streaming `w` once in memory order. The `k` range is split over
/// the thread pool and the partial sums added. 16-bit weights halve the bytes
/// streamed and measured somewhat faster than f32 for short queries (a general
/// GEMM, 16-row tiles packing `w` on every call, was several times slower here).
pub struct SmallMatmul<'a> {
    pub w: &'a [u16],
    pub n: usize,
}

impl CustomOp1 for SmallMatmul<'_> {
    fn name(&self) -> &'static str {
        "small-matmul"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let (x, w, n) = (slice(s, l, self.name())?, self.w, self.n);
        let Ok((m, k)) = l.shape().dims2() else {
            bail!("small-matmul: expects a matrix");
        };
        if k == 0 || n == 0 || w.len() != k * n {
            bail!("small-matmul: {} weights for a [{k}, {n}] matrix", w.len());
        }
        let parts = if m * k * n < 16 * MIN_TASK { 1 } else { rayon::current_num_threads().clamp(1, 8) };
        let per = k.div_ceil(parts).next_multiple_of(4);
        let run = |k0: usize| {
            let mut acc = vec![0f32; m * n];
            super::kernels::run::gemv_rows(x, w, &mut acc, (m, k, n), (k0, (k0 + per).min(k)));
            acc
        };
        let starts: Vec<usize> = (0..k).step_by(per).collect();
        let mut partial: Vec<Vec<f32>> =
            if starts.len() == 1 { vec![run(0)] } else { starts.par_iter().map(|&k0| run(k0)).collect() };
        let mut out = partial.pop().unwrap_or_default();
        for p in &partial {
            for (o, v) in out.iter_mut().zip(p) {
                *o += v;
            }
        }
        Ok((CpuStorage::F32(out), Shape::from((m, n))))
    }
}

/// Multi-head self-attention over packed sequences.
///
/// Input `[tokens, 3h]`: per token q | k | v, before their bias. Output
/// `[tokens, h]`: the attention context (before the output projection).
pub struct Attention<'a> {
    pub bias: &'a [f32],
    pub lens: &'a [usize],
    pub heads: usize,
}

impl CustomOp1 for Attention<'_> {
    fn name(&self) -> &'static str {
        "packed-attention"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let qkv = slice(s, l, self.name())?;
        let h3 = self.bias.len();
        let tokens: usize = self.lens.iter().sum();
        if h3 == 0
            || !h3.is_multiple_of(3)
            || self.heads == 0
            || !(h3 / 3).is_multiple_of(self.heads)
            || qkv.len() != tokens * h3
        {
            bail!("packed-attention: shape mismatch");
        }
        let (h, hd) = (h3 / 3, h3 / 3 / self.heads);
        let mut starts = Vec::with_capacity(self.lens.len());
        let mut acc = 0;
        for &n in self.lens {
            starts.push(acc);
            acc += n;
        }
        // One task per text (all heads, rows stay in cache) when there are
        // enough texts to share out; otherwise one task per text and head.
        let group = if self.lens.len() >= 2 * rayon::current_num_threads() { self.heads } else { 1 };
        let tasks: Vec<(usize, usize)> = (0..self.lens.len())
            .flat_map(|s| (0..self.heads).step_by(group).map(move |hh| (s, hh)))
            .collect();
        let work: usize = self.lens.iter().map(|n| n * n * hd * self.heads).sum();
        let run = |&(seq, h0): &(usize, usize)| {
            let (start, len) = (starts[seq], self.lens[seq]);
            let mut out = vec![0f32; len * group * hd];
            let rows = &qkv[start * h3..(start + len) * h3];
            super::kernels::run::attend(rows, (len, h, hd), (h0, h0 + group), self.bias, &mut out);
            out
        };
        let results: Vec<Vec<f32>> = if work < 4 * MIN_TASK * hd {
            tasks.iter().map(run).collect()
        } else {
            tasks.par_iter().map(run).collect()
        };
        let mut ctx = vec![0f32; tokens * h];
        let width = group * hd;
        for (&(seq, h0), r) in tasks.iter().zip(&results) {
            for (i, src) in r.chunks_exact(width).enumerate() {
                let at = (starts[seq] + i) * h + h0 * hd;
                ctx[at..at + width].copy_from_slice(src);
            }
        }
        Ok((CpuStorage::F32(ctx), Shape::from((tokens, h))))
    }
}
