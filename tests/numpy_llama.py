"""An independent NumPy forward pass of a GGUF Llama, straight from the file.

It reads tensors with the `gguf` package and keeps llama.cpp's own layout:
Q/K rows stay permuted and RoPE rotates adjacent pairs, as llama.cpp does. The
converter instead un-permutes to Hugging Face's layout for keras-hub's
half-split RoPE, so agreement checks the conversion, not a copy of it.
"""

import gguf
import numpy as np


class NumpyLlama:
    def __init__(self, path):
        reader = gguf.GGUFReader(path)

        def field(key):
            return reader.fields[key].contents()

        self.layers = int(field("llama.block_count"))
        self.heads = int(field("llama.attention.head_count"))
        self.kv_heads = int(field("llama.attention.head_count_kv"))
        self.base = float(field("llama.rope.freq_base"))
        self.eps = float(field("llama.attention.layer_norm_rms_epsilon"))
        self.w = {
            t.name: gguf.quants.dequantize(t.data, t.tensor_type).astype(
                np.float64
            )
            for t in reader.tensors
        }

    def _rms(self, x, scale):
        return x / np.sqrt(np.mean(x * x, -1, keepdims=True) + self.eps) * scale

    def _rope_adjacent_pairs(self, x):  # x: (T, heads, head_dim)
        t, _, hd = x.shape
        inv = self.base ** (-np.arange(0, hd, 2) / hd)  # (hd/2,)
        angle = np.arange(t)[:, None, None] * inv[None, None, :]
        x0, x1 = x[..., 0::2], x[..., 1::2]
        out = np.empty_like(x)
        out[..., 0::2] = x0 * np.cos(angle) - x1 * np.sin(angle)
        out[..., 1::2] = x0 * np.sin(angle) + x1 * np.cos(angle)
        return out

    def logits(self, ids):
        w = self.w
        x = w["token_embd.weight"][ids]  # (T, D)
        t = len(ids)
        hd = x.shape[1] // self.heads
        mask = np.triu(np.full((t, t), -np.inf), 1)
        for i in range(self.layers):
            h = self._rms(x, w[f"blk.{i}.attn_norm.weight"])
            q = (h @ w[f"blk.{i}.attn_q.weight"].T).reshape(t, self.heads, hd)
            k = (h @ w[f"blk.{i}.attn_k.weight"].T).reshape(
                t, self.kv_heads, hd
            )
            v = (h @ w[f"blk.{i}.attn_v.weight"].T).reshape(
                t, self.kv_heads, hd
            )
            q, k = self._rope_adjacent_pairs(q), self._rope_adjacent_pairs(k)
            group = self.heads // self.kv_heads
            k, v = np.repeat(k, group, axis=1), np.repeat(v, group, axis=1)
            scores = np.einsum("qhd,khd->hqk", q, k) / np.sqrt(hd) + mask
            scores = np.exp(scores - scores.max(-1, keepdims=True))
            probs = scores / scores.sum(-1, keepdims=True)
            o = np.einsum("hqk,khd->qhd", probs, v).reshape(t, -1)
            x = x + o @ w[f"blk.{i}.attn_output.weight"].T
            h = self._rms(x, w[f"blk.{i}.ffn_norm.weight"])
            gate = h @ w[f"blk.{i}.ffn_gate.weight"].T
            up = h @ w[f"blk.{i}.ffn_up.weight"].T
            x = (
                x
                + (gate / (1 + np.exp(-gate)) * up)
                @ w[f"blk.{i}.ffn_down.weight"].T
            )
        x = self._rms(x, w["output_norm.weight"])
        head = w.get("output.weight", w["token_embd.weight"])
        return x @ head.T  # (T, vocab)
