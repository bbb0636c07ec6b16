"""A tiny llama-architecture GGUF model, made from a fixed seed: what a real inference server can load offline.

No model can be downloaded where the checks run, so bench/strict_server.py writes this one at run
time (about 0.5 MB, no binary in the repository). Random weights, two layers, 64 dimensions, a
sentencepiece-style ("llama") vocabulary of 348 pieces: the three special tokens, the 256 byte
tokens every SPM vocabulary falls back to, "▁" and a-z (so a prompt costs a token per character,
not three), and 62 words. A chat template makes /v1/chat/completions work.

The answer is gibberish, but of a known length: the output layer only ever favours the words.
Every token's embedding carries 1.0 in dimension 0, the layers never write to it, and the output
rows of every other token (end of sequence included) weigh that dimension at -10. After the final
RMS norm it is the largest component by far, so those tokens' logits sit some 60 below the words':
an answer stops at max_tokens, never at an end-of-sequence token, and streams one word per token.

Runs in the server's venv (needs `gguf` and numpy, not our dependencies):

    python bench/tiny_gguf.py OUT.gguf [--seed 0]
"""

from __future__ import annotations

import argparse
import sys

import gguf
import numpy as np

N_EMBD, N_HEAD, N_FF, N_LAYER, N_CTX = 64, 4, 128, 2, 2048
WORDS = (
    "amber basalt cobalt delta ember fjord garnet harbor indigo jasper kelp lagoon marble nectar onyx "
    "prairie quartz raven sierra tundra umber velvet willow xenon yarrow zephyr acorn birch cedar dune "
    "echo fern glacier heron iris juniper kestrel lichen meadow nimbus orchid pebble quill reed "
    "saffron thistle umbra vale wren yew zinnia aspen bramble clover dew elm frost grove hazel ivy "
    "lark moss"
).split()
CHAT_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}{{ message['role'] }}: {{ message['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}assistant:{% endif %}"
)
UNK, BOS, EOS = 0, 1, 2


def vocabulary() -> tuple[list[str], list[float], list[int]]:
    tokens = ["<unk>", "<s>", "</s>"]
    types = [gguf.TokenType.UNKNOWN, gguf.TokenType.CONTROL, gguf.TokenType.CONTROL]
    tokens += [f"<0x{b:02X}>" for b in range(256)]
    types += [gguf.TokenType.BYTE] * 256
    pieces = ["▁", *"abcdefghijklmnopqrstuvwxyz"] + [f"▁{w}" for w in WORDS]
    tokens += pieces
    types += [gguf.TokenType.NORMAL] * len(pieces)
    scores = [0.0] * (3 + 256) + [-float(i) for i in range(len(pieces))]
    return tokens, scores, [int(t) for t in types]


def write(path: str, seed: int = 0) -> int:
    """Write the model; returns the number of tokens in its vocabulary."""
    rng = np.random.default_rng(seed)
    tokens, scores, types = vocabulary()
    n_vocab, first_word = len(tokens), len(tokens) - len(WORDS)

    def normal(*shape: int, scale: float) -> np.ndarray:
        return (rng.standard_normal(shape) * scale).astype(np.float32)

    w = gguf.GGUFWriter(path, "llama")
    w.add_name("tiny-random-llama")
    w.add_file_type(gguf.LlamaFileType.ALL_F32)
    w.add_context_length(N_CTX)
    w.add_embedding_length(N_EMBD)
    w.add_block_count(N_LAYER)
    w.add_feed_forward_length(N_FF)
    w.add_head_count(N_HEAD)
    w.add_head_count_kv(N_HEAD)
    w.add_rope_dimension_count(N_EMBD // N_HEAD)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_vocab_size(n_vocab)
    w.add_tokenizer_model("llama")
    w.add_token_list(tokens)
    w.add_token_scores(scores)
    w.add_token_types(types)
    w.add_unk_token_id(UNK)
    w.add_bos_token_id(BOS)
    w.add_eos_token_id(EOS)
    w.add_add_bos_token(False)  # the chat template writes it
    w.add_add_eos_token(False)
    w.add_chat_template(CHAT_TEMPLATE)

    # numpy shapes are (rows, columns) = (out, in); gguf stores them reversed, as llama.cpp expects.
    embd = normal(n_vocab, N_EMBD, scale=0.1)
    embd[:, 0] = 1.0
    w.add_tensor("token_embd.weight", embd)
    for i in range(N_LAYER):
        w.add_tensor(f"blk.{i}.attn_norm.weight", np.ones(N_EMBD, np.float32))
        for name in ("attn_q", "attn_k", "attn_v"):
            w.add_tensor(f"blk.{i}.{name}.weight", normal(N_EMBD, N_EMBD, scale=0.1))
        out = normal(N_EMBD, N_EMBD, scale=0.02)
        out[0] = 0.0  # nothing writes to dimension 0 of the residual stream
        w.add_tensor(f"blk.{i}.attn_output.weight", out)
        w.add_tensor(f"blk.{i}.ffn_norm.weight", np.ones(N_EMBD, np.float32))
        w.add_tensor(f"blk.{i}.ffn_gate.weight", normal(N_FF, N_EMBD, scale=0.1))
        w.add_tensor(f"blk.{i}.ffn_up.weight", normal(N_FF, N_EMBD, scale=0.1))
        down = normal(N_EMBD, N_FF, scale=0.02)
        down[0] = 0.0
        w.add_tensor(f"blk.{i}.ffn_down.weight", down)
    w.add_tensor("output_norm.weight", np.ones(N_EMBD, np.float32))
    output = normal(n_vocab, N_EMBD, scale=0.3)
    output[:, 0] = 0.0
    output[:first_word] = 0.0
    output[:first_word, 0] = -10.0  # special, byte and letter tokens: never the answer
    w.add_tensor("output.weight", output)

    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return n_vocab


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("out")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    write(args.out, args.seed)
    return 0


if __name__ == "__main__":
    sys.exit(main())
