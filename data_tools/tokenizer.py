"""A small CLIP tokenizer for the tiny and demo sizes, in the CLIP tokenizer's files (vocab.json, merges.txt,
tokenizer_config.json): byte-level BPE over the 256 byte symbols, with merges that make each given word one token.

`python -m data_tools.tokenizer` rewrites configs/models/{tiny,demo}/tokenizer from the caption words.
"""

import json
import sys
from pathlib import Path

from animate.atomic import write_text

START, END = "<|startoftext|>", "<|endoftext|>"
MAX_LENGTH = 77  # CLIP's, SD-1.5's


def byte_symbols() -> list[str]:
    """The byte-level BPE alphabet: byte b as one printable character (printable bytes as themselves, the rest
    shifted past 255), in byte order."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    shifted = iter(range(256, 512))
    return [chr(b) if b in printable else chr(next(shifted)) for b in range(256)]


def word_symbols(word: str) -> list[str]:
    """A word's byte symbols, the last one word-final."""
    alphabet = byte_symbols()
    symbols = [alphabet[b] for b in word.encode()]
    symbols[-1] += "</w>"
    return symbols


def apply_merges(symbols: list[str], ranks: dict[tuple[str, str], int]) -> list[str]:
    """Byte-pair encoding: merge the lowest-ranked adjacent pair, everywhere, until no pair has a rank."""
    while len(symbols) > 1:
        pairs = [pair for pair in zip(symbols, symbols[1:]) if pair in ranks]
        if not pairs:
            break
        first, second = min(pairs, key=ranks.__getitem__)
        merged, i = [], 0
        while i < len(symbols):
            if i + 1 < len(symbols) and (symbols[i], symbols[i + 1]) == (first, second):
                merged.append(first + second)
                i += 2
            else:
                merged.append(symbols[i])
                i += 1
        symbols = merged
    return symbols


def word_merges(words: list[str]) -> list[tuple[str, str]]:
    """Merges that make every word one token: each word's leftover symbols (after the merges so far) joined left to
    right by new merges ranked after all earlier ones, which therefore never change an earlier word's encoding."""
    merges: list[tuple[str, str]] = []
    ranks: dict[tuple[str, str], int] = {}
    for word in words:
        symbols = apply_merges(word_symbols(word), ranks)
        current = symbols[0]
        for symbol in symbols[1:]:
            ranks[(current, symbol)] = len(merges)
            merges.append((current, symbol))
            current += symbol
    return merges


def tokenizer_files(words: list[str]) -> dict[str, str]:
    """The file texts of a CLIP tokenizer whose vocabulary holds every byte symbol (bare and word-final), each word
    as one token, and the start and end tokens."""
    alphabet = byte_symbols()
    merges = word_merges(sorted({w.lower() for w in words}))
    vocab = [*alphabet, *(s + "</w>" for s in alphabet), *(a + b for a, b in merges), START, END]
    config = {"tokenizer_class": "CLIPTokenizer", "model_max_length": MAX_LENGTH, "bos_token": START, "eos_token": END,
              "unk_token": END, "pad_token": END}
    return {"vocab.json": json.dumps({token: i for i, token in enumerate(dict.fromkeys(vocab))}, ensure_ascii=False),
            "merges.txt": "#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in merges),
            "tokenizer_config.json": json.dumps(config, indent=2) + "\n"}


def write_tokenizer(words: list[str], folder: Path) -> Path:
    """Write the tokenizer of `words` into `folder` (created), each file atomically."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in tokenizer_files(words).items():
        write_text(folder / name, text)
    return folder


def text_encoder_config(tokenizer_folder: Path, width: int = 64, layers: int = 2, heads: int = 4) -> dict:
    """A small CLIPTextModel config (transformers' config.json keys) for the tokenizer in `tokenizer_folder`."""
    vocab = json.loads((tokenizer_folder / "vocab.json").read_text(encoding="utf-8"))
    return {"architectures": ["CLIPTextModel"], "model_type": "clip_text_model", "vocab_size": len(vocab),
            "hidden_size": width, "intermediate_size": 2 * width, "num_hidden_layers": layers,
            "num_attention_heads": heads, "max_position_embeddings": MAX_LENGTH, "hidden_act": "quick_gelu",
            "projection_dim": width, "bos_token_id": vocab[START], "eos_token_id": vocab[END], "pad_token_id": vocab[END]}


if __name__ == "__main__":
    from animate.paths import model_size_dir
    from data_tools.captions import CAPTION_WORDS

    for size in ("tiny", "demo"):
        folder = write_tokenizer(list(CAPTION_WORDS), model_size_dir(size) / "tokenizer")
        (model_size_dir(size) / "text_encoder").mkdir(exist_ok=True)
        config = write_text(model_size_dir(size) / "text_encoder" / "config.json",
                            json.dumps(text_encoder_config(folder), indent=2) + "\n")
        sys.stdout.write(f"{folder}\n{config}\n")
