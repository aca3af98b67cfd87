"""The llama-architecture model trained for Forkcast's default (PyTorch; runs on the GPU machine, and on
CPU with torch >= 1.13 for smoke tests).

Layout chosen so the GGUF needs no re-ordering of weights:
  - RoPE rotates *adjacent pairs* (x[2i], x[2i+1]) by angle pos * base^(-2i/head_dim): this is llama.cpp's
    "normal" rope for the `llama` architecture, so attn_q/attn_k rows are stored as trained.
  - GQA: query head h reads KV head h // (n_head / n_kv_head), llama.cpp's grouping.
  - Tied embeddings: the output projection is token_embd (the export writes it as output.weight too).
Math as in the LLaMA paper (Touvron et al. 2023): RMSNorm pre-norm, SwiGLU FFN (Shazeer 2020), RoPE (Su et al. 2021).
"""
import math
from dataclasses import dataclass, asdict

import torch
import torch.nn as nn
import torch.nn.functional as F


@dataclass
class Config:
    vocab: int = 16384
    dim: int = 512
    n_layer: int = 8
    n_head: int = 8
    n_kv_head: int = 2
    ff: int = 1408
    ctx: int = 1024
    rope_base: float = 10000.0
    norm_eps: float = 1e-5

    @property
    def head_dim(self):
        return self.dim // self.n_head

    def dict(self):
        return asdict(self)


class RMSNorm(nn.Module):
    def __init__(self, dim, eps):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x):
        xf = x.float()
        y = xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + self.eps)
        return (y * self.weight.float()).type_as(x)


def rope_tables(cfg, n, device):
    """cos/sin of shape [n, head_dim/2] for positions 0..n-1 (float32)."""
    hd = cfg.head_dim
    inv = cfg.rope_base ** (-torch.arange(0, hd, 2, device=device, dtype=torch.float32) / hd)
    ang = torch.arange(n, device=device, dtype=torch.float32)[:, None] * inv[None, :]
    return ang.cos(), ang.sin()


def apply_rope(x, cos, sin):
    """x: [B, H, T, hd]; rotates pairs (x[2i], x[2i+1]) by the angle of (position, i)."""
    xf = x.float()
    x0, x1 = xf[..., 0::2], xf[..., 1::2]
    y0 = x0 * cos - x1 * sin
    y1 = x0 * sin + x1 * cos
    return torch.stack((y0, y1), dim=-1).flatten(-2).type_as(x)


def attention(q, k, v, causal_offset):
    """q: [B,H,T,hd], k/v: [B,H,S,hd] with S = causal_offset + T (cached positions first)."""
    if hasattr(F, 'scaled_dot_product_attention'):
        if causal_offset == 0:
            return F.scaled_dot_product_attention(q, k, v, is_causal=True)
        T, S = q.shape[2], k.shape[2]
        mask = torch.ones(T, S, dtype=torch.bool, device=q.device).tril(diagonal=causal_offset)
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    # fallback for old torch (CPU smoke tests)
    T, S = q.shape[2], k.shape[2]
    att = (q.float() @ k.float().transpose(-1, -2)) / math.sqrt(q.shape[-1])
    mask = torch.ones(T, S, dtype=torch.bool, device=q.device).tril(diagonal=causal_offset)
    att = att.masked_fill(~mask, float('-inf')).softmax(-1)
    return (att @ v.float()).type_as(q)


class Block(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        hd = cfg.head_dim
        self.attn_norm = RMSNorm(cfg.dim, cfg.norm_eps)
        self.wq = nn.Linear(cfg.dim, cfg.n_head * hd, bias=False)
        self.wk = nn.Linear(cfg.dim, cfg.n_kv_head * hd, bias=False)
        self.wv = nn.Linear(cfg.dim, cfg.n_kv_head * hd, bias=False)
        self.wo = nn.Linear(cfg.n_head * hd, cfg.dim, bias=False)
        self.ffn_norm = RMSNorm(cfg.dim, cfg.norm_eps)
        self.w_gate = nn.Linear(cfg.dim, cfg.ff, bias=False)
        self.w_up = nn.Linear(cfg.dim, cfg.ff, bias=False)
        self.w_down = nn.Linear(cfg.ff, cfg.dim, bias=False)

    def forward(self, x, cos, sin, cache=None):
        c = self.cfg
        B, T, _ = x.shape
        h = self.attn_norm(x)
        q = self.wq(h).view(B, T, c.n_head, c.head_dim).transpose(1, 2)
        k = self.wk(h).view(B, T, c.n_kv_head, c.head_dim).transpose(1, 2)
        v = self.wv(h).view(B, T, c.n_kv_head, c.head_dim).transpose(1, 2)
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        off = 0
        if cache is not None:
            if cache.get('k') is not None:
                off = cache['k'].shape[2]
                k = torch.cat((cache['k'], k), dim=2)
                v = torch.cat((cache['v'], v), dim=2)
            cache['k'], cache['v'] = k, v
        rep = c.n_head // c.n_kv_head
        k = k.repeat_interleave(rep, dim=1)  # head h -> kv head h // rep
        v = v.repeat_interleave(rep, dim=1)
        a = attention(q, k, v, off).transpose(1, 2).reshape(B, T, c.n_head * c.head_dim)
        x = x + self.wo(a)
        h = self.ffn_norm(x)
        return x + self.w_down(F.silu(self.w_gate(h)) * self.w_up(h))


class Model(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        self.tok = nn.Embedding(cfg.vocab, cfg.dim)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layer))
        self.norm = RMSNorm(cfg.dim, cfg.norm_eps)
        cos, sin = rope_tables(cfg, cfg.ctx * 4, 'cpu')
        self.register_buffer('cos', cos, persistent=False)
        self.register_buffer('sin', sin, persistent=False)
        self.apply(self._init)
        for b in self.blocks:  # scaled init of residual projections (GPT-2 paper)
            nn.init.normal_(b.wo.weight, std=0.02 / math.sqrt(2 * cfg.n_layer))
            nn.init.normal_(b.w_down.weight, std=0.02 / math.sqrt(2 * cfg.n_layer))

    @staticmethod
    def _init(m):
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, std=0.02)

    def forward(self, idx, caches=None, pos0=0):
        """idx [B,T] -> logits [B,T,V]. With caches (list of dicts, one per layer) keys/values are kept."""
        T = idx.shape[1]
        cos, sin = self.cos[pos0:pos0 + T], self.sin[pos0:pos0 + T]
        x = self.tok(idx)
        for i, b in enumerate(self.blocks):
            x = b(x, cos, sin, None if caches is None else caches[i])
        return self.norm(x) @ self.tok.weight.t().to(x.dtype)

    def n_params(self):
        return sum(p.numel() for p in self.parameters())

    def flops_per_token(self, T):
        """Training FLOPs per token: 6 x (matmul params incl. the output projection) + attention
        12 * L * dim * T (Kaplan et al. 2020 / PaLM appendix B, causal not halved)."""
        c = self.cfg
        n_mat = sum(p.numel() for n, p in self.named_parameters() if p.dim() == 2 and not n.startswith('tok')) + c.vocab * c.dim
        return 6 * n_mat + 12 * c.n_layer * c.dim * T


# ---- GGUF tensor names (llama.cpp's llama architecture) for each trained parameter

def gguf_names(cfg):
    """[(torch state_dict key, gguf name)] in file order."""
    out = [('tok.weight', 'token_embd.weight')]
    for i in range(cfg.n_layer):
        p = f'blocks.{i}.'
        out += [(p + 'attn_norm.weight', f'blk.{i}.attn_norm.weight'), (p + 'wq.weight', f'blk.{i}.attn_q.weight'),
                (p + 'wk.weight', f'blk.{i}.attn_k.weight'), (p + 'wv.weight', f'blk.{i}.attn_v.weight'),
                (p + 'wo.weight', f'blk.{i}.attn_output.weight'), (p + 'ffn_norm.weight', f'blk.{i}.ffn_norm.weight'),
                (p + 'w_gate.weight', f'blk.{i}.ffn_gate.weight'), (p + 'w_up.weight', f'blk.{i}.ffn_up.weight'),
                (p + 'w_down.weight', f'blk.{i}.ffn_down.weight')]
    out.append(('norm.weight', 'output_norm.weight'))
    return out


def q8_0_roundtrip(w):
    """Quantize to GGML Q8_0 and back (blocks of 32 along rows: d = max|x|/127 stored as fp16,
    q = round(x/d) in int8; per ggml's Q8_0 definition)."""
    shape = w.shape
    x = w.float().reshape(-1, 32)
    amax = x.abs().amax(dim=1, keepdim=True)
    d = amax / 127.0
    inv = torch.where(d > 0, 1.0 / d, torch.zeros_like(d))
    q = torch.round(x * inv)  # note: torch rounds half to even; ties are measure-zero on real weights
    d16 = d.half().float()
    return (q * d16).reshape(shape)
