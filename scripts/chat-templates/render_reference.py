#!/usr/bin/env python3
"""Renders a chat template the way Hugging Face's `apply_chat_template` does (jinja2 with trim_blocks and
lstrip_blocks, `raise_exception`, `strftime_now`), for the conversations Cria's tests use, and writes the
prompts as JSON beside the template:

    python3 scripts/chat-templates/render_reference.py testdata/chat-templates/gpt-oss.jinja

writes `testdata/chat-templates/gpt-oss.expected.json`: a list of `{"messages": [...], "prompt": "..."}`, every
prompt rendered with `add_generation_prompt=True`. `strftime_now` returns the fixed date below; the test puts
its own date in that place before comparing. A development-time script (needs `jinja2`): its output is checked in.
"""

from __future__ import annotations

import json
import sys
from datetime import datetime, timezone
from pathlib import Path

import jinja2
from jinja2.sandbox import ImmutableSandboxedEnvironment

FIXED_NOW = datetime(2025, 8, 5, tzinfo=timezone.utc)

CONVERSATIONS = [
    [{"role": "user", "content": "What is the capital of France?"}],
    [
        {"role": "system", "content": "You answer in one sentence."},
        {"role": "user", "content": "Why is the sky blue?"},
    ],
    [
        {"role": "user", "content": "List three prime numbers."},
        {"role": "assistant", "content": "2, 3 and 5."},
        {"role": "user", "content": "Three more, please."},
    ],
]


def raise_exception(message: str) -> None:
    raise jinja2.exceptions.TemplateError(message)


def main() -> None:
    template_path = Path(sys.argv[1])
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = lambda fmt: FIXED_NOW.strftime(fmt)
    template = env.from_string(template_path.read_text())
    out = [
        {
            "messages": messages,
            "prompt": template.render(messages=messages, add_generation_prompt=True, bos_token="", eos_token=""),
        }
        for messages in CONVERSATIONS
    ]
    target = template_path.with_suffix(".expected.json")
    target.write_text(json.dumps(out, indent=1, ensure_ascii=False) + "\n")
    print(f"wrote {target}")


if __name__ == "__main__":
    main()
