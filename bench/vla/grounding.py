"""Language grounding on its own: from a PickPlace instruction, which cube colour and which pad colour?

Every (cube colour, pad colour) pair of the training palette in every training template is the training set; the
held-out phrasings (``sims.tabletop.instructions.HELDOUT_TEMPLATES``, never tuned on) are the test. Two readers of
the frozen MiniLM, each with a linear colour classifier per slot, trained with cross-entropy:

* ``sentence``: the mean-pooled sentence embedding (what ``conditioning.kinds=language`` gives a policy);
* ``word attention``: the referring keypoints' per-group attention over the contextual token embeddings
  (``conditioning.language_tokens``, :meth:`ReferringKeypoints.group_language`), one group per slot.

    .venv/bin/python bench/vla/grounding.py [--json bench/vla/grounding.json]
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))


def phrasings(
    templates: tuple[str, ...], colours: tuple[str, ...], noun: str
) -> tuple[list[str], list[list[int]]]:
    texts, labels = [], []
    for template in templates:
        for a, b in itertools.product(range(len(colours)), repeat=2):
            texts.append(template.format(obj=f"{colours[a]} {noun}", target=colours[b]))
            labels.append([a, b])
    return texts, labels


def logits(reader: str, words, heads, sentence, tokens, mask) -> list:
    """Each slot's colour logits from what ``reader`` gives that slot."""
    per_slot = (
        sentence[:, None].expand(-1, 2, -1)
        if reader == "sentence"
        else words.group_language(None, tokens, mask)
    )
    return [head(per_slot[:, i]) for i, head in enumerate(heads)]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--json", default="")
    args = parser.parse_args()
    import torch

    from ember.policies.conditioning.language import get_embedder
    from ember.policies.referring_keypoints import ReferringKeypoints
    from ember.sims.splits import TRAIN_PALETTE
    from ember.sims.tabletop.instructions import HELDOUT_TEMPLATES
    from ember.sims.tabletop.tasks.pick_place import PickPlaceTask

    torch.set_num_threads(1)
    embedder = get_embedder()
    sets = {
        "train templates": phrasings(PickPlaceTask.templates, TRAIN_PALETTE, "cube"),
        "held-out phrasings": phrasings(HELDOUT_TEMPLATES["PickPlace"], TRAIN_PALETTE, "cube"),
    }
    inputs = {
        name: (embedder(texts), *embedder.tokens(texts), torch.tensor(labels))
        for name, (texts, labels) in sets.items()
    }
    rows = []
    for reader in ("sentence", "word attention"):
        scores: dict[str, list[list[float]]] = {name: [] for name in sets}
        t0 = time.perf_counter()
        for seed in range(args.seeds):
            torch.manual_seed(seed)
            words = ReferringKeypoints(1, 1, 1, num_groups=2, language_dim=embedder.dim, token_attention=True)
            heads = torch.nn.ModuleList(torch.nn.Linear(embedder.dim, len(TRAIN_PALETTE)) for _ in range(2))
            params = list(heads.parameters()) + (list(words.parameters()) if reader != "sentence" else [])
            optimizer = torch.optim.Adam(params, lr=1e-2)

            sentence, tokens, mask, labels = inputs["train templates"]
            for _ in range(args.steps):
                out = logits(reader, words, heads, sentence, tokens, mask)
                loss = sum(torch.nn.functional.cross_entropy(o, labels[:, i]) for i, o in enumerate(out))
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
            with torch.no_grad():
                for name, (sentence, tokens, mask, labels) in inputs.items():
                    out = logits(reader, words, heads, sentence, tokens, mask)
                    scores[name].append(
                        [float((o.argmax(1) == labels[:, i]).float().mean()) for i, o in enumerate(out)]
                    )
        for name, values in scores.items():
            mean = torch.tensor(values).mean(0).tolist()
            rows.append(
                {
                    "reader": reader,
                    "phrasings": name,
                    "strings": len(sets[name][0]),
                    "cube_colour_accuracy": round(mean[0], 3),
                    "pad_colour_accuracy": round(mean[1], 3),
                    "seeds": args.seeds,
                    "seconds": round(time.perf_counter() - t0, 1),
                }
            )
    print("| reader | phrasings | strings | cube colour | pad colour |")
    print("|---|---|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r['reader']} | {r['phrasings']} | {r['strings']} | {r['cube_colour_accuracy']:.0%} | "
            f"{r['pad_colour_accuracy']:.0%} |"
        )
    if args.json:
        Path(args.json).write_text(
            json.dumps({"chance": 1 / len(TRAIN_PALETTE), "rows": rows}, indent=2) + "\n"
        )


if __name__ == "__main__":
    main()
