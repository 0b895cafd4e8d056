"""``make pytorch3d`` picks its install path in order, and says in one line what a build lacks."""

from types import SimpleNamespace

import pytest
import torch

from envs.render import install_pytorch3d as installer


@pytest.fixture
def vendor(tmp_path, monkeypatch):
    monkeypatch.setattr(installer, "vendor_dirs", lambda: [tmp_path])
    monkeypatch.setattr(installer.shutil, "which", lambda name: f"/usr/bin/{name}")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    (tmp_path / "pytorch3d-0.7.9.tar.gz").write_bytes(b"")
    (tmp_path / "pytorch3d-0.7.9-cp311-cp311-linux_x86_64.whl").write_bytes(b"")
    return tmp_path


def test_the_wheel_where_python_and_torch_match_else_the_vendored_source_else_the_git_tag(vendor, monkeypatch):
    monkeypatch.setattr(installer.sys, "version_info", (3, 11, 7))
    monkeypatch.setattr(installer.torch, "__version__", "2.13.0+cpu")
    source, message, _ = installer.choose()
    assert source.endswith(".whl") and "vendored wheel" in message
    monkeypatch.setattr(installer.torch, "__version__", "2.12.1+cpu")  # another torch: the wheel would not load
    source, message, env = installer.choose()
    assert source.endswith(".tar.gz") and "vendored source" in message and env["FORCE_CUDA"] == "0"
    monkeypatch.setattr(installer, "vendor_dirs", lambda: [])
    source, message, _ = installer.choose()
    assert source == installer.UPSTREAM and "git tag v0.7.9" in message


def test_a_cuda_machine_builds_with_cuda_kernels_and_needs_nvcc(vendor, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    source, message, env = installer.choose()  # never the CPU-only wheel
    assert source.endswith(".tar.gz") and env["FORCE_CUDA"] == "1" and "with CUDA kernels" in message
    monkeypatch.setattr(installer.shutil, "which", lambda name: None if name == "nvcc" else f"/usr/bin/{name}")
    monkeypatch.setenv("CUDA_HOME", str(vendor))  # no bin/nvcc there
    with pytest.raises(SystemExit, match="needs nvcc"):
        installer.choose()


def test_no_compiler_is_one_line_naming_the_package(vendor, monkeypatch):
    monkeypatch.setattr(installer.torch, "__version__", "2.12.1+cpu")
    monkeypatch.setattr(installer.shutil, "which", lambda name: None)
    with pytest.raises(SystemExit, match="needs a C\\+\\+ compiler: apt install g\\+\\+") as error:
        installer.choose()
    assert "\n" not in str(error.value)


def test_a_cpu_only_build_is_not_installed_for_a_gpu_and_is_rebuilt(vendor, monkeypatch, capsys):
    monkeypatch.setattr(installer, "installed_version", lambda: installer.VERSION)
    monkeypatch.setattr(installer, "built_with_cuda", lambda: False)
    monkeypatch.setattr(installer, "choose", lambda: (_ for _ in ()).throw(SystemExit("stop: would build")))
    installer.main()  # no GPU: the CPU build is the right one
    assert "already installed" in capsys.readouterr().out
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    with pytest.raises(SystemExit, match="would build"):
        installer.main()
    assert "CPU kernels only and torch sees a GPU: rebuilding" in capsys.readouterr().out


def test_the_vendored_cpu_wheel_carries_no_cuda_kernels():
    pytest.importorskip("pytorch3d", reason="PyTorch3D is not installed here (make pytorch3d)")
    assert installer.built_with_cuda() is False


def test_a_cuda_build_is_told_by_its_fat_binary_registration(tmp_path, monkeypatch):
    library = tmp_path / "_C.so"
    library.write_bytes(b"\x7fELF...__cudaRegisterFatBinary...")
    monkeypatch.setattr(installer.importlib.util, "find_spec", lambda name: SimpleNamespace(origin=str(library)))
    assert installer.built_with_cuda() is True
    library.write_bytes(b"\x7fELF...at::Tensor rasterize_meshes_cpu...")
    assert installer.built_with_cuda() is False
