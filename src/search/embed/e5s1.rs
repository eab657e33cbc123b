//! Parser for the "E5S1" model file: a 4-bit multilingual-e5-small.
//!
//! Layout (little-endian; see docs/embedding-model.md):
//! 1. `b"E5S1"`, `u32` version (1), `i32` hidden, layers, heads, ffn, vocab,
//!    max positions, type vocab, `f32` LayerNorm eps, `i32` block size (32).
//! 2. Tokenizer section: `i32` n, 4 × `i32` specials (bos, eos, pad, unk),
//!    `u64` blob length, (n+1) × `u32` offsets, n × `f32` scores, the UTF-8
//!    blob; then `i32` normaliser record count, `u32` byte length and records
//!    `u32 codepoint, u8 k, k × u32 codepoints`.
//! 3. Tensor directory: `i32` count; per tensor `u16` name length, name,
//!    `u8` dtype (0 f32, 1 q4), `u32` element count, `u64` offset, `u64` bytes.
//! 4. q4 blocks: 18 bytes per 32 weights, an f16 scale `d` then 16 bytes `q`;
//!    weight j = ((q[j] & 15) - 8)·d, weight j+16 = ((q[j] >> 4) - 8)·d.
//!
//! Every read is bounds-checked against the file length before any
//! allocation, so truncated or garbage input yields an [`Error`], never a panic.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufReader, Cursor, Read, Seek, SeekFrom};
use std::path::Path;

use super::error::{Error, Result, format_err};

const MAGIC: &[u8; 4] = b"E5S1";
/// Weights per 4-bit block.
pub const Q4_BLOCK: usize = 32;
/// Bytes per 4-bit block (f16 scale + 16 bytes of nibbles).
pub const Q4_BLOCK_BYTES: usize = 18;
/// Upper bound for any single dimension in the header (sanity check).
const MAX_DIM: i32 = 1 << 20;

/// Hyper-parameters from the file header.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub hidden: usize,
    pub layers: usize,
    pub heads: usize,
    pub ffn: usize,
    pub vocab: usize,
    pub max_pos: usize,
    pub type_vocab: usize,
    pub eps: f32,
}

/// The SentencePiece tables stored in the file.
#[derive(Debug, Clone)]
pub struct TokenizerSection {
    /// All pieces, UTF-8, concatenated.
    pub blob: Vec<u8>,
    /// n+1 offsets into `blob`; piece i is `blob[offsets[i]..offsets[i+1]]`.
    pub offsets: Vec<u32>,
    /// Log-probability of each piece.
    pub scores: Vec<f32>,
    pub bos: u32,
    pub eos: u32,
    pub pad: u32,
    pub unk: u32,
    /// Codepoint → replacement (possibly empty) from the normaliser map.
    pub normaliser: HashMap<char, Box<str>>,
}

impl TokenizerSection {
    /// Number of pieces.
    pub fn len(&self) -> usize {
        self.scores.len()
    }

    /// True when there are no pieces.
    pub fn is_empty(&self) -> bool {
        self.scores.is_empty()
    }

    /// Piece `i` as text (validated as UTF-8 during parsing).
    pub fn piece(&self, i: usize) -> Option<&str> {
        let (a, b) = (*self.offsets.get(i)? as usize, *self.offsets.get(i + 1)? as usize);
        std::str::from_utf8(self.blob.get(a..b)?).ok()
    }
}

/// Storage type of a tensor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DType {
    F32,
    Q4,
}

/// One tensor's raw bytes as stored in the file.
#[derive(Debug, Clone)]
pub struct RawTensor {
    pub dtype: DType,
    pub elements: usize,
    pub data: Vec<u8>,
}

impl RawTensor {
    /// Dequantise / decode all elements to f32.
    pub fn to_f32(&self) -> Vec<f32> {
        match self.dtype {
            DType::F32 => {
                self.data.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()
            }
            DType::Q4 => {
                let mut out = vec![0f32; self.elements];
                dequant_q4_into(&self.data, &mut out);
                out
            }
        }
    }
}

/// Dequantise whole q4 blocks from `src` into `dst` (`dst.len()` must be
/// `src.len() / 18 * 32`; extra elements on either side are ignored).
pub fn dequant_q4_into(src: &[u8], dst: &mut [f32]) {
    for (blk, out) in src.chunks_exact(Q4_BLOCK_BYTES).zip(dst.chunks_exact_mut(Q4_BLOCK)) {
        let d = half::f16::from_bits(u16::from_le_bytes([blk[0], blk[1]])).to_f32();
        let (lo, hi) = out.split_at_mut(16);
        for j in 0..16 {
            let q = blk[2 + j];
            lo[j] = ((q & 15) as i32 - 8) as f32 * d;
            hi[j] = ((q >> 4) as i32 - 8) as f32 * d;
        }
    }
}

/// A parsed E5S1 file: header, tokenizer tables and every tensor's bytes.
#[derive(Debug, Clone)]
pub struct E5s1 {
    pub version: u32,
    pub config: Config,
    pub tokenizer: TokenizerSection,
    pub tensors: HashMap<String, RawTensor>,
}

impl E5s1 {
    /// Parse a file from disk (read sequentially, never the whole file at once
    /// in addition to the tensors).
    pub fn open(path: impl AsRef<Path>) -> Result<E5s1> {
        let path = path.as_ref();
        let io = |source| Error::Io { path: path.to_path_buf(), source };
        let file = File::open(path).map_err(io)?;
        let len = file.metadata().map_err(io)?.len();
        Self::read(BufReader::with_capacity(1 << 16, file), len).map_err(|e| match e {
            Error::Io { source, .. } => io(source),
            other => other,
        })
    }

    /// Parse a file held in memory.
    pub fn from_bytes(bytes: &[u8]) -> Result<E5s1> {
        Self::read(Cursor::new(bytes), bytes.len() as u64)
    }

    /// Parse from any seekable source whose total length is `len` bytes.
    pub fn read<R: Read + Seek>(src: R, len: u64) -> Result<E5s1> {
        let mut r = Reader { src, pos: 0, len };
        if &r.array::<4>("magic")? != MAGIC {
            return Err(format_err("bad magic (not an E5S1 file)"));
        }
        let version = r.u32("version")?;
        if version != 1 {
            return Err(Error::Unsupported(format!("E5S1 version {version}")));
        }
        let config = read_config(&mut r)?;
        let tokenizer = read_tokenizer(&mut r)?;
        let tensors = read_tensors(&mut r)?;
        Ok(E5s1 { version, config, tokenizer, tensors })
    }
}

fn read_config<R: Read + Seek>(r: &mut Reader<R>) -> Result<Config> {
    let mut dims = [0usize; 7];
    let names = ["hidden", "layers", "heads", "ffn", "vocab", "max_positions", "type_vocab"];
    for (d, name) in dims.iter_mut().zip(names) {
        let v = r.i32(name)?;
        if !(1..=MAX_DIM).contains(&v) {
            return Err(format_err(format!("header {name} = {v} out of range")));
        }
        *d = v as usize;
    }
    let eps = r.f32("eps")?;
    if !(eps.is_finite() && eps > 0.0 && eps < 1.0) {
        return Err(format_err(format!("LayerNorm eps {eps} out of range")));
    }
    let block = r.i32("block size")?;
    if block != Q4_BLOCK as i32 {
        return Err(Error::Unsupported(format!("q4 block size {block}")));
    }
    let [hidden, layers, heads, ffn, vocab, max_pos, type_vocab] = dims;
    if hidden % heads != 0 {
        return Err(format_err(format!("hidden {hidden} not divisible by heads {heads}")));
    }
    Ok(Config { hidden, layers, heads, ffn, vocab, max_pos, type_vocab, eps })
}

fn read_tokenizer<R: Read + Seek>(r: &mut Reader<R>) -> Result<TokenizerSection> {
    let n = r.i32("piece count")?;
    if n <= 0 {
        return Err(format_err(format!("piece count {n}")));
    }
    let n = n as usize;
    let mut specials = [0u32; 4];
    for (s, name) in specials.iter_mut().zip(["bos", "eos", "pad", "unk"]) {
        let v = r.i32(name)?;
        if v < 0 || v as usize >= n {
            return Err(format_err(format!("special {name} id {v} outside 0..{n}")));
        }
        *s = v as u32;
    }
    let blob_len = r.u64("piece blob length")?;
    let offsets: Vec<u32> = r
        .bytes(4 * (n as u64 + 1), "piece offsets")?
        .chunks_exact(4)
        .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    let scores: Vec<f32> = r
        .bytes(4 * n as u64, "piece scores")?
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    let blob = r.bytes(blob_len, "piece blob")?;
    if offsets[0] != 0 || offsets[n] as u64 != blob_len {
        return Err(format_err("piece offsets do not span the blob"));
    }
    for (i, w) in offsets.windows(2).enumerate() {
        let piece = blob.get(w[0] as usize..w[1] as usize);
        match piece.map(std::str::from_utf8) {
            Some(Ok(_)) => {}
            _ => return Err(format_err(format!("piece {i} has bad offsets or is not UTF-8"))),
        }
    }
    if let Some(i) = scores.iter().position(|s| !s.is_finite()) {
        return Err(format_err(format!("piece {i} has a non-finite score")));
    }
    let normaliser = read_normaliser(r)?;
    let [bos, eos, pad, unk] = specials;
    Ok(TokenizerSection { blob, offsets, scores, bos, eos, pad, unk, normaliser })
}

fn read_normaliser<R: Read + Seek>(r: &mut Reader<R>) -> Result<HashMap<char, Box<str>>> {
    let count = r.i32("normaliser count")?;
    let nbytes = r.u32("normaliser byte length")?;
    if count < 0 {
        return Err(format_err(format!("normaliser count {count}")));
    }
    let bytes = r.bytes(nbytes as u64, "normaliser records")?;
    let bad = || format_err("malformed normaliser record");
    let u32_at = |p: usize| -> Result<u32> {
        let b = bytes.get(p..p + 4).ok_or_else(bad)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    };
    let to_char = |cp: u32| char::from_u32(cp).ok_or_else(|| format_err(format!("bad codepoint {cp:#x}")));
    let mut map = HashMap::with_capacity((count as usize).min(bytes.len() / 5));
    let mut p = 0usize;
    for _ in 0..count {
        let key = to_char(u32_at(p)?)?;
        let k = *bytes.get(p + 4).ok_or_else(bad)? as usize;
        p += 5;
        let mut value = String::new();
        for _ in 0..k {
            value.push(to_char(u32_at(p)?)?);
            p += 4;
        }
        map.insert(key, value.into_boxed_str());
    }
    if p != bytes.len() {
        return Err(format_err("normaliser byte length does not match its records"));
    }
    Ok(map)
}

fn read_tensors<R: Read + Seek>(r: &mut Reader<R>) -> Result<HashMap<String, RawTensor>> {
    let count = r.i32("tensor count")?;
    if !(0..=100_000).contains(&count) {
        return Err(format_err(format!("tensor count {count}")));
    }
    let mut dir = Vec::with_capacity(count as usize);
    for _ in 0..count {
        let name_len = r.u16("tensor name length")?;
        let name = String::from_utf8(r.bytes(name_len as u64, "tensor name")?)
            .map_err(|_| format_err("tensor name is not UTF-8"))?;
        let dtype = match r.u8("tensor dtype")? {
            0 => DType::F32,
            1 => DType::Q4,
            d => return Err(format_err(format!("{name}: unknown dtype {d}"))),
        };
        let elements = r.u32("tensor element count")? as usize;
        let offset = r.u64("tensor offset")?;
        let nbytes = r.u64("tensor byte length")?;
        let expect = match dtype {
            DType::F32 => Some(elements as u64 * 4),
            DType::Q4 if elements.is_multiple_of(Q4_BLOCK) => {
                Some((elements / Q4_BLOCK * Q4_BLOCK_BYTES) as u64)
            }
            DType::Q4 => None,
        };
        if expect != Some(nbytes) {
            return Err(format_err(format!("{name}: {nbytes} bytes for {elements} {dtype:?} elements")));
        }
        dir.push((name, dtype, elements, offset, nbytes));
    }
    dir.sort_by_key(|e| e.3); // read in file order
    let mut tensors = HashMap::with_capacity(dir.len());
    for (name, dtype, elements, offset, nbytes) in dir {
        r.seek(offset, "tensor data")?;
        let data = r.bytes(nbytes, "tensor data")?;
        if tensors.insert(name.clone(), RawTensor { dtype, elements, data }).is_some() {
            return Err(format_err(format!("duplicate tensor {name}")));
        }
    }
    Ok(tensors)
}

/// Sequential little-endian reader that checks every read against `len`.
struct Reader<R> {
    src: R,
    pos: u64,
    len: u64,
}

impl<R: Read + Seek> Reader<R> {
    fn check(&self, need: u64, what: &'static str) -> Result<()> {
        if self.pos.checked_add(need).is_none_or(|end| end > self.len) {
            return Err(Error::Truncated { what, offset: self.pos, need, len: self.len });
        }
        Ok(())
    }

    fn io(e: std::io::Error) -> Error {
        Error::Io { path: Default::default(), source: e }
    }

    fn seek(&mut self, offset: u64, what: &'static str) -> Result<()> {
        if offset > self.len {
            return Err(Error::Truncated { what, offset, need: 0, len: self.len });
        }
        self.src.seek(SeekFrom::Start(offset)).map_err(Self::io)?;
        self.pos = offset;
        Ok(())
    }

    fn bytes(&mut self, n: u64, what: &'static str) -> Result<Vec<u8>> {
        self.check(n, what)?;
        let mut buf = vec![0u8; n as usize];
        self.src.read_exact(&mut buf).map_err(Self::io)?;
        self.pos += n;
        Ok(buf)
    }

    fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N]> {
        self.check(N as u64, what)?;
        let mut buf = [0u8; N];
        self.src.read_exact(&mut buf).map_err(Self::io)?;
        self.pos += N as u64;
        Ok(buf)
    }

    fn u8(&mut self, what: &'static str) -> Result<u8> {
        Ok(self.array::<1>(what)?[0])
    }
    fn u16(&mut self, what: &'static str) -> Result<u16> {
        Ok(u16::from_le_bytes(self.array(what)?))
    }
    fn u32(&mut self, what: &'static str) -> Result<u32> {
        Ok(u32::from_le_bytes(self.array(what)?))
    }
    fn i32(&mut self, what: &'static str) -> Result<i32> {
        Ok(i32::from_le_bytes(self.array(what)?))
    }
    fn u64(&mut self, what: &'static str) -> Result<u64> {
        Ok(u64::from_le_bytes(self.array(what)?))
    }
    fn f32(&mut self, what: &'static str) -> Result<f32> {
        Ok(f32::from_le_bytes(self.array(what)?))
    }
}
