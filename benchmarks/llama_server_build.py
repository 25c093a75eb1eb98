"""llama.cpp's own ``llama-server``, built from the llama.cpp sources that the installed
llama-cpp-python ships in its source distribution (so both run the same llama.cpp).

    .venv/bin/python benchmarks/llama_server_build.py     # prints the binary's path

The build (cmake, a C++ compiler; about 8 minutes on 2 cores) happens once and is kept in
``~/.cache/adam-integrations/bench/llama-server-<version>/``; ``LLAMA_SERVER=/path`` uses
a binary built elsewhere. Only the benchmarks need it, never the tests.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from importlib.metadata import version
from pathlib import Path


def cache_folder(package_version: str) -> Path:
    return (Path.home() / ".cache" / "adam-integrations" / "bench"
            / f"llama-server-{package_version}")


def llama_server_binary() -> Path:
    """The ``llama-server`` binary, built first when it is not there yet."""
    if os.environ.get("LLAMA_SERVER"):
        return Path(os.environ["LLAMA_SERVER"])
    package_version = version("llama-cpp-python")
    binary = cache_folder(package_version) / "llama-server"
    if not binary.is_file():
        build(package_version, binary)
    return binary


def build(package_version: str, binary: Path) -> None:
    for tool in ("cmake", "c++"):
        if shutil.which(tool) is None:
            raise RuntimeError(f"building llama-server needs {tool} (apt install cmake g++)")
    with tempfile.TemporaryDirectory(prefix="adam-llama-server-") as work:
        print(f"llama-server: downloading the llama-cpp-python {package_version} sdist",
              file=sys.stderr)
        subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
                        "--no-binary", ":all:", f"llama-cpp-python=={package_version}",
                        "-d", work], check=True)
        archive = next(Path(work).glob("llama_cpp_python-*.tar.gz"))
        with tarfile.open(archive) as tar:
            tar.extractall(work, filter="data")
        source = next(Path(work).glob("llama_cpp_python-*/vendor/llama.cpp"))
        print("llama-server: building (several minutes)", file=sys.stderr)
        subprocess.run(["cmake", "-B", "build", "-DCMAKE_BUILD_TYPE=Release",
                        "-DBUILD_SHARED_LIBS=OFF", "-DLLAMA_CURL=OFF",
                        "-DLLAMA_BUILD_TESTS=OFF", "-DLLAMA_BUILD_EXAMPLES=OFF",
                        "-DLLAMA_BUILD_SERVER=ON"], cwd=source, check=True,
                       stdout=subprocess.DEVNULL)
        subprocess.run(["cmake", "--build", "build", "--target", "llama-server",
                        f"-j{os.cpu_count() or 2}"], cwd=source, check=True,
                       stdout=subprocess.DEVNULL)
        binary.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source / "build" / "bin" / "llama-server", binary)


if __name__ == "__main__":
    print(llama_server_binary())
