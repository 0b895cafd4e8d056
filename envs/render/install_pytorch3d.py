"""``make pytorch3d``: install PyTorch3D 0.7.9 for ``renderer=pytorch3d``, by the first path that fits.

1. The wheel in ``$PYTORCH3D_VENDOR`` (a folder of vendored packages, when you have one) when this is CPython 3.11 with
   torch 2.13 and no CUDA: it was built here for exactly that (CPU kernels only).
2. A build from the vendored source tarball; with ``FORCE_CUDA=1`` on a CUDA machine, so that the CUDA
   rasteriser is compiled (it needs ``nvcc`` matching torch's CUDA).
3. PyTorch3D's own documented install: a build from its git tag v0.7.9.

One line says which path was taken; a missing compiler or CUDA toolkit is one line that says what to
install. PyTorch3D's one runtime dependency from PyPI (iopath) comes along. An installed build with CPU
kernels only does not count as installed where torch sees a GPU (its rasteriser would fail on CUDA
tensors): it is rebuilt with CUDA kernels.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import torch

VERSION = "0.7.9"
UPSTREAM = f"git+https://github.com/facebookresearch/pytorch3d.git@v{VERSION}"
WHEEL_PYTHON, WHEEL_TORCH = (3, 11), "2.13."


def vendor_dirs() -> list[Path]:
    """``$PYTORCH3D_VENDOR`` when it names a folder: this repository looks nowhere outside itself unasked."""
    found = [Path(os.environ["PYTORCH3D_VENDOR"])] if os.environ.get("PYTORCH3D_VENDOR") else []
    return [d for d in found if d.is_dir()]


def installed_version() -> str | None:
    try:
        return importlib.metadata.version("pytorch3d")
    except importlib.metadata.PackageNotFoundError:
        return None


def built_with_cuda() -> bool:
    """Whether the installed PyTorch3D's compiled extension carries CUDA kernels: a CUDA build registers
    them at load time through ``__cudaRegisterFatBinary``, a CPU build has no such symbol."""
    try:
        spec = importlib.util.find_spec("pytorch3d._C")
    except ImportError:
        return False
    return spec is not None and spec.origin is not None and b"__cudaRegisterFatBinary" in Path(spec.origin).read_bytes()


def pip(*args: str, env: dict | None = None) -> None:
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", *args], check=True, env=env)


def choose() -> tuple[str, str, dict]:
    """(what is installed: a wheel, a tarball or the git tag; the line that says so; the environment)."""
    cuda = torch.cuda.is_available()
    dirs = vendor_dirs()
    wheel_fits = sys.version_info[:2] == WHEEL_PYTHON and torch.__version__.startswith(WHEEL_TORCH) and not cuda
    tag = f"cp{WHEEL_PYTHON[0]}{WHEEL_PYTHON[1]}"
    for d in dirs:
        wheel = d / f"pytorch3d-{VERSION}-{tag}-{tag}-linux_x86_64.whl"
        if wheel_fits and wheel.is_file():
            return str(wheel), f"pytorch3d: installing the vendored wheel {wheel} (CPython 3.11, torch 2.13, CPU)", {}
    env = {**os.environ, "FORCE_CUDA": "1" if cuda else "0", "MAX_JOBS": os.environ.get("MAX_JOBS", "2")}
    if shutil.which("c++") is None and shutil.which("g++") is None:
        raise SystemExit("error: building PyTorch3D needs a C++ compiler: apt install g++ (or build-essential)")
    nvcc = shutil.which("nvcc") or Path(os.environ.get("CUDA_HOME", "/usr/local/cuda"), "bin", "nvcc").is_file()
    if cuda and not nvcc:
        raise SystemExit(f"error: a CUDA build of PyTorch3D needs nvcc for CUDA {torch.version.cuda} (torch's): "
                         "install that CUDA toolkit and set CUDA_HOME")  # fmt: skip
    kind = "with CUDA kernels" if cuda else "CPU kernels only"
    for d in dirs:
        tarball = d / f"pytorch3d-{VERSION}.tar.gz"
        if tarball.is_file():
            return str(tarball), f"pytorch3d: building the vendored source {tarball} ({kind}; ~20 min on 2 cores)", env
    return UPSTREAM, f"pytorch3d: building from its git tag v{VERSION} ({kind}; ~20 min on 2 cores)", env


def main() -> None:
    replace = []
    if installed_version() == VERSION:
        if not torch.cuda.is_available() or built_with_cuda():
            print(f"pytorch3d: {VERSION} is already installed")
            return
        print(f"pytorch3d: the installed {VERSION} has CPU kernels only and torch sees a GPU: rebuilding it")
        replace = ["--force-reinstall"]
    source, message, env = choose()
    print(message, flush=True)
    start = time.perf_counter()
    try:
        pip("iopath")
        pip(*replace, "--no-deps", "--no-build-isolation", source, env=env or None)
    except subprocess.CalledProcessError as error:
        raise SystemExit(f"error: pip failed ({error}); its output above says what is missing") from None
    if installed_version() != VERSION:
        raise SystemExit(f"error: pip finished but pytorch3d {VERSION} is not installed; see pip's output above")
    print(f"pytorch3d: {VERSION} installed in {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
