# Type stubs for envd's build files (build.envd, *.envd).
# Generated from envd's builtins by `envd reference --format pyi`; do not edit.
# Editor set-up: docs/build-file.md, "Editor support".
from typing import Any, Dict, NoReturn, Optional, Sequence, Union, overload

def fail(*args: object, sep: str = " ") -> NoReturn:
    """Stop the build with an error (a Starlark builtin)."""
    ...

@overload
def base(image: str = "", dev: bool = ..., os: str = "", language: str = "") -> None:
    """Choose the base image: envd v1's image= and dev=, or the article's os= and language= form, a dev environment. As in the original envd, base() is ubuntu:22.04 without dev, and so is a build function that never calls base(). Positional arguments are v1's base(image, dev), or the article's base(os, language) when the first is an os name (or close to one) or the second a string.

    Args:
        image: any image, e.g. "debian:bookworm" or "nvidia/cuda:12.4.1-devel-ubuntu22.04"; without it or os=, ubuntu:22.04
        dev: a development environment (agent, user, shell, ssh), what envd up needs; default True with os= or language= (and no image=), else False
        os: ubuntu20.04, ubuntu22.04, ubuntu24.04, debian11 or debian12
        language: python, python3, python3.X; r or julia
    """
    ...

@overload
def base(os: str = "", language: str = "", image: str = "", dev: bool = ...) -> None:
    """Choose the base image: envd v1's image= and dev=, or the article's os= and language= form, a dev environment. As in the original envd, base() is ubuntu:22.04 without dev, and so is a build function that never calls base(). Positional arguments are v1's base(image, dev), or the article's base(os, language) when the first is an os name (or close to one) or the second a string.

    Args:
        os: ubuntu20.04, ubuntu22.04, ubuntu24.04, debian11 or debian12
        language: python, python3, python3.X; r or julia
        image: any image, e.g. "debian:bookworm" or "nvidia/cuda:12.4.1-devel-ubuntu22.04"; without it or os=, ubuntu:22.04
        dev: a development environment (agent, user, shell, ssh), what envd up needs; default True with os= or language= (and no image=), else False
    """
    ...

def shell(name: str = "base") -> None:
    """Choose the interactive shell of a dev environment.

    Args:
        name: base (the image's own), bash, zsh or fish
    """
    ...

def run(commands: Union[str, Sequence[str]], mount_host: bool = False) -> None:
    """Run shell commands at build time, in order, in one step after every package.

    Args:
        commands: each runs with sh -c; the step fails when one fails
        mount_host: mount the build directory read-only at /home/envd/PROJECT (the build is then never skipped)
    """
    ...

def git_config(name: Optional[str] = None, email: Optional[str] = None, editor: Optional[str] = None) -> None:
    """Set git's user name, email and editor in the image."""
    ...

def include(git: str = "", ref: str = "", path: str = "") -> Any:
    """Load a shared .envd module from a git repository or a file and return its public functions.

    Args:
        git: repository URL (https://, ssh, file:// or a local path); pinned by commit in envd.lock
        ref: tag, branch or commit of git; default: the repository's default branch
        path: without git: a .envd file relative to this file; with git: a file in the repository (default: every .envd file in it, in its folders too, hidden ones aside; a name two files define is an error)
    """
    ...

class _Install:
    """What goes into the image."""

    @staticmethod
    def python(version: str = "3.11") -> None:
        """A Python venv at /opt/envd/venv, first on PATH: the distribution's python3 when the version matches it, otherwise a standalone CPython fetched by uv.

        Args:
            version: e.g. "3.11" or "3.11.9"
        """
        ...

    @staticmethod
    def apt_packages(name: Union[str, Sequence[str]] = []) -> None:
        """Install apt packages.

        Args:
            name: package names, optionally name=version
        """
        ...

    @staticmethod
    def system_packages(name: Union[str, Sequence[str]] = []) -> None:
        """install.apt_packages under envd v0's name."""
        ...

    @staticmethod
    def python_packages(name: Union[str, Sequence[str]] = [], requirements: str = "", local_wheels: Union[str, Sequence[str]] = []) -> None:
        """Install Python packages into the venv (implies install.python()). They are resolved together, then each installs in a layer of its own, with uv (fetched from the package index) or pip when the index has no uv. Entries may carry pip options, as envd v1 handed them to pip: --index-url/-i URL, --extra-index-url URL, --find-links/-f URL, --trusted-host HOST, --pre, --no-deps, --upgrade/-U (changes nothing); they apply to the one resolve of every call (docs/build-file.md).

        Args:
            name: requirements such as "numpy" or "torch>=2.1", and pip options such as "torch --index-url URL"
            requirements: a requirements file in the build directory
            local_wheels: wheel files in the build directory
        """
        ...

    @staticmethod
    def cuda(version: str, cudnn: Optional[str] = "8") -> None:
        """Build on the nvidia/cuda devel image of the same Ubuntu release.

        Args:
            version: e.g. "11.6" or "12.4.1"
            cudnn: cuDNN major version; None for none
        """
        ...

    @staticmethod
    def vscode_extensions(name: Union[str, Sequence[str]]) -> None:
        """VS Code extensions for the editor attached with envd up.

        Args:
            name: extension ids, e.g. "ms-python.python"
        """
        ...

    @staticmethod
    def conda(use_mamba: bool = False) -> None:
        """Make the Python environment a conda environment (micromamba, conda-forge), so conda and pip packages share it.

        Args:
            use_mamba: kept for envd v1 files: envd always uses micromamba, also as conda
        """
        ...

    @staticmethod
    def conda_packages(name: Union[str, Sequence[str]] = [], channel: Union[str, Sequence[str]] = [], env_file: str = "") -> None:
        """Install conda packages into the environment (implies install.conda()).

        Args:
            name: e.g. "pytorch" or "numpy>=1.26"
            channel: extra channels for these packages, e.g. "pytorch"
            env_file: an environment.yml in the build directory; name= and channel= may come with it, which the original envd refused
        """
        ...

    @staticmethod
    def uv(python_version: str = ...) -> None:
        """Install uv into the venv (its cache is shared by every build); install.python_packages keeps working beside it, where the original envd left packages to uv.

        Args:
            python_version: the venv's Python version; default: the environment's (install.python's, else the distribution's python3), where the original envd's was "3.11"
        """
        ...

    @staticmethod
    def pixi(use_pixi_mirror: bool = False, pypi_index: Optional[str] = None) -> None:
        """Install pixi; run `pixi install` or `pixi shell` in the environment. install.python_packages keeps working beside it, where the original envd left packages to pixi.

        Args:
            use_pixi_mirror: fetch conda packages through prefix.dev
            pypi_index: the PyPI index pixi uses
        """
        ...

    @staticmethod
    def r_lang() -> None:
        """Install R (the distribution's r-base)."""
        ...

    @staticmethod
    def r_packages(name: Union[str, Sequence[str]]) -> None:
        """Install R packages from CRAN (implies install.r_lang()).

        Args:
            name: e.g. "ggplot2"
        """
        ...

    @staticmethod
    def julia() -> None:
        """Install Julia from the official tarball into /opt/julia."""
        ...

    @staticmethod
    def julia_packages(name: Union[str, Sequence[str]]) -> None:
        """Install Julia packages (implies install.julia()).

        Args:
            name: e.g. "Flux"
        """
        ...

    @staticmethod
    def rust(version: str = "stable") -> None:
        """Install a Rust toolchain with rustup into /opt/rust.

        Args:
            version: the toolchain: stable, beta, nightly or e.g. "1.82.0"; None is stable. The original envd's version was rustup's own (RUSTUP_VERSION), its toolchain always stable
        """
        ...

    @staticmethod
    def go(version: str = "1.25.3") -> None:
        """Install Go from the official tarball into /usr/local/go.

        Args:
            version: None is this default, the original envd's
        """
        ...

    @staticmethod
    def nodejs(version: str = "25.1.0") -> None:
        """Install Node.js from the official tarball into /opt/nodejs.

        Args:
            version: None is this default, the original envd's
        """
        ...

    @staticmethod
    def codex(version: str = "0.98.0") -> None:
        """Install OpenAI's Codex CLI as /usr/bin/codex: the static binary of its GitHub release (no Node.js needed).

        Args:
            version: a release of github.com/openai/codex, e.g. "0.98.0"; None means this pinned one (the original envd took the latest release)
        """
        ...

install: _Install

class _Config:
    """Settings of the environment, its image and its container."""

    @staticmethod
    def pip_index(url: str, extra_url: str = "", trust: bool = False) -> None:
        """The package index Python packages come from (pip and uv).

        Args:
            url: e.g. "https://pypi.org/simple"
            extra_url: a second index, searched too
            trust: trust the hosts even without valid TLS (pip --trusted-host, uv --allow-insecure-host)
        """
        ...

    @staticmethod
    def apt_source(source: str) -> None:
        """Replace /etc/apt/sources.list (and remove deb822 *.sources files).

        Args:
            source: the content of a sources.list
        """
        ...

    @overload
    @staticmethod
    def jupyter(token: str = "", port: int = 0) -> None:
        """Serve JupyterLab from the environment (installs jupyterlab; implies Python).

        Args:
            token: "" lets envd up choose one; Jupyter always has a token
            port: the port on this machine (the original envd's meaning); 0 picks a free one
        """
        ...

    @overload
    @staticmethod
    def jupyter(*, password: str = "", port: int = 0) -> None:
        """Serve JupyterLab from the environment (installs jupyterlab; implies Python).

        Args:
            password: "" lets envd up choose one; Jupyter always has a token
            port: the port on this machine (the original envd's meaning); 0 picks a free one
        """
        ...

    @staticmethod
    def conda_channel(channel: str) -> None:
        """Configure conda's channels (implies install.conda(), which the original envd required first).

        Args:
            channel: the content of a .condarc
        """
        ...

    @staticmethod
    def gpu(count: int) -> None:
        """GPUs the container gets from envd up.

        Args:
            count: a number of GPUs, or -1 for all
        """
        ...

    @staticmethod
    def shm_size(size: int) -> None:
        """Size of the container's /dev/shm (PyTorch's data loaders need more than Docker's 64 MB).

        Args:
            size: megabytes
        """
        ...

    @staticmethod
    def cran_mirror(url: str) -> None:
        """The CRAN mirror R packages come from (implies install.r_lang(); the original envd installed R only with install.r_lang()).

        Args:
            url: default https://cran.rstudio.com
        """
        ...

    @staticmethod
    def julia_pkg_server(url: str) -> None:
        """The Julia package server (JULIA_PKG_SERVER; implies install.julia(); the original envd installed Julia only with install.julia()).

        Args:
            url: default https://pkg.julialang.org
        """
        ...

    @staticmethod
    def rstudio_server() -> None:
        """Run RStudio Server on port 8787 of a dev environment (implies install.r_lang(); Ubuntu bases)."""
        ...

    @staticmethod
    def entrypoint(args: Union[str, Sequence[str]]) -> None:
        """The image's entrypoint, for images built with dev=False.

        Args:
            args: e.g. ["python3", "serve.py"]
        """
        ...

    @staticmethod
    def repo(url: str, description: str = "") -> None:
        """The project's repository, recorded as OCI labels of the image."""
        ...

    @staticmethod
    def owner(uid: int, gid: int) -> None:
        """UID and GID that own what envd installs for the user (toolchains, downloads). The dev user keeps its own IDs (yours while the project is mounted, so that it stays writable), where the original envd gave it these."""
        ...

config: _Config

class _Runtime:
    """How the container runs (envd up), not what is in the image."""

    @staticmethod
    def environ(env: Dict[str, Union[str, int]] = {}, extra_path: Union[str, Sequence[str]] = []) -> None:
        """Environment variables and PATH entries, in build steps and in the image; a later call wins.

        Args:
            env: name to value
            extra_path: directories put on PATH after the venv
        """
        ...

    @staticmethod
    def expose(envd_port: int, host_port: int = 0, service: str = "", listen_addr: str = "") -> None:
        """Publish a port of the container (on 127.0.0.1 unless listen_addr says otherwise).

        Args:
            envd_port: the port in the container
            host_port: the port on the host; 0 picks a free one
            service: a name shown by envd up
            listen_addr: the host address, e.g. "0.0.0.0"
        """
        ...

    @staticmethod
    def daemon(commands: Sequence[Sequence[str]]) -> None:
        """Processes the environment's supervisor starts and keeps running.

        Args:
            commands: one argv list per process, e.g. [["python3", "-m", "http.server"]]
        """
        ...

    @staticmethod
    def init(commands: Sequence[Union[str, Sequence[str]]]) -> None:
        """Commands run once when the container starts, before the daemons.

        Args:
            commands: argv lists, or strings run with sh -c
        """
        ...

    @overload
    @staticmethod
    def mount(host_path: str, envd_path: str) -> None:
        """Mount a host directory into the container.

        Args:
            host_path: on the host; ~ is the user's home, a relative path is relative to the build directory; /, system directories, your home itself and the Docker socket need envd up --allow-mount PATH
            envd_path: in the container: an absolute path, or ~/... in the dev user's home (/home/envd)
        """
        ...

    @overload
    @staticmethod
    def mount(*, src: str, dest: str) -> None:
        """Mount a host directory into the container.

        Args:
            src: on the host; ~ is the user's home, a relative path is relative to the build directory; /, system directories, your home itself and the Docker socket need envd up --allow-mount PATH
            dest: in the container: an absolute path, or ~/... in the dev user's home (/home/envd)
        """
        ...

    @staticmethod
    def command(commands: Dict[str, Union[str, int]]) -> None:
        """Named commands for the environment, like a Makefile's targets.

        Args:
            commands: name to shell command, e.g. {"train": "python train.py"}
        """
        ...

runtime: _Runtime

class _Io:
    """Files from the host or the network."""

    @overload
    @staticmethod
    def copy(source: str, target: str, image: Optional[str] = None) -> None:
        """Copy a file or directory from the build directory, or from another image like Dockerfile's COPY --from, into the image (a build step, in order with run()).

        Args:
            source: relative to the build directory; with image, an absolute path in that image; a directory's contents are copied
            target: the path in the image
            image: an image to copy from, e.g. "mambaorg/micromamba:1.0.0", pulled when the image is built (a tag that moves is picked up by envd build --force); the files keep their owner from it, where the original envd gave them to the environment's owner
        """
        ...

    @overload
    @staticmethod
    def copy(*, host_path: str, envd_path: str, image: Optional[str] = None) -> None:
        """Copy a file or directory from the build directory, or from another image like Dockerfile's COPY --from, into the image (a build step, in order with run()).

        Args:
            host_path: relative to the build directory; with image, an absolute path in that image; a directory's contents are copied
            envd_path: the path in the image
            image: an image to copy from, e.g. "mambaorg/micromamba:1.0.0", pulled when the image is built (a tag that moves is picked up by envd build --force); the files keep their owner from it, where the original envd gave them to the environment's owner
        """
        ...

    @overload
    @staticmethod
    def copy(*, src: str, dest: str, image: Optional[str] = None) -> None:
        """Copy a file or directory from the build directory, or from another image like Dockerfile's COPY --from, into the image (a build step, in order with run()).

        Args:
            src: relative to the build directory; with image, an absolute path in that image; a directory's contents are copied
            dest: the path in the image
            image: an image to copy from, e.g. "mambaorg/micromamba:1.0.0", pulled when the image is built (a tag that moves is picked up by envd build --force); the files keep their owner from it, where the original envd gave them to the environment's owner
        """
        ...

    @overload
    @staticmethod
    def mount(host_path: str, envd_path: str) -> None:
        """runtime.mount under envd v0's name."""
        ...

    @overload
    @staticmethod
    def mount(*, src: str, dest: str) -> None:
        """runtime.mount under envd v0's name."""
        ...

    @staticmethod
    def http(url: str, checksum: Optional[str] = None, filename: Optional[str] = None) -> None:
        """Download a file into /home/envd/extra_source when the image is built.

        Args:
            checksum: "sha256:" and the hex digest; BuildKit verifies it and, with it, never downloads the file again
            filename: default: the last part of the URL
        """
        ...

io: _Io

class _DataPath:
    """Where libraries cache their datasets inside the environment."""

    huggingface: str
    """Hugging Face's cache (datasets, models) in the dev user's home: the original envd's "~/.cache/huggingface", absolute because a mount's target must be. Value: "/home/envd/.cache/huggingface"."""

    dgl: str
    """DGL's dataset directory in the dev user's home: the original envd's "~/.dgl", absolute because a mount's target must be. Value: "/home/envd/.dgl"."""

class _Data:
    """Datasets managed by envd, and where libraries cache theirs."""

    @staticmethod
    def envd(name: str) -> str:
        """The host directory of a dataset managed by envd, for runtime.mount(host_path=data.envd("mnist"), ...).

        Args:
            name: the dataset's name
        """
        ...

    path: _DataPath
    """Where libraries cache their datasets inside the environment, for runtime.mount(envd_path=...)."""

data: _Data
