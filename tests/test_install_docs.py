"""The install instructions are true: every extra the README's commands and the code's hints name exists in
pyproject.toml, the CPU-torch command pins the same torch as the project, no extra installs onnxruntime-gpu
beside onnxruntime, and TensorRT extras are chosen by CUDA major version."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())
EXTRAS = PYPROJECT["project"]["optional-dependencies"]
EXTRA_RE = re.compile(r"(?:\.|srdeploy)\[([a-z0-9][a-z0-9,\-]*)\]")


def _code_lines(markdown: str) -> list[str]:
    blocks = re.findall(r"```[a-z]*\n(.*?)```", markdown, flags=re.S)
    return [line for block in blocks for line in block.splitlines()]


README = _code_lines((REPO / "README.md").read_text())


def _named_extras(text: str) -> set[str]:
    return {e.strip() for group in EXTRA_RE.findall(text) for e in group.split(",")}


def _requirement_name(req: str) -> str:
    return re.split(r"[<>=!~;\[ ]", req, maxsplit=1)[0].lower()


def test_readme_install_commands_name_existing_extras() -> None:
    commands = [line for line in README if "pip install" in line]
    named = set().union(*(_named_extras(line) for line in commands))
    assert named, "the README's code blocks install no extra"
    assert named <= set(EXTRAS), sorted(named - set(EXTRAS))


def test_hints_in_the_code_name_existing_extras() -> None:
    files = [*REPO.glob("srdeploy/**/*.py"), *REPO.glob("tools/*.sh"), *REPO.glob("docs/*.md")]
    for path in files:
        text = path.read_text()
        named = _named_extras(text) | set(re.findall(r"or '?\[([a-z0-9\-]+)\]", text))
        assert named <= set(EXTRAS), (path.relative_to(REPO), sorted(named - set(EXTRAS)))


def test_cpu_torch_command_pins_the_project_torch() -> None:
    pin = next(r for r in PYPROJECT["project"]["dependencies"] if _requirement_name(r) == "torch")
    version = pin.split("==", 1)[1]
    cpu = [line for line in README if "--index-url https://download.pytorch.org/whl/cpu" in line]
    assert cpu and all(f"torch=={version} " in line for line in cpu), (pin, cpu)


def test_no_extra_puts_onnxruntime_gpu_beside_onnxruntime() -> None:
    core = {_requirement_name(r) for r in PYPROJECT["project"]["dependencies"]}
    assert "onnxruntime" in core
    for name, reqs in EXTRAS.items():
        assert "onnxruntime-gpu" not in {_requirement_name(r) for r in reqs}, name
    swap = [line for line in README if "pip install onnxruntime-gpu" in line]
    assert swap and all("uninstall -y onnxruntime" in line.split("pip install onnxruntime-gpu")[0] for line in swap)


def test_tensorrt_extras_follow_the_cuda_major() -> None:
    trt = {name: reqs for name, reqs in EXTRAS.items() if name.startswith("tensorrt")}
    assert trt and "tensorrt" not in trt  # the bare package picks one CUDA build for everyone
    for name, reqs in trt.items():
        assert re.fullmatch(r"tensorrt-cu\d+", name), name
        assert [_requirement_name(r) for r in reqs] == [name], (name, reqs)
    install = [line for line in README if "pip install" in line and "tensorrt-cu" in line]
    assert install and all("--extra-index-url" in line for line in install)


def test_ci_runs_the_readme_install_and_test_commands_as_written() -> None:
    text = (REPO / "README.md").read_text()
    install = re.search(r"## Install.*?```bash\n(.*?)\n```", text, re.S).group(1).strip()
    tests = re.search(r"## Run the tests.*?```bash\n(.*?)\n```", text, re.S).group(1).strip()
    lines = (REPO / ".ci/run").read_text().splitlines()
    ci = [line for line in lines if line and not line.startswith(("#", "set ", "cd "))]
    assert ci == [install, tests]
