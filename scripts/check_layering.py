#!/usr/bin/env python3
"""Checks that every file under src/<layer>/ includes only headers of the layers it may use."""
import pathlib
import re
import sys

# layer -> layers it may include (besides itself); order: base, kernels, tensor, ops, formats, model
ALLOWED = {
    "base": set(),
    "kernels": {"base"},
    "tensor": {"base", "kernels"},
    "ops": {"base", "kernels", "tensor"},
    "formats": {"base", "kernels", "tensor"},
    "image": {"base"},
    "tokenizer": {"base", "formats", "image"},
    "model": {"base", "kernels", "tensor", "ops", "formats"},
    "vision": {"base", "kernels", "tensor", "ops", "formats", "image", "model"},
    "dist": {"base", "kernels", "tensor", "ops", "formats", "model"},
    "runtime": {"base", "kernels", "tensor", "ops", "formats", "image", "tokenizer", "model", "vision", "dist"},
    "train": {"base", "kernels", "tensor", "ops", "formats", "image", "tokenizer", "model", "vision", "dist"},
    "server": {"base", "tensor", "formats", "image", "tokenizer", "model", "vision", "dist", "runtime", "train"},
}
INCLUDE = re.compile(r'^\s*#\s*include\s+"([a-z_]+)/')


def main() -> int:
    root = pathlib.Path(__file__).resolve().parent.parent / "src"
    problems = []
    for path in sorted(root.rglob("*")):
        if path.suffix not in {".h", ".cc"}:
            continue
        layer = path.relative_to(root).parts[0]
        if layer not in ALLOWED:
            problems.append(f"{path}: unknown layer '{layer}' (add it to scripts/check_layering.py)")
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            match = INCLUDE.match(line)
            if match and match.group(1) != layer and match.group(1) not in ALLOWED[layer]:
                problems.append(f"{path}:{number}: layer '{layer}' may not include '{match.group(1)}/'")
    for problem in problems:
        print(problem)
    if not problems:
        print("layering ok")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
