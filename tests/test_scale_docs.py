"""The README's "Running at scale" material that no test runs end to end: the cluster YAML."""

from __future__ import annotations

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent


def test_the_cluster_yaml_is_a_valid_ray_up_config_with_what_facelift_needs():
    from ray.autoscaler._private.util import prepare_config, validate_config

    raw = yaml.safe_load((ROOT / "docs" / "ray-cluster-aws.yaml").read_text())
    config = prepare_config(raw)  # what `ray up` does before it launches anything
    validate_config(config)  # Ray's own schema: a misspelt field fails here, not on the cloud
    setup = " ".join(config["setup_commands"])
    assert (
        "python3.11 -m venv" in setup and "pip install" in setup and "-e ~/facelift" in setup
    )  # one environment on every node
    assert config["file_mounts"]["~/facelift"] == "."
    assert "--address=$RAY_HEAD_IP:6379" in " ".join(config["worker_start_ray_commands"])  # workers find the head
    for name, node in config["available_node_types"].items():
        assert "IamInstanceProfile" in node["node_config"], (
            f"{name}: object storage credentials come from an instance profile"
        )
    assert "aws_access_key_id" not in yaml.safe_dump(raw).lower()  # never keys in the file


def _readme_section(title: str) -> str:
    text = (ROOT / "README.md").read_text()
    start = text.index(f"## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start:end]


def _facelift_commands(section: str) -> list[list[str]]:
    """The facelift invocations in a section's bash blocks, continuation lines joined, as tokens."""
    import shlex

    commands = []
    for block in section.split("```bash")[1:]:
        body = block.split("```")[0].replace("\\\n", " ")
        for line in body.splitlines():
            line = line.split("  #")[0].split(" # ")[0].strip()
            line = line.replace("$(which facelift)", "facelift")
            tokens = shlex.split(line) if "facelift" in line else []
            if "facelift" in tokens:
                commands.append(tokens[tokens.index("facelift") + 1 :])
    return commands


def test_every_facelift_command_of_running_at_scale_uses_options_the_cli_has():
    import typer

    import cli

    root = typer.main.get_command(cli.app)
    commands = _facelift_commands(_readme_section("Running at scale"))
    assert len(commands) >= 8
    for tokens in commands:
        command, ctx_path = root, ["facelift"]
        options: set[str] = set()
        for token in tokens:
            if token in getattr(command, "commands", {}):
                options |= {
                    o for p in command.params for o in p.opts
                }  # a group's own options come before its subcommand
                command = command.commands[token]
                ctx_path.append(token)
        known = {o for p in command.params for o in p.opts} | {
            o for p in command.params for o in getattr(p, "secondary_opts", [])
        }
        if hasattr(command, "commands"):
            known |= options
        for token in tokens:
            if token.startswith("--"):
                assert token.split("=")[0] in known, (
                    f"{' '.join(ctx_path)} has no option {token} (README: facelift {' '.join(tokens)})"
                )
