"""Regenerates deploy/tests/module-inputs.json: the input names (and defaults) of each Terraform
module the kit uses, read from the module's variables.tf at the tag its version pin resolves to.

test_terraform.py checks every argument the kit passes to a module against these names, so a
misspelt or removed input, or a create_*/attach_* pair left half-set, fails offline instead of
at the first `terraform plan`.

Only the extract (names, defaults) is committed, with the repository, tag and commit it came from;
the module sources are not. To refresh after changing a pin:

    git clone https://github.com/terraform-aws-modules/terraform-aws-ecr /tmp/ecr
    target/hcl-venv/bin/python deploy/tests/module_inputs.py ecr terraform-aws-modules/terraform-aws-ecr \
        /tmp/ecr v2.4.0 variables.tf
"""

import json
import subprocess
import sys
from pathlib import Path

import hcl2

OUT = Path(__file__).resolve().parent / "module-inputs.json"


def unquote(value):
    if isinstance(value, str) and len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1]
    return value


def extract(repository: str, checkout: str, tag: str, path: str) -> dict:
    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", checkout, *args], check=True, capture_output=True, text=True).stdout

    variables = {}
    for block in hcl2.loads(git("show", f"{tag}:{path}"))["variable"]:
        for name, body in block.items():
            default = body.get("default")
            variables[unquote(name)] = unquote(default) if isinstance(default, (str, bool, type(None))) else "(complex)"
    return {"repository": f"https://github.com/{repository}", "tag": tag, "commit": git("rev-list", "-n1", tag).strip(), "path": path,
            "variables": dict(sorted(variables.items()))}


def main() -> None:
    key, repository, checkout, tag, path = sys.argv[1:6]
    data = json.loads(OUT.read_text()) if OUT.exists() else {}
    data[key] = extract(repository, checkout, tag, path)
    OUT.write_text(json.dumps(dict(sorted(data.items())), indent=2) + "\n")


if __name__ == "__main__":
    main()
