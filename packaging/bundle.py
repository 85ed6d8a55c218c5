"""Build Hearth's Linux installers from the current virtualenv: a tarball and a .deb.

    python packaging/bundle.py [--dist DIR] [--work DIR] [--no-deb]

1. PyInstaller (packaging/hearth.spec) makes a one-folder app: Python, Qt with its xcb
   platform plugin and the X libraries it needs (libxcb-cursor0 included), llama.cpp with every
   CPU level module, the bundled model, the catalog and the wire formats.
2. Every library the folder still needs from the system is checked to exist here, and named
   (with its Debian package) as the .deb's dependencies.
3. `DIST/hearth-<version>-linux-x86_64.tar.gz`: the folder, the icon, the desktop entry and a
   script that adds the entry to the user's menu. Unpack anywhere and run `./hearth`.
4. `DIST/hearth_<version>_amd64.deb` (dpkg-deb): /opt/hearth, /usr/bin/hearth, the desktop
   entry and the icon.

Prints one JSON object with the paths and sizes. Linux only; the release workflow builds the
Windows and macOS bundles from the same spec.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import tarfile
import time
from importlib.metadata import version
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ARCH = {"x86_64": ("x86_64", "amd64"), "aarch64": ("aarch64", "arm64")}


_STARTED = time.monotonic()


def say(msg: str) -> None:
    print(f"hearth-bundle: [{time.monotonic() - _STARTED:5.0f} s] {msg}", file=sys.stderr, flush=True)


class BundleError(Exception):
    """The bundle cannot be built; the message says why and what to do."""


def run_pyinstaller(work: Path) -> Path:
    say("PyInstaller: collecting Python, Qt, llama.cpp and the model (about 2 minutes)")
    cmd = [
        sys.executable,
        "-m",
        "PyInstaller",
        "--noconfirm",
        "--log-level",
        "WARN",
        "--distpath",
        str(work / "dist"),
        "--workpath",
        str(work / "build"),
        str(ROOT / "packaging" / "hearth.spec"),
    ]
    if subprocess.run(cmd).returncode != 0:
        raise BundleError("PyInstaller failed; its output above says why.")
    return work / "dist" / "hearth"


def _elf_files(folder: Path) -> list[Path]:
    out = []
    for p in folder.rglob("*"):
        if p.is_file() and not p.is_symlink() and (p.suffix == ".so" or ".so." in p.name or p.name == "hearth"):
            with open(p, "rb") as f:
                if f.read(4) == b"\x7fELF":
                    out.append(p)
    return out


# Qt plugins that load only where the desktop provides their libraries (GTK's theme on GNOME,
# Wayland's client libraries under a Wayland session). Bundling those libraries would clash
# with the system's; a missing one only means Qt skips the plugin.
_OPTIONAL = re.compile(r"/plugins/(platformthemes|wayland[^/]*|platforms/libqwayland[^/]*)(/|$)")
# Libraries a Wayland session always provides (PyInstaller never bundles them, on purpose).
_SESSION_PROVIDED = re.compile(r"^libwayland-")
# Debian packages for the X libraries Qt's xcb plugin needs, for the message when one is missing.
_DEBIAN_HINT = {
    "libxcb-cursor.so.0": "libxcb-cursor0",
    "libxcb-icccm.so.4": "libxcb-icccm4",
    "libxcb-keysyms.so.1": "libxcb-keysyms1",
    "libxcb-image.so.0": "libxcb-image0",
    "libxcb-render-util.so.0": "libxcb-render-util0",
    "libxkbcommon-x11.so.0": "libxkbcommon-x11-0",
}


def system_libraries(folder: Path) -> dict[str, str]:
    """Libraries the bundle needs from the system: soname -> path here. Raises if one is missing.

    Optional Qt plugins (_OPTIONAL) are left out: they must not make the .deb depend on GTK.
    """
    bundled = {p.name for p in folder.rglob("*.so*")}
    env = {**os.environ, "LD_LIBRARY_PATH": os.pathsep.join(sorted({str(p.parent) for p in folder.rglob("*.so*")}))}
    needed: dict[str, str] = {}
    missing: dict[str, str] = {}
    for elf in _elf_files(folder):
        if _OPTIONAL.search("/" + elf.relative_to(folder).as_posix()):
            continue
        out = subprocess.run(["ldd", str(elf)], capture_output=True, text=True, env=env).stdout
        for line in out.splitlines():
            m = re.match(r"\s*(\S+) => (not found|\S+)", line)
            if not m or m.group(1) in bundled or _SESSION_PROVIDED.match(m.group(1)):
                continue
            if m.group(2) == "not found":
                missing[m.group(1)] = elf.relative_to(folder).as_posix()
            elif not m.group(2).startswith(str(folder)):
                needed[m.group(1)] = m.group(2)
    if missing:
        raise BundleError(
            "These libraries are needed by the bundle but missing on this build machine: "
            + ", ".join(f"{k} (for {v})" for k, v in sorted(missing.items()))
            + ". Install them (apt-get install "
            + " ".join(sorted({_DEBIAN_HINT.get(k, k) for k in missing}))
            + ") and build again."
        )
    return needed


def debian_packages(libraries: dict[str, str]) -> list[str]:
    """The Debian packages that own these files (dpkg -S), for the .deb's Depends."""
    if shutil.which("dpkg") is None:
        return []
    packages = set()
    for path in sorted(set(libraries.values())):
        real = os.path.realpath(path)
        for candidate in (path, real, real.replace("/usr/lib/", "/lib/", 1), path.replace("/lib/", "/usr/lib/", 1)):
            done = subprocess.run(["dpkg", "-S", candidate], capture_output=True, text=True)
            if done.returncode == 0:
                packages.add(done.stdout.split(":", 1)[0].strip())
                break
    return sorted(packages)


def _du(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


_MENU_SCRIPT = """#!/bin/sh
# Adds Hearth to your applications menu (for you only), pointing at this folder.
set -e
here="$(cd "$(dirname "$0")" && pwd)"
apps="${XDG_DATA_HOME:-$HOME/.local/share}/applications"
icons="${XDG_DATA_HOME:-$HOME/.local/share}/icons/hicolor/256x256/apps"
mkdir -p "$apps" "$icons"
cp "$here/hearth.png" "$icons/hearth.png"
sed "s|^Exec=hearth|Exec=\\"$here/hearth\\"|" "$here/hearth.desktop" > "$apps/hearth.desktop"
echo "Hearth is in your applications menu; run $here/hearth from a terminal for the CLI."
"""


def make_tarball(app: Path, dist: Path, name: str) -> Path:
    stage = dist / name
    if stage.exists():
        shutil.rmtree(stage)
    shutil.copytree(app, stage, symlinks=True)
    shutil.copy2(ROOT / "app" / "ui" / "assets" / "hearth.png", stage / "hearth.png")
    shutil.copy2(ROOT / "packaging" / "hearth.desktop", stage / "hearth.desktop")
    (stage / "add-to-menu.sh").write_text(_MENU_SCRIPT)
    (stage / "add-to-menu.sh").chmod(0o755)
    out = dist / f"{name}.tar.gz"
    say(f"writing {out.name}")
    with tarfile.open(out, "w:gz", compresslevel=6) as tar:
        tar.add(stage, arcname=name)
    shutil.rmtree(stage)
    return out


def make_deb(app: Path, dist: Path, ver: str, deb_arch: str, depends: list[str]) -> tuple[Path, int]:
    stage = dist / "deb-root"
    if stage.exists():
        shutil.rmtree(stage)
    shutil.copytree(app, stage / "opt" / "hearth", symlinks=True)
    launcher = stage / "usr" / "bin" / "hearth"
    launcher.parent.mkdir(parents=True)
    # A script, not a symlink: the bundle finds its files next to the real executable.
    launcher.write_text('#!/bin/sh\nexec /opt/hearth/hearth "$@"\n')
    launcher.chmod(0o755)
    (stage / "usr/share/applications").mkdir(parents=True)
    shutil.copy2(ROOT / "packaging" / "hearth.desktop", stage / "usr/share/applications/hearth.desktop")
    icons = stage / "usr/share/icons/hicolor/256x256/apps"
    icons.mkdir(parents=True)
    shutil.copy2(ROOT / "app" / "ui" / "assets" / "hearth.png", icons / "hearth.png")
    installed_kb = _du(stage) // 1024
    control = stage / "DEBIAN" / "control"
    control.parent.mkdir()
    fields = {
        "Package": "hearth",
        "Version": ver,
        "Architecture": deb_arch,
        "Section": "utils",
        "Priority": "optional",
        "Maintainer": "Hearth developers <hearth@localhost>",
        "Installed-Size": str(installed_kb),
        "Depends": ", ".join(depends),
        "Description": "local-first desktop assistant: chat with a language model on your own machine\n"
        " Hearth runs llama.cpp on your CPU (or GPU), offline, and keeps every conversation\n"
        " in SQLite on your disk. It can also talk to any OpenAI-compatible server.",
    }
    control.write_text("".join(f"{k}: {v}\n" for k, v in fields.items() if v))
    for p in stage.rglob("*"):  # dpkg-deb refuses group/other-writable files
        if not p.is_symlink():
            p.chmod(p.stat().st_mode & ~(stat.S_IWGRP | stat.S_IWOTH))
    out = dist / f"hearth_{ver}_{deb_arch}.deb"
    say(f"writing {out.name}")
    # gzip level 6, as the tarball: dpkg-deb's default 9 took 44 s here against 18 s, for a package
    # 0.2% smaller (the model and the libraries hardly compress).
    done = subprocess.run(
        ["dpkg-deb", "--root-owner-group", "-Zgzip", "-z6", "--build", str(stage), str(out)],
        capture_output=True,
        text=True,
    )
    shutil.rmtree(stage)
    if done.returncode != 0:
        raise BundleError(f"dpkg-deb failed: {done.stderr.strip()}")
    return out, installed_kb * 1024


def build(dist: Path, work: Path, *, deb: bool = True) -> dict[str, object]:
    if not sys.platform.startswith("linux"):
        raise BundleError(
            "packaging/bundle.py builds the Linux installers; on Windows and macOS run PyInstaller on "
            "packaging/hearth.spec (see .github/workflows/release.yml)."
        )
    machine = os.uname().machine
    if machine not in ARCH:
        raise BundleError(f"no installer recipe for {machine}")
    tar_arch, deb_arch = ARCH[machine]
    ver = version("hearth")
    t0 = time.monotonic()
    app = run_pyinstaller(work)
    libs = system_libraries(app)
    depends = debian_packages(libs)
    dist.mkdir(parents=True, exist_ok=True)
    name = f"hearth-{ver}-linux-{tar_arch}"
    result: dict[str, object] = {
        "version": ver,
        "folder": str(app),
        "folder_bytes": _du(app),
        "system_libraries": sorted(libs),
        "depends": depends,
    }
    tarball = make_tarball(app, dist, name)
    result |= {"tarball": str(tarball), "tarball_bytes": tarball.stat().st_size}
    if deb and shutil.which("dpkg-deb"):
        deb_path, installed = make_deb(app, dist, ver, deb_arch, depends)
        result |= {"deb": str(deb_path), "deb_bytes": deb_path.stat().st_size, "deb_installed_bytes": installed}
    elif deb:
        say("dpkg-deb is not installed: no .deb (apt-get install dpkg)")
    result["build_seconds"] = round(time.monotonic() - t0, 1)
    return result


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dist", type=Path, default=ROOT / "dist", help="where the installers go (default: dist/)")
    p.add_argument("--work", type=Path, default=ROOT / "build" / "bundle", help="PyInstaller's work folder")
    p.add_argument("--no-deb", action="store_true", help="only the tarball")
    a = p.parse_args(argv)
    try:
        result = build(a.dist.resolve(), a.work.resolve(), deb=not a.no_deb)
    except BundleError as e:
        say(str(e))
        return 1
    print(json.dumps(result, indent=2))
    say(
        f"done in {result['build_seconds']} s: {result['tarball']}"
        + (f" and {result['deb']}" if "deb" in result else "")
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
