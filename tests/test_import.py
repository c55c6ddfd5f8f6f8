import subprocess
import sys


def test_import_is_light_and_never_touches_tensorrt_or_cuda() -> None:
    code = (
        "import sys, srdeploy, srdeploy.backends.tensorrt as t\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('tensorrt', 'pycuda', 'cuda')]\n"
        "assert not bad, bad\n"
        "assert 'torch' not in sys.modules, 'import srdeploy must not import torch'\n"
        "print(srdeploy.__version__)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip()
