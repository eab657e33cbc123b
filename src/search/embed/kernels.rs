//! Numeric kernels for the fused ops in [`super::ops`].
//!
//! Plain loops written to auto-vectorise. On x86-64 each kernel is compiled
//! twice, for the baseline target and with AVX2+FMA, and the variant is chosen
//! at run time (the default x86-64 target has neither, and candle's matmul
//! already dispatches the same way). `M::fma` is a fused multiply-add only in
//! the AVX2 variant, since a software `fmaf` would be far slower.
//!
//! * `bias_gelu`: `x ← gelu_erf(x + bias)` per row;
//! * `add_norm`: `row ← LayerNorm(row + residual + bias)`;
//! * `gemv_rows`: `acc += x[:, k0..k1] · w[k0..k1, :]` for few rows of `x`, `w` in bfloat16;
//! * `attend`: softmax(q·Kᵀ/√d)·V for a range of heads of one sequence.

macro_rules! dispatch {
    ($(pub fn $name:ident($($arg:ident: $ty:ty),*) $body:block)*) => {
        $(
            #[inline(always)]
            fn $name<M: MulAdd>($($arg: $ty),*) $body
        )*
        #[cfg(target_arch = "x86_64")]
        mod avx2 {
            $(
                #[target_feature(enable = "avx2,fma")]
                pub(super) fn $name($($arg: $ty),*) { super::$name::<super::Fused>($($arg),*) }
            )*
        }
        pub mod run {
            $(
                pub fn $name($($arg: $ty),*) {
                    #[cfg(target_arch = "x86_64")]
                    if super::has_avx2() {
                        // SAFETY: the CPU supports AVX2 and FMA (checked at run time).
                        return unsafe { super::avx2::$name($($arg),*) };
                    }
                    super::$name::<super::Plain>($($arg),*)
                }
            )*
        }
    };
}

/// `a·b + c`: fused where the target has FMA, else a separate multiply and add
/// (a software `fmaf` would be far slower).
trait MulAdd {
    fn fma(a: f32, b: f32, c: f32) -> f32;
}

struct Plain;
impl MulAdd for Plain {
    #[inline(always)]
    fn fma(a: f32, b: f32, c: f32) -> f32 {
        a * b + c
    }
}

#[cfg(target_arch = "x86_64")]
struct Fused;
#[cfg(target_arch = "x86_64")]
impl MulAdd for Fused {
    #[inline(always)]
    fn fma(a: f32, b: f32, c: f32) -> f32 {
        a.mul_add(b, c)
    }
}

#[cfg(target_arch = "x86_64")]
fn has_avx2() -> bool {
    use std::sync::OnceLock;
    static HAS: OnceLock<bool> = OnceLock::new();
    *HAS.get_or_init(|| is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma"))
}

/// e^x for x in about [-87, 88], rel. error ~2e-7 (Cephes expf), branch-free.
#[inline(always)]
fn exp(x: f32) -> f32 {
    let x = x.clamp(-87.0, 88.0);
    // round-to-nearest by adding 1.5·2^23 (vectorises without SSE4.1)
    let n = (x * std::f32::consts::LOG2_E + 12_582_912.0) - 12_582_912.0;
    let r = x - n * 0.693_359_4 + n * 2.121_944_4e-4;
    let p = ((((1.987_569_1e-4 * r + 1.398_2e-3) * r + 8.333_452e-3) * r + 4.166_579_6e-2) * r
        + 0.166_666_65)
        * r
        + 0.5;
    let y = p * r * r + r + 1.0;
    // 2^n from the bits of 2^23 + 127 + n (integer ops only; vectorises)
    y * f32::from_bits((n + 8_388_735.0).to_bits() << 23)
}

/// erf(x), Abramowitz–Stegun 7.1.26 (abs. error ≤ 1.5e-7).
#[inline(always)]
fn erf(x: f32) -> f32 {
    let a = x.abs();
    let t = 1.0 / (1.0 + 0.327_591_1 * a);
    let poly =
        ((((1.061_405_4 * t - 1.453_152_1) * t + 1.421_413_8) * t - 0.284_496_74) * t + 0.254_829_6) * t;
    (1.0 - poly * exp(-a * a)).copysign(x)
}

/// A bfloat16 (the upper half of an f32) as f32: a shift, which vectorises.
#[inline(always)]
pub(super) fn bf16(v: u16) -> f32 {
    f32::from_bits((v as u32) << 16)
}

/// f32 → bfloat16, rounded to nearest even (NaN stays NaN).
pub(super) fn to_bf16(v: f32) -> u16 {
    if v.is_nan() {
        return 0x7fc0;
    }
    let b = v.to_bits();
    ((b + 0x7fff + ((b >> 16) & 1)) >> 16) as u16
}

/// Sum with 8 independent lanes (vectorises; order differs from serial).
#[inline(always)]
fn sum(x: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    let chunks = x.chunks_exact(8);
    let tail: f32 = chunks.remainder().iter().sum();
    for c in chunks {
        for k in 0..8 {
            acc[k] += c[k];
        }
    }
    acc.iter().sum::<f32>() + tail
}

#[inline(always)]
fn sum_sq(x: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    let chunks = x.chunks_exact(8);
    let tail: f32 = chunks.remainder().iter().map(|v| v * v).sum();
    for c in chunks {
        for k in 0..8 {
            acc[k] += c[k] * c[k];
        }
    }
    acc.iter().sum::<f32>() + tail
}

#[inline(always)]
fn max(x: &[f32]) -> f32 {
    let mut acc = [f32::NEG_INFINITY; 8];
    let chunks = x.chunks_exact(8);
    let tail = chunks.remainder().iter().copied().fold(f32::NEG_INFINITY, f32::max);
    for c in chunks {
        for k in 0..8 {
            acc[k] = if c[k] > acc[k] { c[k] } else { acc[k] };
        }
    }
    acc.iter().copied().fold(tail, f32::max)
}

dispatch! {
    pub fn bias_gelu(x: &mut [f32], bias: &[f32]) {
        for row in x.chunks_exact_mut(bias.len()) {
            for (v, b) in row.iter_mut().zip(bias) {
                let y = *v + b;
                *v = 0.5 * y * (1.0 + erf(y * std::f32::consts::FRAC_1_SQRT_2));
            }
        }
    }

    pub fn add_norm(row: &mut [f32], res: &[f32], bias: &[f32], w: &[f32], b: &[f32], eps: f32) {
        let n = row.len() as f32;
        for ((v, r), c) in row.iter_mut().zip(res).zip(bias) {
            *v += r + c;
        }
        let mean = sum(row) / n;
        for v in row.iter_mut() {
            *v -= mean;
        }
        let var = sum_sq(row) / n;
        let inv = 1.0 / (var + eps).sqrt();
        for ((v, w), b) in row.iter_mut().zip(w).zip(b) {
            *v = *v * inv * w + b;
        }
    }

    pub fn gemv_rows(x: &[f32], w: &[u16], acc: &mut [f32], mkn: (usize, usize, usize), ks: (usize, usize)) {
        let ((m, k, n), (k0, k1)) = (mkn, ks);
        let mut kk = k0;
        while kk + 4 <= k1 {
            let (w0, w1, w2, w3) =
                (&w[kk * n..][..n], &w[(kk + 1) * n..][..n], &w[(kk + 2) * n..][..n], &w[(kk + 3) * n..][..n]);
            for i in 0..m {
                let xr = &x[i * k + kk..][..4];
                let (x0, x1, x2, x3) = (xr[0], xr[1], xr[2], xr[3]);
                let a = &mut acc[i * n..][..n];
                // 64-wide chunks: eight independent vector FMA chains; widening
                // the weights again per row measured faster than widening them
                // once into a tile shared by the rows.
                let mut j = 0;
                for ac in a.chunks_exact_mut(64) {
                    let (c0, c1, c2, c3) = (&w0[j..j + 64], &w1[j..j + 64], &w2[j..j + 64], &w3[j..j + 64]);
                    for t in 0..64 {
                        let (v0, v1, v2, v3) = (bf16(c0[t]), bf16(c1[t]), bf16(c2[t]), bf16(c3[t]));
                        ac[t] = M::fma(x3, v3, M::fma(x2, v2, M::fma(x1, v1, M::fma(x0, v0, ac[t]))));
                    }
                    j += 64;
                }
                for j in j..n {
                    let (v0, v1, v2, v3) = (bf16(w0[j]), bf16(w1[j]), bf16(w2[j]), bf16(w3[j]));
                    a[j] = M::fma(x3, v3, M::fma(x2, v2, M::fma(x1, v1, M::fma(x0, v0, a[j]))));
                }
            }
            kk += 4;
        }
        for kk in kk..k1 {
            let wr = &w[kk * n..][..n];
            for i in 0..m {
                let xv = x[i * k + kk];
                for (a, wv) in acc[i * n..][..n].iter_mut().zip(wr) {
                    *a = M::fma(xv, bf16(*wv), *a);
                }
            }
        }
    }

    pub fn attend(qkv: &[f32], dims: (usize, usize, usize), heads: (usize, usize), bias: &[f32], out: &mut [f32]) {
        let ((len, h, hd), (h0, h1)) = (dims, heads);
        let (h3, nh) = (3 * h, h1 - h0);
        let width = nh * hd;
        let scale = 1.0 / (hd as f32).sqrt();
        let lp = len.next_multiple_of(16);
        // One sequential pass over the rows (prefetch-friendly) into per-head
        // buffers: Q·scale [nh, len, hd], Kᵀ [nh, hd, lp] (zero-padded keys), V [nh, len, hd].
        let mut q = vec![0f32; nh * len * hd];
        let mut kt = vec![0f32; nh * hd * lp];
        let mut v = vec![0f32; nh * len * hd];
        for (j, row) in qkv.chunks_exact(h3).enumerate() {
            for hh in 0..nh {
                let c = (h0 + hh) * hd;
                let (qd, vd) = (&mut q[(hh * len + j) * hd..][..hd], &mut v[(hh * len + j) * hd..][..hd]);
                for ((dst, src), b) in qd.iter_mut().zip(&row[c..c + hd]).zip(&bias[c..c + hd]) {
                    *dst = (src + b) * scale;
                }
                for ((dst, src), b) in vd.iter_mut().zip(&row[2 * h + c..][..hd]).zip(&bias[2 * h + c..][..hd]) {
                    *dst = src + b;
                }
                let kb = &mut kt[hh * hd * lp..][..hd * lp];
                for (d, (src, b)) in row[h + c..][..hd].iter().zip(&bias[h + c..][..hd]).enumerate() {
                    kb[d * lp + j] = src + b;
                }
            }
        }
        let mut s = vec![0f32; lp];
        for hh in 0..nh {
            let kt = &kt[hh * hd * lp..][..hd * lp];
            let v = &v[hh * len * hd..][..len * hd];
            for (i, q) in q[hh * len * hd..][..len * hd].chunks_exact(hd).enumerate() {
                // s = q·Kᵀ, 16 keys at a time kept in registers across d
                for (j0, sc) in (0..lp).step_by(16).zip(s.chunks_exact_mut(16)) {
                    let mut acc = [0f32; 16];
                    for (d, &qd) in q.iter().enumerate() {
                        let kr = &kt[d * lp + j0..][..16];
                        for t in 0..16 {
                            acc[t] = M::fma(qd, kr[t], acc[t]);
                        }
                    }
                    sc.copy_from_slice(&acc);
                }
                let s = &mut s[..len];
                let m = max(s);
                for sj in s.iter_mut() {
                    *sj = exp(*sj - m);
                }
                let inv = 1.0 / sum(s);
                let o = &mut out[i * width + hh * hd..][..hd];
                for (j, &p) in s.iter().enumerate() {
                    let p = p * inv;
                    for (od, vd) in o.iter_mut().zip(&v[j * hd..(j + 1) * hd]) {
                        *od = M::fma(p, *vd, *od);
                    }
                }
            }
        }
    }
}
