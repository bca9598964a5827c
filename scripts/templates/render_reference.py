#!/usr/bin/env python3
"""Renders testdata/templates/*.jinja with Python's jinja2 as Hugging Face's apply_chat_template does
(trim_blocks, lstrip_blocks, its tojson, raise_exception) into testdata/templates/rendered/, the reference that
crates/cria-tokenizer/tests/tool_templates.rs holds Cria's minijinja renders to.

Usage: python3 scripts/templates/render_reference.py   (needs jinja2)"""

import json
import os

import jinja2
from jinja2.sandbox import ImmutableSandboxedEnvironment

ROOT = os.path.join(os.path.dirname(__file__), "..", "..", "testdata", "templates")
CASES = os.path.join(ROOT, "cases.json")


def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
    # transformers' chat template tojson.
    return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)


def raise_exception(message):
    raise jinja2.exceptions.TemplateError(message)


def main():
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    cases = json.load(open(CASES))
    os.makedirs(os.path.join(ROOT, "rendered"), exist_ok=True)
    for case in cases:
        source = open(os.path.join(ROOT, case["template"])).read()
        context = {"bos_token": "", "eos_token": "<|im_end|>", "add_generation_prompt": True, **case.get("extra", {})}
        out = env.from_string(source).render(messages=case["messages"], tools=case.get("tools"), **context)
        with open(os.path.join(ROOT, "rendered", case["name"] + ".txt"), "w") as f:
            f.write(out)
        print(case["name"], len(out))


if __name__ == "__main__":
    main()
