"""llama.cpp's own ``llama-server`` (and its ``llama-quantize``, ``llama-perplexity`` and
``llama-imatrix``),
built from the llama.cpp sources that the installed llama-cpp-python ships in its source
distribution (so both run the same llama.cpp).

    .venv/bin/python benchmarks/llama_server_build.py     # prints the binaries' paths

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


TOOLS = ("llama-server", "llama-quantize", "llama-perplexity", "llama-imatrix")


def llama_server_binary() -> Path:
    """The ``llama-server`` binary, built first when it is not there yet."""
    if os.environ.get("LLAMA_SERVER"):
        return Path(os.environ["LLAMA_SERVER"])
    return llama_tool("llama-server")


def llama_tool(name: str) -> Path:
    """One of ``TOOLS``, built (all of them) first when it is not there yet."""
    package_version = version("llama-cpp-python")
    binary = cache_folder(package_version) / name
    if not binary.is_file():
        build(package_version, binary.parent)
    return binary


def build(package_version: str, folder: Path) -> None:
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
        subprocess.run(["cmake", "--build", "build", "--target", *TOOLS,
                        f"-j{os.cpu_count() or 2}"], cwd=source, check=True,
                       stdout=subprocess.DEVNULL)
        folder.mkdir(parents=True, exist_ok=True)
        for tool in TOOLS:
            shutil.copy2(source / "build" / "bin" / tool, folder / tool)


if __name__ == "__main__":
    for tool in TOOLS:
        print(llama_tool(tool))
