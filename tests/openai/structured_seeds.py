#!/usr/bin/env python3
"""How many seeds of the structured-output test parse, against any OpenAI-compatible server.

Sends tests/openai/test_structured.py's request (`client.beta.chat.completions.parse` with a pydantic model,
temperature 0.8, max_tokens 200) for seeds 0..N-1 and prints the count that finish with `stop` and parse, and
each failure. Used to compare `cria serve` with `llama-server --jinja` on the same model file:

    python3 tests/openai/structured_seeds.py --base-url http://127.0.0.1:8080 [--frequency-penalty 0.5]
"""

import argparse
import sys

import openai
from pydantic import BaseModel, ValidationError


class City(BaseModel):
    name: str
    country: str
    population: int
    coastal: bool


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--base-url", default="http://127.0.0.1:8080")
    ap.add_argument("--model", default="smollm2-135m-instruct")
    ap.add_argument("--seeds", type=int, default=50)
    ap.add_argument("--first-seed", type=int, default=0)
    ap.add_argument("--frequency-penalty", type=float, default=0.0)
    ap.add_argument("--max-tokens", type=int, default=200)
    args = ap.parse_args()
    client = openai.OpenAI(base_url=args.base_url + "/v1", api_key="unused", max_retries=0, timeout=600)
    parsed, failures = 0, []
    for seed in range(args.first_seed, args.first_seed + args.seeds):
        try:
            completion = client.beta.chat.completions.parse(
                model=args.model,
                messages=[{"role": "user", "content": "Describe a city as JSON."}],
                response_format=City,
                seed=seed,
                temperature=0.8,
                max_tokens=args.max_tokens,
                frequency_penalty=args.frequency_penalty,
            )
        except (openai.LengthFinishReasonError, ValidationError) as e:
            failures.append((seed, type(e).__name__, str(e)[:160]))
            continue
        choice = completion.choices[0]
        if choice.finish_reason == "stop" and isinstance(choice.message.parsed, City):
            parsed += 1
        else:
            failures.append((seed, choice.finish_reason, (choice.message.content or "")[:160]))
    for seed, why, text in failures:
        print(f"seed {seed}: {why}: {text!r}")
    print(f"parsed {parsed}/{args.seeds} (frequency_penalty {args.frequency_penalty})")
    return 0 if parsed == args.seeds else 1


if __name__ == "__main__":
    sys.exit(main())
