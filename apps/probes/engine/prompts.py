"""Prompts: a synthetic set with controlled lengths (deterministic from a seed), or a JSONL file."""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path

# Common English words of 3-5 letters: with the separating space, ~4 characters ≈ 1 token
# for BPE tokenizers, which is what "token-approximate" means here.
_VOCAB = (
    "time year people way day man thing woman life child world school state family student group "
    "country problem hand part place case week company system program question work government number "
    "night point home water room mother area money story fact month lot right study book eye job word "
    "issue side kind head house service friend father power hour game line end member law car city name"
).split()


@dataclass(frozen=True)
class Prompt:
    text: str
    approx_tokens: int


class PromptSet:
    def __init__(self, prompts: list[Prompt]):
        if not prompts:
            raise ValueError("the prompt set is empty")
        self.prompts = prompts
        self._i = 0

    def next(self) -> Prompt:
        prompt = self.prompts[self._i % len(self.prompts)]
        self._i += 1
        return prompt

    @classmethod
    def synthetic(cls, *, prompt_tokens: int, count: int = 256, seed: int = 0, spread: float = 0.0) -> PromptSet:
        """`count` prompts of about `prompt_tokens` tokens (± spread, a fraction), same for the same seed."""
        if prompt_tokens < 1:
            raise ValueError("prompt_tokens must be at least 1")
        rng = random.Random(seed)
        prompts = []
        for i in range(count):
            n = prompt_tokens
            if spread:
                n = max(1, round(prompt_tokens * (1 + rng.uniform(-spread, spread))))
            # A unique prefix per prompt defeats prefix caching, which would flatter TTFT.
            words = [f"[{seed}-{i}]"] + [rng.choice(_VOCAB) for _ in range(max(0, n - 1))]
            prompts.append(Prompt(" ".join(words), n))
        return cls(prompts)

    @classmethod
    def from_jsonl(cls, path: str | Path) -> PromptSet:
        """One JSON object per line with "prompt" (or "text", or chat "messages"); blank lines skipped."""
        prompts = []
        for n, line in enumerate(Path(path).read_text(encoding="utf-8").split("\n"), 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path}:{n}: not JSON ({exc.msg})") from None
            if isinstance(obj, str):
                text = obj
            elif isinstance(obj, dict) and isinstance(obj.get("prompt") or obj.get("text"), str):
                text = obj.get("prompt") or obj.get("text")
            elif isinstance(obj, dict) and isinstance(obj.get("messages"), list):
                text = "\n".join(str(m.get("content", "")) for m in obj["messages"] if isinstance(m, dict))
            else:
                raise ValueError(f'{path}:{n}: expected a string or an object with "prompt"')
            prompts.append(Prompt(text, max(1, len(text) // 4)))
        return cls(prompts)
