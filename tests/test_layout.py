"""The package's layout: the library (models, pipeline, pose, media) never imports the app, and media never imports
the diffusion models; checked on every import statement, lazy ones included, and in a fresh interpreter."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from animate.paths import REPO_ROOT


def _module_name(path: Path) -> str:
    """animate/pose/sources.py -> animate.pose.sources (a package's __init__ is the package)."""
    parts = list(path.relative_to(REPO_ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path) -> set[str]:
    """Every module an import statement of the file names, relative imports resolved."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


def _files(*folders: str) -> list[Path]:
    return sorted(p for folder in folders for p in (REPO_ROOT / folder).rglob("*.py"))


def _within(module: str, packages: tuple[str, ...]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in packages)


def _offending(files: list[Path], forbidden: tuple[str, ...]) -> dict[str, list[str]]:
    """{file: the forbidden modules it imports}, for the files that import any."""
    hits = {}
    for path in files:
        bad = sorted(m for m in imported_modules(path) if _within(m, forbidden))
        if bad:
            hits[str(path.relative_to(REPO_ROOT))] = bad
    return hits


def test_the_import_resolver_sees_relative_and_lazy_imports():
    """The checker itself: it resolves `from ..x import y` and finds imports inside functions."""
    modules = imported_modules(REPO_ROOT / "animate" / "pose" / "sources.py")
    assert "animate.errors" in modules and "animate.media.video" in modules
    assert "animate.pose.extract" in modules  # imported inside a function


def test_the_library_never_imports_the_app():
    library = [p for p in _files("animate", "stages", "data_tools")
               if "app" not in p.relative_to(REPO_ROOT).parts and p.name != "__main__.py"]
    assert _offending(library, ("animate.app",)) == {}


def test_media_never_imports_the_diffusion_models():
    media = _files("animate/media")
    assert media
    assert _offending(media, ("animate.models", "animate.pipeline", "animate.pose", "diffusers", "transformers")) == {}


@pytest.mark.parametrize("modules, forbidden", [
    ("animate.pipeline.animate, animate.models.weights, animate.pose.sources, animate.pose.frames, stages.stage2",
     ("animate.app",)),
    ("animate.media.video, animate.media.image, animate.media.upscale",
     ("animate.app", "animate.models", "animate.pipeline", "diffusers", "transformers")),
])
def test_imports_in_a_fresh_interpreter(modules, forbidden):
    code = (f"import sys\nimport {modules}\n"
            f"print(sorted(m for m in sys.modules if m.split('.')[0] in {{'animate', 'diffusers', 'transformers'}}"
            f" and any(m == f or m.startswith(f + '.') for f in {forbidden!r})))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=REPO_ROOT)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "[]"
