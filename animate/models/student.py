"""What a step-distilled weight set says about how to sample it: its step count and sampler, guidance folded in."""

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from ..errors import AnimateError
from ..pipeline.guidance import check_guidance
from ..pipeline.schedulers import SAMPLERS

METADATA_KEY = "student"


@dataclass(frozen=True)
class StudentSampling:
    """A distilled student's sampling defaults: `steps` DDIM steps at guidance 1 (the teacher's CFG is in its
    weights), and the sampling of the original teacher it reproduces (its steps and CFG)."""

    steps: int
    sampler: str = "ddim"
    guidance: float = 1.0
    teacher_steps: int = 0
    teacher_guidance: float = 1.0

    def metadata(self) -> dict[str, str]:
        """The weight file's metadata entry."""
        return {METADATA_KEY: json.dumps(asdict(self))}


def student_from_metadata(metadata: dict[str, str], source: Path) -> StudentSampling | None:
    """The student entry of a weight file's metadata (None: not a student); a damaged entry is one line."""
    if METADATA_KEY not in metadata:
        return None
    try:
        student = StudentSampling(**json.loads(metadata[METADATA_KEY]))
    except (ValueError, TypeError) as err:
        raise AnimateError(f"{source}: a damaged '{METADATA_KEY}' metadata entry ({err})") from None
    if not (isinstance(student.steps, int) and student.steps >= 1):
        raise AnimateError(f"{source}: a student needs a step count >= 1, got {student.steps!r}")
    if student.sampler not in SAMPLERS:
        raise AnimateError(f"{source}: a student's sampler must be one of {', '.join(SAMPLERS)}, got {student.sampler!r}")
    check_guidance(student.guidance)
    return student
