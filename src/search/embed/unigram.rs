//! SentencePiece-unigram tokenizer reproducing XLM-R's Hugging Face tokenizer.
//!
//! The pipeline mirrors `tokenizer.json` of multilingual-e5-small:
//! 1. the special tokens `<s>`, `<pad>`, `</s>`, `<unk>`, `<mask>` written
//!    literally in the text are split off first (HF "added tokens");
//! 2. each remaining segment is normalised codepoint by codepoint with the
//!    map stored in the E5S1 file (the single-codepoint part of the
//!    precompiled `nmt_nfkc` charsmap), then runs of 2+ spaces become one;
//! 3. Metaspace: spaces become `▁` (U+2581), `▁` is prepended unless the
//!    segment already starts with it, and every `▁` starts a new word;
//! 4. each word is segmented by Viterbi, maximising the sum of piece log
//!    probabilities; a character with no single-character piece becomes
//!    `<unk>` (score = min score − 10) and consecutive unknowns are fused;
//! 5. `<s>` … `</s>` are added and the result is truncated to `max_len`.
//!
//! Memory: pieces stay in one UTF-8 blob; lookup is an open-addressing table
//! of `u32` ids hashed on the piece bytes (about 2 MB for 250k pieces).
//!
//! Known gap: the HF charsmap also maps multi-codepoint sequences (e.g. a
//! decomposed `и` + U+0306 → `й`) per grapheme cluster; the E5S1 file does
//! not carry those entries, so such (rare, NFD-encoded) input can tokenise
//! differently.

use std::collections::HashMap;

use super::e5s1::TokenizerSection;
use super::error::{Result, format_err};

/// Metaspace replacement character.
const META: char = '\u{2581}';
/// Score penalty of an unknown character below the lowest piece score.
const UNK_PENALTY: f64 = 10.0;
const EMPTY: u32 = u32::MAX;
/// Literal special tokens recognised in raw text.
const SPECIAL_TEXTS: [&str; 5] = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"];

/// Unigram tokenizer over the E5S1 tokenizer tables.
#[derive(Debug, Clone)]
pub struct Unigram {
    blob: Vec<u8>,
    offsets: Vec<u32>,
    scores: Vec<f32>,
    table: Vec<u32>,
    max_piece_bytes: usize,
    unk_score: f64,
    normaliser: HashMap<char, Box<str>>,
    specials: Vec<(&'static str, u32)>,
    bos: u32,
    eos: u32,
    unk: u32,
    max_len: usize,
}

impl Unigram {
    /// Build from the file's tokenizer section; `max_len` counts `<s>` and `</s>`.
    pub fn new(section: TokenizerSection, max_len: usize) -> Result<Unigram> {
        if max_len < 2 {
            return Err(format_err("tokenizer max_len must be at least 2"));
        }
        let TokenizerSection { blob, offsets, scores, bos, eos, unk, normaliser, .. } = section;
        let n = scores.len();
        if offsets.len() != n + 1 || n >= EMPTY as usize {
            return Err(format_err("tokenizer offsets and scores disagree"));
        }
        let piece_of = |id: usize| -> Option<&[u8]> {
            blob.get(*offsets.get(id)? as usize..*offsets.get(id + 1)? as usize)
        };
        let size = (2 * n).next_power_of_two().max(16);
        let mask = size - 1;
        let mut table = vec![EMPTY; size];
        let mut max_piece_bytes = 0;
        let mut min_score = f64::INFINITY;
        for (id, &score) in scores.iter().enumerate() {
            let piece = piece_of(id).ok_or_else(|| format_err("bad piece offsets"))?;
            max_piece_bytes = max_piece_bytes.max(piece.len());
            min_score = min_score.min(score as f64);
            if piece.is_empty() {
                continue; // never matched by Viterbi
            }
            let mut slot = hash(piece) as usize & mask;
            loop {
                match table[slot] {
                    EMPTY => break,
                    // Duplicate piece: like HF's map, the later id wins.
                    other if piece_of(other as usize) == Some(piece) => break,
                    _ => slot = (slot + 1) & mask,
                }
            }
            table[slot] = id as u32;
        }
        let mut tok = Unigram {
            blob,
            offsets,
            scores,
            table,
            max_piece_bytes,
            unk_score: min_score - UNK_PENALTY,
            normaliser,
            specials: Vec::new(),
            bos,
            eos,
            unk,
            max_len,
        };
        tok.specials = SPECIAL_TEXTS.iter().filter_map(|s| tok.lookup(s).map(|id| (*s, id))).collect();
        Ok(tok)
    }

    /// Number of pieces in the vocabulary.
    pub fn vocab_size(&self) -> usize {
        self.scores.len()
    }

    /// Id of `<s>`, `</s>`, `<unk>`.
    pub fn special_ids(&self) -> (u32, u32, u32) {
        (self.bos, self.eos, self.unk)
    }

    /// Text of piece `id`, if it exists.
    pub fn piece(&self, id: u32) -> Option<&str> {
        std::str::from_utf8(self.piece_bytes(id)?).ok()
    }

    /// Id of a piece given its exact text.
    pub fn lookup(&self, piece: &str) -> Option<u32> {
        let piece = piece.as_bytes();
        if piece.is_empty() || piece.len() > self.max_piece_bytes {
            return None;
        }
        let mask = self.table.len() - 1;
        let mut slot = hash(piece) as usize & mask;
        loop {
            match self.table[slot] {
                EMPTY => return None,
                id if self.piece_bytes(id) == Some(piece) => return Some(id),
                _ => slot = (slot + 1) & mask,
            }
        }
    }

    /// Token ids of `text` with `<s>` … `</s>`, truncated to `max_len`.
    pub fn encode(&self, text: &str) -> Vec<u32> {
        let mut ids = vec![self.bos];
        let budget = self.max_len - 1;
        for (segment, special) in self.split_specials(text) {
            if ids.len() >= budget {
                break;
            }
            if let Some(id) = special {
                ids.push(id);
                continue;
            }
            let meta = self.pre_tokenize(segment);
            for word in split_words(&meta) {
                if ids.len() >= budget {
                    break;
                }
                self.viterbi(word, &mut ids);
            }
        }
        ids.truncate(budget);
        ids.push(self.eos);
        ids
    }

    /// Split raw text into plain segments and literal special tokens
    /// (leftmost match, longest first).
    fn split_specials<'t>(&self, text: &'t str) -> Vec<(&'t str, Option<u32>)> {
        let mut out = Vec::new();
        let mut start = 0;
        let mut i = 0;
        let bytes = text.as_bytes();
        while i < bytes.len() {
            if bytes[i] == b'<' {
                let rest = &text[i..];
                let hit =
                    self.specials.iter().filter(|(s, _)| rest.starts_with(s)).max_by_key(|(s, _)| s.len());
                if let Some(&(s, id)) = hit {
                    if start < i {
                        out.push((&text[start..i], None));
                    }
                    out.push((s, Some(id)));
                    i += s.len();
                    start = i;
                    continue;
                }
            }
            i += 1;
        }
        if start < text.len() {
            out.push((&text[start..], None));
        }
        out
    }

    /// Normalise, collapse spaces and apply the Metaspace replacement.
    fn pre_tokenize(&self, segment: &str) -> String {
        let mut norm = String::with_capacity(segment.len() + 4);
        for c in segment.chars() {
            match self.normaliser.get(&c) {
                Some(rep) => norm.push_str(rep),
                None => norm.push(c),
            }
        }
        let mut out = String::with_capacity(norm.len() + 8);
        let mut prev_space = false;
        for c in norm.chars() {
            let space = c == ' ';
            if space && prev_space {
                continue; // " {2,}" -> " "
            }
            prev_space = space;
            out.push(if space { META } else { c });
        }
        if !out.is_empty() && !out.starts_with(META) {
            out.insert(0, META);
        }
        out
    }

    /// Best segmentation of one word; appends the ids to `ids`.
    fn viterbi(&self, word: &str, ids: &mut Vec<u32>) {
        #[derive(Clone, Copy)]
        struct Node {
            score: f64,
            start: usize,
            id: u32,
        }
        let n = word.len();
        let none = Node { score: 0.0, start: usize::MAX, id: 0 };
        let mut best = vec![none; n + 1];
        best[0].start = 0;
        for (s, c) in word.char_indices() {
            let base = best[s].score;
            let char_len = c.len_utf8();
            let mut has_single = false;
            let limit = (s + self.max_piece_bytes).min(n);
            let mut ends = word[s..].char_indices().map(|(k, ch)| s + k + ch.len_utf8());
            while let Some(e) = ends.next().filter(|&e| e <= limit) {
                if let Some(id) = self.lookup(&word[s..e]) {
                    let cand = base + self.scores[id as usize] as f64;
                    let node = &mut best[e];
                    if node.start == usize::MAX || cand > node.score {
                        *node = Node { score: cand, start: s, id };
                    }
                    has_single |= e - s == char_len;
                }
            }
            if !has_single {
                let cand = base + self.unk_score;
                let node = &mut best[s + char_len];
                if node.start == usize::MAX || cand > node.score {
                    *node = Node { score: cand, start: s, id: self.unk };
                }
            }
        }
        // Backtrack; consecutive unknowns are fused into one token.
        let mut rev: Vec<(usize, usize, u32)> = Vec::new();
        let mut end = n;
        while end > 0 {
            let node = best[end];
            if node.start >= end {
                break; // unreachable: every character gets a node
            }
            match rev.last_mut() {
                Some(last) if node.id == self.unk && last.2 == self.unk && last.0 == end => {
                    last.0 = node.start
                }
                _ => rev.push((node.start, end, node.id)),
            }
            end = node.start;
        }
        for &(s, e, id) in rev.iter().rev() {
            // A fused unknown span is looked up again, as HF does.
            let id = if id == self.unk { self.lookup(&word[s..e]).unwrap_or(self.unk) } else { id };
            ids.push(id);
        }
    }

    fn piece_bytes(&self, id: u32) -> Option<&[u8]> {
        let i = id as usize;
        let (a, b) = (*self.offsets.get(i)? as usize, *self.offsets.get(i + 1)? as usize);
        self.blob.get(a..b)
    }
}

/// Words of a Metaspace string: every `▁` starts a new word.
fn split_words(s: &str) -> impl Iterator<Item = &str> {
    let mut starts: Vec<usize> = s.match_indices(META).map(|(i, _)| i).collect();
    if starts.first() != Some(&0) {
        starts.insert(0, 0);
    }
    let ends: Vec<usize> = starts.iter().skip(1).copied().chain(std::iter::once(s.len())).collect();
    starts.into_iter().zip(ends).filter(|(a, b)| a < b).map(move |(a, b)| &s[a..b])
}

/// FNV-1a over the piece bytes.
fn hash(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}
